import { promises as fs } from 'node:fs';
import sharp, { type Metadata, type Sharp } from 'sharp';
import { OPENAI_IMAGE_MEAN, OPENAI_IMAGE_STD, type ClipConfig } from '../model/config.js';
import { cropGeometry, RESIZE_MODES, type CropGeometry, type ResizeMode } from './clip-geometry.js';
import { classifyDecodeError, ImageDecodeError, lacksEndMarker } from './image-problems.js';
import { normalize } from './normalize.js';
import { resampleBicubicNative } from '../native.js';
import { premultiply, resampleBicubic, resizeNearest, unpremultiply, type RawImage, type Window } from './pillow-resample.js';

/**
 * CLIP's image preprocessing (openai/CLIP `_transform`) with sharp. The recipe follows what was
 * checked against the reference goldens (shared/design.md): Pillow ignores ICC profiles, resizes with
 * an antialiased bicubic to torchvision's exact size, then crops the centre. open_clip's other resize
 * modes ('longest': pad instead of crop; 'squash') take the same path with their own geometry
 * (clip-geometry.ts `cropGeometry`).
 */

/** How images are resized (PreprocessOptions.resample). */
export type ResampleMode = 'pillow' | 'libvips';
export const RESAMPLE_MODES: readonly ResampleMode[] = ['pillow', 'libvips'];

/** Pillow's DecompressionBombWarning threshold: larger images are refused unless raised. */
export const DEFAULT_MAX_PIXELS = 89_478_485;

export interface PreprocessOptions {
  /** Model input resolution R (square). Default 224. */
  resolution?: number;
  /** How the image becomes R×R (the model's `image_resize_mode`, open_clip's `resize_mode`). Default 'shortest' (OpenAI's). */
  resizeMode?: ResizeMode;
  /** Apply the EXIF orientation (default true); false matches the reference, which ignores it. */
  exif?: boolean;
  /** Refuse images with more pixels than this (before resizing). */
  maxPixels?: number;
  /**
   * How the image is resized: 'pillow' (default) computes Pillow's antialiased bicubic to the bit, as
   * openai/CLIP's and open_clip's preprocessing does; 'libvips' uses sharp's cubic for opaque RGB and
   * grey downscales, faster and up to several uint8 steps off Pillow on sharp edges (docs/data.md).
   */
  resample?: ResampleMode;
  /** preprocessImage's Normalize (the model's `image_mean`/`image_std`); default OpenAI's. The uint8 crop ignores them. */
  mean?: readonly number[];
  std?: readonly number[];
}

/** What a model was trained with, as preprocessing options: resolution, resize mode, mean and std (OpenAI's where absent). */
export function modelPreprocessing(
  config: Pick<ClipConfig, 'image_resolution' | 'image_mean' | 'image_std' | 'image_resize_mode'>,
): { resolution: number; resizeMode: ResizeMode; mean: readonly number[]; std: readonly number[] } {
  return {
    resolution: config.image_resolution,
    resizeMode: config.image_resize_mode ?? 'shortest',
    mean: config.image_mean ?? OPENAI_IMAGE_MEAN,
    std: config.image_std ?? OPENAI_IMAGE_STD,
  };
}

export interface Uint8Crop {
  /** Interleaved RGB, row-major: shape [R, R, 3]. */
  data: Uint8Array;
  shape: [number, number, 3];
  /** Source size as decoded, after EXIF orientation when applied. */
  sourceWidth: number;
  sourceHeight: number;
}

export interface ImageTensor {
  data: Float32Array;
  shape: [3, number, number];
}

/** Decode, resize and centre-crop (or pad, by resize mode): the uint8 image CLIP normalises. Throws ImageDecodeError. */
export async function preprocessImageUint8(input: string | Buffer, options: PreprocessOptions = {}): Promise<Uint8Crop> {
  const resolution = options.resolution ?? 224;
  const resizeMode = options.resizeMode ?? 'shortest';
  if (!RESIZE_MODES.includes(resizeMode)) throw new RangeError(`resizeMode must be one of ${RESIZE_MODES.join(', ')}, got '${String(resizeMode)}'`);
  const exif = options.exif ?? true;
  const resample = options.resample ?? 'pillow';
  if (!RESAMPLE_MODES.includes(resample)) throw new RangeError(`resample must be one of ${RESAMPLE_MODES.join(', ')}, got '${String(resample)}'`);
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!Number.isInteger(resolution) || resolution <= 0) throw new RangeError(`resolution must be a positive integer, got ${resolution}`);
  const name = typeof input === 'string' ? input : '<buffer>';

  let bytes: Buffer;
  try {
    // Reading the file ourselves tells a missing or empty file apart from a broken one.
    bytes = typeof input === 'string' ? await fs.readFile(input) : input;
  } catch (err) {
    throw classifyDecodeError(name, err);
  }
  if (bytes.length === 0) throw new ImageDecodeError('empty', name, '0 bytes');

  try {
    // ignoreIcc: Pillow's convert('RGB') ignores embedded profiles, and so do we.
    const sharpOptions = { ignoreIcc: true, limitInputPixels: false as const, failOn: 'truncated' as const };
    const meta = await sharp(bytes, sharpOptions).metadata();
    if (!meta.width || !meta.height) throw new ImageDecodeError('undecodable', name, 'no image size in the header');
    if (meta.width * meta.height > maxPixels) {
      throw new ImageDecodeError('too-large', name, `${meta.width}x${meta.height} = ${meta.width * meta.height} pixels > maxPixels ${maxPixels}`);
    }
    const transposed = exif && (meta.orientation ?? 1) >= 5;
    const width = transposed ? meta.height : meta.width;
    const height = transposed ? meta.width : meta.height;
    let geometry: CropGeometry;
    try {
      geometry = cropGeometry(width, height, resolution, resizeMode);
    } catch (err) {
      throw new ImageDecodeError('unsupported', name, (err as Error).message);
    }
    const { resized, window: win } = geometry;

    let pipeline = sharp(bytes, sharpOptions);
    if (exif) pipeline = pipeline.rotate();

    // Pillow resizes CMYK as four plain channels and converts to RGB afterwards (_transform's
    // convert('RGB') follows the crop); libvips would convert first, through a CMYK profile. Both
    // read a CMYK JPEG as Adobe's inverted CMYK, with or without the Adobe segment (the tests check).
    const cmyk = meta.space === 'cmyk';
    if (cmyk) pipeline = pipeline.pipelineColourspace('cmyk').toColourspace('cmyk');
    // Palette and 1-bit images: Pillow resizes "P"/"1" with NEAREST.
    const palette = meta.isPalette === true || meta.bitsPerSample === 1;
    const upscale = resized.width > width || resized.height > height;
    // 'libvips' keeps sharp's resize where it is close to Pillow's (an opaque RGB or grey downscale).
    if (resample === 'pillow' || palette || meta.hasAlpha || upscale || cmyk) {
      const crop = await resizeLikePillow(pipeline, bytes, { meta, palette, cmyk, name }, geometry, resolution);
      return { data: crop, shape: [resolution, resolution, 3], sourceWidth: width, sourceHeight: height };
    }

    const { data, info } = await pipeline
      .resize(resized.width, resized.height, { kernel: 'cubic', fit: 'fill', fastShrinkOnLoad: false })
      .extract(win)
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const crop = placeOnCanvas(toRgb(data, info.channels, name), geometry, resolution, undefined);
    return { data: crop, shape: [resolution, resolution, 3], sourceWidth: width, sourceHeight: height };
  } catch (err) {
    const problem = classifyDecodeError(name, err);
    // libvips' error text is shared between threads, so a message can lose the word that says
    // "truncated"; the file's own end marker says it reliably.
    if (problem.kind === 'undecodable' && lacksEndMarker(bytes)) throw new ImageDecodeError('truncated', name, problem.message);
    throw problem;
  }
}

/**
 * The R×R RGB crop computed as Pillow does: sharp decodes to raw pixels, then Pillow's resize
 * (NEAREST for palette and 1-bit images, else the bicubic) and convert('RGB').
 */
async function resizeLikePillow(
  pipeline: Sharp,
  bytes: Buffer,
  { meta, palette, cmyk, name }: { meta: Metadata; palette: boolean; cmyk: boolean; name: string },
  geometry: CropGeometry,
  resolution: number,
): Promise<Uint8Array> {
  const { resized, window: win } = geometry;
  const decoded = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  const img: RawImage = {
    data: new Uint8Array(decoded.data.buffer, decoded.data.byteOffset, decoded.data.byteLength),
    width: decoded.info.width,
    height: decoded.info.height,
    channels: decoded.info.channels,
  };
  let out: RawImage;
  if (palette) {
    // GIF decoders blank the transparent index to 0,0,0,0; Pillow's convert('RGB') shows its colour.
    const fill = meta.format === 'gif' && img.channels === 4 ? gifTransparentColour(bytes) : undefined;
    if (fill) {
      const d = img.data;
      for (let p = 0; p < d.length; p += 4) if (d[p + 3] === 0) d.set(fill, p);
    }
    out = resizeNearest(img, resized.width, resized.height, win);
  } else {
    const alphaLast = !cmyk && meta.hasAlpha === true && (img.channels === 2 || img.channels === 4);
    out = await resampleExact(img, resized, win, alphaLast);
  }
  const data = Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength);
  // Pillow pads (resize mode 'longest') with 0: black, but a palette image ("P") with its colour 0.
  const padded = win.width !== resolution || win.height !== resolution;
  const padColour = padded && palette ? paletteColourZero(bytes) : undefined;
  const rgb = cmyk && out.channels === 4 ? cmykToRgb(data) : toRgb(data, out.channels, name);
  return placeOnCanvas(rgb, geometry, resolution, padColour);
}

/** CLIP's full transform: a normalised CHW float32 tensor [3, R, R], with options.mean/std (default OpenAI's). */
export async function preprocessImage(input: string | Buffer, options: PreprocessOptions = {}): Promise<ImageTensor> {
  const crop = await preprocessImageUint8(input, options);
  return { data: normalize(crop.data, options.mean, options.std), shape: [3, crop.shape[0], crop.shape[1]] };
}

let nativeResample: boolean | undefined;

/**
 * Pillow's bicubic resize of `img` cropped to `win`: the addon's (on the thread pool), or where the
 * addon is not built the TypeScript port, which computes the same bytes several times slower.
 */
async function resampleExact(img: RawImage, resized: { width: number; height: number }, win: Window, alphaLast: boolean): Promise<RawImage> {
  if (nativeResample === undefined) {
    try {
      nativeResample = (await resampleBicubicNative(new Uint8Array(1), { width: 1, height: 1, channels: 1 }, { width: 1, height: 1 }, { left: 0, top: 0, width: 1, height: 1 }, false)).length === 1;
    } catch (err) {
      nativeResample = false;
      process.emitWarning(`clip-native: resizing images in JavaScript, several times slower (${(err as Error).message.split('\n')[0]})`);
    }
  }
  if (nativeResample) {
    const data = await resampleBicubicNative(img.data, img, resized, win, alphaLast);
    return { data, width: win.width, height: win.height, channels: img.channels };
  }
  // Image.resize returns a plain copy when the size does not change: no premultiplied round trip.
  const same = resized.width === img.width && resized.height === img.height;
  if (!alphaLast || same) return resampleBicubic(img, resized.width, resized.height, win);
  return unpremultiply(resampleBicubic(premultiply(img), resized.width, resized.height, win));
}

/**
 * Pillow's `cmyk2rgb` (Convert.c): each colour is (255 - k) less its ink share, MULDIV255(c, 255 - k)
 * with Pillow's rounding.
 */
export function cmykToRgb(cmyk: Uint8Array): Uint8Array {
  const pixels = cmyk.length >> 2;
  const rgb = new Uint8Array(pixels * 3);
  for (let i = 0, s = 0, d = 0; i < pixels; i++, s += 4, d += 3) {
    const nk = 255 - cmyk[s + 3]!;
    for (let c = 0; c < 3; c++) {
      const tmp = cmyk[s + c]! * nk + 128;
      rgb[d + c] = nk - (((tmp >> 8) + tmp) >> 8);
    }
  }
  return rgb;
}

/**
 * The window's RGB pixels placed at `dest` on an R×R canvas of `fill` (default black): what
 * CenterCropOrPad makes where the resized image is smaller than R. An R×R window is returned as it is.
 */
function placeOnCanvas(rgb: Uint8Array, { window: win, dest }: CropGeometry, resolution: number, fill: [number, number, number] | undefined): Uint8Array {
  if (win.width === resolution && win.height === resolution) return rgb;
  const out = new Uint8Array(resolution * resolution * 3);
  if (fill && (fill[0] || fill[1] || fill[2])) for (let p = 0; p < out.length; p += 3) out.set(fill, p);
  const row = win.width * 3;
  for (let y = 0; y < win.height; y++) out.set(rgb.subarray(y * row, (y + 1) * row), ((dest.top + y) * resolution + dest.left) * 3);
  return out;
}

/**
 * The colour of palette index 0, which Pillow pads a "P" image with (torchvision's pad with fill 0):
 * a PNG's PLTE, a GIF's first frame's local or global colour table. Black when there is none.
 */
function paletteColourZero(bytes: Buffer): [number, number, number] {
  if (bytes.length > 8 && bytes.readUInt32BE(0) === 0x89504e47) {
    for (let pos = 8; pos + 8 <= bytes.length; ) {
      const length = bytes.readUInt32BE(pos);
      const type = bytes.toString('latin1', pos + 4, pos + 8);
      if (type === 'PLTE' && length >= 3 && pos + 11 <= bytes.length) return [bytes[pos + 8]!, bytes[pos + 9]!, bytes[pos + 10]!];
      if (type === 'IDAT' || type === 'IEND') break;
      pos += 12 + length;
    }
    return [0, 0, 0];
  }
  return gifTransparentColour(bytes, 0) ?? [0, 0, 0];
}

/**
 * The colour of the first frame's transparent palette index (Graphic Control Extension, then the local
 * or global colour table), or of index `pick` when given; undefined when the GIF has none or is not
 * laid out as expected.
 */
function gifTransparentColour(gif: Buffer, pick?: number): [number, number, number] | undefined {
  if (gif.length < 13 || gif.toString('latin1', 0, 3) !== 'GIF') return undefined;
  const flags = gif[10]!;
  const globalAt = 13;
  const globalSize = flags & 0x80 ? 3 << ((flags & 7) + 1) : 0;
  let pos = globalAt + globalSize;
  let index: number | undefined;
  while (pos < gif.length) {
    const block = gif[pos]!;
    if (block === 0x21) {
      const label = gif[pos + 1];
      if (label === 0xf9 && gif[pos + 2] === 4 && pos + 7 < gif.length && gif[pos + 3]! & 1) index = gif[pos + 6];
      pos += 2;
      while (pos < gif.length && gif[pos]! > 0) pos += gif[pos]! + 1;
      pos += 1;
    } else if (block === 0x2c) {
      if (pick !== undefined) index = pick;
      if (index === undefined || pos + 10 > gif.length) return undefined;
      const local = gif[pos + 9]!;
      const at = local & 0x80 ? pos + 10 : globalAt;
      if (!(local & 0x80) && !globalSize) return undefined;
      const o = at + index * 3;
      return o + 3 <= gif.length ? [gif[o]!, gif[o + 1]!, gif[o + 2]!] : undefined;
    } else {
      return undefined;
    }
  }
  return undefined;
}

/** Greyscale becomes three equal channels and alpha is dropped, as Pillow's convert('RGB') does. */
function toRgb(data: Buffer, channels: number, name: string): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (channels === 3) return bytes;
  if (channels === 1 || channels === 2 || channels === 4) {
    // 1: grey, 2: grey + alpha, 4: RGBA (kept only in raw inputs). Alpha is dropped, not composited.
    const colour = channels >= 3 ? 3 : 1;
    const pixels = bytes.length / channels;
    const rgb = new Uint8Array(pixels * 3);
    for (let i = 0, src = 0, dst = 0; i < pixels; i++, src += channels, dst += 3) {
      rgb[dst] = bytes[src]!;
      rgb[dst + 1] = bytes[src + (colour === 3 ? 1 : 0)]!;
      rgb[dst + 2] = bytes[src + (colour === 3 ? 2 : 0)]!;
    }
    return rgb;
  }
  throw new ImageDecodeError('unsupported', name, `decoded to ${channels} channels (CMYK or similar)`);
}

/** Convert an HWC crop to CHW uint8 (for consumers that want planar bytes). */
export function hwcToChw(hwc: Uint8Array): Uint8Array {
  const pixels = hwc.length / 3;
  const out = new Uint8Array(hwc.length);
  for (let c = 0; c < 3; c++) for (let i = 0; i < pixels; i++) out[c * pixels + i] = hwc[i * 3 + c]!;
  return out;
}
