import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { repoRoot } from './helpers/fixtures.js';

// src/util/threadpool.cts: one thread per core, one for the train step, 3 for short fs calls, at most 64.
const DEFAULT_SIZE = Math.min(os.availableParallelism() + 4, 64);
const FIFOS = 80; // more than any pool size expected here

// Measures the pool that libuv actually started, not just the variable: opening a FIFO for reading
// holds a pool thread until a writer comes, and the jobs start in order, so the last FIFO with a
// reader blocked on it (a non-blocking open for writing fails with ENXIO where none is) gives the size.
const PROBE = `
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
const fifos = Array.from({ length: ${FIFOS} }, (_, i) => process.env.PROBE_FIFOS + '/' + i);
const opens = fifos.map((f) => fs.promises.open(f, 'r'));
await sleep(500);
let size = 0;
for (let i = fifos.length - 1; i >= 0 && size === 0; i--) {
  try {
    fs.closeSync(fs.openSync(fifos[i], fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
    size = i + 1;
  } catch (err) {
    if (err.code !== 'ENXIO') throw err;
  }
}
const writers = fifos.map((f) => fs.openSync(f, 'r+'));
for (const handle of await Promise.all(opens)) await handle.close();
writers.forEach((fd) => fs.closeSync(fd));
console.log(JSON.stringify({ env: process.env.UV_THREADPOOL_SIZE ?? null, size }));
`;

const unsupported = process.platform !== 'linux' ? 'FIFO semantics of Linux' : spawnSync('mkfifo', ['--version']).status !== 0 ? 'no mkfifo' : false;
let tmp: string;

before(async () => {
  if (unsupported) return;
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'clip-threadpool-'));
  await fs.mkdir(path.join(tmp, 'fifos'));
  execFileSync('mkfifo', Array.from({ length: FIFOS }, (_, i) => path.join(tmp, 'fifos', String(i))));
  // The real launcher and threadpool module, with the probe in place of the command line.
  await fs.mkdir(path.join(tmp, 'pkg', 'src', 'cli'), { recursive: true });
  await fs.mkdir(path.join(tmp, 'pkg', 'src', 'util'));
  await fs.writeFile(path.join(tmp, 'pkg', 'package.json'), '{"type": "module"}\n');
  await fs.copyFile(path.join(repoRoot, 'dist', 'src', 'cli', 'bin.cjs'), path.join(tmp, 'pkg', 'src', 'cli', 'bin.cjs'));
  await fs.copyFile(path.join(repoRoot, 'dist', 'src', 'util', 'threadpool.cjs'), path.join(tmp, 'pkg', 'src', 'util', 'threadpool.cjs'));
  await fs.writeFile(path.join(tmp, 'pkg', 'src', 'cli', 'main.js'), PROBE);
  await fs.writeFile(path.join(tmp, 'probe.mjs'), PROBE);
});

after(async () => {
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

function probe(args: string[], threadpoolSize?: string): { env: string | null; size: number } {
  const env: NodeJS.ProcessEnv = { ...process.env, PROBE_FIFOS: path.join(tmp, 'fifos') };
  delete env.UV_THREADPOOL_SIZE;
  if (threadpoolSize !== undefined) env.UV_THREADPOOL_SIZE = threadpoolSize;
  const run = spawnSync(process.execPath, args, { cwd: repoRoot, env, encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, `node ${args.join(' ')}: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

test('the clip-native command starts the threadpool with the default size', { skip: unsupported }, () => {
  assert.notEqual(DEFAULT_SIZE, 4, 'the default must differ from libuv’s for this test to tell them apart');
  assert.deepEqual(probe([path.join(tmp, 'pkg', 'src', 'cli', 'bin.cjs')]), { env: String(DEFAULT_SIZE), size: DEFAULT_SIZE });
});

test('the clip-native command keeps an explicit UV_THREADPOOL_SIZE', { skip: unsupported }, () => {
  assert.deepEqual(probe([path.join(tmp, 'pkg', 'src', 'cli', 'bin.cjs')], '3'), { env: '3', size: 3 });
});

test('node --require clip-native/threadpool sizes the pool of an ES module application', { skip: unsupported }, () => {
  assert.deepEqual(probe(['--require', 'clip-native/threadpool', path.join(tmp, 'probe.mjs')]), { env: String(DEFAULT_SIZE), size: DEFAULT_SIZE });
  assert.deepEqual(probe(['--require', 'clip-native/threadpool', path.join(tmp, 'probe.mjs')], '5'), { env: '5', size: 5 });
  // Without it, libuv's 4, whatever the application's modules set later.
  assert.deepEqual(probe([path.join(tmp, 'probe.mjs')]), { env: null, size: 4 });
});
