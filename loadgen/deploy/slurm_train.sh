#!/usr/bin/env bash
# Multi-node training under Slurm: srun starts one torchrun per node, and torchrun one process per GPU there.
#   sbatch --nodes 2 --gpus-per-node 8 loadgen/deploy/slurm_train.sh recommendation --config terabyte --device gpu \
#       --raw-dir /data/criteo
# Submit from the repository root, with .venv set up on a shared file system (or PYTHON=/path/to/python).
#SBATCH --job-name=mlperf-train
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
set -euo pipefail
bench=${1:?usage: sbatch [options] loadgen/deploy/slurm_train.sh BENCHMARK [train flags]}
shift
cd "${SLURM_SUBMIT_DIR:-.}"
head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
# --kill-on-bad-exit: a node whose torchrun fails ends the job, as torchrun ends its own node's processes.
exec srun --kill-on-bad-exit=1 "${PYTHON:-.venv/bin/python}" -m torch.distributed.run \
  --nnodes "$SLURM_JOB_NUM_NODES" --nproc-per-node "${SLURM_GPUS_ON_NODE:-1}" \
  --rdzv-backend c10d --rdzv-endpoint "$head:${MASTER_PORT:-29500}" --rdzv-id "$SLURM_JOB_ID" \
  -m "$bench.train" "$@"
