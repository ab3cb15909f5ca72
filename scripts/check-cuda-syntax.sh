#!/usr/bin/env bash
# Compiles, syntax only, the native files whose CUDA paths build only against a LibTorch with CUDA, on a
# machine without one: the CPU LibTorch's headers (they include ATen/cuda and c10/cuda) plus a CUDA
# toolkit's headers; with NVCC set, also compiles native/kernels/*.cu for sm_80 and sm_90. Catches
# compile errors before a GPU session spends its minutes on them.
#
#   [CUDA_INCLUDE=/path/to/cuda/include] [NVCC=/path/to/nvcc] bash scripts/check-cuda-syntax.sh
#
# Both default to the toolkit of the nvcc on PATH (the development machines have CUDA 13.0's in
# /usr/local/cuda). Without a toolkit here (Debian, non-free): apt-get download nvidia-cuda-dev, then
#   dpkg-deb --fsys-tarfile nvidia-cuda-dev_*.deb | tar x ./usr/include   → CUDA_INCLUDE=$PWD/usr/include
# and for nvcc also nvidia-cuda-toolkit and libnvvm4 (nvcc in usr/lib/nvidia-cuda-toolkit/bin, whose
# nvcc.profile links to /etc: write one naming the extracted tree; Debian 12's g++ 12 needs
# NVCC_FLAGS="-ccbin /usr/bin/g++ -allow-unsupported-compiler").
set -euo pipefail
if [ -z "${CUDA_INCLUDE:-}" ] && command -v nvcc > /dev/null; then
  NVCC=${NVCC:-$(command -v nvcc)}
  for dir in "$(dirname "$(readlink -f "$NVCC")")/../include" /usr/local/cuda/include; do
    [ -f "$dir/cuda_runtime_api.h" ] && { CUDA_INCLUDE=$dir; break; }
  done
fi
: "${CUDA_INCLUDE:?set CUDA_INCLUDE to a CUDA toolkit include directory (with cuda_runtime_api.h)}"
[ -f "$CUDA_INCLUDE/cuda_runtime_api.h" ] || { echo "no cuda_runtime_api.h in $CUDA_INCLUDE" >&2; exit 1; }
read -r -a torch_dirs <<< "$(node scripts/find-libtorch.mjs --include-dirs)"
[ -f "${torch_dirs[0]}/ATen/cuda/CUDAGraph.h" ] || { echo "the LibTorch at ${torch_dirs[0]} has no ATen/cuda headers" >&2; exit 1; }
# A CPU LibTorch lacks this one generated header of its CUDA builds.
stub=$(mktemp -d)
trap 'rm -rf "$stub"' EXIT
mkdir -p "$stub/c10/cuda/impl"
echo '#define C10_CUDA_BUILD_SHARED_LIBS' > "$stub/c10/cuda/impl/cuda_cmake_macros.h"
flags=(-std=c++20 -Wno-interference-size -DCLIP_NATIVE_WITH_CUDA=1 -DCLIP_NATIVE_KERNELS=1 -Inative "${torch_dirs[@]/#/-I}" -I"$stub" -I"$CUDA_INCLUDE")
status=0
for file in $(grep -rlE "CLIP_NATIVE_WITH_CUDA|CLIP_NATIVE_KERNELS" native --include='*.cc'); do
  # The CUDA paths must really be compiled: files that test for the CUDA headers turn on a
  # CLIP_NATIVE_CUDA_* macro when they find them (CLIP_NATIVE_KERNELS is defined above).
  if grep -q "__has_include(<cuda_runtime_api.h>)" "$file" && ! g++ "${flags[@]}" -E -dM "$file" | grep "define CLIP_NATIVE_CUDA_" > /dev/null; then
    echo "FAIL $file: its CUDA code stays compiled out with these headers"
    status=1
  elif g++ "${flags[@]}" -fsyntax-only "$file"; then
    echo "ok   $file"
  else
    echo "FAIL $file"
    status=1
  fi
done
if [ -n "${NVCC:-}" ]; then
  for file in native/kernels/*.cu; do
    # shellcheck disable=SC2086
    if "$NVCC" ${NVCC_FLAGS:-} -std=c++17 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -Inative -c "$file" -o "$stub/kernel.o"; then
      echo "ok   $file (nvcc, sm_80 and sm_90)"
    else
      echo "FAIL $file"
      status=1
    fi
  done
fi
exit $status
