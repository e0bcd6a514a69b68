#!/usr/bin/env bash
# Check a COCO 2017 folder: 118,287 train and 5,000 val images, the instances_*.json files and the images they list,
# every image decoded, the archives' md5 and the weights' sha256 prefix where present; or, with `openimages` first,
# the OpenImages subset: openimages-mlperf.json, its 24,781 images, every one decoded. Exits 1 naming every bad file.
# usage: ./verify_dataset.sh [DATA_DIR] [--expected-counts coco2017|annotations|TRAIN,VAL]   (default: the mini set)
#        ./verify_dataset.sh openimages DATA_DIR [--expected-count N]
set -euo pipefail
cd "$(dirname "$0")/.." && exec "${LAUNCH_PYTHON:-python3}" -m loadgen.deploy.scripts object_detection verify_dataset "$@"
