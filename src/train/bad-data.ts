// Bad data is named, and too much of it stops the run. Every entry a run leaves out (an image that
// cannot be read, a malformed or duplicate list line) is written once, with its reason, to
// skipped.tsv in the run directory; the unreadable ones are counted per split, and when more than
// maxBadFraction of a split (or all of it) is unreadable the run stops: before training when the
// check of the files finds them, in the first epoch when only the decode does.
import { appendFileSync, promises as fs } from 'node:fs';
import path from 'node:path';

import { checkImageFiles, type CheckImagesOptions } from '../data/check-images.js';
import type { Dataset, EntryProblemKind } from '../data/dataset.js';
import type { ImageProblemKind } from '../data/image-problems.js';
import type { SkippedImage } from '../data/loader.js';
import { writeFileAtomic } from '../util/atomic.js';

export const SKIPPED_FILE = 'skipped.tsv';

export type SkipKind = ImageProblemKind | EntryProblemKind;

export interface SkippedEntry {
  /** The split whose loading or training found it first. */
  split: string;
  /** 0: found before training (the lists, the check of the files); else the 1-based epoch. */
  epoch: number;
  /** The image file ('' for a list line that names none). */
  file: string;
  /** The list or table that named it, and the 1-based line ('' and 0 for a folder layout). */
  listFile: string;
  line: number;
  kind: SkipKind;
  reason: string;
}

export const SKIPPED_COLUMNS = ['split', 'epoch', 'file', 'list_file', 'line', 'kind', 'reason'] as const;
const HEADER = SKIPPED_COLUMNS.join('\t') + '\n';

/** A TSV field: backslash, tab, newline and carriage return written as \\, \t, \n, \r. */
export function tsvEscape(value: string): string {
  return value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

export function tsvUnescape(field: string): string {
  return field.replace(/\\([\\tnr])/g, (_, c: string) => (c === '\\' ? '\\' : c === 't' ? '\t' : c === 'n' ? '\n' : '\r'));
}

/** skipped.tsv's rows as entries (the header skipped). */
export function parseSkippedTsv(text: string): SkippedEntry[] {
  return text
    .split('\n')
    .slice(1)
    .filter((line) => line !== '')
    .map((line) => {
      const [split, epoch, file, listFile, lineNo, kind, reason] = line.split('\t').map(tsvUnescape);
      return { split: split!, epoch: Number(epoch), file: file!, listFile: listFile!, line: Number(lineNo || 0), kind: kind as SkipKind, reason: reason ?? '' };
    });
}

/** Image problems identify an entry by its file and list line; list problems by list line and kind. */
function entryKey(e: Pick<SkippedEntry, 'file' | 'listFile' | 'line' | 'kind'>): string {
  const image = e.kind === 'malformed' || e.kind === 'duplicate' || e.kind === 'not-an-image' || e.kind === 'unknown-split';
  return [image ? 'list' : 'image', e.file, e.listFile, e.line, image ? e.kind : ''].join('\t');
}

/**
 * The run's skipped.tsv: one row per distinct entry (an image skipped every epoch is written once,
 * with the epoch that found it first). Rows are appended synchronously as they are found, so an
 * abort or a crash right after loses none.
 */
export class SkippedLog {
  private readonly keys = new Set<string>();
  private readonly counts = new Map<SkipKind, number>();

  private constructor(
    readonly file: string,
    private readonly writes = true,
  ) {}

  /** A log that remembers and counts but writes nothing: a data-parallel rank other than 0 (rank 0 writes `file`). */
  static unwritten(file: string): SkippedLog {
    return new SkippedLog(file, false);
  }

  /** A fresh run starts the file anew; a resumed one keeps its rows and adds only new entries. */
  static async open(file: string, { resume }: { resume: boolean }): Promise<SkippedLog> {
    const log = new SkippedLog(file);
    const existing = resume ? await fs.readFile(file, 'utf8').catch(() => undefined) : undefined;
    if (existing?.startsWith(HEADER)) {
      for (const entry of parseSkippedTsv(existing)) log.remember(entry);
      if (!existing.endsWith('\n')) appendFileSync(file, '\n'); // a row cut short by a crash stays alone on its line
    } else {
      await writeFileAtomic(file, HEADER, { durable: false });
    }
    return log;
  }

  /** Appends the entries not written before; returns those. */
  add(entries: SkippedEntry[]): SkippedEntry[] {
    const added = entries.filter((e) => this.remember(e));
    if (added.length > 0 && this.writes) {
      const rows = added.map((e) => [e.split, String(e.epoch), e.file, e.listFile, e.line > 0 ? String(e.line) : '', e.kind, e.reason].map(tsvEscape).join('\t') + '\n');
      appendFileSync(this.file, rows.join(''));
    }
    return added;
  }

  /** Distinct entries written (including a resumed run's earlier ones). */
  get total(): number {
    return this.keys.size;
  }

  byKind(): Partial<Record<SkipKind, number>> {
    return Object.fromEntries(this.counts);
  }

  private remember(entry: SkippedEntry): boolean {
    const key = entryKey(entry);
    if (this.keys.has(key)) return false;
    this.keys.add(key);
    this.counts.set(entry.kind, (this.counts.get(entry.kind) ?? 0) + 1);
    return true;
  }
}

/** "missing 1, truncated 2" */
export function formatKinds(counts: Partial<Record<string, number>>): string {
  return Object.entries(counts)
    .filter(([, n]) => (n ?? 0) > 0)
    .map(([kind, n]) => `${kind} ${n}`)
    .join(', ');
}

/** The run stops for bad data; the counts are in the message and here. */
export class BadDataError extends Error {
  constructor(
    message: string,
    readonly split: string,
    readonly bad: number,
    readonly total: number,
    readonly byKind: Partial<Record<SkipKind, number>>,
  ) {
    super(message);
    this.name = 'BadDataError';
  }
}

interface SplitCount {
  /** Entries the split lists: its samples and its malformed lines. */
  total: number;
  malformed: number;
  /** Unreadable samples, by entry key. */
  unreadable: Map<string, ImageProblemKind>;
}

export interface BadDataOptions {
  maxBadFraction: number;
  strict: boolean;
  say: (message: string) => void;
}

/**
 * A run's bad data: the split's list problems and unreadable images into skipped.tsv, and the count
 * of each split's bad entries (unreadable images and malformed lines; duplicates and stray files are
 * written but not counted) against maxBadFraction.
 */
export class BadData {
  private readonly splits = new Map<string, SplitCount>();

  constructor(
    readonly log: SkippedLog,
    private readonly options: BadDataOptions,
  ) {}

  /**
   * A loaded split: its list problems written, its image files checked (check-images.ts), the
   * unreadable ones written and counted. Throws BadDataError when too many are.
   */
  async checkSplit(split: string, dataset: Dataset, check: CheckImagesOptions = {}): Promise<void> {
    const count: SplitCount = { total: dataset.samples.length, malformed: 0, unreadable: new Map() };
    this.splits.set(split, count);
    const listEntries: SkippedEntry[] = [];
    for (const p of dataset.problems) {
      if (!p.kind) continue;
      if (p.kind === 'malformed') count.malformed++;
      const listed = p.line > 0;
      listEntries.push({ split, epoch: 0, file: listed ? '' : p.file, listFile: listed ? p.file : '', line: p.line, kind: p.kind, reason: p.message });
    }
    count.total += count.malformed;
    this.log.add(listEntries);

    const started = performance.now();
    const problems = await checkImageFiles(dataset.samples.map((s) => s.image), check);
    const found: SkippedEntry[] = [];
    for (const sample of dataset.samples) {
      const problem = problems.get(sample.image);
      if (!problem) continue;
      const entry = this.imageEntry(split, 0, { file: sample.image, source: sample.source, kind: problem.kind, message: problem.message });
      count.unreadable.set(entryKey(entry), problem.kind);
      found.push(entry);
    }
    this.log.add(found);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    if (found.length > 0 || count.malformed > 0) {
      this.options.say(`${split} split: checked ${dataset.samples.length} image entries in ${seconds} s: ${this.describe(split)}; each is listed in ${this.log.file}`);
    }
    this.enforce(split, 'before training; nothing was trained');
  }

  /** The loader's onSkip for a split's epoch: writes a newly found entry, and stops the run when too many are bad. */
  onSkip(split: string, epoch: number): (skipped: SkippedImage) => void {
    return (skipped) => {
      const entry = this.imageEntry(split, epoch, skipped);
      this.log.add([entry]);
      const count = this.splits.get(split);
      if (!count) return;
      const key = entryKey(entry);
      if (count.unreadable.has(key)) return;
      count.unreadable.set(key, skipped.kind);
      this.enforce(split, `in epoch ${epoch}; the run stops`);
    };
  }

  /** Throws BadDataError when more than maxBadFraction of the split (or all of it) is bad. */
  enforce(split: string, when: string): void {
    const count = this.splits.get(split);
    if (!count) return;
    const bad = count.unreadable.size + count.malformed;
    const { maxBadFraction, strict } = this.options;
    const tooMany = strict ? bad > 0 : bad > maxBadFraction * count.total || (count.total > 0 && bad >= count.total);
    if (!tooMany) return;
    const limit = strict ? '--strict allows none' : bad >= count.total ? 'none is readable' : `more than --max-bad-fraction ${maxBadFraction} allows`;
    throw new BadDataError(
      `${split} split: ${this.describe(split)} (${((100 * bad) / Math.max(1, count.total)).toFixed(1)} %), ${limit}; found ${when}. ` +
        `Each is listed with its reason in ${this.log.file}: fix or remove them${strict ? '' : ', or raise --max-bad-fraction'}.`,
      split,
      bad,
      count.total,
      this.kinds(count),
    );
  }

  /** What a run's summary says: skipped.tsv, its distinct entries, by kind. */
  summary(): { file: string; total: number; byKind: Partial<Record<SkipKind, number>> } {
    return { file: this.log.file, total: this.log.total, byKind: this.log.byKind() };
  }

  private kinds(count: SplitCount): Partial<Record<SkipKind, number>> {
    const byKind: Partial<Record<SkipKind, number>> = {};
    for (const kind of count.unreadable.values()) byKind[kind] = (byKind[kind] ?? 0) + 1;
    if (count.malformed > 0) byKind.malformed = count.malformed;
    return byKind;
  }

  private describe(split: string): string {
    const count = this.splits.get(split)!;
    const bad = count.unreadable.size + count.malformed;
    return `${bad} of ${count.total} entries unreadable (${formatKinds(this.kinds(count))})`;
  }

  private imageEntry(split: string, epoch: number, skipped: SkippedImage): SkippedEntry {
    const listed = skipped.source.line > 0;
    // Messages read "list:line: file: reason" (the loader's) or "file: reason"; the row has columns for those.
    let reason = skipped.message;
    const where = `${skipped.source.file}:${skipped.source.line}: `;
    if (listed && reason.startsWith(where)) reason = reason.slice(where.length);
    if (reason.startsWith(`${skipped.file}: `)) reason = reason.slice(skipped.file.length + 2);
    return { split, epoch, file: skipped.file, listFile: listed ? skipped.source.file : '', line: skipped.source.line, kind: skipped.kind, reason };
  }
}

/** skipped.tsv of a run directory. */
export function skippedPath(out: string): string {
  return path.join(out, SKIPPED_FILE);
}
