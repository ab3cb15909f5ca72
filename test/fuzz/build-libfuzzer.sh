#!/usr/bin/env bash
# Builds the native weight readers (native/io/*.cc) and test/fuzz/weights_fuzzer.cc into a libFuzzer
# target with AddressSanitizer, against the LibTorch that scripts/find-libtorch.mjs finds (the one
# the addon builds with). Needs clang with its fuzzer runtime; on Debian/Ubuntu:
#   apt-get install clang libclang-rt-14-dev        (or the clang-NN / libclang-rt-NN-dev pair you have)
#
#   test/fuzz/build-libfuzzer.sh                      -> build/fuzz/weights_fuzzer (libFuzzer + ASan)
#   STANDALONE=1 CXX=g++ test/fuzz/build-libfuzzer.sh -> build/fuzz/weights_replay (no libFuzzer: runs
#        the target on the files it is given; to replay a finding, or to check the target compiles)
#
# Environment: CXX (default clang++), OUT (default build/fuzz), JOBS (default: all cores),
# SANITIZERS (default "address"; "address,undefined" adds UBSan; "" none), TORCH_CXX11_ABI (0/1,
# default: what python3's torch says, else 1). Run it: see docs/fuzzing.md.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT=${OUT:-build/fuzz}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
SANITIZERS=${SANITIZERS-address}
STANDALONE=${STANDALONE:-}

if [[ -n "$STANDALONE" ]]; then
  CXX=${CXX:-c++}
else
  CXX=${CXX:-clang++}
fi
if ! command -v "$CXX" >/dev/null 2>&1; then
  echo "build-libfuzzer: $CXX not found. Install clang and its fuzzer runtime (Debian: apt-get install clang libclang-rt-14-dev)," >&2
  echo "or build the replay program with any compiler: STANDALONE=1 CXX=g++ $0" >&2
  exit 2
fi

read -r -a TORCH_INCLUDES <<<"$(node scripts/find-libtorch.mjs --include-dirs)"
read -r -a TORCH_LIBS <<<"$(node scripts/find-libtorch.mjs --libraries)"
read -r -a TORCH_DEFINES <<<"$(node scripts/find-libtorch.mjs --defines)"
if [[ -z "${TORCH_CXX11_ABI:-}" ]]; then
  TORCH_CXX11_ABI=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))' 2>/dev/null || echo 1)
fi

CXXFLAGS=(-std=c++20 -O1 -g -fno-omit-frame-pointer -D_GLIBCXX_USE_CXX11_ABI="$TORCH_CXX11_ABI" -I"$ROOT/native")
for dir in "${TORCH_INCLUDES[@]}"; do CXXFLAGS+=(-isystem "$dir"); done
for def in "${TORCH_DEFINES[@]}"; do CXXFLAGS+=(-D"$def"); done
SAN=()
[[ -n "$SANITIZERS" ]] && SAN=(-fsanitize="$SANITIZERS")

if [[ -n "$STANDALONE" ]]; then
  TARGET="$OUT/weights_replay"
  OBJ_FLAGS=("${SAN[@]}")
  MAIN_FLAGS=("${SAN[@]}" -DWEIGHTS_FUZZER_STANDALONE)
  LINK_FLAGS=("${SAN[@]}")
else
  TARGET="$OUT/weights_fuzzer"
  # The readers get coverage instrumentation; the target's own file brings libFuzzer's main.
  OBJ_FLAGS=(-fsanitize=fuzzer-no-link${SANITIZERS:+,$SANITIZERS})
  MAIN_FLAGS=(-fsanitize=fuzzer${SANITIZERS:+,$SANITIZERS})
  LINK_FLAGS=(-fsanitize=fuzzer${SANITIZERS:+,$SANITIZERS})
fi

# The readers behind read_weights; file_batch.cc (image batches) is not one of them.
SOURCES=()
for f in native/io/*.cc; do
  [[ "$(basename "$f")" == file_batch.cc ]] && continue
  SOURCES+=("$f")
done

mkdir -p "$OUT/obj"
echo "build-libfuzzer: $CXX, ${#SOURCES[@]} sources of native/io, LibTorch headers ${TORCH_INCLUDES[0]}, -j$JOBS -> $TARGET"
OBJECTS=()
pids=()
for src in "${SOURCES[@]}" test/fuzz/weights_fuzzer.cc; do
  obj="$OUT/obj/$(basename "${src%.cc}").o"
  OBJECTS+=("$obj")
  flags=("${OBJ_FLAGS[@]}")
  [[ "$src" == test/fuzz/weights_fuzzer.cc ]] && flags=("${MAIN_FLAGS[@]}")
  "$CXX" "${CXXFLAGS[@]}" "${flags[@]}" -c "$src" -o "$obj" &
  pids+=($!)
  if ((${#pids[@]} >= JOBS)); then
    wait "${pids[0]}"
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do wait "$pid"; done

"$CXX" "${LINK_FLAGS[@]}" "${OBJECTS[@]}" "${TORCH_LIBS[@]}" -lpthread -o "$TARGET"
echo "build-libfuzzer: built $TARGET"
if [[ -z "$STANDALONE" ]]; then
  cat <<EOF
Run (a corpus folder it may write to, then the small fixtures as seeds; see docs/fuzzing.md):
  mkdir -p $OUT/corpus
  ASAN_OPTIONS=detect_leaks=0:alloc_dealloc_mismatch=0 $TARGET $OUT/corpus <seed folder> \\
      -dict=test/fuzz/weights.dict -max_len=1048576 -rss_limit_mb=2048 -timeout=10 -max_total_time=600
EOF
fi
