import { promises as fs, type Dirent } from 'node:fs';
import path from 'node:path';
import { createRng, shuffleInPlace } from '../util/prng.js';
import { DatasetError, finishDataset, IMAGE_EXTENSIONS, type Dataset, type DatasetProblem, type Sample } from './dataset.js';

/**
 * A folder per class: `root/<label>/*.jpg`. With `root/train/` and `root/test/` the split is the
 * folders'; otherwise a seeded, per-class split keeps the same images in test across runs.
 */
export interface FolderLayoutOptions {
  split?: 'train' | 'test';
  /** Fraction of each class held out for 'test' when there are no split folders. Default 0.2. */
  testFraction?: number;
  seed?: number;
  strict?: boolean;
}

export async function loadFolderLayout(root: string, options: FolderLayoutOptions = {}): Promise<Dataset> {
  root = path.resolve(root);
  const split = options.split ?? 'train';
  const problems: DatasetProblem[] = [];
  const hasSplitFolders = (await isDirectory(path.join(root, 'train'))) && (await isDirectory(path.join(root, 'test')));

  let samples: Sample[];
  let allLabels: string[];
  if (hasSplitFolders) {
    const train = await scanClassFolders(path.join(root, 'train'), problems);
    const test = await scanClassFolders(path.join(root, 'test'), problems);
    samples = split === 'train' ? train : test;
    allLabels = [...train, ...test].map((s) => s.label!);
  } else {
    const all = await scanClassFolders(root, problems);
    samples = seededSplit(all, split, options.testFraction ?? 0.2, options.seed ?? 0);
    allLabels = all.map((s) => s.label!);
  }
  const where = hasSplitFolders ? path.join(root, split) : root;
  return finishDataset({ root, format: 'folder', split, kind: 'labels', samples }, allLabels, problems, {
    strict: options.strict,
    describe: `${where} (${split})`,
  });
}

async function isDirectory(p: string): Promise<boolean> {
  return (await fs.stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

async function readDirSorted(dir: string): Promise<Dirent[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  // Node reads a name that is not UTF-8 with replacement characters: a label that is not the
  // folder's name, a path that names no file. Refused, as lists that are not UTF-8 are.
  const garbled = entries.filter((e) => e.name.includes('\uFFFD'));
  if (garbled.length > 0) {
    throw new DatasetError(
      `${dir}: file names that are not valid UTF-8 (rename them): ${garbled.map((e) => JSON.stringify(e.name)).join(', ')}`,
    );
  }
  return entries.filter((e) => !e.name.startsWith('.')).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Class folders one level down; images directly inside each (sorted, so the order is stable). */
async function scanClassFolders(dir: string, problems: DatasetProblem[]): Promise<Sample[]> {
  let entries: Dirent[];
  try {
    entries = await readDirSorted(dir);
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    throw new DatasetError(`${dir}: cannot read dataset folder (${(err as Error).message})`);
  }
  const samples: Sample[] = [];
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (!entry.isDirectory()) {
      problems.push({ file: full, line: 0, kind: 'not-an-image', message: 'file outside any class folder; ignored' });
      continue;
    }
    let count = 0;
    for (const file of await readDirSorted(full)) {
      const image = path.join(full, file.name);
      if (!IMAGE_EXTENSIONS.has(path.extname(file.name).toLowerCase()) || file.isDirectory()) {
        problems.push({ file: image, line: 0, kind: 'not-an-image', message: `not an image (${[...IMAGE_EXTENSIONS].join(' ')}); ignored` });
        continue;
      }
      samples.push({ image, label: entry.name, source: { file: image, line: 0 } });
      count++;
    }
    if (count === 0) problems.push({ file: full, line: 0, message: 'class folder has no images' });
  }
  return samples;
}

/** Per class, a shuffle keyed on (seed, class name); the first round(n * fraction) go to test. */
function seededSplit(samples: Sample[], split: 'train' | 'test', testFraction: number, seed: number): Sample[] {
  if (!(testFraction >= 0 && testFraction <= 1)) throw new RangeError(`testFraction must be in [0, 1], got ${testFraction}`);
  const byClass = new Map<string, Sample[]>();
  for (const s of samples) {
    const members = byClass.get(s.label!);
    if (members) members.push(s);
    else byClass.set(s.label!, [s]);
  }
  const chosen = new Set<Sample>();
  for (const [label, members] of byClass) {
    const order = shuffleInPlace([...members], createRng(seed, fnv1a(label)));
    const testCount = Math.round(members.length * testFraction);
    const picked = split === 'test' ? order.slice(0, testCount) : order.slice(testCount);
    for (const s of picked) chosen.add(s);
  }
  return samples.filter((s) => chosen.has(s)); // keep the folder order; the loader shuffles
}

/** 32-bit FNV-1a of a string: a stable per-class key, independent of which other classes exist. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash;
}
