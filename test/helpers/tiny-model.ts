import { promises as fs } from 'node:fs';
import path from 'node:path';

/** The smallest CLIP the tests train from random weights (32 px ViT, one layer per tower). */
export const TINY_MODEL = {
  embed_dim: 32,
  image_resolution: 32,
  vision_layers: 1,
  vision_width: 64,
  vision_patch_size: 16,
  context_length: 77,
  vocab_size: 49408,
  transformer_width: 32,
  transformer_heads: 2,
  transformer_layers: 1,
};

/**
 * A 32 px ViT with 8 px patches (16 of them), two layers per tower, 64 wide: what the end-to-end runs
 * (train-e2e, caption-retrieval-e2e) train from random weights, large enough to learn their data.
 */
export const SMALL_MODEL = {
  embed_dim: 64,
  image_resolution: 32,
  vision_layers: 2,
  vision_width: 64,
  vision_patch_size: 8,
  context_length: 77,
  vocab_size: 49408,
  transformer_width: 64,
  transformer_heads: 4,
  transformer_layers: 2,
};

/** TINY_MODEL as a JSON file in `dir`, for `--model <file> --init random`. */
export async function writeTinyModel(dir: string): Promise<string> {
  const file = path.join(dir, 'tiny.json');
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(file, JSON.stringify(TINY_MODEL));
  return file;
}
