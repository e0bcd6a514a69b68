#!/usr/bin/env bash
# Native inference under LoadGen: ./run_local.sh backend model device [flags for translation.infer]
# model is gnmt or transformer (backends pytorch and onnxruntime); DATA_DIR, MODEL_DIR and OUTPUT_DIR override the
# mini set, the exported models and the results folder.
set -euo pipefail
cd "$(dirname "$0")/.." && exec "${LAUNCH_PYTHON:-python3}" -m loadgen.deploy.scripts translation run_local "$@"
