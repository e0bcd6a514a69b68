#!/usr/bin/env bash
# Training:  ./run_and_time.sh [train flags]      trains to AUC 0.8025 and prints RESULT,dlrm,<seed>,<s>,...
# Inference: ./run_and_time.sh [--docker|--native] backend model dataset device [flags]
#            in Docker when an engine answers, else natively (loadgen/launch.py says which, in one line).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  --docker|--native|pytorch|onnxruntime|null) exec "${LAUNCH_PYTHON:-python3}" -m loadgen.launch recommendation "$@" ;;
esac
exec "${PYTHON:-.venv/bin/python}" -m recommendation.train "$@"
