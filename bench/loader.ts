/**
 * The loader alone (no trainer), 224 px uint8 batches as training on a GPU reads them: images/s of a
 * cold epoch (decode + cache write), of warm epochs (crop cache) and of epochs from the crops kept in
 * memory (CropMemory, as train() keeps them), with every thread's CPU and how busy the main thread was
 * (event-loop utilisation, and the main thread's own CPU time per image, which a machine with few
 * cores cannot turn into images/s but a GPU machine's loader is capped by).
 *
 *   npx tsc -p tsconfig.json && node --require ./dist/src/util/threadpool.cjs dist/bench/loader.js
 *        [--images 1024] [--batch 256] [--epochs 3] [--concurrency n] [--decode-threads n] [--write bench/results/loader-cpu.md]
 */
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import type { Dataset } from '../src/data/dataset.js';
import { CropMemory } from '../src/data/crop-memory.js';
import { defaultDecodeThreads } from '../src/data/decode-pool.js';
import { createLoader } from '../src/data/loader.js';
import { makeJpegs } from './jpegs.js';
import { mainThreadCpuSeconds } from './main-thread.js';

const { values } = parseArgs({
  options: { images: { type: 'string', default: '1024' }, batch: { type: 'string', default: '256' }, epochs: { type: 'string', default: '3' }, concurrency: { type: 'string' }, 'decode-threads': { type: 'string' }, write: { type: 'string' } },
});
const count = Number(values.images);
const batchSize = Number(values.batch);
const warmEpochs = Number(values.epochs);
const concurrency = values.concurrency ? Number(values.concurrency) : undefined;
const decodeThreads = values['decode-threads'] ? Number(values['decode-threads']) : undefined;

/** images/s, the main thread's utilisation and its CPU time per image over `epochs` passes. */
async function timeEpochs(dataset: Dataset, cacheDir: string, first: number, epochs: number, memory?: CropMemory) {
  const elu = performance.eventLoopUtilization();
  const cpu = mainThreadCpuSeconds();
  const processCpu = process.cpuUsage();
  const start = performance.now();
  let images = 0;
  let decoded = 0;
  let cacheHits = 0;
  for (let epoch = first; epoch < first + epochs; epoch++) {
    const loader = createLoader(dataset, { batchSize, epoch, resolution: 224, cacheDir, pixels: 'uint8', concurrency, decodeThreads, memory });
    for await (const b of loader) images += b.samples.length;
    decoded += loader.stats().decoded;
    cacheHits += loader.stats().cacheHits;
  }
  const seconds = (performance.now() - start) / 1000;
  return {
    rate: images / seconds,
    mainThread: performance.eventLoopUtilization(elu).utilization,
    mainCpuUs: ((mainThreadCpuSeconds() - cpu) / images) * 1e6,
    // Every thread's (pool, libvips, decode workers, main): with images/s, how many cores were busy.
    allCpuUs: (() => {
      const used = process.cpuUsage(processCpu);
      return (used.user + used.system) / images;
    })(),
    decoded,
    cacheHits,
  };
}

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'clip-bench-loader-'));
try {
  await fs.mkdir(path.join(tmp, 'images'));
  const files = await makeJpegs(path.join(tmp, 'images'), count, { seed: 7, maxWidth: 800 });
  const dataset: Dataset = {
    root: tmp, format: 'folder', kind: 'labels', classes: ['x'], problems: [],
    samples: files.map((image) => ({ image, label: 'x', labelIndex: 0, source: { file: image, line: 0 } })),
  };
  const cacheDir = path.join(tmp, 'crops');
  const cold = await timeEpochs(dataset, cacheDir, 0, 1);
  const warm = await timeEpochs(dataset, cacheDir, 1, warmEpochs);
  if (warm.decoded > 0) throw new Error('the crop cache was not warm');
  // The crops kept in memory, as train() keeps them: one pass from the disk cache fills it.
  const memory = new CropMemory(count * 224 * 224 * 3);
  const filling = await timeEpochs(dataset, cacheDir, 1 + warmEpochs, 1, memory);
  const fromMemory = await timeEpochs(dataset, cacheDir, 2 + warmEpochs, warmEpochs, memory);
  if (fromMemory.decoded + fromMemory.cacheHits > 0) throw new Error('the crops were not all in memory');
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown CPU';
  const pct = (x: number) => `${(100 * x).toFixed(0)} %`;
  const epochs = (first: number, n: number) => (n === 1 ? `epoch ${first}` : `epochs ${first}–${first + n - 1}`);
  // Fewer busy cores than the machine has, with the main thread not saturated: the pass waited on I/O.
  const cores = (pass: { rate: number; allCpuUs: number }) => `${((pass.rate * pass.allCpuUs) / 1e6).toFixed(1)} of ${os.availableParallelism()}`;
  const report = [
    '# The loader alone: 224 px uint8 batches from JPEG files and from the crop cache',
    '',
    `- command: \`node --require ./dist/src/util/threadpool.cjs dist/bench/loader.js ${process.argv.slice(2).join(' ')}\``,
    `- date: ${new Date().toISOString()}`,
    `- machine: ${os.availableParallelism()} CPUs (${cpu}); Node ${process.version}; UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? 'unset (4)'}`,
    `- data: ${count} JPEGs (q90, 240–800 px wide), batch ${batchSize}, shuffled; loader concurrency ${concurrency ?? 'default'}, decode threads ${decodeThreads ?? `default (${defaultDecodeThreads()})`}`,
    '',
    '| pass | images/s | main thread busy (event loop) | main thread CPU per image | all threads\' CPU per image | cores busy |',
    '|---|---:|---:|---:|---:|---:|',
    `| epoch 1: decode, resize, crop, cache write | ${cold.rate.toFixed(0)} | ${pct(cold.mainThread)} | ${cold.mainCpuUs.toFixed(0)} µs | ${cold.allCpuUs.toFixed(0)} µs | ${cores(cold)} |`,
    `| ${epochs(2, warmEpochs)}: from the crop cache | ${warm.rate.toFixed(0)} | ${pct(warm.mainThread)} | ${warm.mainCpuUs.toFixed(0)} µs | ${warm.allCpuUs.toFixed(0)} µs | ${cores(warm)} |`,
    `| ${epochs(warmEpochs + 2, 1)}: from the crop cache, keeping the crops in memory | ${filling.rate.toFixed(0)} | ${pct(filling.mainThread)} | ${filling.mainCpuUs.toFixed(0)} µs | ${filling.allCpuUs.toFixed(0)} µs | ${cores(filling)} |`,
    `| ${epochs(warmEpochs + 3, warmEpochs)}: from memory (no file read but the images' stats) | ${fromMemory.rate.toFixed(0)} | ${pct(fromMemory.mainThread)} | ${fromMemory.mainCpuUs.toFixed(0)} µs | ${fromMemory.allCpuUs.toFixed(0)} µs | ${cores(fromMemory)} |`,
    '',
  ].join('\n');
  console.log(report);
  if (values.write) await fs.writeFile(values.write, report);
} finally {
  await fs.rm(tmp, { recursive: true, force: true });
}
