#!/usr/bin/env bash
# Training:  ./run_and_time.sh [train flags]      trains to the target and prints RESULT,<model>,<seed>,<s>,...
# Inference: ./run_and_time.sh [--docker|--native] backend model device [flags]
#            in Docker when an engine answers, else natively (loadgen/launch.py says which, in one line).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  --docker|--native|pytorch|onnxruntime|tf|tflite) exec "${LAUNCH_PYTHON:-python3}" -m loadgen.launch image_classification "$@" ;;
esac
exec "${PYTHON:-.venv/bin/python}" -m image_classification.train "$@"
