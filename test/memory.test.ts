// Device memory as a user meets it (issue 23): an out-of-memory step named with what would fit, and
// `--batch-size auto`. No GPU here: the native test hook CLIP_NATIVE_EMULATE_OOM_ABOVE_BATCH=n makes a
// step of more than n images fail as CUDA's allocator does, through the same exception type.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';

import { readSafetensors } from '../src/io/safetensors-header.js';
import { loadModel } from '../src/model/model.js';
import { autoBatchSize, explainOutOfMemory, largestPowerOfTwo, OutOfMemoryError } from '../src/train/memory.js';
import { createTrainer } from '../src/train/trainer.js';
import { fixture } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';
import { cliEnv, runCli, tinyRunInputs, tinyTrainArgs } from './helpers/tiny-run.js';

const HOOK = 'CLIP_NATIVE_EMULATE_OOM_ABOVE_BATCH';

async function withHook<T>(limit: number, run: () => Promise<T>): Promise<T> {
  process.env[HOOK] = String(limit);
  try {
    return await run();
  } finally {
    delete process.env[HOOK];
  }
}

describe('device memory', () => {
  test('largestPowerOfTwo stops at the first size that does not fit, within the bound', async () => {
    const tried: number[] = [];
    const fits = (limit: number) => async (n: number) => (tried.push(n), n <= limit);
    assert.equal(await largestPowerOfTwo(fits(100), 1024), 64);
    assert.deepEqual(tried, [1, 2, 4, 8, 16, 32, 64, 128]);
    assert.equal(await largestPowerOfTwo(fits(100), 40), 32);
    await assert.rejects(largestPowerOfTwo(fits(0), 8), /not even a batch of 1/);
  });

  test('an out-of-memory step becomes an error naming the batch, the model and the options that fit', async () => {
    const g = await readSafetensors(fixture('models', 'tiny_vit.golden.safetensors'));
    const trainer = await createTrainer(await loadModel(fixture('models', 'tiny_vit.safetensors')), { lr: 1e-3 });
    const failure = await withHook(2, () => trainer.step(g.float32('images'), g.tensor('text_tokens') as never).then(() => undefined, (e: unknown) => e));
    const context = { model: 'tiny_vit', batchSize: 4, device: 'cuda:0', precision: 'fp32' as const, accumulate: 2, gradCheckpointing: false, lockImage: false, lockText: false };
    const explained = explainOutOfMemory(failure, context);
    assert.ok(explained instanceof OutOfMemoryError, String(failure));
    assert.match(explained.message, /tiny_vit at --batch-size 4 \(fp32, --accumulate 2\) does not fit/);
    assert.match(explained.message, /--grad-checkpointing/);
    assert.match(explained.message, /--batch-size 2 --accumulate 4 \(the same contrastive batch of 8/);
    assert.match(explained.message, /--precision bf16/);
    assert.equal(explained.cause, failure);
    // Anything else passes through untouched.
    const other = new Error('shape mismatch');
    assert.equal(explainOutOfMemory(other, context), other);
    // After the failure the trainer still trains a batch that fits.
    const half = { data: g.float32('images').data.slice(0, 2 * 3 * 32 * 32), shape: [2, 3, 32, 32] };
    const tokens = g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] };
    assert.ok(Number.isFinite(await withHook(2, () => trainer.step(half, { data: tokens.data.slice(0, 2 * 77), shape: [2, 77] }))));
  });

  test('autoBatchSize finds the largest power of two that fits and leaves the weights as they were', async () => {
    const model = await loadModel(fixture('models', 'tiny_vit.safetensors'));
    const before = await model.stateDict();
    assert.equal(await withHook(5, () => autoBatchSize(model, { precision: 'fp32' }, 64)), 4);
    assert.equal(await withHook(1000, () => autoBatchSize(model, { precision: 'fp32' }, 16)), 16);
    const after = await model.stateDict();
    after.forEach((e, i) => assert.ok(Buffer.from(e.tensor.data.buffer).equals(Buffer.from(before[i]!.tensor.data.buffer)), `${e.name} changed`));
  });

  test('a disposed trainer refuses further calls', async () => {
    const trainer = await createTrainer(await loadModel(fixture('models', 'tiny_vit.safetensors')), {});
    trainer.dispose();
    assert.throws(() => trainer.counters, /disposed/);
  });

  test('CLI: --batch-size auto resolves and trains; an out-of-memory run names its fix; auto on a CPU is refused', { timeout: 180_000 }, async () => {
    const tmp = scratchDir('clip-memory-');
    const inputs = await tinyRunInputs(tmp);
    const env = cliEnv(tmp);
    const withoutAuto = (args: string[]) => args.filter((a, i) => !(a === '--batch-size' || args[i - 1] === '--batch-size'));
    const auto = await runCli([...withoutAuto(tinyTrainArgs(inputs, path.join(tmp, 'auto'))), '--batch-size', 'auto', '--epochs', '1'], { ...env, [HOOK]: '5' });
    assert.equal(auto.code, 0, auto.stderr);
    assert.match(auto.stderr, /--batch-size auto: 4, the largest power of two up to 16/);
    const oom = await runCli([...tinyTrainArgs(inputs, path.join(tmp, 'oom')), '--epochs', '1'], { ...env, [HOOK]: '2' });
    assert.notEqual(oom.code, 0);
    assert.match(oom.stderr, /out of memory on cpu: a train step of .*tiny\.json at --batch-size 4/);
    assert.match(oom.stderr, /--batch-size 2 --accumulate 2/);
    const refused = await runCli([...withoutAuto(tinyTrainArgs(inputs, path.join(tmp, 'cpu'))), '--batch-size', 'auto', '--epochs', '1'], env);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /'auto' needs a CUDA device/);
  });
});
