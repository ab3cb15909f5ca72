// Model names resolved to local files: OpenAI's names (pretrained.ts), open_clip's `ARCH:TAG` names
// (open-clip-registry.ts) and `hf-hub:org/name` repositories, the last two found in the Hugging Face
// cache or downloaded into it (hf-hub.ts). The result is a weight file or a model folder for
// loadModel to read, with the architecture when the name fixes it (open_clip's model and
// preprocessing configuration, which shapes alone cannot tell: QuickGELU or GELU, mean and std).
import { promises as fs } from 'node:fs';

import type { ProgressCallback } from '../util/download.js';
import { canonicalModelName, type ClipConfig } from './config.js';
import { parseHubName, resolveHubFiles, type HubName, type HubOptions } from './hf-hub.js';
import { clipConfigFromOpenClipJson, OPEN_CLIP_PREPROCESS_DEFAULTS, type OpenClipPreprocess } from './open-clip-config.js';
import { openClipTagConfig, parseOpenClipName, quickGeluOfRepo } from './open-clip-registry.js';
import { resolvePretrained, type ResolveOptions } from './pretrained.js';

export interface ResolveNameOptions extends ResolveOptions, Omit<HubOptions, 'progressCallback' | 'cacheDir'> {}

/** A name resolved to local files. */
export interface ResolvedModel {
  /** A weight file, or a model folder (a transformers `save_pretrained` snapshot) for the loader to read. */
  path: string;
  /** The architecture the name fixes (open_clip names); absent: the loader reads it from the files. */
  config?: ClipConfig;
  /** How the name was resolved (the repository and commit), for messages. */
  source: string;
  /** For OpenAI's releases (`ViT-B/32`, `ViT-B-32:openai`): OpenAI's name of it. */
  openaiRelease?: string;
}

let defaultProgress: ProgressCallback | undefined;

/** The progress callback of downloads whose caller passes none (the command line puts its progress bar here). */
export function setDownloadProgress(callback: ProgressCallback | undefined): void {
  defaultProgress = callback;
}

const OPEN_CLIP_WEIGHTS = ['open_clip_model.safetensors', 'open_clip_pytorch_model.bin'];
const OPEN_CLIP_CONFIG = 'open_clip_config.json';
const HF_CONFIG = 'config.json';
const HF_WEIGHTS = ['model.safetensors', 'pytorch_model.bin'];
const HF_EXTRAS = ['preprocessor_config.json'];

/** open_clip's files, safetensors preferred (as open_clip's download_pretrained_from_hf prefers them). */
function pickOpenClip(requireConfig: boolean) {
  return (files: ReadonlySet<string>): string[] | undefined => {
    const weights = OPEN_CLIP_WEIGHTS.find((f) => files.has(f));
    if (!weights) return undefined;
    if (files.has(OPEN_CLIP_CONFIG)) return [OPEN_CLIP_CONFIG, weights];
    return requireConfig ? undefined : [weights];
  };
}

/** A transformers CLIPModel: config.json and one weight file, and its preprocessor config when there. */
function pickTransformers(files: ReadonlySet<string>): string[] | undefined {
  const weights = HF_WEIGHTS.find((f) => files.has(f));
  if (!weights || !files.has(HF_CONFIG)) return undefined;
  return [HF_CONFIG, weights, ...HF_EXTRAS.filter((f) => files.has(f))];
}

const weightsOf = (files: Record<string, string>) => files[OPEN_CLIP_WEIGHTS.find((f) => files[f])!]!;

/**
 * `hf-hub:org/name`: open_clip's files when the repository has them (its config and weights, as
 * open_clip's own `hf-hub:` names load), else a transformers CLIPModel, returned as its snapshot folder.
 */
async function resolveHubModel(name: string, hub: HubName, options: HubOptions): Promise<ResolvedModel> {
  const pick = (files: ReadonlySet<string>) => pickOpenClip(true)(files) ?? pickTransformers(files);
  const needed = `${OPEN_CLIP_CONFIG} with ${OPEN_CLIP_WEIGHTS.join(' or ')} (open_clip), or ${HF_CONFIG} with ${HF_WEIGHTS.join(' or ')} (transformers)`;
  const found = await resolveHubFiles(name, hub, pick, needed, options);
  const at = `${hub.repo}@${found.commit}`;
  const configFile = found.files[OPEN_CLIP_CONFIG];
  if (!configFile) return { path: found.snapshot, source: `transformers model ${at}` };
  // preprocess_cfg over open_clip's defaults, as open_clip's create_model reads an hf-hub: config.
  const json = JSON.parse(await fs.readFile(configFile, 'utf8')) as { model_cfg?: unknown; preprocess_cfg?: OpenClipPreprocess };
  const config = clipConfigFromOpenClipJson({ ...json, preprocess_cfg: { ...OPEN_CLIP_PREPROCESS_DEFAULTS, ...(json?.preprocess_cfg ?? {}) } }, `${name} (${configFile})`);
  let source = `open_clip model ${at}`;
  // A repository open_clip lists under a pretrained tag: the activation its weights were trained with.
  const quickGelu = quickGeluOfRepo(hub.repo);
  if (quickGelu !== undefined && (config.activation === 'quick_gelu') !== quickGelu) {
    config.activation = quickGelu ? 'quick_gelu' : 'gelu';
    source += `, ${config.activation} as open_clip's pretrained tag for it states`;
  }
  return { path: weightsOf(found.files), config, source };
}

/**
 * A model name resolved to local files: `hf-hub:org/name[@revision]`, open_clip's `ARCH:TAG`
 * (`ViT-B-32:laion2b_s34b_b79k`, case-insensitive, `ViT-B/32` spellings too; `ARCH:openai` is OpenAI's
 * release) or OpenAI's names (`ViT-B/32`).
 */
export async function resolvePretrainedModel(name: string, options: ResolveNameOptions = {}): Promise<ResolvedModel> {
  const withProgress = { ...options, progressCallback: options.progressCallback ?? defaultProgress };
  const hub = parseHubName(name);
  if (hub) return resolveHubModel(name, hub, withProgress);
  const tagged = parseOpenClipName(name);
  if (tagged?.openaiName) {
    const release = tagged.openaiName;
    return { path: await resolvePretrained(release, withProgress), source: `OpenAI's ${release} (${tagged.name})`, openaiRelease: release };
  }
  if (tagged) {
    const repo = tagged.entry.hub!;
    const found = await resolveHubFiles(name, { repo, revision: 'main' }, pickOpenClip(false), `open_clip's ${OPEN_CLIP_WEIGHTS.join(' or ')}`, withProgress);
    return { path: weightsOf(found.files), config: openClipTagConfig(tagged), source: `open_clip ${tagged.name} (${repo}@${found.commit})` };
  }
  const path = await resolvePretrained(name, withProgress);
  const release = canonicalModelName(name) ?? name;
  return { path, source: `OpenAI's ${release}`, openaiRelease: release };
}
