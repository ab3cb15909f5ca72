// open_clip's named pretrained weights whose model is a plain CLIP (OpenAI's ViT or ModifiedResNet
// towers, QuickGELU or GELU), as `ARCH:TAG` names. The facts (architectures, tags, Hugging Face repos,
// QuickGELU, preprocessing) are those of open_clip 3.3.0: `_PRETRAINED` in src/open_clip/pretrained.py
// and the built-in model configs in src/open_clip/model_configs/*.json. Left out: the families whose
// towers clip-native cannot build (SigLIP, CoCa, EVA, ConvNeXt, CLIPA, ViTamin, MobileCLIP, PE,
// NLLB/RoBERTa/XLM text towers, MetaCLIP 2 "worldwide" with its XLM-V tokenizer).
import type { ClipConfig } from './config.js';
import { clipConfigFromOpenClip, OPEN_CLIP_PREPROCESS_DEFAULTS, type OpenClipPreprocess } from './open-clip-config.js';

/** An open_clip built-in model_cfg (model_configs/<arch>.json), in its own terms. */
interface OpenClipModelCfg {
  embed_dim: number;
  quick_gelu?: boolean;
  vision_cfg: { image_size: number; layers: number | number[]; width: number; patch_size: number | null; head_width?: number; mlp_ratio?: number };
  text_cfg: { context_length: number; vocab_size: number; width: number; heads: number; layers: number };
}

const text = (width: number, heads: number, layers = 12) => ({ context_length: 77, vocab_size: 49408, width, heads, layers });
const vit = (embed: number, size: number, layers: number, width: number, patch: number, t: OpenClipModelCfg['text_cfg'], extra: { head_width?: number; mlp_ratio?: number } = {}): OpenClipModelCfg =>
  ({ embed_dim: embed, vision_cfg: { image_size: size, layers, width, patch_size: patch, ...extra }, text_cfg: t });
const rn = (embed: number, size: number, layers: number[], width: number, t: OpenClipModelCfg['text_cfg']): OpenClipModelCfg =>
  ({ embed_dim: embed, vision_cfg: { image_size: size, layers, width, patch_size: null }, text_cfg: t });

/** model_configs/<arch>.json of open_clip 3.3.0 for each architecture below. */
const ARCHS: Record<string, OpenClipModelCfg> = {
  RN50: rn(1024, 224, [3, 4, 6, 3], 64, text(512, 8)),
  RN101: rn(512, 224, [3, 4, 23, 3], 64, text(512, 8)),
  RN50x4: rn(640, 288, [4, 6, 10, 6], 80, text(640, 10)),
  RN50x16: rn(768, 384, [6, 8, 18, 8], 96, text(768, 12)),
  RN50x64: rn(1024, 448, [3, 15, 36, 10], 128, text(1024, 16)),
  'ViT-B-32': vit(512, 224, 12, 768, 32, text(512, 8)),
  'ViT-B-32-256': vit(512, 256, 12, 768, 32, text(512, 8)),
  'ViT-B-16': vit(512, 224, 12, 768, 16, text(512, 8)),
  'ViT-B-16-plus-240': vit(640, 240, 12, 896, 16, text(640, 10)),
  'ViT-L-14': vit(768, 224, 24, 1024, 14, text(768, 12)),
  'ViT-L-14-336': vit(768, 336, 24, 1024, 14, text(768, 12)),
  'ViT-H-14': vit(1024, 224, 32, 1280, 14, text(1024, 16, 24), { head_width: 80 }),
  'ViT-H-14-378': vit(1024, 378, 32, 1280, 14, text(1024, 16, 24), { head_width: 80 }),
  'ViT-g-14': vit(1024, 224, 40, 1408, 14, text(1024, 16, 24), { head_width: 88, mlp_ratio: 4.3637 }),
  'ViT-bigG-14': vit(1280, 224, 48, 1664, 14, text(1280, 20, 32), { head_width: 104, mlp_ratio: 4.9231 }),
};

const INCEPTION: [number, number, number] = [0.5, 0.5, 0.5];

/** One pretrained tag: where its weights are and what open_clip's pretrained cfg says about them. */
export interface OpenClipTag {
  /** Hugging Face repo (`hf_hub` without the trailing slash); absent for OpenAI's own (`openai`). */
  hub?: string;
  /** The weights were trained with QuickGELU (open_clip's `quick_gelu=True`). */
  quickGelu?: boolean;
  mean?: [number, number, number];
  std?: [number, number, number];
  resizeMode?: 'shortest' | 'squash';
  /** Said where open_clip's entry has a peculiarity worth knowing. */
  note?: string;
}

const QG = { quickGelu: true } as const;
const hub = (repo: string, extra: Omit<OpenClipTag, 'hub'> = {}): OpenClipTag => ({ hub: repo, ...extra });
const openai: OpenClipTag = { quickGelu: true };
const datacomp = (prefix: string, tags: Record<string, string>) =>
  Object.fromEntries(Object.entries(tags).map(([tag, suffix]) => [tag, hub(`laion/CLIP-${prefix}-${suffix}`)]));

/** `_PRETRAINED` of open_clip 3.3.0, the plain-CLIP architectures; `-quickgelu` variants derived below as open_clip does. */
const TAGS: Record<string, Record<string, OpenClipTag>> = {
  RN50: { openai, yfcc15m: hub('timm/resnet50_clip.yfcc15m', QG), cc12m: hub('timm/resnet50_clip.cc12m', QG) },
  RN101: { openai, yfcc15m: hub('timm/resnet101_clip.yfcc15m', QG) },
  RN50x4: { openai },
  RN50x16: { openai },
  RN50x64: { openai },
  'ViT-B-32': {
    openai,
    laion400m_e31: hub('timm/vit_base_patch32_clip_224.laion400m_e31', QG),
    laion400m_e32: hub('timm/vit_base_patch32_clip_224.laion400m_e32', QG),
    laion2b_e16: hub('timm/vit_base_patch32_clip_224.laion2b_e16'),
    laion2b_s34b_b79k: hub('laion/CLIP-ViT-B-32-laion2B-s34B-b79K'),
    ...datacomp('ViT-B-32', {
      datacomp_xl_s13b_b90k: 'DataComp.XL-s13B-b90K',
      datacomp_m_s128m_b4k: 'DataComp.M-s128M-b4K',
      commonpool_m_clip_s128m_b4k: 'CommonPool.M.clip-s128M-b4K',
      commonpool_m_laion_s128m_b4k: 'CommonPool.M.laion-s128M-b4K',
      commonpool_m_image_s128m_b4k: 'CommonPool.M.image-s128M-b4K',
      commonpool_m_text_s128m_b4k: 'CommonPool.M.text-s128M-b4K',
      commonpool_m_basic_s128m_b4k: 'CommonPool.M.basic-s128M-b4K',
      commonpool_m_s128m_b4k: 'CommonPool.M-s128M-b4K',
      datacomp_s_s13m_b4k: 'DataComp.S-s13M-b4K',
      commonpool_s_clip_s13m_b4k: 'CommonPool.S.clip-s13M-b4K',
      commonpool_s_laion_s13m_b4k: 'CommonPool.S.laion-s13M-b4K',
      commonpool_s_image_s13m_b4k: 'CommonPool.S.image-s13M-b4K',
      commonpool_s_text_s13m_b4k: 'CommonPool.S.text-s13M-b4K',
      commonpool_s_basic_s13m_b4k: 'CommonPool.S.basic-s13M-b4K',
      commonpool_s_s13m_b4k: 'CommonPool.S-s13M-b4K',
    }),
    metaclip_400m: hub('timm/vit_base_patch32_clip_224.metaclip_400m', QG),
    metaclip_fullcc: hub('timm/vit_base_patch32_clip_224.metaclip_2pt5b', QG),
  },
  'ViT-B-32-256': { datacomp_s34b_b86k: hub('laion/CLIP-ViT-B-32-256x256-DataComp-s34B-b86K') },
  'ViT-B-16': {
    openai,
    laion400m_e31: hub('timm/vit_base_patch16_clip_224.laion400m_e31'),
    laion400m_e32: hub('timm/vit_base_patch16_clip_224.laion400m_e32'),
    laion2b_s34b_b88k: hub('laion/CLIP-ViT-B-16-laion2B-s34B-b88K'),
    ...datacomp('ViT-B-16', {
      datacomp_xl_s13b_b90k: 'DataComp.XL-s13B-b90K',
      datacomp_l_s1b_b8k: 'DataComp.L-s1B-b8K',
      commonpool_l_clip_s1b_b8k: 'CommonPool.L.clip-s1B-b8K',
      commonpool_l_laion_s1b_b8k: 'CommonPool.L.laion-s1B-b8K',
      commonpool_l_image_s1b_b8k: 'CommonPool.L.image-s1B-b8K',
      commonpool_l_text_s1b_b8k: 'CommonPool.L.text-s1B-b8K',
      commonpool_l_basic_s1b_b8k: 'CommonPool.L.basic-s1B-b8K',
      commonpool_l_s1b_b8k: 'CommonPool.L-s1B-b8K',
    }),
    dfn2b: hub('apple/DFN2B-CLIP-ViT-B-16', QG),
    metaclip_400m: hub('timm/vit_base_patch16_clip_224.metaclip_400m', QG),
    metaclip_fullcc: hub('timm/vit_base_patch16_clip_224.metaclip_2pt5b', QG),
  },
  'ViT-B-16-plus-240': {
    laion400m_e31: hub('timm/vit_base_patch16_plus_clip_240.laion400m_e31'),
    laion400m_e32: hub('timm/vit_base_patch16_plus_clip_240.laion400m_e31', { note: "open_clip 3.3.0 points this tag at the e31 repository; so does clip-native" }),
  },
  'ViT-L-14': {
    openai,
    laion400m_e31: hub('timm/vit_large_patch14_clip_224.laion400m_e31'),
    laion400m_e32: hub('timm/vit_large_patch14_clip_224.laion400m_e32'),
    laion2b_s32b_b82k: hub('laion/CLIP-ViT-L-14-laion2B-s32B-b82K', { mean: INCEPTION, std: INCEPTION }),
    ...datacomp('ViT-L-14', {
      datacomp_xl_s13b_b90k: 'DataComp.XL-s13B-b90K',
      commonpool_xl_clip_s13b_b90k: 'CommonPool.XL.clip-s13B-b90K',
      commonpool_xl_laion_s13b_b90k: 'CommonPool.XL.laion-s13B-b90K',
      commonpool_xl_s13b_b90k: 'CommonPool.XL-s13B-b90K',
    }),
    metaclip_400m: hub('timm/vit_large_patch14_clip_224.metaclip_400m', QG),
    metaclip_fullcc: hub('timm/vit_large_patch14_clip_224.metaclip_2pt5b', QG),
    dfn2b: hub('apple/DFN2B-CLIP-ViT-L-14', QG),
    dfn2b_s39b: hub('apple/DFN2B-CLIP-ViT-L-14-39B'),
  },
  'ViT-L-14-336': { openai },
  'ViT-H-14': {
    laion2b_s32b_b79k: hub('laion/CLIP-ViT-H-14-laion2B-s32B-b79K'),
    metaclip_fullcc: hub('timm/vit_huge_patch14_clip_224.metaclip_2pt5b', QG),
    metaclip_altogether: hub('timm/vit_huge_patch14_clip_224.metaclip_altogether'),
    dfn5b: hub('apple/DFN5B-CLIP-ViT-H-14', { quickGelu: true, resizeMode: 'squash' }),
  },
  'ViT-H-14-378': { dfn5b: hub('apple/DFN5B-CLIP-ViT-H-14-378', { quickGelu: true, resizeMode: 'squash' }) },
  'ViT-g-14': {
    laion2b_s12b_b42k: hub('laion/CLIP-ViT-g-14-laion2B-s12B-b42K'),
    laion2b_s34b_b88k: hub('laion/CLIP-ViT-g-14-laion2B-s34B-b88K'),
  },
  'ViT-bigG-14': {
    laion2b_s39b_b160k: hub('laion/CLIP-ViT-bigG-14-laion2B-39B-b160k'),
    metaclip_fullcc: hub('timm/vit_gigantic_patch14_clip_224.metaclip_2pt5b', QG),
  },
};

/** OpenAI's names for the architectures they released (for `ARCH:openai`, resolved by pretrained.ts). */
const OPENAI_NAMES: Record<string, string> = {
  RN50: 'RN50', RN101: 'RN101', RN50x4: 'RN50x4', RN50x16: 'RN50x16', RN50x64: 'RN50x64',
  'ViT-B-32': 'ViT-B/32', 'ViT-B-16': 'ViT-B/16', 'ViT-L-14': 'ViT-L/14', 'ViT-L-14-336': 'ViT-L/14@336px',
};

/** `ViT-B-32`, `ViT-B/32`, `vit-b-32` are one architecture; `ViT-L/14@336px` is `ViT-L-14-336`. */
const archKey = (s: string) => s.toLowerCase().replace(/[-/@_ ]/g, '').replace(/px$/, '');
/** open_clip's `_clean_tag`: lower case, `-` as `_`. */
const tagKey = (s: string) => s.toLowerCase().replace(/-/g, '_');

export interface OpenClipName {
  /** open_clip's spelling, with `-quickgelu` when asked for. */
  arch: string;
  tag: string;
  entry: OpenClipTag;
  /** The name as open_clip writes it (`ViT-B-32:laion2b_s34b_b79k`). */
  name: string;
  /** For `openai` tags: OpenAI's own name of the architecture (resolved as OpenAI's release). */
  openaiName?: string;
}

function findArch(spelled: string): { arch: string; quickGelu: boolean } | undefined {
  const key = archKey(spelled);
  for (const arch of Object.keys(ARCHS)) {
    if (archKey(arch) === key) return { arch, quickGelu: false };
    if (archKey(`${arch}-quickgelu`) === key) return { arch, quickGelu: true };
  }
  return undefined;
}

/** Tags of an architecture as open_clip lists them: the `-quickgelu` variant has only the QuickGELU-trained tags. */
function tagsOf(arch: string, quickGelu: boolean): Record<string, OpenClipTag> {
  const tags = TAGS[arch] ?? {};
  return quickGelu ? Object.fromEntries(Object.entries(tags).filter(([, t]) => t.quickGelu)) : tags;
}

/** Whether `name` is meant as an `ARCH:TAG` name (an architecture open_clip knows before the colon). */
export function looksLikeOpenClipName(name: string): boolean {
  const colon = name.lastIndexOf(':');
  return colon > 0 && !name.startsWith('hf-hub:') && findArch(name.slice(0, colon)) !== undefined;
}

/** Parses `ARCH:TAG`; undefined when it is not one, an Error naming the available tags when the tag is unknown. */
export function parseOpenClipName(name: string): OpenClipName | undefined {
  const colon = name.lastIndexOf(':');
  if (colon <= 0 || name.startsWith('hf-hub:')) return undefined;
  const found = findArch(name.slice(0, colon));
  if (!found) return undefined;
  const archName = found.quickGelu ? `${found.arch}-quickgelu` : found.arch;
  const tags = tagsOf(found.arch, found.quickGelu);
  const tag = tagKey(name.slice(colon + 1));
  // Own tags only: `constructor` or `__proto__` is no tag (the prototype's would pass for OpenAI's release).
  const entry = Object.hasOwn(tags, tag) ? tags[tag] : undefined;
  if (!entry) {
    const available = Object.keys(tags);
    throw new Error(`'${name}': open_clip has no pretrained tag '${tag}' for ${archName} that clip-native can load` +
      (available.length ? `; available: ${available.map((t) => `${archName}:${t}`).join(', ')}` : ''));
  }
  return { arch: archName, tag, entry, name: `${archName}:${tag}`, openaiName: entry.hub ? undefined : OPENAI_NAMES[found.arch] };
}

/**
 * The ClipConfig of an `ARCH:TAG`, as open_clip builds it for `create_model(arch, pretrained=tag)`:
 * the built-in model config, the tag's preprocessing. One difference: where the tag's weights were
 * trained with QuickGELU (MetaCLIP, DFN, LAION-400M B/32, YFCC/CC12M ResNets) the model uses it even
 * under the plain architecture name, where open_clip warns of the mismatch and builds GELU.
 */
export function openClipTagConfig(parsed: OpenClipName): ClipConfig {
  const base = ARCHS[parsed.arch.replace(/-quickgelu$/, '')]!;
  const preprocess: OpenClipPreprocess = {
    ...OPEN_CLIP_PREPROCESS_DEFAULTS,
    ...(parsed.entry.mean ? { mean: parsed.entry.mean } : {}),
    ...(parsed.entry.std ? { std: parsed.entry.std } : {}),
    ...(parsed.entry.resizeMode ? { resize_mode: parsed.entry.resizeMode } : {}),
  };
  return clipConfigFromOpenClip({ ...base, quick_gelu: parsed.entry.quickGelu === true }, preprocess, parsed.name);
}

/** Every `ARCH:TAG` name clip-native resolves, in open_clip's order (`-quickgelu` variants last). */
export function listOpenClipNames(): string[] {
  const names: string[] = [];
  for (const quickGelu of [false, true]) {
    for (const arch of Object.keys(TAGS)) {
      for (const tag of Object.keys(tagsOf(arch, quickGelu))) names.push(`${arch}${quickGelu ? '-quickgelu' : ''}:${tag}`);
    }
  }
  return names;
}

/** The registry's QuickGELU fact for a Hugging Face repo it lists (undefined when it lists none). */
export function quickGeluOfRepo(repo: string): boolean | undefined {
  for (const tags of Object.values(TAGS)) {
    for (const entry of Object.values(tags)) if (entry.hub && entry.hub.toLowerCase() === repo.toLowerCase()) return entry.quickGelu === true;
  }
  return undefined;
}
