import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { premultiply, resampleBicubic, resizeNearest, unpremultiply } from '../src/data/pillow-resample.js';
import { preprocessImage } from '../src/data/preprocess.js';
import { readSafetensors } from '../src/io/safetensors-header.js';
import { fixture, repoRoot } from './helpers/fixtures.js';
import { absDiffStats } from './helpers/tensors.js';

/**
 * The Pillow port against Pillow itself: edge images made with Pillow, the reference transform
 * (bench/preprocess_peer.py `clip_transform`, bitwise equal to the goldens) run on them, and
 * preprocessImage required to match to the bit (max |Δ| ≤ 1e-5 after normalisation).
 */

const MAKE_IMAGES = String.raw`
import sys, numpy as np
from PIL import Image
d = sys.argv[1]
rng = np.random.default_rng(7)
def noise(h, w, c):
    # smooth content plus noise, so resampling has something to get wrong
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 3) % 256][:c], -1)
    return np.clip(base + rng.integers(-40, 41, (h, w, c)), 0, 255).astype(np.uint8)
rgb = Image.fromarray(noise(400, 600, 3))
rgb.quantize(64).save(d + '/palette.png')
p = rgb.quantize(32); p.info['transparency'] = 3; p.save(d + '/palette_trns.png', transparency=3)
rgb.quantize(128).save(d + '/anim.gif')
rgb.quantize(64).save(d + '/gif_trns.gif', transparency=5)
a = noise(400, 600, 3)
alpha = rng.integers(0, 256, (400, 600), dtype=np.uint8)
Image.fromarray(np.dstack([a, alpha])).save(d + '/rgba.png')
ramp = np.tile(np.linspace(0, 255, 600).astype(np.uint8), (400, 1))
Image.fromarray(np.dstack([a[:, :, 0], ramp])).save(d + '/la.png')
Image.fromarray(np.dstack([noise(30, 20, 3), rng.integers(0, 256, (30, 20), dtype=np.uint8)])).save(d + '/rgba_tiny.png')
Image.fromarray(np.dstack([noise(224, 300, 3), alpha[:224, :300]])).save(d + '/rgba_exact.png')
Image.fromarray(noise(20, 30, 3)).save(d + '/tiny.png')
Image.fromarray(noise(40, 600, 3)).save(d + '/wide.png')
Image.fromarray(noise(500, 100, 3)[:, :, 0]).save(d + '/tall_l.png')
Image.fromarray(noise(300, 450, 3)[:, :, 0]).convert('1').save(d + '/bilevel.png')
rgb.quantize(16).resize((37, 23), Image.NEAREST).save(d + '/palette_tiny.png')
`;

const REFERENCE = String.raw`
import sys
sys.path.insert(0, sys.argv[1])
from preprocess_peer import clip_transform
for name in sys.argv[3:]:
    clip_transform(sys.argv[2] + '/' + name).astype('<f4').tofile(sys.argv[2] + '/' + name + '.ref')
`;

const IMAGES = [
  'palette.png', 'palette_trns.png', 'anim.gif', 'gif_trns.gif', 'rgba.png', 'la.png', 'rgba_tiny.png', 'rgba_exact.png',
  'tiny.png', 'wide.png', 'tall_l.png', 'bilevel.png', 'palette_tiny.png',
];

function pythonMissing(): string | undefined {
  const r = spawnSync('python3', ['-c', 'import PIL, numpy'], { encoding: 'utf8' });
  if (r.error) return `python3 not runnable (${r.error.message})`;
  if (r.status !== 0) return `python3 lacks Pillow or numpy: ${r.stderr.trim().split('\n').pop()}`;
  return undefined;
}

describe('preprocessImage matches Pillow bit for bit on the exact path', () => {
  const missing = pythonMissing();
  if (missing) console.warn(`SKIPPING the Pillow comparison: ${missing}`);
  let dir: string;
  before(async () => {
    if (missing) return;
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clip-preprocess-exact-'));
    const make = spawnSync('python3', ['-c', MAKE_IMAGES, dir], { encoding: 'utf8' });
    assert.equal(make.status, 0, make.stderr);
    const ref = spawnSync('python3', ['-c', REFERENCE, path.join(repoRoot, 'bench'), dir, ...IMAGES], { encoding: 'utf8' });
    assert.equal(ref.status, 0, ref.stderr);
  });
  after(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  for (const name of IMAGES) {
    test(name, { skip: missing }, async () => {
      const buf = await fs.readFile(path.join(dir, name + '.ref'));
      const ref = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
      const got = await preprocessImage(path.join(dir, name), { exif: false });
      const { mean, max } = absDiffStats(got.data, ref);
      assert.ok(max <= 1e-5, `${name}: mean |Δ| ${mean.toFixed(6)}, max |Δ| ${max.toFixed(6)}`);
    });
  }

  test('the alpha fixture coffee_rgba.png now equals its golden', async () => {
    const golden = await readSafetensors(fixture('preprocess.golden.safetensors'));
    const got = await preprocessImage(fixture('images', 'coffee_rgba.png'), { exif: false });
    const { mean, max } = absDiffStats(got.data, golden.float32('coffee_rgba.png').data);
    // Was mean 0.0064, max 0.075 with sharp's resize after dropping alpha.
    assert.ok(max <= 1e-5, `coffee_rgba.png: mean |Δ| ${mean.toFixed(6)}, max |Δ| ${max.toFixed(6)}`);
  });
});

describe('pillow-resample units', () => {
  const img = (w: number, h: number, c: number, f: (i: number) => number) => ({
    data: Uint8Array.from({ length: w * h * c }, (_, i) => f(i)),
    width: w,
    height: h,
    channels: c,
  });

  test('same size is a copy; a window equals cropping the full resize', () => {
    const src = img(9, 7, 3, (i) => (i * 37) % 256);
    assert.deepEqual(resampleBicubic(src, 9, 7, { left: 0, top: 0, width: 9, height: 7 }).data, src.data);
    const full = resampleBicubic(src, 20, 5, { left: 0, top: 0, width: 20, height: 5 });
    const part = resampleBicubic(src, 20, 5, { left: 6, top: 1, width: 5, height: 3 });
    for (let y = 0; y < 3; y++) {
      assert.deepEqual(part.data.subarray(y * 15, y * 15 + 15), full.data.subarray(((y + 1) * 20 + 6) * 3, ((y + 1) * 20 + 11) * 3));
    }
    const nFull = resizeNearest(src, 4, 13, { left: 0, top: 0, width: 4, height: 13 });
    const nPart = resizeNearest(src, 4, 13, { left: 1, top: 2, width: 2, height: 2 });
    assert.deepEqual(Array.from(nPart.data.subarray(0, 6)), Array.from(nFull.data.subarray((2 * 4 + 1) * 3, (2 * 4 + 3) * 3)));
  });

  test('premultiply and unpremultiply follow Convert.c (MULDIV255, truncating division)', () => {
    // Values checked against Pillow 11.3: RGBA → RGBa → RGBA.
    const rgba = { data: Uint8Array.from([200, 10, 50, 100, 37, 200, 255, 3, 255, 4, 5, 0, 100, 100, 100, 128]), width: 4, height: 1, channels: 4 };
    const pre = premultiply(rgba);
    assert.deepEqual(Array.from(pre.data), [78, 4, 20, 100, 0, 2, 3, 3, 0, 0, 0, 0, 50, 50, 50, 128]);
    assert.deepEqual(Array.from(unpremultiply(pre).data), [198, 10, 51, 100, 0, 170, 255, 3, 0, 0, 0, 0, 99, 99, 99, 128]);
  });

  test('a window outside the output is refused', () => {
    assert.throws(() => resampleBicubic(img(4, 4, 1, () => 0), 8, 8, { left: 4, top: 0, width: 5, height: 1 }), RangeError);
  });
});
