#!/usr/bin/env bash
# Fetch (or take already placed) ILSVRC2012 archives, check their md5, extract them safely, build val_map.txt.
# usage: ./download_dataset.sh DATA_DIR [--archives-dir DIR] [--base-url MIRROR_URL]
# ImageNet needs an account at image-net.org: place the tars in DATA_DIR/archives or give a mirror.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DATA_DIR [--archives-dir DIR] [--base-url URL]" >&2; exit 2; }
data_dir=$1
shift
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" -m image_classification.data download --data-dir "$data_dir" "$@"
