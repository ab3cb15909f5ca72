// The nine released architectures and the reference's state-dict layout, against open_clip's CLIP with
// QuickGELU, openai/CLIP's architecture under its names (test/python/clip_reference.py, run once for the
// whole file on the meta device), plus seeded initialisation.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { readSafetensors } from '../src/io/safetensors-header.js';
import { MODEL_NAMES, type ClipConfig } from '../src/model/config.js';
import { createModel } from '../src/model/model.js';
import { fixture, repoRoot } from './helpers/fixtures.js';

const script = path.join(repoRoot, 'test', 'python', 'clip_reference.py');

interface Described {
  counts: Record<string, number>;
  counts_given: Record<string, number>;
  keys: Record<string, Array<[string, number[], string]>>;
  witness?: { file: string; matches: boolean };
}

/** Runs the reference script; returns its JSON, or the reason it cannot run here (→ loud skip). */
function runReference(args: string[]): { result?: Described; skip?: string } {
  const run = spawnSync('python3', [script, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (run.error) return { skip: `SKIPPED: python3 cannot be run (${run.error.message}); install python3 with torch for the reference checks` };
  if (run.status !== 0 && /No module named '(torch|numpy|open_clip|timm|ftfy|PIL|torchvision)'/.test(run.stderr)) {
    return { skip: `SKIPPED: python3 lacks the reference (${run.stderr.trim().split('\n').pop()}): pip install torch open_clip_torch` };
  }
  assert.equal(run.status, 0, `clip_reference.py failed:\n${run.stderr}`);
  return { result: JSON.parse(run.stdout) as Described };
}

// Published in openai/CLIP's model card / paper tables (in millions, exact counts from its model.py).
const PUBLISHED: Record<string, number> = { RN50: 102_007_137, 'ViT-B/32': 151_277_313, 'ViT-L/14': 427_616_513 };

async function fixtureConfig(name: string): Promise<ClipConfig> {
  const file = await readSafetensors(fixture('models', `${name}.safetensors`));
  return JSON.parse(file.header.metadata.config!) as ClipConfig;
}

// Small configurations of each kind. small_rn has two blocks in some stages (a block without a
// downsample after one with), small_vit three text and vision layers and more than one vision head.
const extraConfigs: Record<string, ClipConfig> = {
  small_rn: { embed_dim: 16, image_resolution: 64, vision_layers: [2, 1, 1, 2], vision_width: 8, vision_patch_size: null, context_length: 12, vocab_size: 100, transformer_width: 32, transformer_heads: 2, transformer_layers: 3 },
  small_vit: { embed_dim: 24, image_resolution: 32, vision_layers: 3, vision_width: 128, vision_patch_size: 16, context_length: 10, vocab_size: 90, transformer_width: 64, transformer_heads: 4, transformer_layers: 3 },
};

let configs: Record<string, ClipConfig> = {};
let reference: Described | undefined;
let skipReason: string | undefined;

before(async () => {
  configs = { tiny_vit: await fixtureConfig('tiny_vit'), tiny_rn: await fixtureConfig('tiny_rn'), ...extraConfigs };
  const witness = `--witness=tiny_vit=${fixture('models', 'tiny_vit.visual.state_dict.pt')}`;
  const { result, skip } = runReference(['describe', ...Object.entries(configs).map(([n, c]) => `--config=${n}=${JSON.stringify(c)}`), witness]);
  reference = result;
  skipReason = skip;
  if (skip) console.log(`# ${skip}`);
});

describe('parameter counts of the nine released architectures', () => {
  test('the reference gives the published counts (sanity check of the Python side)', (t) => {
    if (!reference) return t.skip(skipReason);
    for (const [name, count] of Object.entries(PUBLISHED)) assert.equal(reference.counts[name], count, name);
    assert.deepEqual(Object.keys(reference.counts), MODEL_NAMES, 'the same nine names, in clip.available_models() order');
  });

  // Building all nine at full size takes about 25 s on two cores (RN50x64 is 2.5 GB of fp32), which is
  // what this suite can afford: there is no cheaper count in the API than a constructed model.
  for (const name of MODEL_NAMES) {
    test(`${name}: createModel(name, {seed: 0}).parameterCount() equals the reference's`, async (t) => {
      const model = await createModel(name, { seed: 0 });
      try {
        const count = model.parameterCount();
        if (PUBLISHED[name] !== undefined) assert.equal(count, PUBLISHED[name], `${name}: the published count`);
        if (!reference) return t.skip(`${skipReason} (only the published counts were checked)`);
        assert.equal(count, reference.counts[name], `${name}: count vs the reference (open_clip's configuration of it)`);
        t.diagnostic(`${name}: ${count.toLocaleString('en-US')} parameters (${(count / 1e6).toFixed(2)} M)`);
      } finally {
        model.dispose();
      }
    });
  }
});

describe("state dict layout equals the reference's state_dict(), in openai/CLIP's order", () => {
  test("the reference's order is openai/CLIP's: a visual state dict model.py wrote has it", (t) => {
    if (!reference) return t.skip(skipReason);
    assert.equal(reference.witness?.matches, true, `the order of ${reference.witness?.file}`);
  });

  for (const name of ['tiny_vit', 'tiny_rn', 'small_rn', 'small_vit']) {
    test(`${name}: names, order, shapes and dtypes; parameter count`, async (t) => {
      if (!reference) return t.skip(skipReason);
      const model = await createModel(configs[name]!, { seed: 0 });
      const ours = (await model.stateDict()).map((e) => [
        e.name,
        e.tensor.shape,
        e.tensor.data instanceof BigInt64Array ? 'int64' : 'float32',
      ]);
      const theirs = reference.keys[name]!;
      const missing = theirs.filter(([k]) => !ours.some(([n]) => n === k)).map(([k]) => k);
      const extra = ours.filter(([n]) => !theirs.some(([k]) => k === n)).map(([n]) => n);
      assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, `${name}: key sets differ`);
      assert.deepEqual(ours, theirs, `${name}: order, shapes or dtypes differ`);
      assert.equal(model.parameterCount(), reference.counts_given[name]);
      model.dispose();
    });
  }

  test('the fixture counts in the fixtures README', (t) => {
    if (!reference) return t.skip(skipReason);
    assert.equal(reference.counts_given.tiny_vit, 3_384_897);
    assert.equal(reference.counts_given.tiny_rn, 4_582_137);
  });
});

describe('seeded initialisation', () => {
  async function weights(config: ClipConfig, seed: number) {
    const model = await createModel(config, { seed });
    const state = await model.stateDict();
    model.dispose();
    return state;
  }

  function sameBits(a: ArrayBufferView, b: ArrayBufferView): boolean {
    return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }

  for (const name of ['tiny_vit', 'tiny_rn']) {
    test(`${name}: the same seed gives bitwise-identical weights, also when created concurrently; another seed differs`, async () => {
      const config = configs[name]!;
      const [a, b, c] = await Promise.all([weights(config, 0), weights(config, 0), weights(config, 0)]);
      const other = await weights(config, 1);
      for (const [i, entry] of a.entries()) {
        assert.ok(sameBits(entry.tensor.data, b[i]!.tensor.data), `${entry.name} differs between two seed-0 models`);
        assert.ok(sameBits(entry.tensor.data, c[i]!.tensor.data), `${entry.name} differs between two seed-0 models`);
      }
      // Constant initialisations (LayerNorm, BatchNorm, biases, logit_scale, bn3 zeros) are seed-independent;
      // every randomly initialised tensor must change with the seed.
      const random = ['token_embedding.weight', 'positional_embedding', 'text_projection', 'transformer.resblocks.0.attn.in_proj_weight',
        'transformer.resblocks.1.mlp.c_proj.weight', name === 'tiny_vit' ? 'visual.conv1.weight' : 'visual.attnpool.q_proj.weight'];
      for (const key of random) {
        const i = a.findIndex((e) => e.name === key);
        assert.ok(i >= 0, `no ${key}`);
        assert.ok(!sameBits(a[i]!.tensor.data, other[i]!.tensor.data), `${key} is the same for seeds 0 and 1`);
      }
      const constant = a.findIndex((e) => e.name === 'logit_scale');
      assert.ok(sameBits(a[constant]!.tensor.data, other[constant]!.tensor.data));
      assert.equal(a[constant]!.tensor.data[0], Math.fround(Math.log(1 / 0.07)));
    });
  }
});
