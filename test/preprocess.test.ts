import assert from 'node:assert/strict';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { centerCropOffsets, resizedSize, roundHalfToEven } from '../src/data/clip-geometry.js';
import { ImageDecodeError, lacksEndMarker } from '../src/data/image-problems.js';
import { CLIP_MEAN, CLIP_STD, normalize } from '../src/data/normalize.js';
import { hwcToChw, preprocessImage, preprocessImageUint8 } from '../src/data/preprocess.js';
import { readSafetensors, type LoadedSafetensors } from '../src/io/safetensors-header.js';
import { fixture } from './helpers/fixtures.js';
import { absDiffStats } from './helpers/tensors.js';

describe('CLIP geometry', () => {
  test('round half to even, like Python', () => {
    assert.deepEqual([0.5, 1.5, 2.5, 55.5, 54.5, 2.4, 2.6].map(roundHalfToEven), [0, 2, 2, 56, 54, 2, 3]);
  });
  test('resize truncates the long side and the crop offsets follow torchvision', () => {
    assert.deepEqual(resizedSize(640, 427, 224), { width: 335, height: 224 });
    assert.deepEqual(resizedSize(300, 451, 224), { width: 224, height: 336 });
    assert.deepEqual(centerCropOffsets(335, 224, 224), { left: 56, top: 0 }); // 55.5 → 56
    assert.deepEqual(centerCropOffsets(224, 333, 224), { left: 0, top: 54 }); // 54.5 → 54
  });
});

describe('normalize', () => {
  test('equals (x/255 - mean)/std per channel, HWC in, CHW out', () => {
    const hwc = Uint8Array.from([0, 128, 255, 10, 20, 30]); // two pixels
    const out = normalize(hwc);
    const expect = (v: number, c: number) => (v / 255 - CLIP_MEAN[c]!) / CLIP_STD[c]!;
    const want = [expect(0, 0), expect(10, 0), expect(128, 1), expect(20, 1), expect(255, 2), expect(30, 2)];
    for (let i = 0; i < 6; i++) assert.ok(Math.abs(out[i]! - want[i]!) < 1e-6, `element ${i}: ${out[i]} vs ${want[i]}`);
    assert.deepEqual(Array.from(hwcToChw(hwc)), [0, 10, 128, 20, 255, 30]);
  });
});

describe('preprocessImage against the openai/CLIP goldens', () => {
  let golden: LoadedSafetensors;
  before(async () => {
    golden = await readSafetensors(fixture('preprocess.golden.safetensors'));
  });

  test('every golden image is within mean |Δ| ≤ 0.01 and max |Δ| ≤ 0.1', async () => {
    const keys = Object.keys(golden.header.tensors);
    assert.ok(keys.length >= 12, `expected 12 goldens, found ${keys.length}`);
    for (const key of keys) {
      const [file, variant] = key.split('#');
      // The reference ignores EXIF; only the `#exif_transposed` key is the upright view.
      const got = await preprocessImage(fixture('images', file!), { exif: variant === 'exif_transposed' });
      const ref = golden.float32(key);
      assert.deepEqual(got.shape, [3, 224, 224]);
      assert.deepEqual(ref.shape, [3, 224, 224]);
      const { mean, max } = absDiffStats(got.data, ref.data);
      assert.ok(mean <= 0.01 && max <= 0.1, `${key}: mean |Δ| ${mean.toFixed(4)}, max |Δ| ${max.toFixed(4)}`);
    }
  });

  test('EXIF orientation is applied by default and ignored with exif: false', async () => {
    const file = fixture('images', 'chelsea_exif6.jpg');
    const upright = await preprocessImage(file);
    const stored = await preprocessImage(file, { exif: false });
    assert.ok(absDiffStats(upright.data, golden.float32('chelsea_exif6.jpg#exif_transposed').data).mean < 0.01);
    assert.ok(absDiffStats(stored.data, golden.float32('chelsea_exif6.jpg').data).mean < 0.01);
    assert.ok(absDiffStats(upright.data, stored.data).mean > 0.1, 'the two orientations must differ');
  });

  test('a Buffer gives the same tensor as the path', async () => {
    const file = fixture('images', 'rocket.jpg');
    const fromPath = await preprocessImage(file);
    const fromBuffer = await preprocessImage(await fs.readFile(file));
    assert.deepEqual(fromBuffer.data, fromPath.data);
  });

  test('greyscale becomes three equal channels; other resolutions work', async () => {
    const crop = await preprocessImageUint8(fixture('images', 'chelsea_gray.png'), { resolution: 32 });
    assert.deepEqual(crop.shape, [32, 32, 3]);
    assert.equal(crop.data.length, 32 * 32 * 3);
    for (let i = 0; i < crop.data.length; i += 3) {
      assert.ok(crop.data[i] === crop.data[i + 1] && crop.data[i] === crop.data[i + 2], `pixel ${i / 3} is not grey`);
    }
    assert.deepEqual([crop.sourceWidth, crop.sourceHeight], [451, 300]);
  });
});

describe('preprocessImage on bad input', () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clip-preprocess-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function kindOf(input: string, options = {}): Promise<string> {
    try {
      await preprocessImageUint8(input, options);
    } catch (err) {
      assert.ok(err instanceof ImageDecodeError, `expected ImageDecodeError, got ${String(err)}`);
      assert.ok(err.message.includes(input), `message should name the file: ${err.message}`);
      return err.kind;
    }
    return 'decoded';
  }

  test('missing, empty, truncated, undecodable, unsupported and too large are told apart', async () => {
    const jpeg = await fs.readFile(fixture('images', 'coffee.jpg'));
    const write = async (name: string, data: Uint8Array | string) => {
      const file = path.join(dir, name);
      await fs.writeFile(file, data);
      return file;
    };
    assert.equal(await kindOf(path.join(dir, 'nope.jpg')), 'missing');
    assert.equal(await kindOf(await write('empty.jpg', '')), 'empty');
    assert.equal(await kindOf(await write('truncated.jpg', jpeg.subarray(0, Math.floor(jpeg.length / 2)))), 'truncated');
    // A JPEG header followed by garbage: recognised format, broken data.
    const garbage = Buffer.concat([jpeg.subarray(0, 600), Buffer.alloc(4000, 0x5a)]);
    assert.ok(['undecodable', 'truncated'].includes(await kindOf(await write('garbage.jpg', garbage))));
    assert.equal(await kindOf(await write('notes.jpg', 'this is not an image at all')), 'unsupported');
    assert.equal(await kindOf(fixture('images', 'coffee.jpg'), { maxPixels: 1000 }), 'too-large');
    assert.equal(await kindOf(fixture('images', 'coffee.jpg'), { maxPixels: 600 * 400 }), 'decoded');
  });
});

test('a file cut short is recognised by its missing end marker (JPEG, PNG, GIF), whatever the decoder says', () => {
  for (const name of ['coffee.jpg', 'coffee.png']) {
    const whole = readFileSync(fixture('images', name));
    assert.equal(lacksEndMarker(whole), false, `${name} whole`);
    assert.equal(lacksEndMarker(whole.subarray(0, whole.length - 100)), true, `${name} cut`);
  }
  assert.equal(lacksEndMarker(Buffer.from('GIF89a...;')), false);
  assert.equal(lacksEndMarker(Buffer.from('GIF89a...')), true);
  assert.equal(lacksEndMarker(Buffer.from('hello, not an image')), false, 'not a known format: no opinion');
});
