#!/usr/bin/env bash
# Compiles, syntax only, the native files whose CUDA paths build only against a LibTorch with CUDA, on a
# machine without one: the CPU LibTorch's headers (they include ATen/cuda and c10/cuda) plus a CUDA
# toolkit's headers. Catches compile errors before a GPU session spends its minutes on them.
#
#   CUDA_INCLUDE=/path/to/cuda/include bash scripts/check-cuda-syntax.sh
#
# Without a toolkit here (Debian, non-free): apt-get download nvidia-cuda-dev, then
#   dpkg-deb --fsys-tarfile nvidia-cuda-dev_*.deb | tar x ./usr/include   → CUDA_INCLUDE=$PWD/usr/include
set -euo pipefail
: "${CUDA_INCLUDE:?set CUDA_INCLUDE to a CUDA toolkit include directory (with cuda_runtime_api.h)}"
[ -f "$CUDA_INCLUDE/cuda_runtime_api.h" ] || { echo "no cuda_runtime_api.h in $CUDA_INCLUDE" >&2; exit 1; }
read -r -a torch_dirs <<< "$(node scripts/find-libtorch.mjs --include-dirs)"
[ -f "${torch_dirs[0]}/ATen/cuda/CUDAGraph.h" ] || { echo "the LibTorch at ${torch_dirs[0]} has no ATen/cuda headers" >&2; exit 1; }
# A CPU LibTorch lacks this one generated header of its CUDA builds.
stub=$(mktemp -d)
trap 'rm -rf "$stub"' EXIT
mkdir -p "$stub/c10/cuda/impl"
echo '#define C10_CUDA_BUILD_SHARED_LIBS' > "$stub/c10/cuda/impl/cuda_cmake_macros.h"
flags=(-std=c++20 -Wno-interference-size -DCLIP_NATIVE_WITH_CUDA=1 -Inative "${torch_dirs[@]/#/-I}" -I"$stub" -I"$CUDA_INCLUDE")
status=0
for file in $(grep -rl "CLIP_NATIVE_WITH_CUDA" native --include='*.cc'); do
  # The CUDA paths must really be compiled: each file turns on a CLIP_NATIVE_CUDA_* macro when they are.
  if ! g++ "${flags[@]}" -E -dM "$file" | grep "define CLIP_NATIVE_CUDA_" > /dev/null; then
    echo "FAIL $file: its CUDA code stays compiled out with these headers"
    status=1
  elif g++ "${flags[@]}" -fsyntax-only "$file"; then
    echo "ok   $file"
  else
    echo "FAIL $file"
    status=1
  fi
done
exit $status
