import path from 'node:path';
import {
  DatasetError,
  finishDataset,
  isInside,
  normaliseListedPath,
  readUtf8ListFile,
  refuseEscapingPaths,
  type Dataset,
  type DatasetProblem,
  type Sample,
} from './dataset.js';

/**
 * The blog's layout (Food-101 style): `meta/train.txt` and `meta/test.txt` list `class_name/image_stem`,
 * images live at `<root>/<imagesDir>/<line>.<ext>`, and the label is the part before the first `/`.
 */
export interface BlogLayoutOptions {
  split?: 'train' | 'test';
  /** Folder of images under the root. Default 'images'. */
  imagesDir?: string;
  /** Extension appended to each line, without dot; '' when the lines carry their own. Default 'jpg'. */
  ext?: string;
  strict?: boolean;
}

const SPLITS = ['train', 'test'] as const;

interface ListEntry {
  label: string;
  image: string;
  line: number;
}

export async function loadBlogLayout(root: string, options: BlogLayoutOptions = {}): Promise<Dataset> {
  root = path.resolve(root);
  const split = options.split ?? 'train';
  const imagesRoot = path.resolve(root, options.imagesDir ?? 'images');
  const ext = options.ext ?? 'jpg';
  const problems: DatasetProblem[] = [];
  const pathErrors: DatasetProblem[] = [];
  const lists = new Map<string, { file: string; entries: ListEntry[] }>();

  for (const name of SPLITS) {
    const file = path.join(root, 'meta', `${name}.txt`);
    let text: string;
    try {
      text = await readUtf8ListFile(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (name === split) throw new DatasetError(`${file}: split list not found (expected meta/${name}.txt under ${root})`);
      continue; // the other split is optional
    }
    lists.set(name, { file, entries: parseList(text, file, imagesRoot, ext, problems, pathErrors) });
  }
  refuseEscapingPaths(pathErrors);

  const wanted = lists.get(split)!;
  if (wanted.entries.length === 0) problems.push({ file: wanted.file, line: 0, message: 'empty split: no entries' });
  reportCrossSplitDuplicates(lists, split, problems);

  const samples: Sample[] = wanted.entries.map((e) => ({ image: e.image, label: e.label, source: { file: wanted.file, line: e.line } }));
  const allLabels = [...lists.values()].flatMap((l) => l.entries.map((e) => e.label));
  return finishDataset({ root, format: 'blog', split, kind: 'labels', samples }, allLabels, problems, {
    strict: options.strict,
    describe: `${wanted.file}`,
  });
}

function parseList(text: string, file: string, imagesRoot: string, ext: string, problems: DatasetProblem[], pathErrors: DatasetProblem[]): ListEntry[] {
  const entries: ListEntry[] = [];
  const seen = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    const entry = raw.trim();
    if (entry === '' || entry.startsWith('#')) return;
    const normalised = normaliseListedPath(entry);
    if ('error' in normalised) {
      pathErrors.push({ file, line, message: `${JSON.stringify(entry)} ${normalised.error} (relative to ${imagesRoot})` });
      return;
    }
    const relative = normalised.path;
    const slash = relative.indexOf('/');
    if (slash <= 0) {
      problems.push({ file, line, kind: 'malformed', message: `expected "class_name/image_stem", got ${JSON.stringify(entry)}; skipped` });
      return;
    }
    const image = path.resolve(imagesRoot, ext ? `${relative}.${ext}` : relative);
    if (!isInside(imagesRoot, image)) {
      // Unreachable after normalisation; kept so that no later change can make it silent.
      pathErrors.push({ file, line, message: `${JSON.stringify(entry)} points outside the image folder ${imagesRoot}` });
      return;
    }
    const first = seen.get(image);
    if (first !== undefined) {
      problems.push({ file, line, kind: 'duplicate', message: `duplicate entry ${JSON.stringify(entry)} (first on line ${first}); skipped` });
      return;
    }
    seen.set(image, line);
    entries.push({ label: relative.slice(0, slash), image, line });
  });
  return entries;
}

/** An image in both train and test leaks the test set into training: say so, keep both. */
function reportCrossSplitDuplicates(lists: Map<string, { file: string; entries: ListEntry[] }>, split: string, problems: DatasetProblem[]): void {
  const other = lists.get(split === 'train' ? 'test' : 'train');
  const wanted = lists.get(split);
  if (!other || !wanted) return;
  const otherImages = new Map(other.entries.map((e) => [e.image, e.line]));
  for (const entry of wanted.entries) {
    const line = otherImages.get(entry.image);
    if (line !== undefined) {
      problems.push({ file: wanted.file, line: entry.line, message: `image also listed in ${other.file}:${line} (train/test overlap)` });
    }
  }
}
