#!/usr/bin/env bash
# Fetch COCO 2017 (train2017.zip, val2017.zip, annotations_trainval2017.zip: about 20 GB) with md5 checks and
# resumable downloads, extract them safely, and fetch torchvision's ImageNet ResNet-50 (sha256 prefix checked);
# or, with `openimages` first, RetinaNet's MLPerf OpenImages subset: the OpenImages CSVs, the 24,781 validation
# images with a box of the 264 classes (resumed, decoded), and annotations/openimages-mlperf.json.
# usage: ./download_dataset.sh DATA_DIR [--only annotations,val2017,train2017,minival,weights] [--base-url URL]
#        ./download_dataset.sh openimages DATA_DIR [--base-url CSV_MIRROR] [--images-url URL] [--max-images N]
set -euo pipefail
cd "$(dirname "$0")/.." && exec "${LAUNCH_PYTHON:-python3}" -m loadgen.deploy.scripts object_detection download_dataset "$@"
