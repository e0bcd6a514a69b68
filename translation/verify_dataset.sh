#!/usr/bin/env bash
# Check a WMT English-German folder: the archives present against their published checksums (or sizes), and every
# file against the manifest.json written when it was built. Exits 1 naming every bad file.
# usage: ./verify_dataset.sh [DATA_DIR] [--dataset wmt16|wmt17] [--no-checksums]   (default: the mini set)
set -euo pipefail
cd "$(dirname "$0")/.." && exec "${LAUNCH_PYTHON:-python3}" -m loadgen.deploy.scripts translation verify_dataset "$@"
