import { promises as fs } from 'node:fs';
import path from 'node:path';

/** One image of a dataset, with where it was listed so every problem can point at a line. */
export interface Sample {
  /** Absolute path of the image file. */
  image: string;
  /** Raw class name (prompts turn `_` into spaces later, not here). */
  label?: string;
  /** Index of `label` in `Dataset.classes`. */
  labelIndex?: number;
  caption?: string;
  /**
   * Caption datasets: the index of this sample's image among the dataset's distinct images (in order of
   * first appearance). Rows naming one image are its several captions and share it.
   */
  imageIndex?: number;
  /** The list file and 1-based line that named this image; for folder layouts the image itself and line 0. */
  source: { file: string; line: number };
}

export type DatasetKind = 'labels' | 'captions';
export type DatasetFormat = 'blog' | 'folder' | 'csv' | 'tsv' | 'jsonl';

/**
 * Why a list entry (or a file of a folder layout) was left out of the dataset. Problems without a
 * kind are notes: nothing was left out for them (a train/test overlap, an empty class folder).
 */
export type EntryProblemKind = 'malformed' | 'duplicate' | 'not-an-image' | 'unknown-split';

export interface DatasetProblem {
  file: string;
  /** 1-based line, or 0 when the problem concerns a whole file or folder. */
  line: number;
  message: string;
  /** Set when an entry was skipped for this problem. */
  kind?: EntryProblemKind;
}

export interface Dataset {
  root: string;
  format: DatasetFormat;
  /** The split that was loaded ('train' / 'test'), when the format has splits. */
  split?: string;
  kind: DatasetKind;
  /** Sorted unique labels of every split, so indices agree between train and test; [] for captions. */
  classes: string[];
  samples: Sample[];
  /** Entries that were skipped or look wrong, each with file and line. */
  problems: DatasetProblem[];
}

export function formatProblem(problem: DatasetProblem): string {
  return problem.line > 0 ? `${problem.file}:${problem.line}: ${problem.message}` : `${problem.file}: ${problem.message}`;
}

/** Thrown when a dataset cannot be used at all, or under `strict` when it has any problem. */
export class DatasetError extends Error {
  constructor(
    message: string,
    readonly problems: DatasetProblem[] = [],
  ) {
    super(problems.length ? `${message}\n${problems.map(formatProblem).join('\n')}` : message);
    this.name = 'DatasetError';
  }
}

/** True when `candidate` is `root` or below it (after resolving `..`). */
export function isInside(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/**
 * A path as a list writes it, made a relative POSIX path: a backslash is a separator too, `.` segments and
 * repeated separators go. A path that could leave the folder it is relative to (a `..` segment, an
 * absolute or drive path) is refused with the reason, not resolved: `cat/../dog/2` would read dog's
 * image under cat's label.
 */
export function normaliseListedPath(raw: string): { path: string } | { error: string } {
  if (raw.includes('\0')) return { error: 'contains a NUL character' };
  const slashed = raw.replace(/\\/g, '/');
  if (slashed.startsWith('/') || /^[A-Za-z]:/.test(slashed)) return { error: 'is an absolute path; list entries are relative' };
  const segments = slashed.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) return { error: "contains a '..' segment; list entries must stay inside the dataset" };
  if (segments.length === 0) return { error: 'is an empty path' };
  return { path: segments.join('/') };
}

/**
 * The byte offset of the first byte that does not begin a well-formed UTF-8 sequence (overlong
 * forms, surrogates, code points above U+10FFFF and sequences cut short count as ill-formed), or -1.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let length: number;
    let low = 0x80; // bounds of the second byte
    let high = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) length = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      length = 3;
      if (b === 0xe0) low = 0xa0; // overlong
      if (b === 0xed) high = 0x9f; // surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      length = 4;
      if (b === 0xf0) low = 0x90; // overlong
      if (b === 0xf4) high = 0x8f; // above U+10FFFF
    } else return i;
    if (i + length > n) return i;
    const second = bytes[i + 1]!;
    if (second < low || second > high) return i;
    for (let k = 2; k < length; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return i;
    i += length;
  }
  return -1;
}

/**
 * A list or table file as text. It must be UTF-8 (a leading BOM is dropped): anything else would be
 * read with replacement characters, changing labels and paths without a word, so it is a
 * DatasetError naming the byte offset (and line) of the first invalid sequence.
 */
export async function readUtf8ListFile(file: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw err;
    throw new DatasetError(`${file}: cannot read (${(err as Error).message})`);
  }
  const bom = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(bom));
  } catch {
    const offset = firstInvalidUtf8(bytes.subarray(bom)) + bom;
    let line = 1;
    for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
    const shown = [...bytes.subarray(offset, offset + 4)].map((b) => `0x${b.toString(16).toUpperCase().padStart(2, '0')}`).join(' ');
    throw new DatasetError(
      `${file}: not valid UTF-8: invalid byte sequence at byte offset ${offset} (line ${line}: ${shown}); ` +
        'lists and tables must be UTF-8 (convert it, e.g. iconv -f latin1 -t utf-8)',
    );
  }
}

/** Entries whose path leaves the dataset (normaliseListedPath) are errors, not skips: all named at once. */
export function refuseEscapingPaths(errors: DatasetProblem[]): void {
  if (errors.length === 0) return;
  const what = errors.length === 1 ? '1 list entry leaves' : `${errors.length} list entries leave`;
  throw new DatasetError(`${what} the dataset folder or contain '..'; nothing was trained (fix the list)`, errors);
}

/** Image file extensions the folder layout picks up (sharp decodes all of them). */
export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif']);

/** Sorted unique labels; plain code-unit order so every platform agrees. */
export function sortedClasses(labels: Iterable<string>): string[] {
  return [...new Set(labels)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Attach label indices, refuse empty results, and apply `strict`. */
export function finishDataset(
  base: Omit<Dataset, 'classes' | 'problems'>,
  allLabels: Iterable<string>,
  problems: DatasetProblem[],
  options: { strict?: boolean; describe: string },
): Dataset {
  if (options.strict && problems.length > 0) {
    throw new DatasetError(`${options.describe}: ${problems.length} problem(s) (strict mode)`, problems);
  }
  if (base.samples.length === 0) {
    throw new DatasetError(`${options.describe}: no usable samples (empty split)`, problems);
  }
  const classes = base.kind === 'labels' ? sortedClasses(allLabels) : [];
  const indexOf = new Map(classes.map((name, i) => [name, i]));
  const imageIndices = new Map<string, number>();
  for (const sample of base.samples) {
    if (base.kind === 'labels' && sample.label !== undefined) sample.labelIndex = indexOf.get(sample.label);
    if (base.kind === 'captions') {
      if (!imageIndices.has(sample.image)) imageIndices.set(sample.image, imageIndices.size);
      sample.imageIndex = imageIndices.get(sample.image);
    }
  }
  return { ...base, classes, problems };
}
