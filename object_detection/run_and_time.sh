#!/usr/bin/env bash
# Inference: ./run_and_time.sh [infer] [--docker|--native] backend model device [flags]
#            in Docker when an engine answers, else natively (one line says which).
# Training:  ./run_and_time.sh [train] [flags]   (object_detection.train: Mask R-CNN; RetinaNet with --config
#            retinanet or retinanet-mini), printing RESULT,...
set -euo pipefail
cd "$(dirname "$0")/.." && exec "${LAUNCH_PYTHON:-python3}" -m loadgen.deploy.scripts object_detection run_and_time "$@"
