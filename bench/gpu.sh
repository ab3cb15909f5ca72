#!/usr/bin/env bash
# The GPU checks and benchmarks, run ON the GPU machine from the project root (carry .device and dist;
# prepare them with scripts/pack-device.sh). Results stream into $OUT/ as they come, most wanted first,
# each command under its own time limit so one hang cannot cost the rest:
#   build.txt          the addon built against the machine's CUDA LibTorch (with CUDA graphs, own kernels
#                      and the profiler; without them if they do not compile there)
#   doctor.json        issue 2: `clip-native doctor --json` there
#   train-step.jsonl   issue 8: native train step, ViT-B/32 and RN50 at batch 32 and 256 (bf16), eager (with
#                      a kernel profile) and CUDA graph; at the end, the levers one by one
#   hf-peer.jsonl      issue 8: Hugging Face CLIPModel (ViT-B/32 config, SDPA, bf16, fused AdamW), same run
#   gpu-parity.json    issue 4: CUDA fp32 parity with the reference goldens, bf16 drift
#   cuda-tests.txt     test/cuda.test.ts: parity, CPU-vs-GPU Adam, graph-vs-eager steps, experiments,
#                      bf16/fp16 training
#   short-runs.jsonl   issue 6: ViT-B/32 and RN50 from random weights, batch 128, bf16 and fp16, 200 steps
#   e2e.md             issue 8: a run from JPEG files, cache warm, vs the step alone (ViT-B/32, batch 256)
#   gpu-report.md      all of it as one markdown report (bench/gpu-report.ts), to commit under bench/results/;
#                      written before the levers and again after them
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
start=$(date +%s)
stamp() { echo "== $(( $(date +%s) - start )) s: $*"; }
source .device/enter.sh || exit 1
[ -d node_modules ] || tar xJf .device/node_modules.tar.xz
mkdir -p /tmp/fixtures && tar xJf .device/fixtures.tar.xz -C /tmp/fixtures
export CLIP_NATIVE_FIXTURES=/tmp/fixtures
export CLIP_NATIVE_JOBS=16
# nvcc builds clip-native's own kernels (native/kernels/); CMake looks for it on PATH.
command -v nvcc > /dev/null || { [ -x /usr/local/cuda/bin/nvcc ] && export PATH=/usr/local/cuda/bin:$PATH; }

stamp build
if ! timeout 300 node scripts/build-native.mjs > "$OUT/build.txt" 2>&1; then
  # CUDA graph code and the kernels are compiled only here, and the profiler against this LibTorch's
  # headers; should any not compile, everything else still gets measured.
  echo "build failed; rebuilding without CUDA graphs, own kernels and the profiler" | tee -a "$OUT/build.txt"
  rm -rf build
  CLIP_NATIVE_NO_KERNELS=1 CXXFLAGS="-DCLIP_NATIVE_NO_CUDA_GRAPHS -DCLIP_NATIVE_NO_PROFILER -DCLIP_NATIVE_NO_CUDA_PROPERTIES" timeout 300 node scripts/build-native.mjs >> "$OUT/build.txt" 2>&1 || { tail -40 "$OUT/build.txt"; exit 1; }
fi
tail -3 "$OUT/build.txt"
timeout 60 node dist/src/cli/main.js doctor --json | tee "$OUT/doctor.json"

step() { timeout 180 node dist/bench/train-step.js --device cuda --precision bf16 --json "$@" | tee -a "$OUT/train-step.jsonl"; }
# The eager runs end with 3 profiled steps (kernel time by kernel: what fusion would have to remove).
for model in ViT-B/32 RN50; do
  for batch in 32 256; do
    stamp "train step $model batch $batch"
    step --model "$model" --batch "$batch" --profile 3
    step --model "$model" --batch "$batch" --cuda-graph
  done
done
stamp "HF peer"
for batch in 32 256; do
  timeout 180 python3 bench/hf_peer.py --batch "$batch" | tee -a "$OUT/hf-peer.jsonl"
done
stamp "parity"
timeout 120 node dist/bench/gpu-parity.js | tee "$OUT/gpu-parity.json"
stamp "CUDA tests"
timeout 300 node --test dist/test/cuda.test.js > "$OUT/cuda-tests.txt" 2>&1
grep -E "^# (tests|pass|fail|skipped)|^not ok|# (tiny|SKIP)" "$OUT/cuda-tests.txt"
stamp "short runs"
for model in ViT-B/32 RN50; do
  for precision in bf16 fp16; do
    timeout 180 node dist/bench/train-step.js --model "$model" --batch 128 --device cuda --precision "$precision" --warmup 1 --steps 200 --json | tee -a "$OUT/short-runs.jsonl"
  done
done
stamp "end to end"
timeout 300 node dist/bench/e2e-throughput.js --model ViT-B/32 --batch 256 --images 2048 --device cuda --precision bf16 --write "$OUT/e2e.md" > /dev/null 2>&1
cat "$OUT/e2e.md" 2>/dev/null
# One markdown report of everything so far, to commit as bench/results/gpu-<card>.md; written again
# after the levers, so that a run cut short by its time limit still leaves one.
report() { node dist/bench/gpu-report.js --dir "$OUT" --write "$OUT/gpu-report.md" > /dev/null; }
report
stamp "levers"
step --model ViT-B/32 --batch 32 --sync-every-step
step --model RN50 --batch 256 --memory-format contiguous
step --model ViT-B/32 --batch 256 --pixels float32
CLIP_NATIVE_EXPERIMENTS=quick-gelu-kernel step --model ViT-B/32 --batch 256 --profile 3
CLIP_NATIVE_EXPERIMENTS=quick-gelu-kernel step --model ViT-B/32 --batch 32 --cuda-graph
CLIP_NATIVE_EXPERIMENTS=quick-gelu-kernel step --model RN50 --batch 256
CLIP_NATIVE_EXPERIMENTS=cudnn-benchmark step --model RN50 --batch 256
CLIP_NATIVE_EXPERIMENTS=cudnn-benchmark step --model RN50 --batch 32 --cuda-graph
CLIP_NATIVE_EXPERIMENTS=fused-mlp step --model ViT-B/32 --batch 256
CLIP_NATIVE_EXPERIMENTS=fused-mlp step --model ViT-B/32 --batch 32 --cuda-graph
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv | tee "$OUT/nvidia-smi.csv"
report
stamp done
