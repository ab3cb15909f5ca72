import path from 'node:path';
import { parseDelimited } from './csv.js';
import {
  DatasetError,
  finishDataset,
  isInside,
  normaliseListedPath,
  readUtf8ListFile,
  refuseEscapingPaths,
  type Dataset,
  type DatasetKind,
  type DatasetProblem,
  type Sample,
} from './dataset.js';

/**
 * A table of images: CSV, TSV or JSONL, one row per image with a path relative to the table file
 * and either a label or a free caption. Caption tables may give one image several captions: rows
 * that share an image path, or (JSONL) a list of strings in the caption column.
 */
export interface TableLayoutOptions {
  /** Column names; defaults are the first present of image|path|file|filename|filepath|image_path, label|class|category, caption|captions|text. */
  columns?: { image?: string; label?: string; caption?: string; split?: string };
  /** Force labels or captions when a table has both columns (default: labels if a label column exists). */
  kind?: DatasetKind;
  /**
   * With a split column (split|subset|set, values train/test), the rows of this split; without one,
   * the whole table is every split.
   */
  split?: 'train' | 'test';
  strict?: boolean;
}

const DEFAULT_COLUMNS = {
  image: ['image', 'path', 'file', 'filename', 'filepath', 'image_path'],
  label: ['label', 'class', 'category'],
  caption: ['caption', 'captions', 'text'],
  split: ['split', 'subset', 'set'],
};

const SPLIT_VALUES = new Set(['train', 'test']);

interface Row {
  line: number;
  values: Map<string, unknown>;
}

export async function loadTableLayout(file: string, format: 'csv' | 'tsv' | 'jsonl', options: TableLayoutOptions = {}): Promise<Dataset> {
  file = path.resolve(file);
  const root = path.dirname(file);
  const problems: DatasetProblem[] = [];
  const text = await readUtf8ListFile(file).catch((err: Error) => {
    throw err instanceof DatasetError ? err : new DatasetError(`${file}: cannot read (${err.message})`);
  });
  const { header, rows } = format === 'jsonl' ? readJsonl(text, file, problems) : readDelimited(text, file, format === 'csv' ? ',' : '\t', problems);

  const pick = (role: keyof typeof DEFAULT_COLUMNS): string | undefined => {
    const explicit = options.columns?.[role];
    if (explicit !== undefined) {
      if (!header.has(explicit)) throw new DatasetError(`${file}: no column ${JSON.stringify(explicit)} (columns: ${[...header].join(', ')})`);
      return explicit;
    }
    const lower = new Map([...header].map((h) => [h.toLowerCase(), h]));
    return DEFAULT_COLUMNS[role].map((c) => lower.get(c)).find((c) => c !== undefined);
  };
  const imageColumn = pick('image');
  if (!imageColumn) throw new DatasetError(`${file}: no image column (tried ${DEFAULT_COLUMNS.image.join('|')}; columns: ${[...header].join(', ')})`);
  const labelColumn = pick('label');
  const captionColumn = pick('caption');
  const kind: DatasetKind = options.kind ?? (labelColumn ? 'labels' : 'captions');
  const textColumn = kind === 'labels' ? labelColumn : captionColumn;
  if (!textColumn) throw new DatasetError(`${file}: no ${kind === 'labels' ? 'label' : 'caption'} column (columns: ${[...header].join(', ')})`);

  const splitColumn = pick('split');
  const wantedSplit = options.split ?? 'train';
  const samples: Sample[] = [];
  // Labels of every split, so class indices agree between train and test.
  const allLabels: string[] = [];
  const seen = new Map<string, number>();
  // Every row's path is checked, whatever its split: one that leaves the folder is an error.
  const images = new Map<Row, string>();
  const pathErrors: DatasetProblem[] = [];
  for (const row of rows) {
    const imageValue = row.values.get(imageColumn);
    if (typeof imageValue !== 'string' || imageValue.trim() === '') continue;
    const resolved = resolveImagePath(root, imageValue.trim());
    if ('error' in resolved) pathErrors.push({ file, line: row.line, message: `${JSON.stringify(imageValue)} ${resolved.error} (relative to ${root})` });
    else images.set(row, resolved.image);
  }
  refuseEscapingPaths(pathErrors);
  for (const row of rows) {
    const imageValue = row.values.get(imageColumn);
    if (splitColumn) {
      const split = String(row.values.get(splitColumn) ?? '').trim().toLowerCase();
      if (!SPLIT_VALUES.has(split)) {
        problems.push({ file, line: row.line, kind: 'unknown-split', message: `${JSON.stringify(splitColumn)} must be train or test, got ${JSON.stringify(split)}; skipped` });
        continue;
      }
      const label = row.values.get(textColumn);
      if (kind === 'labels' && (typeof label === 'string' || typeof label === 'number') && String(label).trim()) allLabels.push(String(label).trim());
      if (split !== wantedSplit) continue;
    }
    const at = { file, line: row.line };
    if (typeof imageValue !== 'string' || imageValue.trim() === '') {
      problems.push({ ...at, kind: 'malformed', message: `empty or missing ${JSON.stringify(imageColumn)}; skipped` });
      continue;
    }
    const texts = rowTexts(row.values.get(textColumn), kind);
    if (typeof texts === 'string') {
      const why = texts === 'empty' ? `empty or missing ${JSON.stringify(textColumn)}` : `${JSON.stringify(textColumn)} ${texts}`;
      problems.push({ ...at, kind: 'malformed', message: `${why}; skipped` });
      continue;
    }
    const image = images.get(row)!;
    for (const value of texts) {
      // The same image may carry several captions; only a repeated (image, text) pair is a duplicate.
      const key = `${image}\u0000${value}`;
      const first = seen.get(key);
      if (first !== undefined) {
        problems.push({ ...at, kind: 'duplicate', message: `duplicate entry ${JSON.stringify(imageValue)} (first on line ${first}); skipped` });
        continue;
      }
      seen.set(key, row.line);
      samples.push(kind === 'labels' ? { image, label: value.trim(), source: at } : { image, caption: value, source: at });
    }
  }
  if (splitColumn && kind === 'captions') refuseImagesInBothSplits(file, rows, images, splitColumn);
  if (rows.length === 0) problems.push({ file, line: 0, message: 'empty split: no rows' });
  else if (samples.length === 0 && splitColumn) problems.push({ file, line: 0, message: `empty split: no rows with ${splitColumn} = ${wantedSplit}` });
  const labels = splitColumn ? allLabels : samples.map((s) => s.label ?? '');
  return finishDataset({ root, format, kind, samples, split: splitColumn ? wantedSplit : undefined }, labels, problems, {
    strict: options.strict,
    describe: file,
  });
}

/**
 * The texts of a row's label or caption cell: one string (or number), or for captions a list of
 * strings (several captions of one image). Else why not ('empty' for an empty or missing cell).
 */
function rowTexts(value: unknown, kind: DatasetKind): string[] | string {
  if (typeof value === 'number') return [String(value)];
  if (typeof value === 'string') return value.trim() === '' ? 'empty' : [value];
  if (value === undefined || value === null) return 'empty';
  if (!Array.isArray(value) || kind === 'labels') return `must be ${kind === 'labels' ? 'a string or number' : 'a string or a list of strings'}, got ${JSON.stringify(value).slice(0, 60)}`;
  const bad = value.findIndex((v) => typeof v !== 'string' || v.trim() === '');
  if (bad >= 0) return `item ${bad} must be a non-empty string, got ${JSON.stringify(value[bad])}`;
  return value.length > 0 ? (value as string[]) : 'is an empty list';
}

/**
 * A caption table's splits hold disjoint images: an image whose rows are in train and in test would
 * be scored on captions of an image the model was trained on. Every such image is named at once.
 */
function refuseImagesInBothSplits(file: string, rows: Row[], images: Map<Row, string>, splitColumn: string): void {
  const firstIn = new Map<string, { split: string; line: number }>();
  const conflicts: DatasetProblem[] = [];
  for (const row of rows) {
    const image = images.get(row);
    const split = String(row.values.get(splitColumn) ?? '').trim().toLowerCase();
    if (image === undefined || !SPLIT_VALUES.has(split)) continue;
    const first = firstIn.get(image);
    if (!first) firstIn.set(image, { split, line: row.line });
    else if (first.split !== split) {
      conflicts.push({ file, line: row.line, message: `${JSON.stringify(path.relative(path.dirname(file), image))} is in ${split} here and in ${first.split} on line ${first.line}` });
    }
  }
  if (conflicts.length > 0) {
    throw new DatasetError(`${file}: ${conflicts.length} row(s) put an image in both splits; an image's captions must all be in one split (fix the ${JSON.stringify(splitColumn)} column)`, conflicts);
  }
}

/**
 * A table's image path: relative to the table's folder (normalised, see normaliseListedPath), or
 * absolute inside that folder. Anything that leaves the folder is refused with the reason.
 */
function resolveImagePath(root: string, value: string): { image: string } | { error: string } {
  if (path.isAbsolute(value)) {
    const image = path.normalize(value);
    if (value.split(/[\\/]/).includes('..')) return { error: "contains a '..' segment; paths must stay inside the dataset" };
    return isInside(root, image) ? { image } : { error: 'is an absolute path outside the table\'s folder' };
  }
  const normalised = normaliseListedPath(value);
  if ('error' in normalised) return normalised;
  return { image: path.resolve(root, normalised.path) };
}

function readDelimited(text: string, file: string, delimiter: string, problems: DatasetProblem[]): { header: Set<string>; rows: Row[] } {
  const parsed = parseDelimited(text, delimiter);
  if (parsed.unterminatedQuoteLine !== undefined) {
    problems.push({ file, line: parsed.unterminatedQuoteLine, kind: 'malformed', message: 'quoted field never closed; the rest of the file is ignored' });
  }
  const [headerRecord, ...records] = parsed.records;
  if (!headerRecord) return { header: new Set(), rows: [] };
  const names = headerRecord.fields.map((f) => f.trim());
  const rows: Row[] = [];
  for (const record of records) {
    if (record.fields.length !== names.length) {
      problems.push({ file, line: record.line, kind: 'malformed', message: `expected ${names.length} fields, found ${record.fields.length}; skipped` });
      continue;
    }
    rows.push({ line: record.line, values: new Map(names.map((n, i) => [n, record.fields[i]])) });
  }
  return { header: new Set(names), rows };
}

function readJsonl(text: string, file: string, problems: DatasetProblem[]): { header: Set<string>; rows: Row[] } {
  const header = new Set<string>();
  const rows: Row[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      problems.push({ file, line: i + 1, kind: 'malformed', message: `invalid JSON (${(err as Error).message}); skipped` });
      return;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push({ file, line: i + 1, kind: 'malformed', message: 'expected a JSON object; skipped' });
      return;
    }
    for (const key of Object.keys(value)) header.add(key);
    rows.push({ line: i + 1, values: new Map(Object.entries(value)) });
  });
  return { header, rows };
}
