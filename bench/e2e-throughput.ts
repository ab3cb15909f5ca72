// Does the loader keep the trainer fed? Trains on real JPEG files (made here from the fixture photos,
// in the blog layout) and compares images/s of a whole epoch with the preprocessed crops warm (kept in
// memory, as train() does by default) against the train step alone on a synthetic batch of the same
// shape, in the same process, and the loader alone from the crop cache on disk and from memory (its
// ceilings, no trainer).
//
//   node --require ./dist/src/util/threadpool.cjs dist/bench/e2e-throughput.js [--model ViT-B/32 | tiny.json]
//        [--batch 64] [--images 512] [--device cpu|cuda] [--precision fp32|bf16] [--eager] [--write bench/results/e2e-throughput.md]
//
// --require applies clip-native's threadpool size as the `clip-native` command does (an ES module
// cannot: see src/util/threadpool.cts); without it, or with UV_THREADPOOL_SIZE set, the report says
// which size ran.
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import sharp from 'sharp';

import { loadDataset } from '../src/data/load-dataset.js';
import { CropMemory, defaultCropMemoryBudget } from '../src/data/crop-memory.js';
import { createLoader } from '../src/data/loader.js';
import { architecture, type ClipConfig } from '../src/model/config.js';
import { createModel } from '../src/model/model.js';
import { runtimeInfo } from '../src/native.js';
import { tokenizerFromFile } from '../src/text/tokenizer.js';
import { train, type TrainOptions } from '../src/train/loop.js';
import { createTrainer } from '../src/train/trainer.js';
import { repoRoot } from '../test/helpers/fixtures.js';
import { inParallel } from './jpegs.js';
import { mainThreadCpuSeconds } from './main-thread.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'tiny' },
    batch: { type: 'string', default: '64' },
    images: { type: 'string', default: '512' },
    device: { type: 'string', default: 'cpu' },
    precision: { type: 'string', default: 'fp32' },
    steps: { type: 'string', default: '10' },
    write: { type: 'string' },
    // The trainer's default on CUDA is the CUDA graph; --eager runs eager steps in both.
    eager: { type: 'boolean', default: false },
  },
});

// A small ViT for CPU runs; pass a released name (ViT-B/32) on a GPU.
const TINY: ClipConfig = {
  embed_dim: 128, image_resolution: 96, vision_layers: 4, vision_width: 128, vision_patch_size: 16,
  context_length: 77, vocab_size: 49408, transformer_width: 128, transformer_heads: 2, transformer_layers: 4,
};
const config: ClipConfig = values.model === 'tiny' ? TINY : values.model!.endsWith('.json') ? JSON.parse(readFileSync(values.model!, 'utf8')) : architecture(values.model!);
const batch = Number(values.batch);
const count = Number(values.images);
const precision = values.precision as 'fp32' | 'bf16';
const cudaGraph = !values.eager;
// Nothing in this process sets it, so this is the size libuv started the pool with.
const threadpool = process.env.UV_THREADPOOL_SIZE ?? "4 (unset: libuv's default)";
const fixtures = process.env.CLIP_NATIVE_FIXTURES ?? path.resolve(repoRoot, '..', 'shared', 'fixtures');

async function makeDataset(dir: string): Promise<void> {
  const photos = ['astronaut.jpg', 'chelsea.jpg', 'coffee.jpg', 'rocket.jpg'];
  const classes = ['astronaut', 'cat', 'coffee', 'rocket'];
  for (const c of classes) await fs.mkdir(path.join(dir, 'images', c), { recursive: true });
  const lines = Array.from({ length: count }, (_, i) => `${classes[i % photos.length]}/img${i}`);
  await inParallel(lines.map((stem, i) => ({ stem, photo: photos[i % photos.length]!, width: 320 + ((i * 37) % 480) })), ({ stem, photo, width }) =>
    sharp(path.join(fixtures, 'images', photo)).resize({ width }).jpeg({ quality: 90 }).toFile(path.join(dir, 'images', `${stem}.jpg`)),
  );
  await fs.mkdir(path.join(dir, 'meta'), { recursive: true });
  await fs.writeFile(path.join(dir, 'meta', 'train.txt'), lines.join('\n') + '\n');
  await fs.writeFile(path.join(dir, 'meta', 'test.txt'), lines.slice(0, 8).join('\n') + '\n');
}

let stepGraphStatus = 'off';

/**
 * Images/s of three epochs with no trainer: read from the crop cache the training run filled, or (with
 * `memory`) from the crops kept in memory as train() keeps them, after an untimed pass that fills it.
 */
async function loaderAlone(data: string, cacheDir: string, memory?: CropMemory): Promise<number> {
  const dataset = await loadDataset(data);
  const options = { batchSize: batch, dropLast: true, resolution: config.image_resolution, cacheDir, pixels: 'uint8' as const, memory };
  if (memory) for await (const _ of createLoader(dataset, { ...options, epoch: 1 }));
  let images = 0;
  const start = performance.now();
  for (let epoch = 2; epoch < 5; epoch++) {
    const loader = createLoader(dataset, { ...options, epoch });
    for await (const b of loader) images += b.samples.length;
    if (loader.stats().decoded > 0) throw new Error('the crop cache was not warm');
    if (memory && loader.stats().cacheHits > 0) throw new Error('the crops were not all in memory');
  }
  return images / ((performance.now() - start) / 1000);
}

async function stepAlone(): Promise<number> {
  const r = config.image_resolution;
  const pixels = { data: new Uint8Array(batch * r * r * 3).map((_, i) => (i * 7919) % 256), shape: [batch, r, r, 3] };
  const tokens = { data: new Int32Array(batch * 77), shape: [batch, 77] };
  for (let i = 0; i < batch; i++) tokens.data.set([49406, 320, 1125, 539, 320, 2368 + (i % 4), 49407], i * 77);
  const model = await createModel(config, { seed: 0, device: values.device });
  const trainer = await createTrainer(model, { optimizer: 'adamw', lr: 1e-5, precision, cudaGraph });
  for (let i = 0; i < 5; i++) await trainer.step(pixels, tokens);  // past the CUDA graph's capture
  const steps = Number(values.steps);
  const start = performance.now();
  for (let i = 0; i < steps; i++) await trainer.stepWithInfo(pixels, tokens, undefined, { readLoss: i === steps - 1 });
  const seconds = (performance.now() - start) / 1000;
  stepGraphStatus = trainer.cudaGraphStatus;
  model.dispose();
  return (batch * steps) / seconds;
}

// What train() keeps in memory by default (memoryCacheMiB 'auto').
const memoryMiB = Math.floor(defaultCropMemoryBudget() / 2 ** 20);
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'clip-e2e-bench-'));
try {
  await makeDataset(path.join(tmp, 'data'));
  const modelFile = path.join(tmp, 'model.json');
  await fs.writeFile(modelFile, JSON.stringify(config));
  const runOptions: TrainOptions = {
    data: path.join(tmp, 'data'),
    model: modelFile,
    init: 'random',
    batchSize: batch,
    optimizer: 'adamw',
    lr: 1e-5,
    schedule: 'constant',
    device: values.device,
    precision,
    dropLast: true,
    cudaGraph,
    checkpointEvery: 0,
    cacheDir: path.join(tmp, 'crops'),
    tokenizer: await tokenizerFromFile(path.join(fixtures, 'bpe_simple_vocab_16e6.txt.gz')),
  };
  /**
   * Three epochs; images/s of epoch 1 and of epoch 2 (a middle epoch: the last one writes the final
   * weights), each from the end of the epoch before it to its own end. An epoch ends after its last
   * step's loss is read back, so every step it queued has run: a batch's own callback comes when the
   * step is queued (up to three steps ahead of the GPU), and a rate from those would overstate it.
   */
  async function threeEpochs(name: string, options: Partial<TrainOptions>) {
    const ends: Array<{ images: number; at: number; mainCpu: number }> = [];
    const runStart = performance.now();
    const run = await train({
      ...runOptions,
      ...options,
      out: path.join(tmp, name),
      epochs: 3,
      onEpoch: (e) => ends.push({ images: e.batches * batch, at: performance.now(), mainCpu: mainThreadCpuSeconds() }),
    });
    const rate = (i: number) => ends[i]!.images / ((ends[i]!.at - (i > 0 ? ends[i - 1]!.at : runStart)) / 1000);
    const mainCpuPerImage = (ends[1]!.mainCpu - ends[0]!.mainCpu) / ends[1]!.images;
    return { run, epoch1: rate(0), epoch2: rate(1), mainCpuPerImage };
  }
  // Epoch 1 decodes the JPEGs (and fills the crop cache on disk and in memory); epoch 2 comes from memory.
  const quiet = await threeEpochs('run', { logEvery: 1_000_000, weightsEvery: 0 });
  // The blog's logging: the loss read back every 4 batches.
  const logged = await threeEpochs('run-logged', { logEvery: 4, weightsEvery: 0 });
  // train()'s default: the weights written after every epoch (600 MB for ViT-B/32), the file
  // written while the next epoch trains.
  const withWeights = await threeEpochs('run-weights', { logEvery: 1_000_000, weightsEvery: 1 });
  const loader = await loaderAlone(path.join(tmp, 'data'), path.join(tmp, 'crops'));
  const loaderFromMemory = await loaderAlone(path.join(tmp, 'data'), path.join(tmp, 'crops'), new CropMemory(count * config.image_resolution ** 2 * 3));
  const alone = await stepAlone();
  const share = (rate: number) => `${rate.toFixed(1)} (${((rate / alone) * 100).toFixed(0)}% of the step alone)`;
  const rows = [
    `| train step alone (synthetic batch already in memory) | ${alone.toFixed(1)} |`,
    `| epoch 1 from JPEG files (decode + cache write) | ${quiet.epoch1.toFixed(1)} |`,
    `| epoch 2 from the crops kept in memory (${memoryMiB} MiB allowed) | ${share(quiet.epoch2)} |`,
    `| epoch 2 from memory, the loss read back every 4 batches (the blog's logging) | ${share(logged.epoch2)} |`,
    `| epoch 2 from memory, epoch 1's weights written meanwhile (train()'s default) | ${share(withWeights.epoch2)} |`,
    `| (epoch 2: the main thread's CPU per image, loader and training loop together) | ${(quiet.mainCpuPerImage * 1e6).toFixed(0)} µs |`,
    `| loader alone from the crop cache on disk (no training) | ${share(loader)} |`,
    `| loader alone from the crops kept in memory (no training) | ${share(loaderFromMemory)} |`,
  ];
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown CPU';
  const gpu = runtimeInfo().devices[0]?.name;
  const report = [
    `# End-to-end training throughput: loader + train step vs the step alone`,
    '',
    `- command: \`node dist/bench/e2e-throughput.js ${process.argv.slice(2).join(' ')}\``,
    `- date: ${new Date().toISOString()}`,
    `- machine: ${os.availableParallelism()} CPUs (${cpu})${gpu ? `, ${gpu}` : ''}; Node ${process.version}; LibTorch ${runtimeInfo().torchVersion}`,
    `- model: ${values.model} (${config.image_resolution}px), batch ${batch}, ${count} JPEGs (320–800 px wide), ${values.device}, ${precision}`,
    `- UV_THREADPOOL_SIZE: ${threadpool}`,
    `- CUDA graph: run ${quiet.run.cudaGraph}; step alone ${stepGraphStatus}`,
    '',
    '| pipeline | images/s |',
    '|---|---:|',
    ...rows,
    '',
  ].join('\n');
  process.stdout.write(report);
  if (values.write) await fs.writeFile(values.write, report);
} finally {
  await fs.rm(tmp, { recursive: true, force: true });
}
