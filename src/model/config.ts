// CLIP architectures in the reference's own terms (openai/CLIP `CLIP.__init__` arguments), the
// format model files carry in their metadata.

export interface ClipConfig {
  embed_dim: number;
  image_resolution: number;
  /** An integer for a ViT (depth), four integers for a ResNet (stage depths). */
  vision_layers: number | [number, number, number, number];
  vision_width: number;
  /** ViT patch size; null for ResNets. */
  vision_patch_size: number | null;
  context_length: number;
  vocab_size: number;
  transformer_width: number;
  transformer_heads: number;
  transformer_layers: number;

  // What other families than OpenAI's need (open_clip, Hugging Face). Absent: OpenAI's value.
  /** The MLP activation: QuickGELU (OpenAI, open_clip's `-quickgelu` models) or exact erf GELU (`nn.GELU()`). */
  activation?: Activation;
  /** Vision attention heads (ViT blocks, or the ResNet attention pool); absent: the reference's rule
   * (ViT width / 64; ResNet width × 32 / 64). */
  vision_heads?: number;
  /** Hidden width of each MLP; absent: 4 × the tower's width. */
  vision_mlp_width?: number;
  transformer_mlp_width?: number;
  /** The normalisation and resize the model was trained with (open_clip's preprocess_cfg). */
  image_mean?: [number, number, number];
  image_std?: [number, number, number];
  image_resize_mode?: ResizeMode;
}

export type Activation = 'quick_gelu' | 'gelu';
/** open_clip's resize modes: shortest side to size then centre crop (OpenAI's), longest side then
 * pad, or both sides to size (aspect not kept). */
export type ResizeMode = 'shortest' | 'longest' | 'squash';

export const OPENAI_IMAGE_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_IMAGE_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

const text = (width: number, heads: number) => ({ context_length: 77, vocab_size: 49408, transformer_width: width, transformer_heads: heads, transformer_layers: 12 });

/** The nine architectures OpenAI released, by their names in `clip.available_models()`. */
export const ARCHITECTURES: Readonly<Record<string, ClipConfig>> = {
  RN50: { embed_dim: 1024, image_resolution: 224, vision_layers: [3, 4, 6, 3], vision_width: 64, vision_patch_size: null, ...text(512, 8) },
  RN101: { embed_dim: 512, image_resolution: 224, vision_layers: [3, 4, 23, 3], vision_width: 64, vision_patch_size: null, ...text(512, 8) },
  RN50x4: { embed_dim: 640, image_resolution: 288, vision_layers: [4, 6, 10, 6], vision_width: 80, vision_patch_size: null, ...text(640, 10) },
  RN50x16: { embed_dim: 768, image_resolution: 384, vision_layers: [6, 8, 18, 8], vision_width: 96, vision_patch_size: null, ...text(768, 12) },
  RN50x64: { embed_dim: 1024, image_resolution: 448, vision_layers: [3, 15, 36, 10], vision_width: 128, vision_patch_size: null, ...text(1024, 16) },
  'ViT-B/32': { embed_dim: 512, image_resolution: 224, vision_layers: 12, vision_width: 768, vision_patch_size: 32, ...text(512, 8) },
  'ViT-B/16': { embed_dim: 512, image_resolution: 224, vision_layers: 12, vision_width: 768, vision_patch_size: 16, ...text(512, 8) },
  'ViT-L/14': { embed_dim: 768, image_resolution: 224, vision_layers: 24, vision_width: 1024, vision_patch_size: 14, ...text(768, 12) },
  'ViT-L/14@336px': { embed_dim: 768, image_resolution: 336, vision_layers: 24, vision_width: 1024, vision_patch_size: 14, ...text(768, 12) },
};

export const MODEL_NAMES = Object.keys(ARCHITECTURES);

/** `ViT-B/32`, `ViT-B-32` and `vit-b/32` all name the same model (open_clip writes `-`). */
export function canonicalModelName(name: string): string | undefined {
  const key = (s: string) => s.toLowerCase().replace(/[-/@]/g, '').replace(/px$/, '');
  const wanted = key(name);
  return MODEL_NAMES.find((n) => key(n) === wanted);
}

export function architecture(name: string): ClipConfig {
  const canonical = canonicalModelName(name);
  if (!canonical) throw new Error(`unknown model '${name}': available models are ${MODEL_NAMES.join(', ')}`);
  return { ...ARCHITECTURES[canonical]! };
}

export function isResNet(config: ClipConfig): boolean {
  return Array.isArray(config.vision_layers);
}
