#!/usr/bin/env bash
# Native inference under LoadGen: ./run_local.sh backend model device [flags for image_classification.infer]
# DATA_DIR, MODEL_DIR and OUTPUT_DIR override the mini set, the demo's models and the results folder (README.md).
set -euo pipefail
cd "$(dirname "$0")/.." && exec "${LAUNCH_PYTHON:-python3}" -m loadgen.deploy.scripts image_classification run_local "$@"
