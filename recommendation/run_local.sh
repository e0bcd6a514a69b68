#!/usr/bin/env bash
# Native inference under LoadGen: ./run_local.sh backend model dataset device [flags for infer.py]
# e.g. ./run_local.sh pytorch dlrm terabyte cpu --scenario Offline --accuracy --max-ind-range=40000000
# DATA_DIR (raw day files) and MODEL_DIR (dlrm.pt2 / dlrm.onnx) override the mini set and the demo's export.
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: $0 backend model dataset device [flags]   (backend: pytorch onnxruntime null; model: dlrm; dataset: terabyte kaggle; device: cpu gpu)" >&2
  exit 2
fi
backend=$1 model=$2 dataset=$3 device=$4
shift 4
cd "$(dirname "$0")/.."
args=(--backend "$backend" --model-name "$model" --dataset "$dataset" --device "$device")
[ -n "${DATA_DIR:-}" ] && args+=(--raw-dir "$DATA_DIR")
[ -n "${MODEL_DIR:-}" ] && args+=(--model-dir "$MODEL_DIR")
exec "${PYTHON:-.venv/bin/python}" -m recommendation.infer "${args[@]}" --output "${OUTPUT_DIR:-results/recommendation/$model-$dataset-$backend}" "$@"
