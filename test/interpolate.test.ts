import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { before, describe, test } from 'node:test';
import { interpolateStateDicts, interpolateWeights } from '../src/eval/interpolate.js';
import { createModel, loadModel } from '../src/model/model.js';
import { fixture, repoRoot } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';

type State = Awaited<ReturnType<Awaited<ReturnType<typeof loadModel>>['stateDict']>>;

const VIT = fixture('models', 'tiny_vit.safetensors');
const RN = fixture('models', 'tiny_rn.safetensors');

const tmp = scratchDir('clip-interp-');
let vitTo: string;
let rnTo: string;

async function stateOf(file: string): Promise<State> {
  const model = await loadModel(file);
  try {
    return await model.stateDict();
  } finally {
    model.dispose();
  }
}

/** Bitwise equality of two state dicts, naming the first tensor that differs. */
function assertSameBits(actual: State, expected: State): void {
  assert.deepEqual(actual.map((e) => e.name), expected.map((e) => e.name));
  actual.forEach((e, i) => {
    const a = new Uint8Array(e.tensor.data.buffer, e.tensor.data.byteOffset, e.tensor.data.byteLength);
    const b = new Uint8Array(expected[i]!.tensor.data.buffer, expected[i]!.tensor.data.byteOffset, expected[i]!.tensor.data.byteLength);
    assert.ok(Buffer.compare(a, b) === 0, `${e.name} differs`);
  });
}

before(async () => {
  // The "fine-tuned" endpoints: same architectures, other seeds; the ResNet's BatchNorm counters set.
  const vitFrom = await loadModel(VIT);
  const vit = await createModel(vitFrom.config, { seed: 11 });
  vitFrom.dispose();
  vitTo = path.join(tmp, 'vit_to.safetensors');
  await vit.save(vitTo);
  vit.dispose();

  const rnFrom = await loadModel(RN);
  const rn = await createModel(rnFrom.config, { seed: 12 });
  rnFrom.dispose();
  const counters = (await rn.stateDict())
    .filter((e) => e.tensor.data instanceof BigInt64Array)
    .map((e) => ({ name: e.name, tensor: { data: BigInt64Array.of(7n), shape: e.tensor.shape } }));
  assert.ok(counters.length > 0, 'the ResNet has BatchNorm counters');
  await rn.loadStateDict(counters, { partial: true });
  rnTo = path.join(tmp, 'rn_to.safetensors');
  await rn.save(rnTo);
  rn.dispose();
});

describe('interpolateWeights (WiSE-FT)', () => {
  test('alpha 0 and 1 reproduce the endpoints bit for bit; 0.5 is the midpoint', async () => {
    const from = await stateOf(VIT);
    const to = await stateOf(vitTo);
    for (const alpha of [0, 1]) {
      const out = path.join(tmp, `vit_${alpha}.safetensors`);
      const result = await interpolateWeights({ from: VIT, to: vitTo, alpha, out });
      assert.equal(result.format, 'safetensors');
      assertSameBits(await stateOf(out), alpha === 0 ? from : to);
    }
    const out = path.join(tmp, 'vit_half.safetensors');
    await interpolateWeights({ from: VIT, to: vitTo, alpha: 0.5, out });
    const half = await stateOf(out);
    let changed = 0;
    half.forEach((e, i) => {
      const a = from[i]!.tensor.data as Float32Array;
      const b = to[i]!.tensor.data as Float32Array;
      const mid = e.tensor.data as Float32Array;
      for (let k = 0; k < mid.length; k++) {
        if (mid[k] !== Math.fround((a[k]! + b[k]!) / 2)) assert.fail(`${e.name}[${k}] = ${mid[k]}, midpoint of ${a[k]} and ${b[k]}`);
        if (a[k] !== b[k]) changed++;
      }
    });
    assert.ok(changed > 1000, 'the endpoints really differ');
  });

  test('float buffers are mixed, integer BatchNorm counters come from `to`; .pt output works', async () => {
    const out = path.join(tmp, 'rn_mid.pt');
    const result = await interpolateWeights({ from: RN, to: rnTo, alpha: 0.25, out });
    assert.equal(result.format, 'pt');
    assert.ok(result.mixed < result.tensors);
    const [from, to, mixed] = [await stateOf(RN), await stateOf(rnTo), await stateOf(out)];
    for (const [i, e] of mixed.entries()) {
      if (e.tensor.data instanceof BigInt64Array) {
        assert.deepEqual(Array.from(e.tensor.data), [7n], e.name);
        assert.notDeepEqual(Array.from(from[i]!.tensor.data as BigInt64Array), [7n]);
      } else {
        const a = from[i]!.tensor.data as Float32Array;
        const b = to[i]!.tensor.data as Float32Array;
        e.tensor.data.forEach((v, k) => assert.equal(v, Math.fround(0.75 * a[k]! + 0.25 * b[k]!), `${e.name}[${k}]`));
      }
    }
    assert.ok(mixed.some((e) => e.name.endsWith('running_var')), 'BatchNorm running statistics are in the state dict');
  });

  test('refuses a different architecture, naming the keys that differ', async () => {
    await assert.rejects(
      interpolateWeights({ from: VIT, to: RN, alpha: 0.5, out: path.join(tmp, 'bad.safetensors') }),
      /--from .*tiny_vit\.safetensors and --to .*tiny_rn\.safetensors: different architectures \(.*vision_layers: 2 vs \[1,1,1,1\]/,
    );
    await assert.rejects(interpolateWeights({ from: VIT, to: vitTo, alpha: 0.5, out: path.join(tmp, 'x.bin') }), /--out .*x\.bin: unknown weight format/);
  });

  test('interpolateStateDicts refuses other names, other shapes and alpha outside [0, 1]', () => {
    const t = (data: number[], shape = [data.length]) => ({ data: Float32Array.from(data), shape });
    const a = [{ name: 'w', tensor: t([1, 2]) }, { name: 'b', tensor: t([0]) }];
    assert.throws(() => interpolateStateDicts(a, [{ name: 'w', tensor: t([1, 2]) }, { name: 'c', tensor: t([0]) }], 0.5), /only in 'to': c; only in 'from': b/);
    assert.throws(() => interpolateStateDicts(a, [{ name: 'w', tensor: t([1, 2], [2, 1]) }, { name: 'b', tensor: t([0]) }], 0.5), /cannot interpolate w: shape \[2\] in 'from', \[2,1\] in 'to'/);
    assert.throws(() => interpolateStateDicts(a, a, 1.5), /alpha must be a number in \[0, 1\], got 1.5/);
    const mixed = interpolateStateDicts(a, [{ name: 'w', tensor: t([3, 6]) }, { name: 'b', tensor: t([-0]) }], 0.5);
    assert.deepEqual(Array.from(mixed[0]!.tensor.data as Float32Array), [2, 4]);
  });

  test('`clip-native interpolate` writes the model and rejects a bad --alpha', async () => {
    const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
    const out = path.join(tmp, 'cli.safetensors');
    const { stdout } = await promisify(execFile)(process.execPath, [cli, 'interpolate', '--from', VIT, '--to', vitTo, '--alpha', '0', '--out', out]);
    assert.match(stdout, /wrote .*cli\.safetensors \(safetensors\): alpha 0/);
    assertSameBits(await stateOf(out), await stateOf(VIT));
    await assert.rejects(
      promisify(execFile)(process.execPath, [cli, 'interpolate', '--from', VIT, '--to', vitTo, '--alpha', 'half', '--out', out]),
      (err: { stderr: string }) => /option '--alpha <alpha>' argument 'half' is invalid\. expected a number from 0 to 1/.test(err.stderr),
    );
  });
});
