#!/usr/bin/env bash
# Fetch COCO 2017 (train2017.zip, val2017.zip, annotations_trainval2017.zip: about 20 GB) with md5 checks and
# resumable downloads, extract them safely, and fetch torchvision's ImageNet ResNet-50 (sha256 prefix checked).
# usage: ./download_dataset.sh DATA_DIR [--only annotations,val2017,train2017,weights] [--base-url MIRROR_URL]
set -euo pipefail
cd "$(dirname "$0")/.." && exec "${LAUNCH_PYTHON:-python3}" -m loadgen.deploy.scripts object_detection download_dataset "$@"
