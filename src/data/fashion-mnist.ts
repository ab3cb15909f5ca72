import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import sharp from 'sharp';
import { createRng, shuffleInPlace } from '../util/prng.js';

/**
 * Fashion-MNIST, as Debian's `dataset-fashion-mnist` ships it (gzipped idx files), written out as a
 * small, seeded, class-balanced image dataset in the blog's layout — a real end-to-end dataset that
 * needs no download at run time.
 */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Label order of the idx files; names follow the blog's `class_name` convention. */
export const FASHION_MNIST_CLASSES = ['t-shirt_top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle_boot'] as const;

const FILES = {
  train: { images: 'train-images-idx3-ubyte.gz', labels: 'train-labels-idx1-ubyte.gz' },
  test: { images: 't10k-images-idx3-ubyte.gz', labels: 't10k-labels-idx1-ubyte.gz' },
} as const;

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Parse an idx file (big-endian dims, unsigned bytes), gzipped or not. */
export async function readIdx(file: string): Promise<IdxArray> {
  let bytes: Buffer = await fs.readFile(file);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = await promisify(gunzip)(bytes);
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== 0x08) {
    throw new Error(`${file}: not an unsigned-byte idx file`);
  }
  const rank = bytes[3]!;
  const dims = Array.from({ length: rank }, (_, i) => bytes.readUInt32BE(4 + 4 * i));
  const offset = 4 + 4 * rank;
  const count = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== offset + count) throw new Error(`${file}: ${bytes.length - offset} data bytes for dims [${dims}] (truncated?)`);
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + offset, count) };
}

export interface FashionMnistExportOptions {
  out: string;
  trainPerClass?: number;
  testPerClass?: number;
  seed?: number;
  ext?: 'png' | 'jpg';
  /** Folder with the four idx(.gz) files. Default: Debian's. */
  source?: string;
}

export interface FashionMnistExport {
  out: string;
  train: number;
  test: number;
  classes: readonly string[];
}

export async function exportFashionMnist(options: FashionMnistExportOptions): Promise<FashionMnistExport> {
  const source = options.source ?? DEBIAN_FASHION_MNIST_DIR;
  const ext = options.ext ?? 'png';
  const seed = options.seed ?? 0;
  const perClass = { train: options.trainPerClass ?? 100, test: options.testPerClass ?? 20 };
  await assertSourcePresent(source);

  const out = path.resolve(options.out);
  await fs.mkdir(path.join(out, 'meta'), { recursive: true });
  const counts = { train: 0, test: 0 };
  for (const split of ['train', 'test'] as const) {
    const images = await readIdx(path.join(source, FILES[split].images));
    const labels = await readIdx(path.join(source, FILES[split].labels));
    const [n, height, width] = images.dims as [number, number, number];
    if (labels.dims[0] !== n) throw new Error(`${source}: ${split} has ${n} images but ${labels.dims[0]} labels`);

    const chosen = chooseBalanced(labels.data, perClass[split], seed, split === 'train' ? 0 : 1);
    const lines: string[] = [];
    const jobs = chosen.map((index) => async () => {
      const label = FASHION_MNIST_CLASSES[labels.data[index]!]!;
      const stem = `${split}_${String(index).padStart(5, '0')}`;
      const file = path.join(out, 'images', label, `${stem}.${ext}`);
      await fs.mkdir(path.dirname(file), { recursive: true });
      const pixels = images.data.subarray(index * width * height, (index + 1) * width * height);
      // b-w keeps a one-channel file (sharp would otherwise write sRGB, three times the bytes).
      const image = sharp(pixels, { raw: { width, height, channels: 1 } }).toColourspace('b-w');
      await (ext === 'png' ? image.png() : image.jpeg({ quality: 95 })).toFile(file);
      lines.push(`${label}/${stem}`);
    });
    await runLimited(jobs, 8);
    lines.sort();
    await fs.writeFile(path.join(out, 'meta', `${split}.txt`), lines.join('\n') + '\n');
    counts[split] = lines.length;
  }
  return { out, ...counts, classes: FASHION_MNIST_CLASSES };
}

async function assertSourcePresent(source: string): Promise<void> {
  const missing: string[] = [];
  for (const split of Object.values(FILES)) {
    for (const name of Object.values(split)) {
      if (!(await fs.stat(path.join(source, name)).catch(() => undefined))) missing.push(name);
    }
  }
  if (missing.length > 0) {
    const hint = source === DEBIAN_FASHION_MNIST_DIR ? 'install it with: apt-get install dataset-fashion-mnist' : 'pass the folder that holds the idx files';
    throw new Error(`Fashion-MNIST not found in ${source} (missing ${missing.join(', ')}); ${hint}`);
  }
}

/** `perClass` indices of each label, drawn by a shuffle keyed on (seed, split, label). */
function chooseBalanced(labels: Uint8Array, perClass: number, seed: number, splitKey: number): number[] {
  const byLabel: number[][] = FASHION_MNIST_CLASSES.map(() => []);
  labels.forEach((label, index) => byLabel[label]?.push(index));
  return byLabel.flatMap((indices, label) => {
    if (indices.length < perClass) throw new Error(`Fashion-MNIST: only ${indices.length} images of ${FASHION_MNIST_CLASSES[label]} (asked ${perClass})`);
    return shuffleInPlace(indices, createRng(seed, splitKey, label)).slice(0, perClass);
  });
}

async function runLimited(jobs: Array<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
}
