#!/usr/bin/env bash
# Check the day files: md5 of each day_N.gz or unpacked day_N, or every file's sha256 where the folder has a
# manifest.json (the SYNTHETIC mini set). Exits 1 naming every bad file.
# usage: ./verify_dataset.sh [DATA_DIR]   (default: the mini set)
set -euo pipefail
cd "$(dirname "$0")/.." && exec "${LAUNCH_PYTHON:-python3}" -m loadgen.deploy.scripts recommendation verify_dataset "$@"
