#!/usr/bin/env bash
# Native inference under LoadGen: ./run_local.sh backend model device [flags for infer.py]
# e.g. ./run_local.sh onnxruntime resnet50 cpu --scenario Offline --accuracy
# DATA_DIR and MODEL_DIR override the defaults (the mini set and the models `make demo` exported).
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 backend model device [flags]   (backend: pytorch onnxruntime tf tflite; model: resnet50 mobilenet; device: cpu gpu)" >&2
  exit 2
fi
backend=$1 model=$2 device=$3
shift 3
cd "$(dirname "$0")/.."
args=(--profile "$model-$backend" --device "$device")
[ -n "${DATA_DIR:-}" ] && args+=(--dataset-path "$DATA_DIR")
[ -n "${MODEL_DIR:-}" ] && args+=(--model-dir "$MODEL_DIR")
exec "${PYTHON:-.venv/bin/python}" -m image_classification.infer "${args[@]}" --output "${OUTPUT_DIR:-results/image_classification/$model-$backend}" "$@"
