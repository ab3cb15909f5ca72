/**
 * Images/s from JPEG files to normalised [B,3,224,224] batches: this package's loader (sharp), cold
 * (decode + cache write) and from the crop cache, against openai/CLIP's transform in Python
 * (Pillow + numpy, bench/preprocess_peer.py) in the same run on the same files.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/preprocess.js [--images 500] [--write bench/results/preprocess.md]
 */
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import type { Dataset } from '../src/data/dataset.js';
import { createLoader } from '../src/data/loader.js';
import { repoRoot } from '../test/helpers/fixtures.js';
import { makeJpegs } from './jpegs.js';

const { values } = parseArgs({ options: { images: { type: 'string', default: '500' }, write: { type: 'string' }, 'batch-size': { type: 'string', default: '32' } } });
const count = Number(values.images);
const batchSize = Number(values['batch-size']);

async function timeLoader(dataset: Dataset, cacheDir: string | false): Promise<number> {
  const start = performance.now();
  let n = 0;
  const loader = createLoader(dataset, { batchSize, shuffle: false, resolution: 224, ...(cacheDir === false ? { cache: false } : { cacheDir }) });
  for await (const batch of loader) n += batch.images.shape[0];
  if (n !== dataset.samples.length || loader.stats().skipped) throw new Error(`loader produced ${n} of ${dataset.samples.length} images`);
  return (performance.now() - start) / 1000;
}

function python(listFile: string, workers: number): number {
  const out = execFileSync('python3', [path.join(repoRoot, 'bench', 'preprocess_peer.py'), '--list', listFile, '--workers', String(workers), '--batch-size', String(batchSize)], { encoding: 'utf8' });
  return (JSON.parse(out.trim().split('\n').pop()!) as { seconds: number }).seconds;
}

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'clip-bench-preprocess-'));
try {
  await fs.mkdir(path.join(tmp, 'images'));
  const files = await makeJpegs(path.join(tmp, 'images'), count, { seed: 2024, maxWidth: 1640 });
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

  const rows: Array<[string, number]> = [];
  rows.push(['Python Pillow+numpy, 1 process', python(listFile, 1)]);
  rows.push(['Python Pillow+numpy, 2 processes (Pool.imap)', python(listFile, 2)]);
  rows.push(['clip-native loader, no cache', await timeLoader(dataset, false)]);
  const cacheDir = path.join(tmp, 'cache');
  rows.push(['clip-native loader, cold (decode + cache write)', await timeLoader(dataset, cacheDir)]);
  rows.push(['clip-native loader, from cache', await timeLoader(dataset, cacheDir)]);

  const cpu = (await fs.readFile('/proc/cpuinfo', 'utf8').catch(() => '')).match(/model name\s*:\s*(.*)/)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const pillow = execFileSync('python3', ['-c', 'import PIL, numpy, sys; print(PIL.__version__, numpy.__version__, sys.version.split()[0])'], { encoding: 'utf8' }).trim().split(' ');
  const best = Math.min(rows[0]![1], rows[1]![1]);
  const table = rows.map(([name, s]) => `| ${name} | ${s.toFixed(2)} | ${(count / s).toFixed(0)} | ${(best / s).toFixed(1)}× |`).join('\n');
  const report = `# Preprocessing benchmark: JPEG files → normalised [${batchSize},3,224,224] batches

- command: \`npx tsc -p tsconfig.json && node dist/bench/preprocess.js --images ${count}${values.write ? ` --write ${values.write}` : ''}\`
- date: ${new Date().toISOString()}
- machine: ${os.availableParallelism()} CPUs (nproc), ${cpu}, Node ${process.version}, sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips}), UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 'default (4)'}; load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (the machine was shared with a C++ build; rows ran back to back, so expect noise of tens of per cent)
- Python peer: Python ${pillow[2]}, Pillow ${pillow[0]}, numpy ${pillow[1]}; openai/CLIP \`_transform(224)\` written out with Pillow + numpy (bitwise equal to the goldens); torchvision's only available wheel is a CUDA build that does not load beside torch 2.13.0+cpu
- data: ${count} JPEGs (q90) of ${(bytes / 1e6).toFixed(1)} MB, 240–1640 px wide, made from the fixture photos
- loader defaults: concurrency ${Math.max(4, os.availableParallelism() * 2)}, prefetch 2, shuffle off, batch ${batchSize}

| pipeline | seconds | images/s | speed-up vs best Python |
|---|---:|---:|---:|
${table}
`;
  console.log(report);
  if (values.write) await fs.writeFile(path.resolve(values.write), report);
} finally {
  await fs.rm(tmp, { recursive: true, force: true });
}
