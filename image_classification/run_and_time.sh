#!/usr/bin/env bash
# Training:  ./run_and_time.sh [train flags]            trains to the target and prints RESULT,<model>,<seed>,<s>,...
# Inference: ./run_and_time.sh backend model device [flags]   in Docker when an engine answers, else natively.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
py=${PYTHON:-.venv/bin/python}
case "${1:-}" in
  pytorch|onnxruntime|tf|tflite) ;;
  *) exec "$py" -m image_classification.train "$@" ;;
esac
if docker info >/dev/null 2>&1; then
  variant=$([ "$3" = gpu ] && echo gpu || echo cpu)
  docker build -q -f image_classification/Dockerfile --build-arg VARIANT="$variant" -t "mlperf-ic:$variant" . >/dev/null
  gpus=(); [ "$3" = gpu ] && gpus=(--gpus all)
  exec docker run --rm "${gpus[@]}" -u "$(id -u):$(id -g)" -v "$PWD/results:/work/results" "mlperf-ic:$variant" "$@"
fi
echo "run_and_time.sh: no Docker engine reachable, running natively" >&2
exec "$here/run_local.sh" "$@"
