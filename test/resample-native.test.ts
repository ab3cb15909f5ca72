import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resampleBicubicNative } from '../src/native.js';
import { premultiply, resampleBicubic, unpremultiply, type RawImage } from '../src/data/pillow-resample.js';
import { createRng } from '../src/util/prng.js';

/**
 * The addon's resampler (native/image/resample.cc) against the TypeScript port of Pillow's
 * (src/data/pillow-resample.ts, itself checked against Pillow in preprocess-exact.test.ts): the same
 * bytes on random images of 1–4 channels, shrinking and enlarging, windows anywhere, alpha premultiplied.
 */

function randomImage(width: number, height: number, channels: number, seed: number): RawImage {
  const rng = createRng(seed);
  const data = new Uint8Array(width * height * channels);
  // Half hard noise, half extremes: both saturate the filter's negative lobes.
  for (let i = 0; i < data.length; i++) data[i] = rng.next() < 0.5 ? rng.nextInt(256) : rng.next() < 0.5 ? 0 : 255;
  return { data, width, height, channels };
}

function portResample(img: RawImage, out: { width: number; height: number }, win: { left: number; top: number; width: number; height: number }, alpha: boolean): Uint8Array {
  const same = out.width === img.width && out.height === img.height;
  if (!alpha || same) return resampleBicubic(img, out.width, out.height, win).data;
  return unpremultiply(resampleBicubic(premultiply(img), out.width, out.height, win)).data;
}

describe('native resampleBicubic', () => {
  test('equals the Pillow port byte for byte (1–4 channels, shrink, enlarge, mixed, windows, alpha)', async () => {
    const rng = createRng(22);
    for (let i = 0; i < 60; i++) {
      const channels = 1 + (i % 4);
      const img = randomImage(1 + rng.nextInt(300), 1 + rng.nextInt(300), channels, i);
      const out = { width: 1 + rng.nextInt(200), height: 1 + rng.nextInt(200) };
      if (i % 10 === 0) Object.assign(out, { width: img.width }); // one side unchanged: its pass is skipped
      const width = 1 + rng.nextInt(out.width);
      const height = 1 + rng.nextInt(out.height);
      const win = { left: rng.nextInt(out.width - width + 1), top: rng.nextInt(out.height - height + 1), width, height };
      const alpha = channels % 2 === 0 && i % 3 !== 0;
      const ours = await resampleBicubicNative(img.data, img, out, win, alpha);
      assert.deepEqual(new Uint8Array(ours), portResample(img, out, win, alpha), `case ${i}: ${img.width}x${img.height}x${channels} → ${out.width}x${out.height} window ${JSON.stringify(win)} alpha ${alpha}`);
    }
  });

  test('bad arguments are JS errors: a window outside the output rejects, a short source throws', async () => {
    const img = randomImage(10, 10, 3, 1);
    await assert.rejects(resampleBicubicNative(img.data, img, { width: 5, height: 5 }, { left: 3, top: 0, width: 3, height: 5 }, false), (err: Error) => err instanceof Error && /not inside 5x5/.test(err.message));
    assert.throws(() => resampleBicubicNative(img.data.subarray(1), img, { width: 5, height: 5 }, { left: 0, top: 0, width: 5, height: 5 }, false), /fewer than width × height × channels/);
    await assert.rejects(resampleBicubicNative(new Uint8Array(500), { width: 10, height: 10, channels: 5 }, { width: 5, height: 5 }, { left: 0, top: 0, width: 5, height: 5 }, false), /1 to 4 channels/);
  });
});
