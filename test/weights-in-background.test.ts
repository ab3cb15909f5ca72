// Each epoch's weights are written while the next epoch trains: the model is held only while its
// weights are copied (ClipModel.copyWeights, native/binding/model_binding.cc), and the loop waits for
// the file at the next epoch's end or at the end of the run (src/train/background-writes.ts).
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';

import { readSafetensors, readSafetensorsMetadata } from '../src/io/safetensors-header.js';
import { loadModel } from '../src/model/model.js';
import { BackgroundWrites } from '../src/train/background-writes.js';
import { createTrainer } from '../src/train/trainer.js';
import { fixture } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';

const tmp = scratchDir('clip-background-writes-');

describe('weights written in the background', () => {
  test('model.copyWeights: train steps run while the copy is written, and every save of it writes the weights at the copy', async () => {
    const g = await readSafetensors(fixture('models', 'tiny_vit.golden.safetensors'));
    const [images, tokens] = [g.float32('images'), g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] }];
    const model = await loadModel(fixture('models', 'tiny_vit.safetensors'));
    const trainer = await createTrainer(model, { lr: 1e-2 });
    await trainer.step(images, tokens);
    const copied = await model.stateDict();
    const copy = await model.copyWeights();
    const [st, pt] = [path.join(tmp, 'copy.safetensors'), path.join(tmp, 'copy.pt')];
    // The test hook holds the write back for 1.5 s: long enough for three steps, had they to wait.
    process.env.CLIP_NATIVE_TEST_SAVE_DELAY_MS = '1500';
    const start = () => {
      try {
        return copy.save(st, { metadata: { epoch: '1' } });
      } finally {
        delete process.env.CLIP_NATIVE_TEST_SAVE_DELAY_MS; // read when save() is called
      }
    };
    let saved = false;
    const saving = start().then(() => void (saved = true));
    for (let i = 0; i < 3; i++) await trainer.step(images, tokens);
    assert.equal(saved, false, 'the steps waited for the write');
    await saving;
    await copy.save(pt);
    const written = await readSafetensors(st);
    const reloaded = await (await loadModel(pt)).stateDict();
    for (const [i, { name, tensor }] of copied.entries()) {
      assert.deepEqual(written.float32(name).data, tensor.data, `${name} in the safetensors file`);
      assert.deepEqual(reloaded[i]!.tensor.data, tensor.data, `${name} in the .pt file`);
    }
    assert.equal((await readSafetensorsMetadata(st))?.epoch, '1');
    const now = await model.stateDict();
    assert.ok(now.some(({ tensor }, i) => Buffer.compare(Buffer.from(tensor.data.buffer), Buffer.from(copied[i]!.tensor.data.buffer)) !== 0), 'the steps changed nothing');
  });

  test('BackgroundWrites: one at a time, and a failure is thrown at the next start or wait, not lost', async () => {
    const writes = new BackgroundWrites();
    const order: string[] = [];
    let releaseFirst!: () => void;
    await writes.start(() => new Promise<void>((resolve) => (releaseFirst = () => (order.push('first done'), resolve()))));
    const second = writes.start(async () => void order.push('second started'));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, [], 'the second write waited for the first');
    releaseFirst();
    await second;
    await writes.wait();
    assert.deepEqual(order, ['first done', 'second started']);

    await writes.start(async () => {
      throw new Error('disk full: epoch_3.safetensors');
    });
    await new Promise((resolve) => setImmediate(resolve)); // no unhandled rejection meanwhile (node:test would report it)
    await assert.rejects(writes.start(async () => {}), /disk full: epoch_3/);
    await writes.wait(); // reported once
  });
});
