// Where a run keeps its files, and how checkpoints are named, found and pruned.
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';

import { canonicalModelName } from '../model/config.js';

export const CONFIG_FILE = 'config.json';
export const METRICS_FILE = 'metrics.jsonl';
/** The worst-ranked queries of the latest retrieval evaluation (caption data), for the report. */
export const RETRIEVAL_WORST_FILE = 'retrieval-worst.json';
export const CHECKPOINT_DIR = 'checkpoints';

export interface CheckpointPosition {
  /** Epochs completed. */
  epoch: number;
  /** Batches completed in the epoch after those (0 at an epoch boundary). */
  batch: number;
}

const CHECKPOINT_NAME = /^checkpoint-epoch(\d+)-batch(\d+)\.safetensors$/;

export function checkpointPath(out: string, at: CheckpointPosition): string {
  return path.join(out, CHECKPOINT_DIR, `checkpoint-epoch${String(at.epoch).padStart(4, '0')}-batch${String(at.batch).padStart(6, '0')}.safetensors`);
}

function fileSafe(name: string): string {
  return name.replace(/[^\w.-]+/g, '-');
}

/** Weight-file prefix: a released model's name made file-safe (`ViT-B/32` → ViT-B-32), else the file's stem. */
export function runName(model: string): string {
  if (canonicalModelName(model) && !existsSync(model)) return fileSafe(model);
  return fileSafe(path.basename(model).replace(/\.(json|pt|pth|safetensors)$/, ''));
}

export function weightsPath(out: string, name: string, epoch: number, ext: 'safetensors' | 'pt'): string {
  return path.join(out, `${name}_epoch_${epoch}.${ext}`);
}

/** The run's checkpoints, oldest first. */
export async function listCheckpoints(out: string): Promise<Array<CheckpointPosition & { file: string }>> {
  const dir = path.join(out, CHECKPOINT_DIR);
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  return names
    .map((name) => ({ name, match: CHECKPOINT_NAME.exec(name) }))
    .filter((e): e is { name: string; match: RegExpExecArray } => e.match !== null)
    .map((e) => ({ file: path.join(dir, e.name), epoch: Number(e.match[1]), batch: Number(e.match[2]) }))
    .sort((a, b) => a.epoch - b.epoch || a.batch - b.batch);
}

/** `--resume latest` → the newest checkpoint in the run; a path → itself. */
export async function resolveResume(resume: string, out: string): Promise<string> {
  if (resume !== 'latest') return path.resolve(resume);
  const all = await listCheckpoints(out);
  if (all.length === 0) throw new Error(`--resume latest: no checkpoint in ${path.join(out, CHECKPOINT_DIR)}`);
  return all[all.length - 1]!.file;
}

/**
 * Deletes the oldest checkpoints until `keep` are left (keep 0: delete none), never one of `protect`
 * (the checkpoint just written, the one the run resumed from: a resume from an older checkpoint
 * writes checkpoints older than those of the continuation it leaves behind), nor the newest.
 */
export async function pruneCheckpoints(out: string, keep: number, protect: string[] = []): Promise<string[]> {
  if (keep <= 0) return [];
  const all = await listCheckpoints(out);
  const kept = new Set([...protect.map((p) => path.resolve(p)), ...all.slice(-1).map((c) => path.resolve(c.file))]);
  let left = all.length;
  const doomed: string[] = [];
  for (const c of all) {
    if (left <= keep) break;
    if (kept.has(path.resolve(c.file))) continue;
    doomed.push(c.file);
    left--;
  }
  await Promise.all(doomed.map((file) => fs.rm(file, { force: true })));
  return doomed;
}
