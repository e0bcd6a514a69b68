#!/usr/bin/env bash
# Fetch the Criteo Terabyte day files day_0.gz ... day_23.gz (about 343 GB), checking each md5 from the
# MLPerf DLRM reference README. They are read compressed; unpacking (about 1.1 TB) is not needed.
# usage: ./download_dataset.sh DATA_DIR [--days 0-23] [--base-url MIRROR_URL]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DATA_DIR [--days 0-23] [--base-url URL]" >&2; exit 2; }
data_dir=$1
shift
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" -m recommendation.data download --data-dir "$data_dir" "$@"
