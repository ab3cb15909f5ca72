// Image files as a user's dataset has them, good and bad: real PNG and JPEG written by sharp, and
// the broken kinds a loader must name (cut short, empty, text, a format sharp does not read, a PNG
// whose header is good and whose pixel data is not).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';

/** A 24×24 image of seeded noise (so the JPEG has data worth cutting). */
function noise(seed: number): Buffer {
  const pixels = Buffer.alloc(24 * 24 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7919 + seed * 104729) % 251;
  return pixels;
}

async function write(file: string, data: Uint8Array | string): Promise<string> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, data);
  return file;
}

export async function pngBytes(seed = 0): Promise<Buffer> {
  return sharp(noise(seed), { raw: { width: 24, height: 24, channels: 3 } }).png().toBuffer();
}

export async function jpegBytes(seed = 0): Promise<Buffer> {
  return sharp(noise(seed), { raw: { width: 24, height: 24, channels: 3 } }).jpeg().toBuffer();
}

export const writeGoodPng = async (file: string, seed = 0) => write(file, await pngBytes(seed));
export const writeGoodJpeg = async (file: string, seed = 0) => write(file, await jpegBytes(seed));
/** The first half of a real JPEG: no end marker. */
export const writeTruncatedJpeg = async (file: string) => {
  const jpeg = await jpegBytes(1);
  return write(file, jpeg.subarray(0, jpeg.length >> 1));
};
export const writeEmpty = (file: string) => write(file, '');
export const writeText = (file: string, text = 'this is a note, not an image\n') => write(file, text);

/** A valid 4×4 24-bit BMP: a real image in a format sharp does not read. */
export const writeBmp = (file: string) => {
  const bmp = Buffer.alloc(54 + 4 * 4 * 3);
  bmp.write('BM', 0, 'latin1');
  bmp.writeUInt32LE(bmp.length, 2);
  bmp.writeUInt32LE(54, 10);
  bmp.writeUInt32LE(40, 14);
  bmp.writeInt32LE(4, 18);
  bmp.writeInt32LE(4, 22);
  bmp.writeUInt16LE(1, 26);
  bmp.writeUInt16LE(24, 28);
  return write(file, bmp);
};

/**
 * A PNG whose header and end are intact but whose compressed pixels are scrambled (with correct
 * chunk CRCs): nothing short of decoding it finds the problem.
 */
export const writeCorruptPixelsPng = async (file: string, seed = 0) => {
  const png = Buffer.from(await pngBytes(seed));
  for (let pos = 8; pos < png.length; ) {
    const length = png.readUInt32BE(pos);
    if (png.toString('latin1', pos + 4, pos + 8) === 'IDAT') {
      for (let i = pos + 10; i < pos + 8 + length; i++) png[i]! ^= 0xa5;
      png.writeUInt32BE(crc32(png.subarray(pos + 4, pos + 8 + length)), pos + 8 + length);
    }
    pos += 12 + length;
  }
  return write(file, png);
};
