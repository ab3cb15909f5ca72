// Where a model's weights are: one file, or a folder in one of the layouts other libraries write —
// a Hugging Face model folder (model.safetensors, a sharded model.safetensors.index.json,
// pytorch_model.bin or its sharded index), an open_clip checkpoint folder (open_clip_model.safetensors
// or open_clip_pytorch_model.bin beside open_clip_config.json), or the Hugging Face hub cache
// (models--org--name/ whose refs/main names the snapshot under snapshots/). The configuration files
// of the folder (or of the single file's folder) are read by config-sources.ts.
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { readJsonFile } from './config-sources.js';

export interface WeightLocation {
  /** The file or folder asked for. */
  given: string;
  /** The folder whose configuration files belong to the weights. */
  dir: string;
  /** One weight file, or the shards of one model. */
  files: string[];
  /** Which layout was found: 'file', or the name looked up in the folder (`model.safetensors.index.json`, …). */
  layout: string;
  /** A folder was given (not a single file). */
  folder: boolean;
}

/** The weight files looked for in a model folder, in this order (safetensors before pickles). */
export const FOLDER_WEIGHTS = [
  'model.safetensors',
  'model.safetensors.index.json',
  'open_clip_model.safetensors',
  'pytorch_model.bin',
  'pytorch_model.bin.index.json',
  'open_clip_pytorch_model.bin',
] as const;
const WEIGHT_EXTENSIONS = ['.safetensors', '.bin', '.pt', '.pth'];
const MAX_SHARDS = 100_000;

async function isFile(file: string): Promise<boolean> {
  return fs.stat(file).then((s) => s.isFile(), () => false);
}

async function isDirectory(dir: string): Promise<boolean> {
  return fs.stat(dir).then((s) => s.isDirectory(), () => false);
}

/**
 * A shard named by an index must be a file inside the index's folder: a relative name without `..`
 * segments, backslashes or NUL. (A hub snapshot's files are symlinks into ../../blobs; their names are
 * inside, which is what counts.)
 */
function shardPath(dir: string, name: unknown, index: string): string {
  if (typeof name !== 'string' || name === '') throw new Error(`${index}: a weight_map entry is ${JSON.stringify(name)}, not a file name`);
  const bad =
    path.isAbsolute(name) || path.win32.isAbsolute(name) || name.includes('\\') || name.includes('\0') || name.split('/').includes('..');
  const resolved = path.resolve(dir, name);
  if (bad || !resolved.startsWith(dir + path.sep)) {
    throw new Error(`${index}: shard '${name}' is not a file inside ${dir}; an index may only name files in its own folder`);
  }
  return resolved;
}

/** The shard files of a Hugging Face index (`weight_map`: tensor name → file), each once, in order. */
export async function readShardIndex(index: string): Promise<string[]> {
  const dir = path.dirname(index);
  const json = (await readJsonFile(index)) as { weight_map?: unknown } | null;
  const map = json?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new Error(`${index}: no weight_map object (tensor name → shard file)`);
  const files: string[] = [];
  const seen = new Set<string>();
  for (const name of Object.values(map)) {
    const file = shardPath(dir, name, index);
    if (seen.has(file)) continue;
    seen.add(file);
    if (files.push(file) > MAX_SHARDS) throw new Error(`${index}: more than ${MAX_SHARDS} shards`);
  }
  if (files.length === 0) throw new Error(`${index}: its weight_map names no shard`);
  for (const file of files) {
    if (!(await isFile(file))) throw new Error(`${index} names the shard ${path.basename(file)}, which is missing from ${dir}`);
  }
  return files;
}

/**
 * A Hugging Face hub cache entry (`models--org--name/`): the snapshot `refs/main` names, or the only
 * snapshot there is. Undefined when `dir` is not one.
 */
async function hubSnapshot(dir: string): Promise<string | undefined> {
  const snapshots = path.join(dir, 'snapshots');
  if (!(await isDirectory(snapshots))) return undefined;
  const ref = path.join(dir, 'refs', 'main');
  if (await isFile(ref)) {
    const revision = (await fs.readFile(ref, 'utf8')).trim();
    if (!/^[0-9A-Za-z._-]+$/.test(revision) || revision === '.' || revision === '..') {
      throw new Error(`${ref} holds '${revision.slice(0, 80)}', not a revision`);
    }
    const snapshot = path.join(snapshots, revision);
    if (!(await isDirectory(snapshot))) throw new Error(`${ref} names the revision ${revision}, but ${snapshot} is missing`);
    return snapshot;
  }
  const revisions = (await fs.readdir(snapshots)).filter((name) => !name.startsWith('.')).sort();
  if (revisions.length === 1) return path.join(snapshots, revisions[0]!);
  if (revisions.length === 0) throw new Error(`${dir} is a Hugging Face hub cache entry without any snapshot in ${snapshots}`);
  throw new Error(`${dir} is a Hugging Face hub cache entry without refs/main and with ${revisions.length} snapshots (${revisions.join(', ')}); pass one of ${snapshots}/<revision>`);
}

/** The weights in a model folder (see FOLDER_WEIGHTS), else its only weight file. */
async function folderWeights(given: string, dir: string): Promise<WeightLocation> {
  for (const name of FOLDER_WEIGHTS) {
    const file = path.join(dir, name);
    if (!(await isFile(file))) continue;
    const files = name.endsWith('.index.json') ? await readShardIndex(file) : [file];
    return { given, dir, files, layout: name, folder: true };
  }
  const entries = await fs.readdir(dir);
  const candidates: string[] = [];
  for (const name of entries.sort()) {
    if (WEIGHT_EXTENSIONS.some((ext) => name.endsWith(ext)) && (await isFile(path.join(dir, name)))) candidates.push(name);
  }
  if (candidates.length === 1) return { given, dir, files: [path.join(dir, candidates[0]!)], layout: candidates[0]!, folder: true };
  const lookedFor = `${FOLDER_WEIGHTS.join(', ')}, or a single ${WEIGHT_EXTENSIONS.map((e) => `*${e}`).join(' / ')} file`;
  if (candidates.length > 1) {
    throw new Error(`${dir} holds none of ${FOLDER_WEIGHTS.join(', ')} and several weight files (${candidates.join(', ')}); pass the one to load`);
  }
  throw new Error(`${dir} holds no model weights: looked for ${lookedFor}`);
}

/** Where the weights are for a file or folder path (which must exist). */
export async function locateWeights(given: string): Promise<WeightLocation> {
  const resolved = path.resolve(given);
  if (!(await isDirectory(resolved))) return { given, dir: path.dirname(resolved), files: [resolved], layout: 'file', folder: false };
  const snapshot = await hubSnapshot(resolved);
  return folderWeights(given, snapshot ?? resolved);
}
