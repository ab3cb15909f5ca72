#!/usr/bin/env bash
# The GPU checks and benchmarks, run ON the GPU machine from the project root (carry .device and dist;
# prepare them with scripts/pack-device.sh). Each command runs under its own time limit, so one hang
# cannot cost the rest; results go to a work folder, most wanted first:
#   build.txt          the addon built against the machine's CUDA LibTorch (with CUDA graphs, own kernels
#                      and the profiler; without them if they do not compile there)
#   doctor.json        issue 2: `clip-native doctor --json` there
#   cuda-tests.txt     test/cuda.test.ts: parity, CPU-vs-GPU Adam, graph-vs-eager steps, experiments,
#                      bf16/fp16 training
#   train-step.jsonl   issue 8: native train step, ViT-B/32 and RN50 at batch 32 and 256 (bf16), the
#                      default path (a CUDA graph) and eager steps with a kernel profile; then the levers
#   hf-peer.jsonl      issue 8: Hugging Face CLIPModel (ViT-B/32 config, SDPA, bf16, fused AdamW), same run,
#                      over 77 text positions and over 16 as clip-native's default runs these prompts
#   gpu-parity.json    issue 4: CUDA fp32 parity with the reference goldens, bf16 drift
#   e2e.md             issue 8: a run from JPEG files, cache warm, vs the step alone (ViT-B/32, batch 256)
#   loader*.md         the loader alone (bench/loader.ts), with and without decode worker threads
#   kernels-by-op-*.md GPU time by kernel and the operators that launched it (bench/trace-kernels.ts)
#   short-runs.jsonl   issue 6: ViT-B/32 and RN50 from random weights, batch 128, bf16 and fp16, 200 steps
# $OUT receives two files (the device tool returns only a few): gpu-report.md (bench/gpu-report.ts: all
# of it as one markdown report, to commit under bench/results/) and raw.tgz (the work folder), both
# written after the end-to-end run and again at the end, so a run cut short still leaves them.
#   QUICK=1 skips the short runs and the less wanted levers and profiles.
#   PART=families: the CUDA tests, GELU ViT-B/16 and ViT-B/32 rows, and bench/multi-gpu.sh at world size 1
#   through NCCL (issues 20 and 21).
#   PART=memory: issue 23 (prepared 2026-12-06, not yet run on a GPU): ViT-B/16, ViT-L/14 and
#   ViT-L/14@336px train steps in bf16 at batch 32/64/128/256, with and without activation checkpointing,
#   all 77 text positions (experiment full-text-context), beside open_clip's own step
#   (bench/open_clip_peer.py, also with torch.compile), and the largest batch each fits (--batch auto).
#   About 9 minutes; results in train-step.jsonl and open-clip-peer.jsonl.
#   PART=like: issue 25's like-for-like rows (prepared 2026-12-06, not yet run on a GPU): ViT-B/32 ours
#   and the HF peer's each at 16 and at 77 text positions; RN50 with BatchNorm frozen (our default) and
#   training (as the Python reference's model.train()), each at 16 and 77 positions; batch 256 and 32.
#   About 6 minutes after the build; results in train-step.jsonl and hf-peer.jsonl.
#   PART=a runs the build, doctor, the CUDA tests, the default path, the levers (most wanted first),
#   parity and the HF peer (PART=check: only up to the first rows of levers, for a short check); PART=b the end-to-end runs, the loader, the profiles and traces (the build is
#   incremental): two device commands of under 10 minutes each where one would not fit, on the same
#   warm machine. PART=recheck, after a fix: the CUDA tests, parity, RN50 with and without the
#   bias-relu kernel, the run from JPEG files and two RN50 profiles (about 4.5 minutes on a fresh
#   machine).
set -uo pipefail
OUT=${OUT:-/tmp/out}
WORK=/tmp/gpu-work
mkdir -p "$OUT" "$WORK"
start=$(date +%s)
PART=${PART:-all}
stamp() { echo "== $(( $(date +%s) - start )) s: $*"; }
source .device/enter.sh || exit 1
[ -d node_modules ] || tar xJf .device/node_modules.tar.xz
mkdir -p /tmp/fixtures && tar xJf .device/fixtures.tar.xz -C /tmp/fixtures
export CLIP_NATIVE_FIXTURES=/tmp/fixtures
export CLIP_NATIVE_JOBS=16
# The lent machines are H100 or H200 (both sm_90): one architecture halves nvcc's time.
export CLIP_NATIVE_CUDA_ARCHS=${CLIP_NATIVE_CUDA_ARCHS:-90}
# nvcc builds clip-native's own kernels (native/kernels/); CMake looks for it on PATH.
command -v nvcc > /dev/null || { [ -x /usr/local/cuda/bin/nvcc ] && export PATH=/usr/local/cuda/bin:$PATH; }
report() {
  node dist/bench/gpu-report.js --dir "$WORK" --write "$OUT/gpu-report.md" > /dev/null
  tar czf "$OUT/raw.tgz" -C "$WORK" .
}

stamp build
if ! timeout 300 node scripts/build-native.mjs > "$WORK/build.txt" 2>&1; then
  # The own kernels are compiled only here (nvcc), CUDA graph code and the profiler only against this
  # LibTorch's CUDA headers: should any not compile, everything else still gets measured. First
  # without the kernels alone, then without all three.
  echo "build failed; rebuilding without the own CUDA kernels" | tee -a "$WORK/build.txt"
  rm -rf build
  if ! CLIP_NATIVE_NO_KERNELS=1 CLIP_NATIVE_NO_NCCL=1 timeout 300 node scripts/build-native.mjs >> "$WORK/build.txt" 2>&1; then
    echo "build failed; rebuilding without CUDA graphs, own kernels and the profiler" | tee -a "$WORK/build.txt"
    rm -rf build
    CLIP_NATIVE_NO_KERNELS=1 CLIP_NATIVE_NO_NCCL=1 CXXFLAGS="-DCLIP_NATIVE_NO_CUDA_GRAPHS -DCLIP_NATIVE_NO_PROFILER -DCLIP_NATIVE_NO_CUDA_PROPERTIES" timeout 300 node scripts/build-native.mjs >> "$WORK/build.txt" 2>&1 || { tail -40 "$WORK/build.txt"; report; exit 1; }
  fi
fi
tail -3 "$WORK/build.txt"
timeout 60 node dist/src/cli/bin.cjs doctor --json > "$WORK/doctor.json"
# Each row also rewrites the report, so that a command cut off by its time limit still returns every
# row measured before the cut ($OUT starts empty on every device call).
step() {
  timeout 180 node dist/bench/train-step.js --device cuda --precision bf16 --json "$@" | tee -a "$WORK/train-step.jsonl"
  report
}
cuda_tests() {
  stamp "CUDA tests"
  timeout 300 node --test dist/test/cuda.test.js > "$WORK/cuda-tests.txt" 2>&1
  grep -E "^# (tests|pass|fail|skipped)|^\s*not ok|# (tiny|SKIP)" "$WORK/cuda-tests.txt"
  # Issue 4: fp32 parity with the goldens, and the bf16 drift of the tiny models and of ViT-B/32 and
  # RN50 against openai/CLIP's own on the same weights (1 GB of files in /tmp).
  stamp "parity"
  timeout 240 node dist/bench/gpu-parity.js > "$WORK/gpu-parity.json"
  report
}
e2e() { timeout 300 node --require ./dist/src/util/threadpool.cjs dist/bench/e2e-throughput.js --model ViT-B/32 --batch 256 --images 4096 --device cuda --precision bf16 "$@" > /dev/null 2>&1; }
if [ "$PART" = recheck ]; then
  # After a fix, one short command: the CUDA tests and parity, RN50's default rows and the rows without
  # the bias-relu kernel, the run from JPEG files, and RN50's kernel profiles with and without it.
  cuda_tests
  for batch in 256 32; do
    step --model RN50 --batch "$batch"
    CLIP_NATIVE_EXPERIMENTS=separate-bias-relu step --model RN50 --batch "$batch"
  done
  stamp "end to end"
  e2e --write "$WORK/e2e.md"
  tail -9 "$WORK/e2e.md" 2>/dev/null
  report
  stamp "profiles"
  step --model RN50 --batch 256 --eager --profile 3
  CLIP_NATIVE_EXPERIMENTS=separate-bias-relu step --model RN50 --batch 256 --eager --profile 3
  stamp done
  exit 0
fi
hf_peer() { timeout 180 python3 bench/hf_peer.py "$@" | tee -a "$WORK/hf-peer.jsonl"; }
if [ "$PART" = like ]; then
  # Every row states its text positions, BatchNorm mode, precision (bf16) and where its batch lives
  # (ours: host memory, copied each step; the peer's: already on the GPU), and has its twin beside it.
  for batch in 256 32; do
    stamp "like for like, batch $batch"
    step --model ViT-B/32 --batch "$batch"
    CLIP_NATIVE_EXPERIMENTS=full-text-context step --model ViT-B/32 --batch "$batch"
    hf_peer --batch "$batch" --text-length 16
    hf_peer --batch "$batch" --text-length 77
    for batchnorm in frozen train; do
      step --model RN50 --batch "$batch" --batchnorm "$batchnorm"
      CLIP_NATIVE_EXPERIMENTS=full-text-context step --model RN50 --batch "$batch" --batchnorm "$batchnorm"
    done
  done
  nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv > "$WORK/nvidia-smi.csv"
  report
  stamp done
  exit 0
fi
if [ "$PART" = memory ]; then
  peer() { timeout 240 python3 bench/open_clip_peer.py "$@" | tee -a "$WORK/open-clip-peer.jsonl"; }
  cuda_tests
  for model in ViT-B/16 ViT-L/14 ViT-L/14@336px; do
    peer_model=${model//\//-}
    peer_model=${peer_model/@336px/-336}-quickgelu  # OpenAI's activation, as the released names here use
    for checkpointing in "" --grad-checkpointing; do
      stamp "$model $checkpointing"
      for batch in 32 64 128 256; do
        CLIP_NATIVE_EXPERIMENTS=full-text-context step --model "$model" --batch "$batch" $checkpointing
        peer --model "$peer_model" --batch "$batch" --steps 5 --warmup 2 $checkpointing
      done
      CLIP_NATIVE_EXPERIMENTS=full-text-context step --model "$model" --batch auto --steps 3 --warmup 1 $checkpointing
      peer --model "$peer_model" --batch auto --steps 3 --warmup 1 $checkpointing
    done
    peer --model "$peer_model" --batch 64 --steps 5 --warmup 2 --compile
  done
  report
  stamp done
  exit 0
fi
if [ "$PART" = families ]; then
  # Issues 20 and 21 (prepared 2026-12-06, not yet run on a GPU): the CUDA tests (a GELU model with
  # other head counts among them), GELU against QuickGELU on ViT-B/16, and one rank through NCCL.
  cuda_tests
  for activation in gelu quick_gelu; do step --model ViT-B/16 --batch 256 --activation "$activation"; done
  step --model ViT-B/32 --batch 256 --activation gelu
  stamp "data parallel, world size 1 through NCCL"
  bash bench/multi-gpu.sh 1 > "$WORK/multi-gpu.txt" 2>&1
  tail -5 "$WORK/multi-gpu.txt"
  report
  stamp done
  exit 0
fi
if [ "$PART" != b ]; then
  cuda_tests
  # The default path (CUDA graph) on both models at both batches: what every lever row below compares with.
  for model in ViT-B/32 RN50; do
    for batch in 32 256; do
      stamp "train step $model batch $batch"
      step --model "$model" --batch "$batch"
    done
  done
  stamp "levers"
  # Most wanted first: a command cut off by its limit keeps the rows before the cut.
  # The text tower over all 77 positions, as the Python reference and the HF peer run it.
  CLIP_NATIVE_EXPERIMENTS=full-text-context step --model ViT-B/32 --batch 256
  CLIP_NATIVE_EXPERIMENTS=full-text-context step --model ViT-B/32 --batch 32
  # CUDA's default levers off, each and together (the paths they replaced): ATen's LayerNorm with the
  # residual adds apart; autograd's backward of the products; BatchNorm apart from the convolutions;
  # avg_pool2d for the anti-aliasing pools.
  CLIP_NATIVE_EXPERIMENTS=aten-layernorm,autograd-linear step --model ViT-B/32 --batch 256
  # RN50 without the kernel that adds a folded BatchNorm's shift and the residual and applies the ReLU.
  CLIP_NATIVE_EXPERIMENTS=separate-bias-relu step --model RN50 --batch 256
  [ "$PART" = check ] && { CLIP_NATIVE_EXPERIMENTS=separate-batchnorm,avg-pool2d step --model RN50 --batch 256; report; stamp done; exit 0; }
  CLIP_NATIVE_EXPERIMENTS=separate-bias-relu step --model RN50 --batch 32
  CLIP_NATIVE_EXPERIMENTS=aten-layernorm step --model ViT-B/32 --batch 256
  CLIP_NATIVE_EXPERIMENTS=autograd-linear step --model ViT-B/32 --batch 256
  CLIP_NATIVE_EXPERIMENTS=aten-layernorm,autograd-linear step --model ViT-B/32 --batch 32
  CLIP_NATIVE_EXPERIMENTS=separate-batchnorm,avg-pool2d step --model RN50 --batch 256
  CLIP_NATIVE_EXPERIMENTS=separate-batchnorm step --model RN50 --batch 256
  CLIP_NATIVE_EXPERIMENTS=avg-pool2d step --model RN50 --batch 256
  CLIP_NATIVE_EXPERIMENTS=separate-batchnorm,avg-pool2d step --model RN50 --batch 32
  CLIP_NATIVE_EXPERIMENTS=full-text-context step --model RN50 --batch 256
  # RN50's BatchNorm training from batch statistics, as the Python reference's model.train() does.
  step --model RN50 --batch 256 --batchnorm train
  CLIP_NATIVE_EXPERIMENTS=full-text-context step --model RN50 --batch 256 --batchnorm train
  # Autocast's own cast of each product weight, against the default's one cast of them all.
  CLIP_NATIVE_EXPERIMENTS=per-op-casts step --model ViT-B/32 --batch 32
  CLIP_NATIVE_EXPERIMENTS=per-op-casts step --model ViT-B/32 --batch 256
  stamp "HF peer"
  # Over all 77 text positions (as the rows with full-text-context) and over 16 (as the default rows).
  for batch in 256 32; do
    for length in 77 16; do hf_peer --batch "$batch" --text-length "$length"; done
  done
  report
fi
[ "$PART" = a ] && { stamp done; exit 0; }
# PART=b: the run from JPEG files and the loader, then where the step's time goes.
stamp "end to end"
# Most wanted first (issue 8, item 4): the run from JPEG files against the step alone, on /tmp's disk
# and with the JPEGs and the cache in memory (/dev/shm), then the loader alone, which says why. 4,096
# images: 16 batches of 256 per epoch, so an epoch's start (its first group loading) weighs less.
e2e --write "$WORK/e2e.md"
cat "$WORK/e2e.md" 2>/dev/null
report
TMPDIR=/dev/shm e2e --write "$WORK/e2e-shm.md"
cat "$WORK/e2e-shm.md" 2>/dev/null | tail -8
report
df -h /tmp /dev/shm > "$WORK/disks.txt" 2>&1
# The loader alone on this machine's cores, with how many of them were busy: run 1 of 2026-11-27 gave
# 343 images/s for a first epoch on 16 cores with its main thread 13 % busy. The same on /dev/shm
# tells whether /tmp's disk bounds it; 8 decode threads instead of 4 whether the workers do.
timeout 120 node --require ./dist/src/util/threadpool.cjs dist/bench/loader.js --images 2048 --epochs 3 --write "$WORK/loader.md" > /dev/null 2>&1
cat "$WORK/loader.md" 2>/dev/null | tail -4
TMPDIR=/dev/shm timeout 120 node --require ./dist/src/util/threadpool.cjs dist/bench/loader.js --images 2048 --epochs 2 --write "$WORK/loader-shm.md" > /dev/null 2>&1
cat "$WORK/loader-shm.md" 2>/dev/null | tail -4
timeout 120 node --require ./dist/src/util/threadpool.cjs dist/bench/loader.js --images 2048 --epochs 1 --decode-threads 8 --write "$WORK/loader-8-threads.md" > /dev/null 2>&1
# Run 3 of 2026-11-27: the first epoch cost 22 ms of CPU per image over all threads there, 5.4 ms on
# the 2-core development machine. One decode thread says whether the threads slow each other (the
# CPU per image would fall toward 5 ms); glibc's arenas capped at 2 whether it is the allocator's
# memory maps and their unmapping across cores.
timeout 120 node --require ./dist/src/util/threadpool.cjs dist/bench/loader.js --images 512 --epochs 1 --decode-threads 1 --write "$WORK/loader-1-thread.md" > /dev/null 2>&1
MALLOC_ARENA_MAX=2 timeout 120 node --require ./dist/src/util/threadpool.cjs dist/bench/loader.js --images 1024 --epochs 1 --write "$WORK/loader-2-arenas.md" > /dev/null 2>&1
tail -1 "$WORK/loader-1-thread.md" "$WORK/loader-2-arenas.md" 2>/dev/null
[ -n "${QUICK:-}" ] || timeout 120 node --require ./dist/src/util/threadpool.cjs dist/bench/loader.js --images 2048 --epochs 1 --decode-threads 0 --write "$WORK/loader-main-thread.md" > /dev/null 2>&1
report
stamp "profiles"
if [ ! -s "$WORK/train-step.jsonl" ]; then
  # Alone (PART=b on a fresh machine), the profiles still get the default path to compare with.
  for model in ViT-B/32 RN50; do for batch in 32 256; do step --model "$model" --batch "$batch"; done; done
fi
# Eager steps ending with 3 profiled steps (kernel time by kernel): the default at RN50 b256 with and
# without the bias-relu kernel, at ViT b256, and ViT b256 without the LayerNorm kernels and the
# products' own backward.
step --model RN50 --batch 256 --eager --profile 3
CLIP_NATIVE_EXPERIMENTS=separate-bias-relu step --model RN50 --batch 256 --eager --profile 3
step --model ViT-B/32 --batch 256 --eager --profile 3
# QUICK=1 leaves out what run 1 of 2026-11-27 measured already: the ViT profile with the old paths and
# the kernels by launching operator.
if [ -z "${QUICK:-}" ]; then
  CLIP_NATIVE_EXPERIMENTS=aten-layernorm,autograd-linear step --model ViT-B/32 --batch 256 --eager --profile 3
  # Which operators launch the GPU time (the copies above all), 2 profiled eager steps at batch 256.
  for model in RN50 ViT-B/32; do
    timeout 180 node dist/bench/train-step.js --device cuda --precision bf16 --model "$model" --batch 256 --eager --steps 3 --profile 2 --trace /tmp/trace.json > /dev/null &&
      timeout 120 node dist/bench/trace-kernels.js /tmp/trace.json --steps 2 --top 40 > "$WORK/kernels-by-op-${model//\//-}.md"
    rm -f /tmp/trace.json
  done
fi
report
if [ -z "${QUICK:-}" ]; then
  step --model ViT-B/32 --batch 32 --eager --profile 3
  step --model RN50 --batch 32 --eager --profile 3
  CLIP_NATIVE_EXPERIMENTS=per-op-casts step --model RN50 --batch 32
  # The reference's QuickGELU form against the default fused one (bench/results/levers.md, round one).
  CLIP_NATIVE_EXPERIMENTS=reference-mlp step --model ViT-B/32 --batch 256 --eager
  step --model ViT-B/32 --batch 32 --eager --sync-every-step
  step --model RN50 --batch 256 --eager --memory-format contiguous
  step --model ViT-B/32 --batch 256 --eager --pixels float32
  stamp "short runs"
  for model in ViT-B/32 RN50; do
    for precision in bf16 fp16; do
      timeout 180 node dist/bench/train-step.js --model "$model" --batch 128 --device cuda --precision "$precision" --warmup 1 --steps 200 --json | tee -a "$WORK/short-runs.jsonl"
    done
  done
fi
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv > "$WORK/nvidia-smi.csv"
report
stamp done
