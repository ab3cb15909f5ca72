// Writing embeddings to disk: `.npy` matrices or one safetensors file, each with a JSON-lines index
// that maps a row to the image file or text it came from.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { encodeNpy } from '../io/npy.js';
import { encodeSafetensors, type NamedFloat32 } from '../io/safetensors-write.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { Matrix } from './matrix.js';

export type EmbeddingFormat = 'npy' | 'safetensors';

export interface EmbeddingSet {
  /** 'image' or 'text': names the files (image_embeddings.npy, images.jsonl …). */
  kind: 'image' | 'text';
  features: Matrix;
  /** One index record per row, e.g. {file} or {text, line}. */
  index: Array<Record<string, unknown>>;
}

export interface WrittenEmbeddings {
  files: string[];
}

export async function writeEmbeddings(
  outDir: string,
  sets: readonly EmbeddingSet[],
  format: EmbeddingFormat,
  metadata: Record<string, string> = {},
): Promise<WrittenEmbeddings> {
  if (format !== 'npy' && format !== 'safetensors') throw new Error(`--format must be npy or safetensors, got ${JSON.stringify(format)}`);
  await fs.mkdir(outDir, { recursive: true });
  const files: string[] = [];
  const write = async (name: string, data: string | Uint8Array) => {
    const file = path.join(outDir, name);
    await writeFileAtomic(file, data);
    files.push(file);
  };
  for (const set of sets) {
    if (set.index.length !== set.features.shape[0]) throw new Error(`${set.kind} embeddings: ${set.features.shape[0]} rows but ${set.index.length} index records`);
    await write(`${set.kind}s.jsonl`, set.index.map((record, row) => JSON.stringify({ row, ...record })).join('\n') + '\n');
    if (format === 'npy') await write(`${set.kind}_embeddings.npy`, encodeNpy(set.features));
  }
  if (format === 'safetensors') {
    const tensors: NamedFloat32[] = sets.map((set) => ({ name: `${set.kind}_embeddings`, data: set.features.data, shape: set.features.shape }));
    await write('embeddings.safetensors', encodeSafetensors(tensors, metadata));
  }
  return { files };
}
