// Training-time augmentation of the loader's uint8 crops, after open_clip's `AugmentationCfg` and
// `image_transform(is_train=True)`: RandomResizedCrop (bicubic), then colour jitter with a probability
// and greyscale with a probability; plus a horizontal flip that open_clip does not have (off by
// default: captions say "left" and "right"). Every random draw comes from a generator keyed on
// (seed, epoch, sample index), so a sample's augmented pixels do not depend on batch, rank, thread or
// resume: a resumed run sees the pixels the uninterrupted one saw.
import sharp from 'sharp';

import { createRng, type Rng } from '../util/prng.js';
import { roundHalfToEven } from './clip-geometry.js';
import { resampleBicubic } from './pillow-resample.js';

/** Augmentation as given (a config file, the CLI, code): every key optional; open_clip's snake_case names are read too. */
export interface AugmentOptions {
  /** RandomResizedCrop's range of the crop's area as a fraction of the source image. Default [0.9, 1] (open_clip's). */
  scale?: [number, number];
  /** RandomResizedCrop's range of the crop's aspect ratio (width / height). Default [3/4, 4/3] (torchvision's). */
  ratio?: [number, number];
  /** Probability of a horizontal flip. Default 0. */
  hflip?: number;
  /** torchvision ColorJitter's brightness, contrast, saturation, hue; one number x is [x, x, x, 0]. Default none. */
  colorJitter?: number | [number, number, number] | [number, number, number, number];
  /** Probability that an image is colour-jittered (open_clip's `color_jitter_prob`). Default 0. */
  colorJitterProb?: number;
  /** Probability that an image becomes grey (open_clip's `gray_scale_prob`). Default 0. */
  grayScaleProb?: number;
}

/** Augmentation with every value resolved and checked. */
export interface Augmentation {
  scale: [number, number];
  ratio: [number, number];
  hflip: number;
  colorJitter: [brightness: number, contrast: number, saturation: number, hue: number];
  colorJitterProb: number;
  grayScaleProb: number;
}

export const DEFAULT_AUGMENTATION: Readonly<Augmentation> = {
  scale: [0.9, 1],
  ratio: [3 / 4, 4 / 3],
  hflip: 0,
  colorJitter: [0, 0, 0, 0],
  colorJitterProb: 0,
  grayScaleProb: 0,
};

const KEYS = Object.keys(DEFAULT_AUGMENTATION) as Array<keyof Augmentation>;
/** open_clip's names of the same options. */
const SNAKE_CASE: Readonly<Record<string, keyof Augmentation>> = { color_jitter: 'colorJitter', color_jitter_prob: 'colorJitterProb', gray_scale_prob: 'grayScaleProb' };

/** The crop cache's source resolution for a model of resolution R: a little above R (256 for 224, the classic pair), so the random crop resamples from more pixels than it keeps. */
export function augmentSourceResolution(resolution: number): number {
  return Math.ceil((resolution * 8) / 7);
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const probability = (v: unknown) => (isNumber(v) && v >= 0 && v <= 1 ? undefined : 'must be a probability in [0, 1]');
const range = (lo: number, hi: number | undefined) => (v: unknown) =>
  Array.isArray(v) && v.length === 2 && v.every(isNumber) && v[0] > lo && v[0] <= v[1] && (hi === undefined || v[1] <= hi)
    ? undefined
    : `must be [min, max] with ${lo} < min ≤ max${hi === undefined ? '' : ` ≤ ${hi}`}`;

const CHECKS: Record<keyof Augmentation, (v: unknown) => string | undefined> = {
  scale: range(0, 1),
  ratio: range(0, undefined),
  hflip: probability,
  colorJitter: (v) => {
    const values = isNumber(v) ? [v] : v;
    if (!Array.isArray(values) || ![1, 3, 4].includes(values.length) || !values.every((x) => isNumber(x) && x >= 0)) {
      return 'must be a non-negative number or [brightness, contrast, saturation(, hue)] of them';
    }
    return values.length === 4 && values[3] > 0.5 ? 'hue must be in [0, 0.5]' : undefined;
  },
  colorJitterProb: probability,
  grayScaleProb: probability,
};

/** Defined, not assigned: a key named __proto__ stays an (unknown) option instead of replacing the prototype. */
function defineOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** The options with open_clip's names renamed to ours, or a problem where both are given. */
function renamed(value: Record<string, unknown>, problems: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const name = Object.hasOwn(SNAKE_CASE, key) ? SNAKE_CASE[key]! : key;
    if (Object.hasOwn(out, name)) problems.push(`augment.${name}: given twice (as ${name} and ${key})`);
    defineOwn(out, name, v);
  }
  return out;
}

/**
 * Every problem of an `augment` value (false, true, or an options object), each naming its key
 * (`augment.scale: …`). Colour jitter without a probability is a problem: open_clip leaves it off
 * without a word.
 */
export function augmentProblems(value: unknown): string[] {
  if (value === undefined || typeof value === 'boolean') return [];
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return ['augment: must be true, false or a mapping of augmentation options'];
  const problems: string[] = [];
  const options = renamed(value as Record<string, unknown>, problems);
  for (const [key, v] of Object.entries(options)) {
    const check = Object.hasOwn(CHECKS, key) ? CHECKS[key as keyof Augmentation] : undefined;
    if (!check) problems.push(`augment.${key}: unknown option (known: ${KEYS.join(', ')})`);
    else if (v !== undefined) {
      const message = check(v);
      if (message) problems.push(`augment.${key}: ${message} (got ${JSON.stringify(v)})`);
    }
  }
  const jitter = options.colorJitter;
  const jitterSet = jitter !== undefined && CHECKS.colorJitter(jitter) === undefined && jitterValues(jitter as AugmentOptions['colorJitter']).some((x) => x > 0);
  if (jitterSet && !options.colorJitterProb) {
    problems.push('augment.colorJitterProb: must be above 0 when colorJitter is set (open_clip jitters only with color_jitter_prob; 0.8 is SimCLR\'s)');
  }
  return problems;
}

function jitterValues(v: AugmentOptions['colorJitter']): Augmentation['colorJitter'] {
  if (v === undefined) return [0, 0, 0, 0];
  if (typeof v === 'number') return [v, v, v, 0];
  return [v[0], v[1], v[2], v[3] ?? 0];
}

/** The augmentation an `augment` value asks for (undefined: none), checked once; a RangeError names every bad key. */
export function resolveAugmentation(value: boolean | AugmentOptions | undefined): Augmentation | undefined {
  if (value === undefined || value === false) return undefined;
  const problems = augmentProblems(value);
  if (problems.length > 0) throw new RangeError(`invalid augmentation:\n  ${problems.join('\n  ')}`);
  if (value === true) return structuredClone(DEFAULT_AUGMENTATION) as Augmentation;
  const options = renamed(value as Record<string, unknown>, []) as AugmentOptions;
  return {
    scale: options.scale ? [options.scale[0], options.scale[1]] : [...DEFAULT_AUGMENTATION.scale],
    ratio: options.ratio ? [options.ratio[0], options.ratio[1]] : [...DEFAULT_AUGMENTATION.ratio],
    hflip: options.hflip ?? DEFAULT_AUGMENTATION.hflip,
    colorJitter: jitterValues(options.colorJitter),
    colorJitterProb: options.colorJitterProb ?? DEFAULT_AUGMENTATION.colorJitterProb,
    grayScaleProb: options.grayScaleProb ?? DEFAULT_AUGMENTATION.grayScaleProb,
  };
}

/** The random choices for one sample. */
export interface AugmentParams {
  /** The RandomResizedCrop box in the source image. */
  crop: { left: number; top: number; width: number; height: number };
  flip: boolean;
  /** Colour jitter (when drawn): factors and the order of the four operations (0 brightness, 1 contrast, 2 saturation, 3 hue). */
  jitter?: { order: number[]; brightness: number; contrast: number; saturation: number; hue: number };
  gray: boolean;
}

/** Keeps the augmentation's draws apart from other generators keyed on (seed, epoch, …). */
const AUGMENT_STREAM = 0x617567; // "aug"

/** A sample's generator: a pure function of (seed, epoch, index). */
export function augmentRng(seed: number, epoch: number, index: number): Rng {
  return createRng(seed, epoch, index, AUGMENT_STREAM);
}

const uniform = (rng: Rng, lo: number, hi: number) => lo + (hi - lo) * rng.next();

/**
 * The draws for one sample of a `width`×`height` source, in a fixed order (crop, flip, jitter, grey),
 * each drawn whether or not it applies: turning one option on changes no other's draws.
 */
export function augmentParams(rng: Rng, width: number, height: number, aug: Augmentation): AugmentParams {
  const crop = randomResizedCropBox(rng, width, height, aug.scale, aug.ratio);
  const flip = rng.next() < aug.hflip;
  const jitterDraw = rng.next();
  const order = [0, 1, 2, 3];
  for (let i = 3; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const [b, c, s, h] = aug.colorJitter;
  // torchvision's factor ranges: [max(0, 1 - x), 1 + x] for the first three, [-h, h] for hue.
  const factors = [uniform(rng, Math.max(0, 1 - b), 1 + b), uniform(rng, Math.max(0, 1 - c), 1 + c), uniform(rng, Math.max(0, 1 - s), 1 + s), uniform(rng, -h, h)];
  const gray = rng.next() < aug.grayScaleProb;
  const jitter =
    jitterDraw < aug.colorJitterProb ? { order, brightness: factors[0]!, contrast: factors[1]!, saturation: factors[2]!, hue: factors[3]! } : undefined;
  return { crop, flip, jitter, gray };
}

/**
 * torchvision's `RandomResizedCrop.get_params`: ten tries of an area drawn uniformly from `scale` and
 * an aspect ratio log-uniformly from `ratio`, sides rounded as Python rounds; then the whole image
 * clamped to the ratio range, centred.
 */
export function randomResizedCropBox(rng: Rng, width: number, height: number, scale: [number, number], ratio: [number, number]): AugmentParams['crop'] {
  const area = width * height;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])] as const;
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * uniform(rng, scale[0], scale[1]);
    const aspect = Math.exp(uniform(rng, logRatio[0], logRatio[1]));
    const w = roundHalfToEven(Math.sqrt(target * aspect));
    const h = roundHalfToEven(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return { top: rng.nextInt(height - h + 1), left: rng.nextInt(width - w + 1), width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < ratio[0]) h = roundHalfToEven(w / ratio[0]);
  else if (inRatio > ratio[1]) w = roundHalfToEven(h * ratio[1]);
  return { top: Math.trunc((height - h) / 2), left: Math.trunc((width - w) / 2), width: w, height: h };
}

/** Resolutions up to this are resized by the Pillow port on the calling thread, larger ones by sharp. */
export const SMALL_AUGMENT_RESOLUTION = 64;

/**
 * One sample augmented: the crop box of the `size`×`size` RGB source (HWC uint8) resized to R×R
 * bicubic (torchvision's `resized_crop`: crop, then resize), flipped, jittered and greyed as `params`
 * say, written to `dest` (R·R·3 bytes). Large crops are resized by sharp (libvips, Catmull-Rom as
 * Pillow's bicubic, on the thread pool, a batch's at once): the Pillow port in TypeScript costs
 * milliseconds of the main thread per 224-pixel image. Small ones by the port: a sharp pipeline's own
 * cost per call is more than the port's whole resize there (bench/augment.ts has both).
 */
export async function augmentInto(source: Uint8Array, size: number, dest: Uint8Array, resolution: number, params: AugmentParams): Promise<void> {
  const resized = resolution <= SMALL_AUGMENT_RESOLUTION ? cropResizeHere(source, size, params.crop, resolution) : await cropResizeSharp(source, size, params.crop, resolution);
  if (resized.length !== dest.length) throw new Error(`augmentation: ${resized.length} bytes resized, ${dest.length} expected`);
  if (params.flip) flipRowsInto(resized, dest, resolution);
  else dest.set(resized);
  if (params.jitter) colorJitterInPlace(dest, params.jitter);
  if (params.gray) grayInPlace(dest);
}

function cropResizeHere(source: Uint8Array, size: number, crop: AugmentParams['crop'], resolution: number): Uint8Array {
  const box = new Uint8Array(crop.width * crop.height * 3);
  const row = crop.width * 3;
  for (let y = 0; y < crop.height; y++) {
    const from = ((crop.top + y) * size + crop.left) * 3;
    box.set(source.subarray(from, from + row), y * row);
  }
  const whole = { left: 0, top: 0, width: resolution, height: resolution };
  return resampleBicubic({ data: box, width: crop.width, height: crop.height, channels: 3 }, resolution, resolution, whole).data;
}

async function cropResizeSharp(source: Uint8Array, size: number, crop: AugmentParams['crop'], resolution: number): Promise<Uint8Array> {
  return sharp(source, { raw: { width: size, height: size, channels: 3 } })
    .extract(crop)
    .resize(resolution, resolution, { kernel: 'cubic', fit: 'fill', fastShrinkOnLoad: false })
    .raw({ depth: 'uchar' })
    .toBuffer();
}

function flipRowsInto(src: Uint8Array, dest: Uint8Array, resolution: number): void {
  for (let y = 0; y < resolution; y++) {
    const base = y * resolution * 3;
    for (let x = 0; x < resolution; x++) {
      const s = base + x * 3;
      const d = base + (resolution - 1 - x) * 3;
      dest[d] = src[s]!;
      dest[d + 1] = src[s + 1]!;
      dest[d + 2] = src[s + 2]!;
    }
  }
}

/** ITU-R 601-2 luma, as PIL's convert('L') (and torchvision's Grayscale on a PIL image) computes it. */
function grayInPlace(rgb: Uint8Array): void {
  for (let p = 0; p < rgb.length; p += 3) {
    const l = (rgb[p]! * 19595 + rgb[p + 1]! * 38470 + rgb[p + 2]! * 7471 + 0x8000) >> 16;
    rgb[p] = l;
    rgb[p + 1] = l;
    rgb[p + 2] = l;
  }
}

const clamp255 = (x: number) => (x < 0 ? 0 : x > 255 ? 255 : x);
const luma = (r: number, g: number, b: number) => 0.299 * r + 0.587 * g + 0.114 * b;

/**
 * torchvision's ColorJitter in its order: brightness blends with black, contrast with the image's mean
 * grey, saturation with each pixel's grey, hue rotates in HSV; each result clamped to [0, 255] as
 * torchvision's are. Computed in float and rounded to uint8 once at the end (torchvision's PIL path
 * rounds after each operation), so the pixels are close to torchvision's, not equal. A pass over the
 * image per operation: fusing them pixel by pixel (a loop over the operations inside the loop over
 * pixels) was tried and ran slower in V8.
 */
export function colorJitterInPlace(rgb: Uint8Array, jitter: NonNullable<AugmentParams['jitter']>): void {
  const px = new Float32Array(rgb);
  for (const op of jitter.order) {
    if (op === 0 && jitter.brightness !== 1) blendWithGrey(px, jitter.brightness, 0);
    else if (op === 1 && jitter.contrast !== 1) blendWithGrey(px, jitter.contrast, meanLuma(px));
    else if (op === 2 && jitter.saturation !== 1) blendWithGrey(px, jitter.saturation, -1);
    else if (op === 3 && jitter.hue !== 0) rotateHue(px, jitter.hue);
  }
  // A clamped view converts as Math.round would, but with halves to even, and natively.
  new Uint8ClampedArray(rgb.buffer, rgb.byteOffset, rgb.length).set(px);
}

function meanLuma(px: Float32Array): number {
  let sum = 0;
  for (let p = 0; p < px.length; p += 3) sum += luma(px[p]!, px[p + 1]!, px[p + 2]!);
  return sum / (px.length / 3);
}

/**
 * Each pixel `factor · x + (1 − factor) · grey`, clamped: torchvision's `_blend`, with black
 * (brightness: 0), the image's mean grey (contrast) or, for `grey` −1, the pixel's own (saturation).
 */
function blendWithGrey(px: Float32Array, factor: number, grey: number): void {
  const own = grey < 0;
  for (let p = 0; p < px.length; p += 3) {
    const o = (1 - factor) * (own ? luma(px[p]!, px[p + 1]!, px[p + 2]!) : grey);
    px[p] = clamp255(factor * px[p]! + o);
    px[p + 1] = clamp255(factor * px[p + 1]! + o);
    px[p + 2] = clamp255(factor * px[p + 2]! + o);
  }
}

/** HSV's six sectors: which of (v, t, m, q) each channel takes. */
function setRgb(px: Float32Array, p: number, sector: number, v: number, t: number, m: number, q: number): void {
  switch (sector) {
    case 0:
      return rgbAt(px, p, v, t, m);
    case 1:
      return rgbAt(px, p, q, v, m);
    case 2:
      return rgbAt(px, p, m, v, t);
    case 3:
      return rgbAt(px, p, m, q, v);
    case 4:
      return rgbAt(px, p, t, m, v);
    default:
      return rgbAt(px, p, v, m, q);
  }
}

function rgbAt(px: Float32Array, p: number, r: number, g: number, b: number): void {
  px[p] = clamp255(r);
  px[p + 1] = clamp255(g);
  px[p + 2] = clamp255(b);
}

/** torchvision's `adjust_hue`: to HSV, hue shifted by `shift` (a fraction of the circle), back to RGB. */
function rotateHue(px: Float32Array, shift: number): void {
  for (let p = 0; p < px.length; p += 3) {
    const r = px[p]! / 255;
    const g = px[p + 1]! / 255;
    const b = px[p + 2]! / 255;
    const max = Math.max(r, g, b);
    const min = Math.min(r, g, b);
    const chroma = max - min;
    if (chroma === 0) continue; // grey: no hue to turn
    let h = max === r ? (g - b) / chroma : max === g ? 2 + (b - r) / chroma : 4 + (r - g) / chroma;
    h = (((h / 6 + shift) % 1) + 1) % 1;
    // Back to RGB, scaled to 0–255 at once: v, and the rising and falling sides of the sector.
    const v = max * 255;
    const m = min * 255;
    const sector = Math.floor(h * 6);
    const f = h * 6 - sector;
    const q = v - (v - m) * f;
    const t = m + (v - m) * f;
    setRgb(px, p, sector % 6, v, t, m, q);
  }
}

/**
 * One `key=value` of the command line's `--augment` (open_clip's `--aug-cfg` style: `scale=0.5,1`,
 * `color_jitter=(0.4,0.4,0.4,0.1)`, `gray_scale_prob=0.2`) added to `into`. A value of several numbers
 * is a list; which keys and ranges are valid is augmentProblems' to say.
 */
export function addAugmentArgument(text: string, into: Record<string, unknown> = {}): Record<string, unknown> {
  const match = /^([A-Za-z_]\w*)=(.+)$/.exec(text.trim());
  if (!match) throw new RangeError(`--augment: expected key=value (e.g. scale=0.5,1 or hflip=0.5), got ${JSON.stringify(text)}`);
  const [, key, raw] = match as unknown as [string, string, string];
  const parts = raw.replace(/^[([]|[)\]]$/g, '').split(',').map((p) => p.trim());
  const numbers = parts.map(Number);
  if (parts.some((p) => p === '') || numbers.some((n) => Number.isNaN(n))) throw new RangeError(`--augment: augment.${key} must be a number or numbers separated by commas, got ${JSON.stringify(raw)}`);
  defineOwn(into, Object.hasOwn(SNAKE_CASE, key) ? SNAKE_CASE[key]! : key, numbers.length === 1 ? numbers[0] : numbers);
  return into;
}
