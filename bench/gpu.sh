#!/usr/bin/env bash
# The GPU checks and benchmarks, run ON the GPU machine from the project root (carry .device and dist;
# prepare them with scripts/pack-device.sh). Everything it measures lands in $OUT/ and on stdout:
#   doctor.json        issue 2: the addon built against the machine's CUDA LibTorch
#   gpu-parity.json    issue 4: CUDA fp32 parity with the reference goldens, bf16 within 1e-2
#   cuda-tests.txt     test/cuda.test.ts: parity, bf16 drift, CPU-vs-GPU Adam losses, bf16/fp16 training
#   train-step.jsonl   issue 8: native train step, ViT-B/32 and RN50 at batch 32 and 256 (bf16)
#   hf-peer.jsonl      issue 8: Hugging Face CLIPModel (ViT-B/32 config, SDPA, bf16, fused Adam), same run
#   short-runs.jsonl   issue 6: ViT-B/32 and RN50 from random weights, batch 128, bf16 and fp16, 200 steps
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
source .device/enter.sh || exit 1
[ -d node_modules ] || tar xJf .device/node_modules.tar.xz
mkdir -p /tmp/fixtures && tar xf .device/fixtures.tar -C /tmp/fixtures
export CLIP_NATIVE_FIXTURES=/tmp/fixtures
start=$(date +%s)
node scripts/build-native.mjs 2>&1 | tail -4
# doctor() directly: the CLI entry also loads sharp, which is not carried (no images are decoded here).
node --input-type=module -e "import('./dist/src/doctor.js').then((m) => console.log(JSON.stringify(m.doctor(), null, 2)))" | tee "$OUT/doctor.json"
node dist/bench/gpu-parity.js | tee "$OUT/gpu-parity.json"
node --test dist/test/cuda.test.js 2>&1 | tee "$OUT/cuda-tests.txt" | grep -E "^# (tests|pass|fail|skipped)|^not ok|# (tiny|SKIP)"
for model in ViT-B/32 RN50; do
  for batch in 32 256; do
    node dist/bench/train-step.js --model "$model" --batch "$batch" --device cuda --precision bf16 --json | tee -a "$OUT/train-step.jsonl"
  done
done
# Lever check: the same step reading the loss back every step (a host synchronisation per step).
node dist/bench/train-step.js --model ViT-B/32 --batch 32 --device cuda --precision bf16 --sync-every-step --json | tee -a "$OUT/train-step.jsonl"
for batch in 32 256; do
  python3 bench/hf_peer.py --batch "$batch" | tee -a "$OUT/hf-peer.jsonl"
done
for model in ViT-B/32 RN50; do
  for precision in bf16 fp16; do
    node dist/bench/train-step.js --model "$model" --batch 128 --device cuda --precision "$precision" --warmup 1 --steps 200 --json | tee -a "$OUT/short-runs.jsonl"
  done
done
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee "$OUT/nvidia-smi.csv"
echo "total $(( $(date +%s) - start )) s"
