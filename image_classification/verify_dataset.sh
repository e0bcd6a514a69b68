#!/usr/bin/env bash
# Check an ImageNet folder: image counts, every image decoded, val_map.txt, the archives' md5; or every file's
# sha256 where the folder has a manifest.json (the mini set). Exits 1 naming every bad file and line.
# usage: ./verify_dataset.sh [DATA_DIR]   (default: the mini set)
set -euo pipefail
cd "$(dirname "$0")/.." && exec "${LAUNCH_PYTHON:-python3}" -m loadgen.deploy.scripts image_classification verify_dataset "$@"
