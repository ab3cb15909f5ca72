// A configuration kept beside weights that carry none. A torch.save state dict cannot say how many
// heads its text transformer has (the reference's build_model guesses width / 64); the files next to
// it often can: an open_clip `open_clip_config.json`, a `config.json` in our (the reference's) terms,
// or a safetensors file of the same model whose metadata holds its config. A candidate is used only
// when every shape-derived field agrees with what the weights show.
import { promises as fs } from 'node:fs';
import path from 'node:path';

import { readSafetensorsMetadata } from '../io/safetensors-header.js';
import type { ClipConfig } from './config.js';

export interface SidecarConfig {
  config: ClipConfig;
  file: string;
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The metadata `config` of a safetensors file, reading only its header. */
async function safetensorsConfig(file: string): Promise<unknown> {
  const config = (await readSafetensorsMetadata(file))?.config;
  try {
    return config ? JSON.parse(config) : undefined;
  } catch {
    return undefined;
  }
}

/** open_clip's model_cfg → the reference's CLIP arguments. */
function fromOpenClip(value: unknown): ClipConfig | undefined {
  const cfg = (value as { model_cfg?: Record<string, any> } | undefined)?.model_cfg;
  if (!cfg?.vision_cfg || !cfg?.text_cfg) return undefined;
  const v = cfg.vision_cfg;
  const t = cfg.text_cfg;
  return {
    embed_dim: cfg.embed_dim,
    image_resolution: v.image_size,
    vision_layers: v.layers,
    vision_width: v.width,
    vision_patch_size: v.patch_size ?? null,
    context_length: t.context_length ?? 77,
    vocab_size: t.vocab_size ?? 49408,
    transformer_width: t.width,
    transformer_heads: t.heads,
    transformer_layers: t.layers,
  };
}

function isClipConfig(value: unknown): value is ClipConfig {
  const c = value as Partial<ClipConfig> | undefined;
  return typeof c?.embed_dim === 'number' && typeof c.transformer_heads === 'number' && c.vision_layers !== undefined;
}

/** Same architecture as far as the weights' shapes can tell (everything but the text head count). */
function agreesWithShapes(candidate: ClipConfig, inferred: ClipConfig): boolean {
  const { transformer_heads: _a, ...a } = candidate;
  const { transformer_heads: _b, ...b } = inferred;
  return JSON.stringify({ ...a, vision_patch_size: a.vision_patch_size ?? null }) === JSON.stringify({ ...b, vision_patch_size: b.vision_patch_size ?? null });
}

export async function findSidecarConfig(weights: string, inferred: ClipConfig): Promise<SidecarConfig | undefined> {
  const dir = path.dirname(path.resolve(weights));
  const stem = path.basename(weights).split('.')[0]!;
  const candidates: Array<{ file: string; read: () => Promise<ClipConfig | undefined> }> = [
    { file: path.join(dir, 'open_clip_config.json'), read: async () => fromOpenClip(await readJson(path.join(dir, 'open_clip_config.json'))) },
    { file: path.join(dir, 'config.json'), read: async () => {
      const value = await readJson(path.join(dir, 'config.json'));
      return isClipConfig(value) ? value : undefined;
    } },
  ];
  const siblings = await fs.readdir(dir).catch(() => [] as string[]);
  for (const name of siblings.sort()) {
    if (!name.endsWith('.safetensors') || name.split('.')[0] !== stem) continue;
    const file = path.join(dir, name);
    if (file === path.resolve(weights)) continue;
    candidates.push({ file, read: async () => {
      const value = await safetensorsConfig(file);
      return isClipConfig(value) ? value : undefined;
    } });
  }
  for (const candidate of candidates) {
    const config = await candidate.read();
    if (config && agreesWithShapes(config, inferred)) return { config, file: candidate.file };
  }
  return undefined;
}
