import assert from 'node:assert/strict';
import os from 'node:os';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

import { repoRoot } from './helpers/fixtures.js';

const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

function pythonTorchVersion(): string | undefined {
  const r = spawnSync('python3', ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

test('doctor --json reports the version, LibTorch, CUDA and threads', () => {
  const out = execFileSync(process.execPath, [cli, 'doctor', '--json'], { encoding: 'utf8' });
  const report = JSON.parse(out);
  const pkg = JSON.parse(execFileSync(process.execPath, ['-p', `JSON.stringify(require(${JSON.stringify(path.join(repoRoot, 'package.json'))}))`], { encoding: 'utf8' }));
  assert.equal(report.version, pkg.version);
  assert.match(report.libtorch.version, /^\d+\.\d+\.\d+/);
  assert.ok(['python', 'LIBTORCH', 'system'].includes(report.libtorch.source), `source ${report.libtorch.source}`);
  assert.equal(typeof report.libtorch.path, 'string');
  assert.equal(typeof report.cuda.available, 'boolean');
  // CUDA graphs exist only in a build against a LibTorch with CUDA (and its headers).
  if (!report.libtorch.builtWithCuda) assert.deepEqual([report.cuda.graphs, report.cuda.kernels], [false, false]);
  else assert.deepEqual([typeof report.cuda.graphs, typeof report.cuda.kernels], ['boolean', 'boolean']);
  assert.ok(Array.isArray(report.cuda.devices));
  for (const d of report.cuda.devices) {
    assert.equal(typeof d.name, 'string');
    assert.match(d.capability, /^\d+\.\d+$/);
    assert.ok(d.memoryBytes > 0);
  }
  assert.ok(Number.isInteger(report.threads) && report.threads >= 1);
  // A quarter of the memory at most, and something on a machine with any free memory.
  assert.ok(Number.isSafeInteger(report.cropMemoryBytes) && report.cropMemoryBytes > 0 && report.cropMemoryBytes <= os.totalmem() / 4, `${report.cropMemoryBytes}`);
  assert.ok(['cmake-js', 'node-gyp'].includes(report.addon.buildPath));
  const py = pythonTorchVersion();
  if (report.libtorch.source === 'python' && py) {
    assert.equal(report.libtorch.version, py.split('+')[0], 'the addon links the LibTorch of python3 torch');
  }
});

test('doctor prints a readable summary', () => {
  const out = execFileSync(process.execPath, [cli, 'doctor'], { encoding: 'utf8' });
  assert.match(out, /^clip-native \d+\.\d+\.\d+/);
  assert.match(out, /libtorch\s+\d+\.\d+\.\d+ from /);
  assert.match(out, /cuda\s+(available|not available)/);
  assert.match(out, /vocabulary\s+\S+/);
  assert.match(out, /crop memory\s+up to \d+\.\d GiB/);
  assert.doesNotMatch(out, /experiments/);
});

test("doctor finds the vocabulary shipped in the package (no download needed); CLIP_NATIVE_VOCAB still wins", () => {
  const env: NodeJS.ProcessEnv = { ...process.env, CLIP_NATIVE_CACHE: path.join(os.tmpdir(), 'clip-doctor-empty-cache') };
  delete env.CLIP_NATIVE_VOCAB;
  const shipped = JSON.parse(execFileSync(process.execPath, [cli, 'doctor', '--json'], { encoding: 'utf8', env })) as { vocab: unknown };
  assert.deepEqual(shipped.vocab, { path: path.join(repoRoot, 'assets', 'bpe_simple_vocab_16e6.txt.gz'), exists: true, source: 'package' });
  const chosen = JSON.parse(execFileSync(process.execPath, [cli, 'doctor', '--json'], { encoding: 'utf8', env: { ...env, CLIP_NATIVE_VOCAB: '/nowhere/vocab.gz' } })) as { vocab: unknown };
  assert.deepEqual(chosen.vocab, { path: '/nowhere/vocab.gz', exists: false, source: 'CLIP_NATIVE_VOCAB' });
});

test('doctor names the experiments switched on by CLIP_NATIVE_EXPERIMENTS, with what each switches', () => {
  const env = { ...process.env, CLIP_NATIVE_EXPERIMENTS: 'reference-mlp,full-text-context' };
  const report = JSON.parse(execFileSync(process.execPath, [cli, 'doctor', '--json'], { encoding: 'utf8', env })) as { experiments: Array<{ name: string; defaultOn: string }> };
  assert.deepEqual(report.experiments.map((e) => [e.name, e.defaultOn]), [['reference-mlp', 'cpu'], ['full-text-context', 'none']]);
  const out = execFileSync(process.execPath, [cli, 'doctor'], { encoding: 'utf8', env });
  assert.match(out, /experiments\s+reference-mlp: QuickGELU as the reference writes it.* \(CLIP_NATIVE_EXPERIMENTS\)\n\s+full-text-context: the text tower over all 77 positions/);
});

test('an unknown name in CLIP_NATIVE_EXPERIMENTS is refused before the addon loads, listing the known ones', () => {
  // dense-qkv was an experiment once (bench/results/levers.md): removed, it must not pass silently.
  const env = { ...process.env, CLIP_NATIVE_EXPERIMENTS: 'fused-mlp,dense-qkv' };
  const r = spawnSync(process.execPath, [cli, 'doctor'], { encoding: 'utf8', env });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /CLIP_NATIVE_EXPERIMENTS names "dense-qkv", which is no experiment; the known ones are fused-mlp, reference-mlp, .*portable-crc/);
});

test('find-libtorch fails with instructions when LIBTORCH points nowhere', () => {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'find-libtorch.mjs')], {
    encoding: 'utf8',
    env: { ...process.env, LIBTORCH: '/nonexistent/libtorch' },
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /LIBTORCH=\/nonexistent\/libtorch does not hold a LibTorch/);
  assert.match(r.stderr, /pip install torch/);
});

test('the addon finds LibTorch without LD_LIBRARY_PATH', () => {
  const env = { ...process.env };
  delete env.LD_LIBRARY_PATH;
  const out = execFileSync(process.execPath, [cli, 'doctor', '--json'], { encoding: 'utf8', env });
  assert.match(JSON.parse(out).libtorch.version, /^\d+\./);
});
