#!/usr/bin/env bash
# Data parallel on a machine with several GPUs (or one): the train step of N ranks through NCCL, one
# per GPU, against one GPU alone, ViT-B/32 and RN50 in bf16. Run from the project root where the
# addon is built against a CUDA LibTorch with NCCL (`doctor` lists the backends):
#   bash bench/multi-gpu.sh [N]        N: ranks (default: every visible GPU)
# Prints one JSON line per configuration (rank 0's): ms/step, and from LibTorch's profiler the
# all-reduce and other collectives per step. With N = 1 the one rank still runs the data-parallel
# step through an NCCL group of one, so the collectives' own cost shows against the plain step.
# Not run yet (prepared 2026-12-06 on a machine without a GPU): no result of it exists.
set -uo pipefail
N=${1:-$(nvidia-smi -L 2>/dev/null | wc -l)}
[ "$N" -ge 1 ] || { echo "no GPU visible"; exit 1; }
bench=dist/bench/data-parallel.js
for model in ViT-B/32 RN50; do
  for batch in 256 32; do
    echo "== $model batch $batch per rank: 1 GPU, no group"
    timeout 300 node "$bench" --worker --device cuda --model "$model" --batch "$batch" --steps 20 --warmup 5
    echo "== $model batch $batch per rank: $N rank(s) through NCCL"
    timeout 300 python3 -m torch.distributed.run --standalone --nproc_per_node "$N" --no-python \
      node "$bench" --worker --group --device cuda --model "$model" --batch "$batch" --steps 20 --warmup 5
  done
done
