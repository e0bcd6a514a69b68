#!/usr/bin/env bash
# Fetch WMT English-German as the MLPerf training references do (resumed downloads, checksums where published,
# safe extraction) and process it: GNMT's WMT16 recipe by default (Europarl v7, Common Crawl, News Commentary v11;
# Moses tokenization, clean 1..80, shared BPE of 32,000 merges), the Transformer's with --dataset wmt17 (News
# Commentary v12, Common Crawl, Europarl v7; a shared sentencepiece vocabulary of 32,768). About 2 GB of archives.
# usage: ./download_dataset.sh [DATA_DIR] [--dataset wmt16|wmt17] [--base-url URL] [--merges N] [--workers N]
#        DATA_DIR (default: build/translation/wmt16_de_en, wmt17_de_en for wmt17) is relative to the repository root.
set -euo pipefail
cd "$(dirname "$0")/.." && exec "${LAUNCH_PYTHON:-python3}" -m loadgen.deploy.scripts translation download_dataset "$@"
