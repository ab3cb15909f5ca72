#!/usr/bin/env bash
# Prepares what the GPU machine needs (run here, in the project root, after `npm ci` and `npm run build:ts`):
# Node (../shared/device/pack-node.sh → .device/node.tar.xz, .device/enter.sh), the runtime
# node_modules without the TypeScript toolchain (sharp and its libvips included: the end-to-end bench
# decodes JPEGs), and what the GPU checks read from the fixtures (../shared does not travel): the tiny
# models with their goldens, the 3-step Adam losses, four photos and the BPE vocabulary, so that
# `.device` + `dist` + the tracked tree stay under the 64 MiB carry limit.
set -euo pipefail
[ -f .device/node.tar.xz ] || bash ../shared/device/pack-node.sh
tmp=$(mktemp -d)
cp -a node_modules "$tmp/node_modules"
rm -rf "$tmp/node_modules/typescript" "$tmp/node_modules/@types" "$tmp/node_modules/.cache" "$tmp/node_modules/sharp/src"
# Source maps and type declarations are not run there.
find "$tmp/node_modules" \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete
tar cf - -C "$tmp" node_modules | xz -9e -T2 > .device/node_modules.tar.xz
rm -rf "$tmp"
fixtures=${CLIP_NATIVE_FIXTURES:-../shared/fixtures}
rm -f .device/fixtures.tar
tar cf - -C "$fixtures" README.md bpe_simple_vocab_16e6.txt.gz models/tiny_vit.safetensors models/tiny_vit.golden.safetensors \
  models/tiny_rn.safetensors models/tiny_rn.golden.safetensors models/tiny_vit.adam3.safetensors \
  images/astronaut.jpg images/chelsea.jpg images/coffee.jpg images/rocket.jpg | xz -6 -T2 > .device/fixtures.tar.xz
# dist's source maps and declarations stay here (tsc writes them again). The device tool refused a
# carry of 63.8 MiB in bytes (65.5 MiB in disk blocks) as over 64 MiB, so du's blocks are what is held
# under the limit here.
find dist \( -name '*.map' -o -name '*.d.ts' \) -delete
du -sh .device dist
total=$(( $(du -sc .device dist $(git ls-files) | tail -1 | cut -f1) * 1024 ))
echo "carried: $((total / 1048576)) MiB of 64 (disk blocks)"
[ "$total" -lt $((64 * 1048576)) ] || { echo "over the 64 MiB carry limit" >&2; exit 1; }
