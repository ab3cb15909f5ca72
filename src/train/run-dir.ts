// What keeps runs from losing or mixing data: a lock on the run directory while a run trains in it,
// a refusal to start a new run over an old one (unless asked to resume or overwrite), and an estimate
// of what the run will write against the free space.
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { CHECKPOINT_DIR, CONFIG_FILE, METRICS_FILE, RETRIEVAL_WORST_FILE, runName } from './run-files.js';

export const LOCK_FILE = '.lock';

/** What a lock file holds. */
export interface LockHolder {
  pid: number;
  host: string;
  started: string;
  /** Tells this lock from an earlier one of the same process id. */
  token: string;
}

/** Lock files this process holds, by path, each with its token: removed at exit if still held. */
const held = new Map<string, string>();
let exitHook = false;

function releaseAllSync(): void {
  for (const [file, token] of held) {
    try {
      if ((JSON.parse(readFileSync(file, 'utf8')) as LockHolder).token === token) unlinkSync(file);
    } catch {
      // Gone or replaced: not ours to remove.
    }
  }
  held.clear();
}

export interface RunLock {
  readonly file: string;
  readonly holder: LockHolder;
  /** Removes the lock file if it is still this lock's. */
  release(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Creates `file` holding `text`, or resolves false when it exists. The content is complete from the
 * first moment others can see the file (a hard link of a written file), where links exist. */
async function createExclusive(file: string, text: string): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(tmp, text);
  try {
    await fs.link(tmp, file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
    // A filesystem without hard links: exclusive create, then the content.
    try {
      await fs.writeFile(file, text, { flag: 'wx' });
      return true;
    } catch (err2) {
      if ((err2 as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err2;
    }
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

type LockRead = { kind: 'gone' } | { kind: 'holder'; holder: LockHolder; text: string } | { kind: 'unreadable'; ageMs: number; text: string };

async function readLock(file: string): Promise<LockRead> {
  let text: string;
  let mtimeMs: number;
  try {
    [text, { mtimeMs }] = await Promise.all([fs.readFile(file, 'utf8'), fs.stat(file)]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'gone' };
    throw err;
  }
  try {
    const holder = JSON.parse(text) as LockHolder;
    if (Number.isInteger(holder.pid) && typeof holder.host === 'string') return { kind: 'holder', holder, text };
  } catch {
    // below
  }
  return { kind: 'unreadable', ageMs: Date.now() - mtimeMs, text };
}

/** Why the holder no longer runs, or undefined when it may (another host's process cannot be checked). */
function staleReason(file: string, holder: LockHolder): string | undefined {
  if (holder.host !== os.hostname()) return undefined;
  if (holder.pid === process.pid) {
    // This process: a lock it holds (another train() on the same directory), or one left by an earlier
    // process that had the same id (containers reuse low process ids on every start).
    return held.get(file) === holder.token ? undefined : `process ${holder.pid} is this one, which did not take it`;
  }
  try {
    process.kill(holder.pid, 0);
    return undefined;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'ESRCH' ? `process ${holder.pid} is no longer running` : undefined;
  }
}

/**
 * Takes `<out>/.lock` for this process: refused, naming the holder, while another run holds it; a lock
 * left by a run that ended without removing it (same host, its process gone) is reported and taken
 * over. Released by `release()`, and at process exit if still held.
 */
export async function lockRunDir(out: string, say: (message: string) => void = () => {}): Promise<RunLock> {
  const file = path.join(out, LOCK_FILE);
  const holder: LockHolder = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), token: randomBytes(8).toString('hex') };
  const text = JSON.stringify(holder) + '\n';
  for (let attempt = 0; attempt < 50; attempt++) {
    if (await createExclusive(file, text)) {
      held.set(file, holder.token);
      if (!exitHook) {
        exitHook = true;
        process.on('exit', releaseAllSync);
      }
      return {
        file,
        holder,
        async release() {
          if (held.get(file) !== holder.token) return;
          held.delete(file);
          const now = await readLock(file);
          if (now.kind === 'holder' && now.holder.token === holder.token) await fs.rm(file, { force: true });
        },
      };
    }
    const found = await readLock(file);
    if (found.kind === 'gone') continue;
    let stale: string | undefined;
    if (found.kind === 'unreadable') {
      // Being written (the fallback without hard links), or left empty by a crash at that moment.
      if (found.ageMs < 10_000) {
        await sleep(100);
        continue;
      }
      stale = `its lock file ${file} is unreadable and ${Math.round(found.ageMs / 1000)} s old`;
    } else {
      stale = staleReason(file, found.holder);
      if (stale === undefined) {
        const { pid, host, started } = found.holder;
        const other = host !== os.hostname() ? ` If no run on ${host} uses it any more, remove ${file}.` : '';
        throw new Error(
          `${out} is in use by another training run (pid ${pid} on host ${host}, started ${started}; lock ${file}). ` +
            `Wait for it to end or train into another --out.${other}`,
        );
      }
    }
    if (await takeOver(file, found.text)) {
      const who = found.kind === 'holder' ? `pid ${found.holder.pid} on ${found.holder.host}, started ${found.holder.started}` : 'unknown holder';
      say(`${out}: taking over a stale lock (${who}): ${stale}`);
    }
  }
  throw new Error(`could not lock ${out}: ${file} keeps changing`);
}

/** Removes the stale lock `file` if it still holds `staleText`. One process at a time takes over
 * (`<lock>.takeover`), so two that both saw the stale lock cannot both remove a live one. */
async function takeOver(file: string, staleText: string): Promise<boolean> {
  const guard = `${file}.takeover`;
  try {
    await fs.writeFile(guard, String(process.pid), { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const age = await fs.stat(guard).then((s) => Date.now() - s.mtimeMs, () => 0);
    if (age > 10_000) await fs.rm(guard, { force: true }); // left by a crash mid-takeover
    else await sleep(50);
    return false;
  }
  try {
    const now = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (now !== staleText) return false;
    await fs.rm(file, { force: true });
    return true;
  } finally {
    await fs.rm(guard, { force: true });
  }
}

/** The files of a run found in `out` (paths relative to it), and their size. */
export interface RunContents {
  entries: string[];
  bytes: number;
}

const sizeOf = async (file: string): Promise<number> => {
  const stat = await fs.stat(file).catch(() => undefined);
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.size;
  const names = await fs.readdir(file);
  let total = 0;
  for (const name of names) total += await sizeOf(path.join(file, name));
  return total;
};

/**
 * The files a run leaves in `out`: config.json, metrics.jsonl, checkpoints/, the weight files of the
 * run names given (`<name>_epoch_<n>.safetensors|.pt`, `<name>_best.safetensors`) and of the name in an
 * existing config.json; with those, report.html, skipped.tsv and retrieval-worst.json. Nothing else counts or is touched.
 */
export async function runContents(out: string, names: string[]): Promise<RunContents> {
  const all = await fs.readdir(out).catch(() => [] as string[]);
  const runNames = new Set(names);
  if (all.includes(CONFIG_FILE)) {
    try {
      const previous = JSON.parse(await fs.readFile(path.join(out, CONFIG_FILE), 'utf8')) as { name?: string; model?: string };
      if (typeof previous.name === 'string') runNames.add(previous.name);
      else if (typeof previous.model === 'string') runNames.add(runName(previous.model));
    } catch {
      // An unreadable config.json is still the run's.
    }
  }
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const weights = [...runNames].map((n) => new RegExp(`^${escape(n)}_(epoch_\\d+\\.(safetensors|pt)|best\\.safetensors)$`));
  const marks = new Set([CONFIG_FILE, METRICS_FILE]);
  const entries: string[] = [];
  for (const name of all.sort()) {
    if (marks.has(name) || weights.some((w) => w.test(name))) entries.push(name);
    else if (name === CHECKPOINT_DIR && (await fs.readdir(path.join(out, name)).catch(() => [])).length > 0) entries.push(`${name}/`);
  }
  // A run's report and list of skipped entries go with it, but alone (a run refused before it
  // trained leaves its skipped.tsv) they are no run.
  if (entries.length > 0) entries.push(...all.filter((name) => name === 'report.html' || name === 'skipped.tsv' || name === RETRIEVAL_WORST_FILE));
  entries.sort();
  let bytes = 0;
  for (const entry of entries) bytes += await sizeOf(path.join(out, entry));
  return { entries, bytes };
}

/** Removes the entries of runContents() but `keep` (absolute paths: the model a run starts from). */
export async function removeRun(out: string, contents: RunContents, keep: string[] = []): Promise<{ removed: string[]; kept: string[] }> {
  const removed: string[] = [];
  const kept: string[] = [];
  const keepAbs = keep.map((k) => path.resolve(k));
  for (const entry of contents.entries) {
    const file = path.join(out, entry);
    if (keepAbs.some((k) => k === path.resolve(file) || k.startsWith(path.resolve(file) + path.sep))) {
      kept.push(entry);
      continue;
    }
    await fs.rm(file, { recursive: true, force: true });
    removed.push(entry);
  }
  return { removed, kept };
}

/** Epochs in (from, to] that write a file: each multiple of `every`, and the last (`every` 0: only the last). */
export function epochsWriting(from: number, to: number, every: number): number {
  if (to <= from) return 0;
  if (every <= 0) return 1;
  const multiples = Math.floor(to / every) - Math.floor(from / every);
  return multiples + (to % every === 0 ? 0 : 1);
}

export interface WriteEstimate {
  weightFiles: number;
  weightFileBytes: number;
  /** Checkpoints on disk at once at most (those kept, plus the one being written). */
  checkpoints: number;
  checkpointBytes: number;
  bytes: number;
}

/**
 * What a run from epoch `startEpoch` to `epochs` writes at most: its weight files (each `weightBytes`,
 * the .pt as large) and the checkpoints it keeps (weights and Adam's two moments: 3 × `weightBytes`).
 */
export function estimateWrites(options: {
  startEpoch: number;
  epochs: number;
  weightsEvery: number;
  checkpointEvery: number;
  keepLast: number;
  savePt: boolean;
  evalEvery: number;
  weightBytes: number;
}): WriteEstimate {
  const { startEpoch, epochs, weightBytes } = options;
  const weightFiles = epochsWriting(startEpoch, epochs, options.weightsEvery) * (options.savePt ? 2 : 1) + (options.evalEvery > 0 ? 1 : 0);
  const written = epochsWriting(startEpoch, epochs, options.checkpointEvery);
  const checkpoints = options.keepLast > 0 ? Math.min(written, options.keepLast + 1) : written;
  const checkpointBytes = 3 * weightBytes;
  return { weightFiles, weightFileBytes: weightBytes, checkpoints, checkpointBytes, bytes: weightFiles * weightBytes + checkpoints * checkpointBytes };
}

export function formatBytes(bytes: number): string {
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  if (value >= 1000) return `${bytes.toExponential(2)} bytes`;
  return unit === 0 ? `${Math.round(value)} bytes` : `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${units[unit]}`;
}

/** Bytes free to this user on the filesystem of `dir`; undefined where statfs is not available. */
export async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const stats = await fs.statfs(dir);
    return stats.bavail * stats.bsize;
  } catch {
    return undefined;
  }
}

/** Refuses, naming the numbers and what to change, a run whose files would not fit in `free` bytes. */
export function checkDiskSpace(out: string, estimate: WriteEstimate, free: number, savePt: boolean): void {
  if (estimate.bytes <= free) return;
  const count = (n: number) => (n >= 1e6 ? n.toExponential(2) : String(n));
  throw new Error(
    `not enough disk space for this run: it would write about ${formatBytes(estimate.bytes)} to ${out} ` +
      `(${count(estimate.weightFiles)} weight files of ${formatBytes(estimate.weightFileBytes)}${savePt ? ', .safetensors and .pt' : ''}, ` +
      `and up to ${count(estimate.checkpoints)} checkpoints of ${formatBytes(estimate.checkpointBytes)} at once), ` +
      `and ${formatBytes(free)} is free there. Write fewer weight files (--weights-every 0: the last epoch's only; ` +
      `--weights-every N: every N epochs), keep fewer checkpoints (--keep-last 2), train fewer --epochs, or choose another --out.`,
  );
}
