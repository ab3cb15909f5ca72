// Weight files from strangers: a TorchScript archive is read as data, never run; crafted pickles
// and zips are refused within a time and memory bound, and a canary file stays untouched. Each
// hostile load runs in a child process, so a crash or a hang fails the test instead of the runner.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';

import { loadModel } from '../../src/model/model.js';
import { fixture, repoRoot } from '../helpers/fixtures.js';
import { scratchDir } from '../helpers/scratch.js';

const tmp = scratchDir('clip-untrusted-');
const TIME_BOUND_MS = 10_000;
const RSS_BOUND_MIB = 1024;

interface ChildLoad {
  outcome: 'loaded' | 'error' | 'crashed' | 'timed out';
  message: string;
  ms: number;
  maxRssMiB: number;
}

/** loadModel(file) in a fresh Node process, with its outcome, wall time and peak RSS. */
function loadInChild(file: string): ChildLoad {
  const modelModule = pathToFileURL(path.join(repoRoot, 'dist', 'src', 'model', 'model.js')).href;
  const code = `
    const { loadModel } = await import(${JSON.stringify(modelModule)});
    const report = (outcome, message) => console.log(JSON.stringify({ outcome, message, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
    try { await loadModel(process.argv[1]); report('loaded', ''); }
    catch (e) { report(e instanceof Error ? 'error' : 'non-Error thrown', String(e?.message ?? e)); }`;
  const started = Date.now();
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', code, file], { encoding: 'utf8', timeout: TIME_BOUND_MS + 20_000, killSignal: 'SIGKILL' });
  const ms = Date.now() - started;
  if (run.error && (run.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') return { outcome: 'timed out', message: '', ms, maxRssMiB: NaN };
  const line = run.stdout.trim().split('\n').pop() ?? '';
  if (run.status !== 0 || !line.startsWith('{'))
    return { outcome: 'crashed', message: `exit ${run.status}, signal ${run.signal}: ${run.stderr.trim().split('\n').slice(-3).join(' | ')}`, ms, maxRssMiB: NaN };
  return { ...(JSON.parse(line) as Omit<ChildLoad, 'ms'>), ms };
}

function assertRefused(file: string, pattern: RegExp): ChildLoad {
  const result = loadInChild(file);
  assert.equal(result.outcome, 'error', `${path.basename(file)}: ${result.outcome} ${result.message}`);
  assert.match(result.message, new RegExp(path.basename(file).replace(/\./g, '\\.')), 'the message names the file');
  assert.match(result.message, pattern);
  assert.ok(result.ms < TIME_BOUND_MS, `${path.basename(file)} took ${result.ms} ms`);
  assert.ok(result.maxRssMiB < RSS_BOUND_MIB, `${path.basename(file)} peaked at ${result.maxRssMiB.toFixed(0)} MiB`);
  return result;
}

test('the TorchScript fixture is read as data: the same tensors bit for bit as its safetensors twin, text heads from its code', async () => {
  const archive = await loadModel(fixture('models', 'tiny_vit.torchscript.pt'));
  const twin = await loadModel(fixture('models', 'tiny_vit.safetensors'));
  assert.equal(archive.source?.format, 'torchscript');
  assert.equal(archive.source?.configSource, 'inferred (text heads from the TorchScript graph)');
  assert.equal(archive.source?.metadata.transformer_heads, '4');
  const [mine, theirs] = [await archive.native.stateDict(), await twin.native.stateDict()];
  assert.deepEqual(mine.map((e) => e.name), theirs.map((e) => e.name));
  for (let i = 0; i < mine.length; i++) {
    const [a, b] = [mine[i]!.tensor, theirs[i]!.tensor];
    assert.deepEqual(a.shape, b.shape, mine[i]!.name);
    assert.ok(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength)), `${mine[i]!.name} differs`);
  }
});

// The crafted files need torch to be written (never to be read): made once for the tests below.
const canary = path.join(tmp, 'canary.txt');
const CANARY_TEXT = 'the canary is untouched\n';
writeFileSync(canary, CANARY_TEXT);
const hostileDir = path.join(tmp, 'hostile');
const made = spawnSync('python3', [path.join(repoRoot, 'test', 'python', 'make_hostile_archives.py'), hostileDir, canary, '--prove'], { encoding: 'utf8' });
const madeNotes: Record<string, string> = made.status === 0 ? JSON.parse(made.stdout.trim().split('\n').pop()!) : {};
const HOSTILE_SKIP = made.status === 0 ? undefined : `SKIPPED: python3 with torch is needed to write the crafted archives: ${(made.stderr || String(made.error)).trim().split('\n').pop()}`;
const hostile = (name: string) => path.join(hostileDir, name);

function assertCanaryUntouched() {
  assert.equal(readFileSync(canary, 'utf8'), CANARY_TEXT, 'the canary file was changed');
  assert.equal(existsSync(`${canary}.pwned`), false, 'a payload ran: the .pwned marker exists');
}

test('a TorchScript archive whose __setstate__ writes a file is refused and the file stays untouched', { skip: HOSTILE_SKIP }, (t) => {
  // The payload is real: torch.jit.load on a copy of the archive changes a copy of the canary.
  assert.equal(madeNotes.proof, 'torch.jit.load changed the canary copy');
  const result = assertRefused(hostile('setstate_writes.pt'), /defines __setstate__.*never runs a file's code/);
  assertCanaryUntouched();
  t.diagnostic(`${result.message} (${result.ms} ms)`);
});

test('a TorchScript archive whose __setstate__ never returns is refused at once', { skip: HOSTILE_SKIP }, () => {
  assertRefused(hostile('setstate_loops.pt'), /defines __setstate__/);
});

test('a TorchScript archive calling a global outside __torch__ is refused by name', { skip: HOSTILE_SKIP }, () => {
  assertRefused(hostile('outside_torch.pt'), /refusing pickle global 'posix\.system'/);
  assertCanaryUntouched();
});

test('a TorchScript tensor that reaches past its storage is refused', { skip: HOSTILE_SKIP }, () => {
  assertRefused(hostile('past_storage.pt'), /tensor of size \[1000\].*reaches past its storage of 4 elements/);
});

test('a harmless non-CLIP TorchScript module gets past the reader to the model check', { skip: HOSTILE_SKIP }, () => {
  const result = loadInChild(hostile('tiny_module.pt'));
  assert.equal(result.outcome, 'error');
  assert.match(result.message, /cannot infer the model configuration/);
});

test('a pickle nested a million levels deep is refused without a crash', { skip: HOSTILE_SKIP }, (t) => {
  const result = assertRefused(hostile('deep_nesting.pt'), /nests more than 200 levels deep/);
  t.diagnostic(`${madeNotes['deep_nesting.pt']}: ${result.ms} ms, ${result.maxRssMiB.toFixed(0)} MiB peak`);
});

test('a memo-reuse pickle ("billion laughs") is refused before memory runs out', { skip: HOSTILE_SKIP }, (t) => {
  const result = assertRefused(hostile('billion_laughs.pt'), /expands to more than 1000000 objects/);
  t.diagnostic(`${madeNotes['billion_laughs.pt']}: ${result.ms} ms, ${result.maxRssMiB.toFixed(0)} MiB peak`);
});

test('a zip record that inflates far past the archive is refused before it is inflated', { skip: HOSTILE_SKIP }, (t) => {
  const result = assertRefused(hostile('zip_bomb.pt'), /record 'data\/0' declares 1073741824 bytes.*zip bomb/);
  t.diagnostic(`${madeNotes['zip_bomb.pt']}: ${result.maxRssMiB.toFixed(0)} MiB peak`);
});

test('a zip record that declares less than it inflates to is inflated only up to what it declares', { skip: HOSTILE_SKIP }, () => {
  // 16 declared bytes are the 4 floats the pickle asks for; the rest of the 64 MiB is never made.
  const result = loadInChild(hostile('zip_liar.pt'));
  assert.equal(result.outcome, 'error');
  assert.match(result.message, /cannot infer the model configuration/);
  assert.ok(result.ms < TIME_BOUND_MS);
});

test('a FIFO given as the model is refused without being opened', (t) => {
  const fifo = path.join(tmp, 'weights.pt');
  const mk = spawnSync('mkfifo', [fifo]);
  if (mk.status !== 0) return t.skip(`SKIPPED: mkfifo failed: ${mk.stderr}`);
  assertRefused(fifo, /is a FIFO \(named pipe\), not a weight file/);
});

/** A copy of the tiny safetensors fixture with one float of `tensor` set to `value`. */
function poisoned(tensor: string, value: number): string {
  const file = path.join(tmp, `poisoned-${tensor}-${value}.safetensors`);
  copyFileSync(fixture('models', 'tiny_vit.safetensors'), file);
  const bytes = readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  assert.equal(header[tensor].dtype, 'F32');
  bytes.writeFloatLE(value, 8 + headerLength + header[tensor].data_offsets[0] + 4 * 5);
  writeFileSync(file, bytes);
  return file;
}

test('weights holding NaN or Inf are refused at load, naming the tensor', async () => {
  for (const [value, counts] of [[NaN, /holds 1 NaN and 0 infinite/], [-Infinity, /holds 0 NaN and 1 infinite/]] as const) {
    await assert.rejects(loadModel(poisoned('visual.proj', value)), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, /poisoned-visual\.proj/);
      assert.match(err.message, /tensor 'visual\.proj'/);
      assert.match(err.message, counts);
      return true;
    });
  }
});

/** A copy of the tiny safetensors fixture whose metadata configuration says `transformer_layers: layers`. */
function withLayersInMetadata(layers: number): string {
  const file = path.join(tmp, `layers-${layers}.safetensors`);
  const bytes = readFileSync(fixture('models', 'tiny_vit.safetensors'));
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const config = JSON.parse(header.__metadata__.config);
  header.__metadata__.config = JSON.stringify({ ...config, transformer_layers: layers });
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (text.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  writeFileSync(file, Buffer.concat([length, Buffer.from(text), bytes.subarray(8 + headerLength)]));
  return file;
}

// Found by the fuzz campaign (seed 1, case 10441): 2^32 text layers in a file's metadata built a model
// of that size before the weights were compared, until memory ran out (23 GB here).
test('a metadata configuration far larger than the file is refused before the model is built', () => {
  const huge = assertRefused(withLayersInMetadata(2 ** 32), /at least 2\.1\de\+14 parameters, more than the 1e\+11 clip-native builds/);
  const inflated = assertRefused(withLayersInMetadata(2000), /describes a model of at least 1\.0\de\+08 parameters, but the file holds 3\.\d+e\+06 values; refused before building it/);
  assert.ok(huge.maxRssMiB < 512 && inflated.maxRssMiB < 512, `${huge.maxRssMiB} / ${inflated.maxRssMiB} MiB`);
});
