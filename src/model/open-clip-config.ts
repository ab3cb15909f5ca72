// open_clip's configuration (the `model_cfg` and `preprocess_cfg` of an `open_clip_config.json`, or a
// built-in model config plus a pretrained tag's preprocessing) in the reference's terms: the
// ClipConfig the native model is built from. Only a plain CLIP is accepted (OpenAI's ViT or ModifiedResNet
// towers, any widths, depths, head widths and MLP ratios, QuickGELU or GELU); every open_clip option
// that builds something else (timm or Hugging Face towers, LayerScale, attentional pooling, SigLIP's
// logit bias, CoCa, other pools or norms) is refused by name rather than loaded into the wrong model.
import { OPENAI_IMAGE_MEAN, OPENAI_IMAGE_STD, type ClipConfig, type ResizeMode } from './config.js';

type Json = Record<string, unknown>;

/** open_clip's `preprocess_cfg` (transform.py PreprocessCfg), the fields clip-native uses. */
export interface OpenClipPreprocess {
  mean?: number[];
  std?: number[];
  interpolation?: string;
  resize_mode?: string;
  size?: number | number[];
  fill_color?: number;
  mode?: string;
}

// Each option open_clip's CLIPVisionCfg / CLIPTextCfg / model_cfg knows, with the values under which
// it builds the plain CLIP (open_clip 3.3 model.py). `undefined` in a list: absent or null is fine.
const PLAIN_VISION: Record<string, unknown[]> = {
  ls_init_value: [undefined, null],
  attentional_pool: [undefined, false],
  no_ln_pre: [undefined, false],
  pos_embed_type: [undefined, 'learnable'],
  final_ln_after_pool: [undefined, false],
  pool_type: [undefined, 'tok'],
  output_tokens: [undefined, false],
  act_kwargs: [undefined, null],
  norm_kwargs: [undefined, null],
  block_type: [undefined, null, 'default'],
  qk_norm: [undefined, false],
  scaled_cosine_attn: [undefined, false],
  scale_heads: [undefined, false],
  scale_attn_inner: [undefined, false],
  scale_attn: [undefined, false],
  scale_fc: [undefined, false],
  timm_model_name: [undefined, null],
  input_patchnorm: [undefined, false],
  global_average_pool: [undefined, false],
  proj_bias: [undefined, false],
};
// Read (layers, width, …) or harmless here: training-time patch dropout, attentional-pool sizes
// that only matter when attentional_pool is on, timm options that only matter with a timm tower.
const USED_VISION = new Set(['layers', 'width', 'head_width', 'mlp_ratio', 'patch_size', 'image_size', 'patch_dropout',
  'attn_pooler_queries', 'attn_pooler_heads', 'timm_model_pretrained', 'timm_pool', 'timm_proj', 'timm_proj_bias', 'timm_drop', 'timm_drop_path']);

const PLAIN_TEXT: Record<string, unknown[]> = {
  hf_tokenizer_name: [undefined, null],
  tokenizer_mode: [undefined, null],
  tokenizer_kwargs: [undefined, null],
  ls_init_value: [undefined, null],
  embed_cls: [undefined, false],
  pad_id: [undefined, 0],
  no_causal_mask: [undefined, false],
  final_ln_after_pool: [undefined, false],
  pool_type: [undefined, 'argmax'],
  proj_bias: [undefined, false],
  proj_type: [undefined, 'linear'],
  output_tokens: [undefined, false],
  act_kwargs: [undefined, null],
  norm_kwargs: [undefined, null],
  block_type: [undefined, null, 'default'],
  qk_norm: [undefined, false],
  scaled_cosine_attn: [undefined, false],
  scale_heads: [undefined, false],
  scale_attn_inner: [undefined, false],
  scale_attn: [undefined, false],
  scale_fc: [undefined, false],
  hf_model_name: [undefined, null],
};
const USED_TEXT = new Set(['context_length', 'vocab_size', 'width', 'heads', 'layers', 'mlp_ratio', 'eos_id',
  'hf_model_pretrained', 'hf_proj_type', 'hf_pooler_type']);

const PLAIN_MODEL: Record<string, unknown[]> = {
  custom_text: [undefined, false],
  init_logit_bias: [undefined, null],
  nonscalar_logit_scale: [undefined, false],
  multimodal_cfg: [undefined, null],
};
// cast_dtype is a precision choice; init_logit_scale only initialises (the weights carry logit_scale).
const USED_MODEL = new Set(['embed_dim', 'vision_cfg', 'text_cfg', 'quick_gelu', 'cast_dtype', 'init_logit_scale', 'output_dict']);

function checkPlain(section: Json, plain: Record<string, unknown[]>, used: Set<string>, where: string, label: string): void {
  for (const [key, value] of Object.entries(section)) {
    if (used.has(key)) continue;
    const allowed = Object.hasOwn(plain, key) ? plain[key] : undefined;
    if (!allowed) throw new Error(`${label}: ${where}.${key} is an open_clip option clip-native does not know; only a plain CLIP can be built`);
    if (!allowed.some((a) => (a === undefined ? value === undefined : value === a))) {
      throw new Error(`${label}: ${where}.${key} = ${JSON.stringify(value)} builds a model other than a plain CLIP, which clip-native cannot build`);
    }
  }
}

function positiveInt(value: unknown, where: string, label: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) throw new Error(`${label}: ${where} must be a positive integer, got ${JSON.stringify(value)}`);
  return value;
}

function ratio(value: unknown, where: string, label: string): number {
  if (value === undefined) return 4;
  if (typeof value !== 'number' || !(value > 0)) throw new Error(`${label}: ${where} must be a positive number, got ${JSON.stringify(value)}`);
  return value;
}

function triple(value: unknown, where: string, label: string): [number, number, number] {
  if (!Array.isArray(value) || value.length !== 3 || !value.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new Error(`${label}: ${where} must be three numbers, got ${JSON.stringify(value)}`);
  }
  return [value[0], value[1], value[2]];
}

function squareSize(value: unknown, where: string, label: string): number {
  if (Array.isArray(value) && value.length === 2 && value[0] === value[1]) return positiveInt(value[0], where, label);
  if (Array.isArray(value)) throw new Error(`${label}: ${where} = ${JSON.stringify(value)} is not square; clip-native builds square inputs only`);
  return positiveInt(value, where, label);
}

/**
 * open_clip's model_cfg (+ preprocess_cfg) → ClipConfig. `label` names the source in errors.
 * Widths follow open_clip's `_build_vision_tower` / `_build_text_tower`: ViT heads width / head_width,
 * ModifiedResNet heads width × 32 / head_width, MLP widths int(width × mlp_ratio).
 */
export function clipConfigFromOpenClip(modelCfg: unknown, preprocess: OpenClipPreprocess = {}, label = 'open_clip config'): ClipConfig {
  if (!modelCfg || typeof modelCfg !== 'object') throw new Error(`${label}: no model_cfg`);
  const cfg = modelCfg as Json;
  const vision = cfg.vision_cfg as Json | undefined;
  const text = cfg.text_cfg as Json | undefined;
  if (!vision || typeof vision !== 'object' || !text || typeof text !== 'object') throw new Error(`${label}: model_cfg needs vision_cfg and text_cfg`);
  checkPlain(cfg, PLAIN_MODEL, USED_MODEL, 'model_cfg', label);
  checkPlain(vision, PLAIN_VISION, USED_VISION, 'vision_cfg', label);
  checkPlain(text, PLAIN_TEXT, USED_TEXT, 'text_cfg', label);

  const resnet = Array.isArray(vision.layers);
  const visionWidth = positiveInt(vision.width ?? 768, 'vision_cfg.width', label);
  const headWidth = positiveInt(vision.head_width ?? 64, 'vision_cfg.head_width', label);
  let visionLayers: ClipConfig['vision_layers'];
  if (resnet) {
    const layers = vision.layers as unknown[];
    if (layers.length !== 4) throw new Error(`${label}: a ResNet vision_cfg.layers must list four stage depths, got ${JSON.stringify(layers)}`);
    visionLayers = layers.map((d, i) => positiveInt(d, `vision_cfg.layers[${i}]`, label)) as [number, number, number, number];
  } else {
    visionLayers = positiveInt(vision.layers ?? 12, 'vision_cfg.layers', label);
  }
  const textWidth = positiveInt(text.width ?? 512, 'text_cfg.width', label);
  const config: ClipConfig = {
    embed_dim: positiveInt(cfg.embed_dim, 'model_cfg.embed_dim', label),
    image_resolution: squareSize(vision.image_size ?? 224, 'vision_cfg.image_size', label),
    vision_layers: visionLayers,
    vision_width: visionWidth,
    vision_patch_size: resnet ? null : positiveInt(vision.patch_size ?? 16, 'vision_cfg.patch_size', label),
    context_length: positiveInt(text.context_length ?? 77, 'text_cfg.context_length', label),
    vocab_size: positiveInt(text.vocab_size ?? 49408, 'text_cfg.vocab_size', label),
    transformer_width: textWidth,
    transformer_heads: positiveInt(text.heads ?? 8, 'text_cfg.heads', label),
    transformer_layers: positiveInt(text.layers ?? 12, 'text_cfg.layers', label),
    activation: cfg.quick_gelu === true ? 'quick_gelu' : 'gelu',
  };
  const heads = resnet ? (visionWidth * 32) / headWidth : visionWidth / headWidth;
  if (!Number.isInteger(heads)) throw new Error(`${label}: vision width ${visionWidth} is not a multiple of head_width ${headWidth}`);
  config.vision_heads = heads;
  if (!resnet) config.vision_mlp_width = Math.trunc(visionWidth * ratio(vision.mlp_ratio, 'vision_cfg.mlp_ratio', label));
  else if (vision.mlp_ratio !== undefined && vision.mlp_ratio !== 4) throw new Error(`${label}: vision_cfg.mlp_ratio has no meaning for a ResNet`);
  config.transformer_mlp_width = Math.trunc(textWidth * ratio(text.mlp_ratio, 'text_cfg.mlp_ratio', label));

  if (preprocess.mean !== undefined) config.image_mean = triple(preprocess.mean, 'preprocess_cfg.mean', label);
  if (preprocess.std !== undefined) config.image_std = triple(preprocess.std, 'preprocess_cfg.std', label);
  if (preprocess.resize_mode !== undefined) {
    if (!['shortest', 'longest', 'squash'].includes(preprocess.resize_mode)) {
      throw new Error(`${label}: preprocess_cfg.resize_mode '${preprocess.resize_mode}' is none of shortest, longest, squash`);
    }
    config.image_resize_mode = preprocess.resize_mode as ResizeMode;
  }
  if (preprocess.interpolation !== undefined && preprocess.interpolation !== 'bicubic') {
    throw new Error(`${label}: preprocess_cfg.interpolation '${preprocess.interpolation}': clip-native resizes bicubically only`);
  }
  if (preprocess.mode !== undefined && preprocess.mode !== 'RGB') throw new Error(`${label}: preprocess_cfg.mode '${preprocess.mode}': RGB only`);
  if (preprocess.fill_color !== undefined && preprocess.fill_color !== 0) throw new Error(`${label}: preprocess_cfg.fill_color ${preprocess.fill_color}: clip-native pads with 0`);
  if (preprocess.size !== undefined && squareSize(preprocess.size, 'preprocess_cfg.size', label) !== config.image_resolution) {
    throw new Error(`${label}: preprocess_cfg.size ${JSON.stringify(preprocess.size)} differs from vision_cfg.image_size ${config.image_resolution}`);
  }
  return config;
}

/** open_clip's PreprocessCfg defaults (transform.py): OpenAI's mean and std, bicubic, shortest side. */
export const OPEN_CLIP_PREPROCESS_DEFAULTS: OpenClipPreprocess = {
  mean: [...OPENAI_IMAGE_MEAN],
  std: [...OPENAI_IMAGE_STD],
  interpolation: 'bicubic',
  resize_mode: 'shortest',
};

/** An `open_clip_config.json`'s content → ClipConfig (model_cfg + preprocess_cfg as the file states them). */
export function clipConfigFromOpenClipJson(json: unknown, label = 'open_clip_config.json'): ClipConfig {
  const root = json as { model_cfg?: unknown; preprocess_cfg?: OpenClipPreprocess } | undefined;
  if (!root || typeof root !== 'object' || !root.model_cfg) throw new Error(`${label}: no model_cfg`);
  // What the file states only (config-sources.ts tells stated from defaulted); open_clip merges it over
  // OPEN_CLIP_PREPROCESS_DEFAULTS, as resolve-name.ts does for hf-hub: names.
  return clipConfigFromOpenClip(root.model_cfg, root.preprocess_cfg ?? {}, label);
}
