#!/usr/bin/env bash
# Training:  ./run_and_time.sh [train flags]                    trains to AUC 0.8025, prints RESULT,dlrm,<seed>,<s>,...
# Inference: ./run_and_time.sh backend model dataset device [flags]   in Docker when an engine answers, else natively.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
py=${PYTHON:-.venv/bin/python}
case "${1:-}" in
  pytorch|onnxruntime|null) ;;
  *) exec "$py" -m recommendation.train "$@" ;;
esac
if docker info >/dev/null 2>&1; then
  variant=$([ "${4:-cpu}" = gpu ] && echo gpu || echo cpu)
  docker build -q -f recommendation/Dockerfile --build-arg VARIANT="$variant" -t "mlperf-dlrm:$variant" . >/dev/null
  gpus=(); [ "$variant" = gpu ] && gpus=(--gpus all)
  exec docker run --rm "${gpus[@]}" -u "$(id -u):$(id -g)" -v "$PWD/results:/work/results" "mlperf-dlrm:$variant" "$@"
fi
echo "run_and_time.sh: no Docker engine reachable, running natively" >&2
exec "$here/run_local.sh" "$@"
