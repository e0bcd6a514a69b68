#!/usr/bin/env bash
# Fetch (or take already placed) ILSVRC2012 archives, check their md5, extract them safely, build val_map.txt.
# usage: ./download_dataset.sh DATA_DIR [--archives-dir DIR] [--base-url MIRROR_URL]
# ImageNet needs an account at image-net.org: place the tars in DATA_DIR/archives or give a mirror.
set -euo pipefail
cd "$(dirname "$0")/.." && exec "${LAUNCH_PYTHON:-python3}" -m loadgen.deploy.scripts image_classification download_dataset "$@"
