#!/usr/bin/env bash
# Training:  ./run_and_time.sh [train] [flags]      trains to the target and prints RESULT,<model>,<seed>,<s>,...
# Inference: ./run_and_time.sh [infer] [--docker|--native] backend model ... device [flags]
#            in Docker when an engine answers, else natively (one line says which). See README.md.
set -euo pipefail
cd "$(dirname "$0")/.." && exec "${LAUNCH_PYTHON:-python3}" -m loadgen.deploy.scripts image_classification run_and_time "$@"
