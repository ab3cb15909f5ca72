/**
 * Images/s from JPEG files to normalised [B,3,224,224] batches: this package's loader (sharp), cold
 * (decode + cache write) and from the crop cache, against openai/CLIP's transform in Python
 * (Pillow + numpy, bench/preprocess_peer.py) in the same run on the same files.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/preprocess.js [--images 300] [--min-width 400] [--max-width 4000] [--write bench/results/preprocess.md]
 *
 * --write appends a dated section to the file.
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import type { Dataset } from '../src/data/dataset.js';
import { createLoader } from '../src/data/loader.js';
import type { ResampleMode } from '../src/data/preprocess.js';
import { repoRoot } from '../test/helpers/fixtures.js';
import { makeJpegs } from './jpegs.js';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '300' },
    write: { type: 'string' },
    'batch-size': { type: 'string', default: '32' },
    'min-width': { type: 'string', default: '400' },
    'max-width': { type: 'string', default: '4000' },
  },
});
const count = Number(values.images);
const batchSize = Number(values['batch-size']);
const minWidth = Number(values['min-width']);
const maxWidth = Number(values['max-width']);

/** Wall seconds and CPU seconds (every thread of this process: libuv's pool, libvips', the workers). */
interface Timing {
  seconds: number;
  cpuSeconds: number;
}

async function timeLoader(dataset: Dataset, cacheDir: string | false, resample: ResampleMode = 'pillow'): Promise<Timing> {
  const start = performance.now();
  const cpu = process.cpuUsage();
  let n = 0;
  const loader = createLoader(dataset, { batchSize, shuffle: false, resolution: 224, resample, ...(cacheDir === false ? { cache: false } : { cacheDir }) });
  for await (const batch of loader) n += batch.images.shape[0];
  if (n !== dataset.samples.length || loader.stats().skipped) throw new Error(`loader produced ${n} of ${dataset.samples.length} images`);
  const used = process.cpuUsage(cpu);
  return { seconds: (performance.now() - start) / 1000, cpuSeconds: (used.user + used.system) / 1e6 };
}

function python(listFile: string, workers: number): Timing {
  const out = execFileSync('python3', [path.join(repoRoot, 'bench', 'preprocess_peer.py'), '--list', listFile, '--workers', String(workers), '--batch-size', String(batchSize)], { encoding: 'utf8' });
  const r = JSON.parse(out.trim().split('\n').pop()!) as { seconds: number; cpu_seconds: number };
  return { seconds: r.seconds, cpuSeconds: r.cpu_seconds };
}

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'clip-bench-preprocess-'));
try {
  await fs.mkdir(path.join(tmp, 'images'));
  const files = await makeJpegs(path.join(tmp, 'images'), count, { seed: 2024, minWidth, maxWidth });
  const bytes = (await Promise.all(files.map((f) => fs.stat(f)))).reduce((a, s) => a + s.size, 0);
  const listFile = path.join(tmp, 'list.txt');
  await fs.writeFile(listFile, files.join('\n'));
  const dataset: Dataset = {
    root: tmp,
    format: 'folder',
    kind: 'labels',
    classes: ['x'],
    samples: files.map((image) => ({ image, label: 'x', labelIndex: 0, source: { file: image, line: 0 } })),
    problems: [],
  };
  // Warm the OS file cache and both runtimes once on a few files, so "cold" means cold crop cache.
  await timeLoader({ ...dataset, samples: dataset.samples.slice(0, 8) }, false);

  const rows: Array<[string, Timing]> = [];
  rows.push(['Python Pillow+numpy, 1 process', python(listFile, 1)]);
  rows.push(['Python Pillow+numpy, 2 processes (Pool.imap)', python(listFile, 2)]);
  rows.push(['clip-native loader, no cache (resample pillow, the default)', await timeLoader(dataset, false)]);
  rows.push(["clip-native loader, no cache (resample 'libvips')", await timeLoader(dataset, false, 'libvips')]);
  const cacheDir = path.join(tmp, 'cache');
  rows.push(['clip-native loader, cold (decode + cache write)', await timeLoader(dataset, cacheDir)]);
  rows.push(['clip-native loader, from cache', await timeLoader(dataset, cacheDir)]);

  const cpu = (await fs.readFile('/proc/cpuinfo', 'utf8').catch(() => '')).match(/model name\s*:\s*(.*)/)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const pillow = execFileSync('python3', ['-c', 'import PIL, numpy, sys; print(PIL.__version__, numpy.__version__, sys.version.split()[0])'], { encoding: 'utf8' }).trim().split(' ');
  const best = Math.min(rows[0]![1].seconds, rows[1]![1].seconds);
  // Per core: images per CPU-second, against Python's single process (one core, no pool overhead).
  const perCore = (t: Timing) => count / t.cpuSeconds;
  const pythonPerCore = perCore(rows[0]![1]);
  const table = rows
    .map(([name, t]) => `| ${name} | ${t.seconds.toFixed(2)} | ${(count / t.seconds).toFixed(0)} | ${(best / t.seconds).toFixed(1)}× | ${t.cpuSeconds.toFixed(2)} | ${perCore(t).toFixed(0)} | ${(perCore(t) / pythonPerCore).toFixed(2)}× |`)
    .join('\n');
  const command = `npx tsc -p tsconfig.json && node dist/bench/preprocess.js --images ${count} --min-width ${minWidth} --max-width ${maxWidth}${values.write ? ` --write ${values.write}` : ''}`;
  const report = `## ${new Date().toISOString().slice(0, 10)}: JPEG files → normalised [${batchSize},3,224,224] batches, ${minWidth}–${maxWidth} px

- command: \`${command}\`
- date: ${new Date().toISOString()}
- machine: ${os.availableParallelism()} CPUs (nproc), ${cpu}, no GPU used, Node ${process.version}, sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips}), UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 'default (4)'}; load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (shared with other work; rows ran back to back, so wall times carry tens of per cent of noise: the CPU-second columns are steadier)
- Python peer: Python ${pillow[2]}, Pillow ${pillow[0]}, numpy ${pillow[1]}; openai/CLIP \`_transform(224)\` written out with Pillow + numpy (bench/preprocess_peer.py)
- data: ${count} JPEGs (q90) of ${(bytes / 1e6).toFixed(1)} MB, ${minWidth}–${maxWidth} px wide, made from the fixture photos
- loader defaults: concurrency ${Math.max(4, os.availableParallelism() * 2)}, prefetch 2, shuffle off, batch ${batchSize}; resample 'pillow' is Pillow's resize to the bit, 'libvips' sharp's cubic
- per core: images per CPU-second (user + system of every thread; Python's pool counts its workers), against Python's single process

| pipeline | seconds | images/s | speed-up vs best Python (wall) | CPU seconds | images per CPU-second | per core vs Python 1 process |
|---|---:|---:|---:|---:|---:|---:|
${table}
`;
  console.log(report);
  // Results accumulate: each run appends its dated section.
  if (values.write) await fs.appendFile(path.resolve(values.write), `\n${report}`);
} finally {
  await fs.rm(tmp, { recursive: true, force: true });
}
