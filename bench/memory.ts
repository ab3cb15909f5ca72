// Peak memory and time of a train step with and without activation checkpointing, and of contrastive
// accumulation against the one batch it stands for (issue 23). Each configuration runs in its own
// process, so each peak RSS is that configuration's alone.
//
//   node dist/bench/memory.js [--model ViT-B/32] [--batch 32] [--accumulate 4] [--steps 2 (timed, after one untimed)] [--device cpu] [--json]
//
// Rows (same random weights, seed 0; same batch of `batch` random images and 13-token prompts; fp32,
// AdamW; the text tower runs the trimmed 16 positions in every row):
//   plain          one step on the batch
//   checkpointing  the same with --grad-checkpointing
//   accumulate     the batch as `accumulate` micro-batches of batch/accumulate, one contrastive group
//   micro          one step on a micro-batch alone (the memory accumulation should stay near)
// `stepMiB`: the peak RSS over the timed steps above the RSS before them. A first step runs untimed
// and unmeasured, so weights, Adam's moments and the allocator's warm state are there already; the peak
// is then the step's own: activations, and the fp32 gradients (4 bytes per trainable parameter, in
// every row) until the update. Linux's peak counter is reset after the first step (/proc/self/clear_refs),
// and each row runs with glibc's MALLOC_MMAP_THRESHOLD_=65536 so that freed tensors leave the RSS.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { architecture } from '../src/model/config.js';
import { createModel } from '../src/model/model.js';
import { createTrainer } from '../src/train/trainer.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'ViT-B/32' },
    batch: { type: 'string', default: '32' },
    accumulate: { type: 'string', default: '4' },
    steps: { type: 'string', default: '2' },
    device: { type: 'string', default: 'cpu' },
    row: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

const ROWS = ['plain', 'checkpointing', 'accumulate', 'micro'] as const;
type Row = (typeof ROWS)[number];

/** Resident memory now (VmRSS) or at its peak since the last reset (VmHWM), in MiB (Linux). */
function statusMiB(key: 'VmRSS' | 'VmHWM'): number {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith(`${key}:`))!;
  return Number(line.split(/\s+/)[1]) / 1024;
}

function syntheticBatch(n: number, resolution: number) {
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const images = { data: new Uint8Array(n * resolution * resolution * 3).map(() => Math.floor(random() * 256)), shape: [n, resolution, resolution, 3] };
  const tokens = { data: new Int32Array(n * 77), shape: [n, 77] };
  for (let i = 0; i < n; i++) {
    tokens.data[i * 77] = 49406;
    for (let j = 1; j < 12; j++) tokens.data[i * 77 + j] = 1000 + Math.floor(random() * 40000);
    tokens.data[i * 77 + 12] = 49407;
  }
  return { images, tokens };
}

function slice<T extends Uint8Array | Int32Array>(t: { data: T; shape: number[] }, from: number, count: number) {
  const row = t.data.length / t.shape[0]!;
  return { data: t.data.slice(from * row, (from + count) * row) as T, shape: [count, ...t.shape.slice(1)] };
}

async function measure(row: Row) {
  const batch = Number(values.batch);
  const accumulate = Number(values.accumulate);
  const micro = batch / accumulate;
  const config = architecture(values.model!);
  const model = await createModel(config, { seed: 0, device: values.device });
  const trainer = await createTrainer(model, {
    optimizer: 'adamw',
    lr: 1e-5,
    weightDecay: 0.1,
    gradCheckpointing: row === 'checkpointing',
    accumulate: row === 'accumulate' ? accumulate : 1,
    cudaGraph: false,
  });
  const whole = syntheticBatch(batch, config.image_resolution);
  const step = async (): Promise<number> => {
    if (row === 'micro') return trainer.step(slice(whole.images, 0, micro), slice(whole.tokens, 0, micro));
    if (row !== 'accumulate') return trainer.step(whole.images, whole.tokens);
    let loss = Number.NaN;
    for (let k = 0; k < accumulate; k++) {
      const r = await trainer.stepWithInfo(slice(whole.images, k * micro, micro), slice(whole.tokens, k * micro, micro));
      if (r.lossRead) loss = r.loss;
    }
    return loss;
  };
  const losses = [await step()];
  writeFileSync('/proc/self/clear_refs', '5'); // the peak from here on is the timed steps'
  const before = statusMiB('VmRSS');
  const start = performance.now();
  for (let s = 0; s < Number(values.steps); s++) losses.push(await step());
  const seconds = (performance.now() - start) / 1000 / Number(values.steps);
  const peak = statusMiB('VmHWM');
  return {
    row,
    model: values.model,
    images: row === 'micro' ? micro : batch,
    accumulate: row === 'accumulate' ? accumulate : 1,
    device: values.device,
    precision: 'fp32',
    secondsPerStep: Math.round(seconds * 100) / 100,
    stepMiB: Math.round(peak - before),
    gradientMiB: Math.round((trainer.native.info().trainableParameters * 4) / 2 ** 20),
    peakRssMiB: Math.round(peak),
    losses,
  };
}

if (values.row) {
  if (!ROWS.includes(values.row as Row)) throw new Error(`--row must be one of ${ROWS.join(', ')}`);
  process.stdout.write(JSON.stringify(await measure(values.row as Row)) + '\n');
} else {
  const self = fileURLToPath(import.meta.url);
  const args = process.argv.slice(2).filter((a) => a !== '--json');
  // Every allocation from 64 KiB up is its own mapping, returned to the system when freed: resident
  // memory then follows live tensors, instead of keeping an earlier step's freed heap.
  const env = { ...process.env, MALLOC_MMAP_THRESHOLD_: '65536' };
  const results = ROWS.map((row) => JSON.parse(execFileSync(process.execPath, [self, ...args, '--row', row], { encoding: 'utf8', env }).trim().split('\n').at(-1)!));
  if (values.json) {
    process.stdout.write(JSON.stringify(results) + '\n');
  } else {
    const plain = results[0];
    process.stdout.write(`${values.model} on ${values.device} (${os.cpus().length} cores, ${new Date().toISOString().slice(0, 10)})\n`);
    process.stdout.write(
      '| row | images | accumulate | s/step | step peak MiB | vs plain | of it, fp32 gradients | first loss |\n|---|---:|---:|---:|---:|---:|---:|---:|\n',
    );
    for (const r of results) {
      process.stdout.write(
        `| ${r.row} | ${r.images} | ${r.accumulate} | ${r.secondsPerStep} (×${(r.secondsPerStep / plain.secondsPerStep).toFixed(2)}) | ${r.stepMiB} | ` +
          `${((r.stepMiB / plain.stepMiB) * 100).toFixed(0)} % | ${r.gradientMiB} | ${r.losses[0].toFixed(6)} |\n`,
      );
    }
  }
}
