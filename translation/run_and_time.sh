#!/usr/bin/env bash
# Inference: ./run_and_time.sh [infer] [--docker|--native] backend model device [flags]
#            in Docker when an engine answers, else natively (one line says which).
# Training:  ./run_and_time.sh [train] [flags]   (translation.train: GNMT by default, the Transformer with
#            --config transformer or transformer-mini), printing RESULT,...
set -euo pipefail
cd "$(dirname "$0")/.." && exec "${LAUNCH_PYTHON:-python3}" -m loadgen.deploy.scripts translation run_and_time "$@"
