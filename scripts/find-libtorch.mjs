#!/usr/bin/env node
// Finds the LibTorch to build against, with the conventions of tch-rs:
//   1. LIBTORCH=<dir>            an unpacked LibTorch, or any prefix holding share/cmake/Torch
//   2. LIBTORCH_USE_PYTORCH=1    (and the default when nothing is set) the torch package of python3
//   3. a system install          Debian's libtorch-dev and similar prefixes
// Both build paths (cmake-js and node-gyp) use this one module, so they can never disagree.
//
// CLI: node scripts/find-libtorch.mjs [--json | --include-dirs | --libraries | --defines | --lib-dir | --config-dir]
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SYSTEM_PREFIXES = ['/usr', '/usr/local', '/opt/libtorch'];

export class LibTorchNotFound extends Error {}

const HOW_TO_GET_ONE = [
  'clip-native needs LibTorch (the C++ library of PyTorch) to build its native addon. Any one of:',
  '  • install PyTorch for python3:   pip install torch   (CPU-only: pip install torch --index-url https://download.pytorch.org/whl/cpu)',
  '  • point LIBTORCH at an unpacked LibTorch:   LIBTORCH=/path/to/libtorch npm install',
  '    (download from https://pytorch.org/get-started/locally/ → LibTorch → C++, cxx11 ABI)',
  '  • install a system LibTorch:   apt-get install libtorch-dev',
  'Set PYTHON to choose which python3 is asked for its torch package.',
].join('\n');

/** The CMake prefix of a LibTorch root: the directory that holds share/cmake/Torch/TorchConfig.cmake. */
function torchConfigUnder(prefix) {
  const candidates = [
    path.join(prefix, 'share', 'cmake', 'Torch'),
    path.join(prefix, 'lib', 'cmake', 'Torch'),
    ...multiarchLibDirs(prefix).map((d) => path.join(d, 'cmake', 'Torch')),
  ];
  return candidates.find((dir) => existsSync(path.join(dir, 'TorchConfig.cmake')));
}

function multiarchLibDirs(prefix) {
  const lib = path.join(prefix, 'lib');
  if (!existsSync(lib)) return [];
  return readdirSync(lib)
    .filter((name) => /-linux-gnu/.test(name))
    .map((name) => path.join(lib, name));
}

/** include/ and lib/ of a LibTorch whose TorchConfig.cmake lives in `configDir`. */
function layoutFromConfigDir(configDir) {
  // <root>/share/cmake/Torch (LibTorch zip, pip) or <root>/lib[/<triple>]/cmake/Torch (distributions)
  const cmakeParent = path.resolve(configDir, '..', '..');
  const fromLib = path.basename(cmakeParent) !== 'share';
  const libDir = fromLib ? cmakeParent : path.resolve(cmakeParent, '..', 'lib');
  let root = path.resolve(cmakeParent, '..');
  if (fromLib && path.basename(root) === 'lib') root = path.resolve(root, '..');
  return { root, libDir, includeDir: path.join(root, 'include'), configDir };
}

function readVersion(includeDir) {
  for (const rel of ['torch/headeronly/version.h', 'torch/csrc/api/include/torch/version.h']) {
    const file = path.join(includeDir, rel);
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    const part = (n) => text.match(new RegExp(`#define TORCH_VERSION_${n} (\\d+)`))?.[1];
    if (part('MAJOR')) return `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`;
  }
  return 'unknown';
}

function describe(configDir, source, extra = {}) {
  const layout = layoutFromConfigDir(configDir);
  const cuda = existsSync(path.join(layout.libDir, 'libtorch_cuda.so'));
  return { source, ...layout, version: readVersion(layout.includeDir), cuda, ...extra };
}

function fromEnvLibTorch(dir) {
  const abs = path.resolve(dir);
  const configDir = torchConfigUnder(abs);
  if (!configDir) {
    throw new LibTorchNotFound(
      `LIBTORCH=${dir} does not hold a LibTorch: no share/cmake/Torch/TorchConfig.cmake under ${abs}.\n\n${HOW_TO_GET_ONE}`,
    );
  }
  return describe(configDir, 'LIBTORCH');
}

function fromPython(required) {
  const python = process.env.PYTHON || 'python3';
  let out;
  try {
    out = execFileSync(
      python,
      ['-c', 'import json, torch; print(json.dumps({"prefix": torch.utils.cmake_prefix_path, "version": torch.__version__}))'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
  } catch (err) {
    if (required) {
      throw new LibTorchNotFound(
        `LIBTORCH_USE_PYTORCH=1 but \`${python} -c 'import torch'\` failed: ${String(err.stderr || err.message).trim().split('\n').pop()}\n\n${HOW_TO_GET_ONE}`,
      );
    }
    return undefined;
  }
  const { prefix, version } = JSON.parse(out.trim().split('\n').pop());
  const configDir = torchConfigUnder(path.resolve(prefix, '..', '..')) ?? path.join(prefix, 'Torch');
  if (!existsSync(path.join(configDir, 'TorchConfig.cmake'))) {
    if (required) throw new LibTorchNotFound(`${python}'s torch ${version} has no TorchConfig.cmake under ${prefix}.`);
    return undefined;
  }
  return describe(configDir, 'python', { pythonVersion: version, python });
}

function fromSystem() {
  for (const prefix of SYSTEM_PREFIXES) {
    const configDir = torchConfigUnder(prefix);
    if (configDir) return describe(configDir, 'system');
  }
  return undefined;
}

/** The LibTorch to use, or a LibTorchNotFound error that says how to get one. */
export function findLibTorch(env = process.env) {
  if (env.LIBTORCH) return fromEnvLibTorch(env.LIBTORCH);
  const usePython = env.LIBTORCH_USE_PYTORCH;
  if (usePython && usePython !== '0') return fromPython(true);
  const found = fromPython(false) ?? fromSystem();
  if (!found) throw new LibTorchNotFound(`No LibTorch found.\n\n${HOW_TO_GET_ONE}`);
  return found;
}

/** Full paths of the libraries to link, from the chosen lib dir only (never -ltorch, which a system copy could satisfy). */
export function linkLibraries(info) {
  const names = ['libtorch.so', 'libtorch_cpu.so', 'libc10.so'];
  if (info.cuda) names.push('libtorch_cuda.so', 'libc10_cuda.so');
  return names.map((n) => path.join(info.libDir, n)).filter((p) => existsSync(p));
}

/**
 * gloo's own headers beside LibTorch's c10d ones, for native/distributed/process_group.cc (as CMakeLists.txt
 * finds them): pip's LibTorch ships c10d's headers and ProcessGroupGloo, not gloo's headers.
 */
export function glooIncludeDir(info, env = process.env) {
  if (!existsSync(path.join(info.includeDir, 'torch', 'csrc', 'distributed', 'c10d', 'ProcessGroupGloo.hpp'))) return undefined;
  return [env.GLOO_INCLUDE_DIR, '/usr/include', '/usr/local/include'].find((dir) => dir && existsSync(path.join(dir, 'gloo', 'config.h')));
}

export function includeDirs(info) {
  const gloo = glooIncludeDir(info);
  return [info.includeDir, path.join(info.includeDir, 'torch', 'csrc', 'api', 'include'), ...(gloo && gloo !== '/usr/include' ? [gloo] : [])];
}

function main() {
  let info;
  try {
    info = findLibTorch();
  } catch (err) {
    if (err instanceof LibTorchNotFound) {
      process.stderr.write(`\n${err.message}\n\n`);
      process.exit(1);
    }
    throw err;
  }
  const mode = process.argv[2] ?? '--json';
  switch (mode) {
    case '--json':
      process.stdout.write(JSON.stringify(info, null, 2) + '\n');
      break;
    case '--include-dirs':
      process.stdout.write(includeDirs(info).join(' ') + '\n');
      break;
    case '--libraries':
      // -Wl,--no-as-needed keeps libtorch_cuda linked although no symbol of it is named directly:
      // without it the CUDA backend never registers and torch::cuda::is_available() is false.
      process.stdout.write(
        ['-Wl,--no-as-needed', ...linkLibraries(info), '-Wl,--as-needed', `-Wl,-rpath,${info.libDir}`, '-Wl,--disable-new-dtags'].join(' ') + '\n',
      );
      break;
    case '--defines':
      // What CMakeLists.txt defines, for binding.gyp: CUDA, and c10d (Gloo) where gloo's headers are found.
      process.stdout.write([info.cuda ? 'CLIP_NATIVE_WITH_CUDA=1' : '', glooIncludeDir(info) ? 'CLIP_NATIVE_WITH_C10D=1' : ''].filter(Boolean).join(' ') + '\n');
      break;
    case '--lib-dir':
      process.stdout.write(info.libDir + '\n');
      break;
    case '--config-dir':
      process.stdout.write(info.configDir + '\n');
      break;
    default:
      process.stderr.write(`unknown option ${mode}\n`);
      process.exit(2);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
