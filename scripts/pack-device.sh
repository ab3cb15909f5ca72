#!/usr/bin/env bash
# Prepares what the GPU machine needs (run here, in the project root, after `npm ci` and `npm run build:ts`):
# Node (../shared/device/pack-node.sh → .device/node.tar.xz, .device/enter.sh), the runtime
# node_modules without the TypeScript toolchain and sharp (the GPU script decodes no images), and the
# tiny fixture models with their goldens (../shared does not travel), so that `.device` + `dist` + the
# tracked tree stay under the 64 MiB carry limit.
# Then: device run with carry [".device", "dist"] and command `bash bench/gpu.sh`.
set -euo pipefail
[ -f .device/node.tar.xz ] || bash ../shared/device/pack-node.sh
tmp=$(mktemp -d)
cp -a node_modules "$tmp/node_modules"
rm -rf "$tmp/node_modules/typescript" "$tmp/node_modules/@types" "$tmp/node_modules/.cache" "$tmp/node_modules/sharp" "$tmp/node_modules/@img"
tar cJf .device/node_modules.tar.xz -C "$tmp" node_modules
rm -rf "$tmp"
fixtures=${CLIP_NATIVE_FIXTURES:-../shared/fixtures}
tar cf .device/fixtures.tar -C "$fixtures" README.md models/tiny_vit.safetensors models/tiny_vit.golden.safetensors \
  models/tiny_rn.safetensors models/tiny_rn.golden.safetensors
du -sh .device dist
total=$(du -scb .device dist $(git ls-files) | tail -1 | cut -f1)
echo "carried: $((total / 1048576)) MiB of 64"
[ "$total" -lt $((64 * 1048576)) ] || { echo "over the 64 MiB carry limit" >&2; exit 1; }
