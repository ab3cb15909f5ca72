import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { normalize } from '../src/data/normalize.js';
import { preprocessImageUint8 } from '../src/data/preprocess.js';
import { repoRoot } from './helpers/fixtures.js';

/**
 * The default preprocessing against Pillow itself (issue #22): images with hard edges, thin lines
 * and noise in every source mode, sizes from 31 px to 4032×3024 at odd aspect ratios, each turned
 * into the crop by openai/CLIP's transform with pip's torchvision and Pillow (test/python/pillow_preprocess_ref.py;
 * Pillow alone where torchvision does not import).
 * Every pixel must be within 1 uint8 step; 'libvips' must stay within its documented difference.
 */

const RESOLUTIONS = [224, 97];
const SCRIPT = path.join(repoRoot, 'test', 'python', 'pillow_preprocess_ref.py');

let dir = '';
let names: string[] = [];
let missing: string | false = false;

before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clip-pillow-'));
  const r = spawnSync('python3', [SCRIPT, dir, ...RESOLUTIONS.map(String)], { encoding: 'utf8', timeout: 600_000 });
  if (r.error || r.status !== 0) {
    missing = `python3 with Pillow and numpy is needed: ${(r.error?.message ?? r.stderr.trim().split('\n').pop()) || 'no output'}`;
    console.warn(`SKIPPED preprocess-pillow tests: ${missing}`);
    return;
  }
  names = JSON.parse(r.stdout.trim().split('\n').pop()!) as string[];
});

after(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function reference(name: string, resolution: number): Promise<Uint8Array> {
  return new Uint8Array(await fs.readFile(path.join(dir, `${name}.${resolution}.u8`)));
}

function maxAbsDiff(a: Uint8Array, b: Uint8Array): { max: number; at: number; off: number } {
  assert.equal(a.length, b.length);
  let max = 0;
  let at = -1;
  let off = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d > 0) off++;
    if (d > max) [max, at] = [d, i];
  }
  return { max, at, off };
}

function meanAbsNormalised(a: Uint8Array, b: Uint8Array): number {
  const x = normalize(a);
  const y = normalize(b);
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.abs(x[i]! - y[i]!);
  return sum / x.length;
}

describe('the default resize is Pillow\'s to within 1 uint8 step at every pixel', () => {
  test('every generated image, every resolution', async (t) => {
    if (missing) return t.skip(missing);
    assert.ok(names.length >= 25, `the reference script made ${names.length} images`);
    const failures: string[] = [];
    for (const name of names) {
      for (const resolution of RESOLUTIONS) {
        const ours = await preprocessImageUint8(path.join(dir, name), { resolution });
        const { max, at, off } = maxAbsDiff(ours.data, await reference(name, resolution));
        if (max > 1) failures.push(`${name} at ${resolution}: max |Δ| ${max} uint8 steps at byte ${at}, ${off} bytes off`);
      }
    }
    assert.deepEqual(failures, []);
  });

  test('CMYK JPEGs, with and without the Adobe segment, and YCCK, convert as Pillow does (mean |Δ| ≤ 0.02 normalised)', async (t) => {
    if (missing) return t.skip(missing);
    const cmyk = names.filter((n) => n.startsWith('cmyk_'));
    assert.equal(cmyk.length, 6);
    for (const name of cmyk) {
      const ours = await preprocessImageUint8(path.join(dir, name));
      const mean = meanAbsNormalised(ours.data, await reference(name, 224));
      assert.ok(mean <= 0.02, `${name}: mean |Δ| ${mean}`);
    }
  });

  test("'libvips' differs from Pillow where the default does not, within its documented bound", async (t) => {
    if (missing) return t.skip(missing);
    const name = 'rgb_225x1000.png';
    const ref = await reference(name, 224);
    const fast = await preprocessImageUint8(path.join(dir, name), { resample: 'libvips' });
    const { max } = maxAbsDiff(fast.data, ref);
    assert.ok(max > 1, `libvips' cubic was expected to differ from Pillow on sharp edges (max |Δ| ${max})`);
    assert.ok(meanAbsNormalised(fast.data, ref) < 0.05);
  });

  test('an unknown resample mode is refused', async () => {
    await assert.rejects(preprocessImageUint8(Buffer.from([1]), { resample: 'lanczos' as never }), /resample must be one of pillow, libvips/);
  });
});
