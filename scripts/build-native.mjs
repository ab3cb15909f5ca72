#!/usr/bin/env node
// Builds the native addon (npm's `install` step). Finds LibTorch, then picks the build path:
// cmake-js when CMake ≥ 3.18 is on PATH, node-gyp otherwise (or CLIP_NATIVE_BUILD=cmake-js|node-gyp).
// Both write build/Release/clip_native.node plus build/Release/build-info.json, which `doctor` reads.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { findLibTorch, LibTorchNotFound } from './find-libtorch.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const MIN_CMAKE = [3, 18];

function log(message) {
  process.stdout.write(`clip-native: ${message}\n`);
}

function cmakeVersion() {
  try {
    const out = execFileSync('cmake', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const match = out.match(/cmake version (\d+)\.(\d+)(?:\.(\d+))?/);
    return match ? [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)] : undefined;
  } catch {
    return undefined;
  }
}

function chooseBuildPath() {
  const forced = process.env.CLIP_NATIVE_BUILD;
  if (forced) {
    if (forced !== 'cmake-js' && forced !== 'node-gyp') {
      throw new Error(`CLIP_NATIVE_BUILD=${forced}: use cmake-js or node-gyp`);
    }
    return { tool: forced, reason: 'CLIP_NATIVE_BUILD' };
  }
  const version = cmakeVersion();
  if (version && (version[0] > MIN_CMAKE[0] || (version[0] === MIN_CMAKE[0] && version[1] >= MIN_CMAKE[1]))) {
    return { tool: 'cmake-js', reason: `CMake ${version.join('.')} found` };
  }
  const why = version ? `CMake ${version.join('.')} is older than ${MIN_CMAKE.join('.')}` : 'no CMake on PATH';
  return { tool: 'node-gyp', reason: why };
}

function run(command, args, env) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (result.status !== 0) {
    throw new Error(`${path.basename(args[0] ?? command)} failed (exit ${result.status ?? result.signal})`);
  }
}

function buildWithCmakeJs(torch, jobs) {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  run(process.execPath, [cmakeJs, 'build', '--log-level', 'warn', '--parallel', String(jobs), `--CDCLIP_TORCH_CONFIG_DIR=${torch.configDir}`]);
}

function buildWithNodeGyp(jobs) {
  // npm sets npm_config_node_gyp to the node-gyp it bundles; outside npm, resolve npm's copy.
  const nodeGyp = process.env.npm_config_node_gyp ?? findNpmNodeGyp();
  const args = [nodeGyp, 'rebuild', `--jobs=${jobs}`];
  const nodedir = localNodeDir();
  if (nodedir) args.push(`--nodedir=${nodedir}`);
  run(process.execPath, args);
}

/**
 * Node's own headers, so node-gyp needs no download: npm's nodedir setting, else the running Node's
 * install prefix when it ships include/node (official builds and distribution packages do).
 */
function localNodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return existsSync(path.join(prefix, 'include', 'node', 'common.gypi')) ? prefix : undefined;
}

function findNpmNodeGyp() {
  const npmCli = execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim();
  return path.join(npmCli, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
}

/**
 * `npx clip-native …` inside a checkout installs the checkout into npx's cache as a link, which runs
 * this script again in the checkout (npm_command=exec): rebuilding an addon that `npm install` just
 * built would hold up the user's first command for minutes. `npm run build:native` rebuilds.
 */
function alreadyBuiltForNpx() {
  return process.env.npm_command === 'exec' && existsSync(path.join(root, 'build', 'Release', 'clip_native.node'));
}

function main() {
  if (process.env.CLIP_NATIVE_SKIP_BUILD === '1') {
    log('CLIP_NATIVE_SKIP_BUILD=1: not building the native addon');
    return;
  }
  if (alreadyBuiltForNpx()) {
    log('npx: the addon in build/Release is already built; not rebuilding it (npm run build:native does)');
    return;
  }
  let torch;
  try {
    torch = findLibTorch();
  } catch (err) {
    if (err instanceof LibTorchNotFound) {
      process.stderr.write(`\nclip-native: cannot build the native addon.\n${err.message}\n\n`);
      process.exit(1);
    }
    throw err;
  }
  const { tool, reason } = chooseBuildPath();
  log(`LibTorch ${torch.version}${torch.cuda ? ' with CUDA' : ' (CPU only)'} from ${torch.source}: ${torch.root}`);
  log(`building with ${tool} (${reason})`);
  const jobs = Number(process.env.CLIP_NATIVE_JOBS) || Math.max(1, Math.min(os.availableParallelism(), 8));
  const started = Date.now();
  if (tool === 'cmake-js') buildWithCmakeJs(torch, jobs);
  else buildWithNodeGyp(jobs);
  const outDir = path.join(root, 'build', 'Release');
  mkdirSync(outDir, { recursive: true });
  const info = {
    buildPath: tool,
    builtAt: new Date().toISOString(),
    libtorch: { version: torch.version, source: torch.source, path: torch.root, cuda: torch.cuda },
  };
  writeFileSync(path.join(outDir, 'build-info.json'), JSON.stringify(info, null, 2) + '\n');
  log(`built build/Release/clip_native.node in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

try {
  main();
} catch (err) {
  process.stderr.write(`\nclip-native: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
