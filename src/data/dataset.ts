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
  /** The list file and 1-based line that named this image; for folder layouts the image itself and line 0. */
  source: { file: string; line: number };
}

export type DatasetKind = 'labels' | 'captions';
export type DatasetFormat = 'blog' | 'folder' | 'csv' | 'tsv' | 'jsonl';

export interface DatasetProblem {
  file: string;
  /** 1-based line, or 0 when the problem concerns a whole file or folder. */
  line: number;
  message: string;
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
  for (const sample of base.samples) {
    if (base.kind === 'labels' && sample.label !== undefined) sample.labelIndex = indexOf.get(sample.label);
  }
  return { ...base, classes, problems };
}
