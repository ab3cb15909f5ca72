// Non-finite values stop a run, they do not pass (#19 item 7, training): a loss that stays non-finite
// for --max-nonfinite-steps steps in a row ends the run with a checkpoint of the last finite state and
// a non-zero exit code (train() rejects with a DivergedError); a checkpoint is only kept as that state
// when every value in it is finite.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { nonFiniteTensors } from '../../src/train/finite-scan.js';
import { listCheckpoints } from '../../src/train/run-files.js';
import { repoRoot } from '../helpers/fixtures.js';
import { scratchDir } from '../helpers/scratch.js';
import { cliEnv, runCli, tinyRunInputs, tinyTrainArgs } from '../helpers/tiny-run.js';

const tmp = scratchDir('clip-nonfinite-');
const env = cliEnv(tmp);
let inputs: { data: string; model: string };
before(async () => {
  inputs = await tinyRunInputs(tmp);
});

/** A safetensors file of the given F32 / BF16 tensors (values as raw bit patterns for BF16). */
async function safetensors(file: string, tensors: Record<string, { dtype: 'F32' | 'BF16'; values: number[] }>): Promise<void> {
  const header: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [name, { dtype, values }] of Object.entries(tensors)) {
    const bytes = dtype === 'F32' ? Buffer.from(new Float32Array(values).buffer) : Buffer.from(new Uint16Array(values).buffer);
    header[name] = { dtype, shape: [values.length], data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  const text = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(text.length));
  await fs.writeFile(file, Buffer.concat([length, text, ...parts]));
}

describe('non-finite losses', () => {
  test('a loss non-finite for --max-nonfinite-steps steps stops the run: checkpoint of the last finite state, exit code 1', { timeout: 60_000 }, async () => {
    const out = path.join(tmp, 'diverged');
    const run = await runCli(tinyTrainArgs(inputs, out, '--epochs', '50', '--lr', '1e30', '--schedule', 'constant', '--max-nonfinite-steps', '3', '--checkpoint-every', '0', '--weights-every', '0'), env);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /clip-native: the loss was not finite for 3 consecutive steps \(last: epoch \d+, batch \d+, optimizer step \d+\); those steps were not applied, and training stopped\. The last finite state is in (\S+checkpoint-epoch\d+-batch\d+\.safetensors)\. Lower the learning rate \(now 1e\+30\)/);
    const checkpoint = /The last finite state is in (\S+)\.safetensors\./.exec(run.stderr)![1] + '.safetensors';
    assert.ok(existsSync(checkpoint));
    assert.deepEqual(await nonFiniteTensors(checkpoint), [], 'every value of the checkpoint is finite');
    assert.deepEqual((await listCheckpoints(out)).map((c) => c.file), [checkpoint]);
    assert.ok(run.seconds < 30, `stopped after ${run.seconds.toFixed(1)} s`);
    assert.equal(existsSync(path.join(out, '.lock')), false, 'the lock is released when the run fails');
    // The stop is not the end of the epoch: no weight file claims the epoch was trained.
    assert.deepEqual((await fs.readdir(out)).filter((f) => f.endsWith('.safetensors')), []);
  });

  test('--max-nonfinite-steps defaults to 10 and is a config key; maxNonFinite, its old name, is still read', async () => {
    const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'bin.cjs');
    const defaults = JSON.parse(execFileSync(process.execPath, [cli, 'train', '--data', 'd', '--out', 'o', '--print-config'], { encoding: 'utf8' }));
    assert.equal(defaults.maxNonFiniteSteps, 10);
    assert.equal(defaults.overwrite, false);
    assert.equal('maxNonFinite' in defaults, false);
    const flags = JSON.parse(execFileSync(process.execPath, [cli, 'train', '--data', 'd', '--out', 'o', '--max-nonfinite-steps', '4', '--overwrite', '--print-config'], { encoding: 'utf8' }));
    assert.equal(flags.maxNonFiniteSteps, 4);
    assert.equal(flags.overwrite, true);
    const file = path.join(tmp, 'old-name.yaml');
    await fs.writeFile(file, 'data: d\nout: o\nmaxNonFinite: 5\n');
    const old = JSON.parse(execFileSync(process.execPath, [cli, 'train', '--config', file, '--print-config'], { encoding: 'utf8' }));
    assert.equal(old.maxNonFiniteSteps, 5);
  });

  test('the check of a checkpoint finds NaN and infinity in F32 and BF16 tensors', async () => {
    const file = path.join(tmp, 'values.safetensors');
    await safetensors(file, {
      fine: { dtype: 'F32', values: [0, -1.5, 3.4e38, 1e-45] },
      nan: { dtype: 'F32', values: [1, Number.NaN] },
      inf: { dtype: 'F32', values: [Number.NEGATIVE_INFINITY] },
      bf16Fine: { dtype: 'BF16', values: [0x3f80, 0x7f7f] },
      bf16Inf: { dtype: 'BF16', values: [0x3f80, 0x7f80] },
    });
    assert.deepEqual((await nonFiniteTensors(file)).sort(), ['bf16Inf', 'inf', 'nan']);
  });
});
