// The CUDA-graph path of the train step, on a CPU: CLIP_NATIVE_EMULATE_CUDA_GRAPHS=1 makes "capture"
// keep the step's body and "replay" call it, so everything around a real graph (fixed input buffers,
// the lr read at replay, outputs read from the last replay, counters, statistics, a smaller batch run
// eagerly between replays, checkpoints) runs here. test/cuda.test.ts repeats the comparison with real
// graphs on a GPU.
process.env.CLIP_NATIVE_EMULATE_CUDA_GRAPHS = '1';

import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { describe, test } from 'node:test';

import { exportFashionMnist } from '../src/data/fashion-mnist.js';
import { parseSafetensorsHeader, readSafetensors } from '../src/io/safetensors-header.js';
import { loadModel } from '../src/model/model.js';
import { tokenizerFromFile } from '../src/text/tokenizer.js';
import { train } from '../src/train/loop.js';
import { createTrainer } from '../src/train/trainer.js';
import { FASHION_MNIST_SKIP, fashionMnistPresent } from './helpers/fashion-mnist.js';
import { fixture } from './helpers/fixtures.js';
import { assertRunsAgree, runScriptedSteps } from './helpers/graph-steps.js';

describe('CUDA graph step, emulated on the CPU', () => {
  for (const [name, precision] of [['tiny_vit', 'fp32'], ['tiny_rn', 'fp32'], ['tiny_vit', 'bf16']] as const) {
    test(`${name} ${precision}: graph steps equal eager steps bit for bit`, async () => {
      const eager = await runScriptedSteps(name, { device: 'cpu', precision, cudaGraph: false });
      const graphed = await runScriptedSteps(name, { device: 'cpu', precision, cudaGraph: true });
      assert.deepEqual(eager.statuses, Array(10).fill('off'));
      // Three eager steps of the full batch, then capture and replays; the smaller 6th batch runs eagerly.
      assert.deepEqual(graphed.statuses, [...Array(3).fill('warming up'), ...Array(7).fill('captured (emulated)')]);
      assertRunsAgree(graphed, eager, { bitwise: true }, `${name} ${precision}`);
    });
  }

  test('a batch of another shape that runs out of memory beside the graph: the graph is released, the step retried, the graph captured again', async () => {
    const eager = await runScriptedSteps('tiny_vit', { device: 'cpu', precision: 'fp32', cudaGraph: false });
    process.env.CLIP_NATIVE_EMULATE_OOM_BESIDE_GRAPH = '1';
    try {
      const graphed = await runScriptedSteps('tiny_vit', { device: 'cpu', precision: 'fp32', cudaGraph: true });
      const released = 'warming up (released to make room for a batch of another shape)';
      // Captured after 3 eager steps; the smaller 6th batch "runs out of memory" and drops the graph;
      // three eager steps of the full batch later it is captured again.
      assert.deepEqual(graphed.statuses, [...Array(3).fill('warming up'), ...Array(2).fill('captured (emulated)'), ...Array(4).fill(released), 'captured (emulated)']);
      assertRunsAgree(graphed, eager, { bitwise: true }, 'tiny_vit fp32, graph released once');
    } finally {
      delete process.env.CLIP_NATIVE_EMULATE_OOM_BESIDE_GRAPH;
    }
  });

  test('accumulation turns the graph off, and says why', async () => {
    const trainer = await createTrainer(await loadModel(fixture('models', 'tiny_vit.safetensors')), { cudaGraph: true, accumulate: 2 });
    assert.equal(trainer.cudaGraphStatus, 'off: CUDA graphs need accumulate 1');
  });

  test('a checkpoint taken between replays resumes to the same weights, graph or not', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clip-graph-ckpt-'));
    try {
      const g = await readSafetensors(fixture('models', 'tiny_vit.golden.safetensors'));
      const images = g.float32('images');
      const tokens = g.tensor('text_tokens') as { data: BigInt64Array; shape: number[] };
      const options = { lr: 1e-3, schedule: { kind: 'step', every: 3, gamma: 0.5 }, cudaGraph: true } as const;
      const straightModel = await loadModel(fixture('models', 'tiny_vit.safetensors'));
      const straight = await createTrainer(straightModel, options);
      for (let i = 0; i < 5; i++) await straight.step(images, tokens);
      assert.equal(straight.cudaGraphStatus, 'captured (emulated)');
      const file = path.join(dir, 'mid.safetensors');
      await straight.saveCheckpoint(file);
      for (let i = 0; i < 4; i++) await straight.step(images, tokens);

      const resumedModel = await loadModel(fixture('models', 'tiny_vit.safetensors'));
      const resumed = await createTrainer(resumedModel, options);
      await resumed.loadCheckpoint(file);
      assert.equal(resumed.optimizerSteps, 5);
      for (let i = 0; i < 4; i++) await resumed.step(images, tokens);
      assert.equal(resumed.cudaGraphStatus, 'captured (emulated)');
      const a = await straightModel.stateDict();
      const b = await resumedModel.stateDict();
      a.forEach(({ name, tensor }, i) => assert.deepEqual(b[i]!.tensor.data, tensor.data, name));
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test('the training loop with the CUDA graph (its default): same weights as eager, a smaller last batch, and a resume', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clip-graph-loop-'));
    try {
      // 50 training images in batches of 8: six full batches and a last one of 2, each epoch.
      await exportFashionMnist({ out: path.join(dir, 'fm'), trainPerClass: 5, testPerClass: 1, seed: 3 });
      const model = path.join(dir, 'tiny.json');
      await fs.writeFile(model, JSON.stringify({
        embed_dim: 32, image_resolution: 32, vision_layers: 1, vision_width: 64, vision_patch_size: 16,
        context_length: 77, vocab_size: 49408, transformer_width: 32, transformer_heads: 2, transformer_layers: 1,
      }));
      const tokenizer = await tokenizerFromFile(fixture('bpe_simple_vocab_16e6.txt.gz'));
      const run = (out: string, extra: object) =>
        train({
          data: path.join(dir, 'fm'), ext: 'png', model, init: 'random', out: path.join(dir, out), epochs: 2, batchSize: 8,
          optimizer: 'adamw', lr: 1e-3, schedule: 'step', stepEvery: 1, gamma: 0.5, logEvery: 3, checkpointEvery: 1,
          device: 'cpu', cacheDir: path.join(dir, 'crops'), tokenizer, ...extra,
        });
      const weights = async (out: string) => {
        const bytes = await fs.readFile(path.join(dir, out, 'tiny_epoch_2.safetensors'));
        return bytes.subarray(parseSafetensorsHeader(bytes).dataStart);
      };
      const eager = await run('eager', { cudaGraph: false });
      const graphed = await run('graphed', { cudaGraph: true });
      assert.equal(eager.cudaGraph, 'off');
      assert.equal(graphed.cudaGraph, 'captured (emulated)');
      assert.deepEqual(graphed.epochLosses, eager.epochLosses);
      assert.ok((await weights('graphed')).equals(await weights('eager')), 'epoch-2 weights differ between graph and eager runs');
      await run('resumed', { cudaGraph: true, epochs: 1 });
      const resumed = await run('resumed', { cudaGraph: true, resume: 'latest' });
      assert.equal(resumed.cudaGraph, 'captured (emulated)');
      assert.ok((await weights('resumed')).equals(await weights('eager')), 'a resumed graph run ends elsewhere');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
