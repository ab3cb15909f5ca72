#!/usr/bin/env bash
# Prepares what the GPU machine needs (run here, in the project root, after `npm ci` and `npm run build:ts`):
# Node (../shared/device/pack-node.sh → .device/node.tar.xz, .device/enter.sh) and the runtime
# node_modules without the TypeScript toolchain, so `.device` + `dist` fit the 64 MiB carry limit.
# Then: device run with carry [".device", "dist"] and command `bash bench/gpu.sh`.
set -euo pipefail
[ -f .device/node.tar.xz ] || bash ../shared/device/pack-node.sh
tmp=$(mktemp -d)
cp -a node_modules "$tmp/node_modules"
rm -rf "$tmp/node_modules/typescript" "$tmp/node_modules/@types" "$tmp/node_modules/.cache"
tar cJf .device/node_modules.tar.xz -C "$tmp" node_modules
rm -rf "$tmp"
du -sh .device dist
