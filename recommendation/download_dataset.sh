#!/usr/bin/env bash
# Fetch the Criteo Terabyte day files day_0.gz ... day_23.gz (about 343 GB), checking each md5 from the
# MLPerf DLRM reference README. They are read compressed; unpacking (about 1.1 TB) is not needed.
# usage: ./download_dataset.sh DATA_DIR [--days 0-23] [--base-url MIRROR_URL]
set -euo pipefail
cd "$(dirname "$0")/.." && exec "${LAUNCH_PYTHON:-python3}" -m loadgen.deploy.scripts recommendation download_dataset "$@"
