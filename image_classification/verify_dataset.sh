#!/usr/bin/env bash
# Check a dataset folder: 1,281,167 train and 50,000 val images and the archives' md5 for ImageNet, or every
# file's sha256 where the folder has a manifest.json (the mini set). Exits 1 naming every bad file.
# usage: ./verify_dataset.sh [DATA_DIR]   (default: the mini set)
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" -m image_classification.data verify --data-dir "${1:-build/image_classification/mini}"
