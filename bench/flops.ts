// FLOPs of one train step (forward + backward) as PyTorch's FLOP counter (torch.utils.flop_counter)
// counts them for openai/CLIP's model, from the architecture and the text positions actually run:
// ../shared/measurements/h100-reference.md's 44.2 (ViT-B/32) and 52.7 (RN50) GFLOP per image-text
// pair are this count at 77 positions, and a row whose text tower ran 16 positions did less work.
//
// The counter counts matrix products, convolutions and attention only (no LayerNorm, BatchNorm,
// activation, softmax or optimizer), 2 FLOPs per multiply-add:
// - a product or convolution: its forward F, its backward 2F (gradient of the input and of the weight);
//   the first convolution only F (the images need no gradient);
// - attention of s_q queries over s_k keys of width d (all heads): forward 4·s_q·s_k·d, backward 2.5
//   times that (the counter adds the scores' recomputation of flash attention's backward); causal
//   masks are counted as full.
// Per pair, for a tower of width w, L blocks, MLP width m, over n positions:
//   products 2·n·w·(4w + 2m) per block (q, k, v, out, MLP), attention 4·n²·w per block;
//   the text tower adds its projection on one token (2·w·E), the ViT its patch embedding
//   (2·3·p²·w per patch) and projection; a ResNet its convolutions (2·Cin·Cout·k²·Hout·Wout) and the
//   attention pool (k, v over the h²+1 positions, q and the output projection over one; attention 1×(h²+1)).
// Per step: B × (first convolution + 3 × the other products + 3.5 × attention) + 6·B²·E (the logits).
// Checked in test/bench-flops.test.ts: 11.32 and 13.49 TFLOP at batch 256 and 77 positions, as the
// reference counted; its product and convolution part also equals the counter's own CPU count for
// open_clip's ViT-B-32-quickgelu to the FLOP (43,386,691,584 per pair at batch 8).
// GELU's erf and activation checkpointing's recomputation are not counted (model FLOPs, not hardware).
import type { ClipConfig } from '../src/model/config.js';

export interface StepFlops {
  /** FLOPs of one step of `batch` pairs. */
  perStep: number;
  /** perStep / batch, in GFLOP. */
  gflopPerPair: number;
  textPositions: number;
}

interface Parts {
  /** The first convolution or patch embedding: forward only counted twice (no input gradient). */
  first: number;
  /** Every other product and convolution, forward. */
  products: number;
  /** Attention score and value products, forward. */
  attention: number;
}

function transformer(width: number, layers: number, mlp: number, positions: number): Parts {
  return { first: 0, products: layers * 2 * positions * width * (4 * width + 2 * mlp), attention: layers * 4 * positions * positions * width };
}

function conv(cin: number, cout: number, kernel: number, outSide: number): number {
  return 2 * cin * cout * kernel * kernel * outSide * outSide;
}

/** openai/CLIP's ModifiedResNet: a 3-convolution stem, Bottleneck stages with anti-aliasing pools, the attention pool. */
function resnet(layers: number[], width: number, resolution: number, embed: number): Parts {
  const first = conv(3, width / 2, 3, resolution / 2);
  let products = conv(width / 2, width / 2, 3, resolution / 2) + conv(width / 2, width, 3, resolution / 2);
  let side = resolution / 4;
  let inplanes = width;
  layers.forEach((blocks, stage) => {
    const planes = width * 2 ** stage;
    for (let b = 0; b < blocks; b++) {
      const stride = b === 0 && stage > 0 ? 2 : 1;
      const out = side / stride;
      products += conv(inplanes, planes, 1, side) + conv(planes, planes, 3, side) + conv(planes, planes * 4, 1, out);
      if (stride > 1 || inplanes !== planes * 4) products += conv(inplanes, planes * 4, 1, out);
      inplanes = planes * 4;
      side = out;
    }
  });
  const d = width * 32;
  const keys = side * side + 1;
  products += 2 * d * d * (2 * keys + 1) + 2 * d * embed;
  return { first, products, attention: 4 * keys * d };
}

function vit(config: ClipConfig): Parts {
  const width = config.vision_width;
  const patch = config.vision_patch_size!;
  const patches = (config.image_resolution / patch) ** 2;
  const blocks = transformer(width, config.vision_layers as number, config.vision_mlp_width ?? 4 * width, patches + 1);
  return { first: 2 * 3 * patch * patch * width * patches, products: blocks.products + 2 * width * config.embed_dim, attention: blocks.attention };
}

/** The FLOPs of one train step of `batch` pairs whose text tower runs `textPositions` positions (77: the reference's). */
export function trainStepFlops(config: ClipConfig, textPositions: number, batch: number): StepFlops {
  const vision = Array.isArray(config.vision_layers)
    ? resnet(config.vision_layers, config.vision_width, config.image_resolution, config.embed_dim)
    : vit(config);
  const w = config.transformer_width;
  const text = transformer(w, config.transformer_layers, config.transformer_mlp_width ?? 4 * w, textPositions);
  const perPair = 2 * vision.first + 3 * (vision.products + text.products + 2 * w * config.embed_dim) + 3.5 * (vision.attention + text.attention);
  const perStep = batch * perPair + 6 * batch * batch * config.embed_dim;
  return { perStep, gflopPerPair: perStep / batch / 1e9, textPositions };
}
