// Other CLIP families against their libraries themselves (issue #20 item 6): random-init open_clip and
// transformers models of several shapes (GELU and QuickGELU, heads != width / 64 in each tower, MLP
// widths != 4 x width, ViT and ResNet, fp16 files, sharded folders, .bin files, mean/std other than
// OpenAI's), saved as their users save them, loaded here and run on the libraries' own inputs:
// fp32 eval-mode features and logits within rtol 1e-4 / atol 1e-5 (test/python/family_parity.py).
// Then three steps of open_clip's own training step (its ClipLoss, AdamW with main.py's decay rule)
// against this project's trainer within the Adam tests' tolerances (test/python/open_clip_train3.py),
// and which parameters the AdamW decays, found by behaviour, against main.py's rule.
// Python runs once per script, both in parallel, before the tests are declared.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';

import { readSafetensors, type LoadedSafetensors } from '../src/io/safetensors-header.js';
import { OPENAI_IMAGE_MEAN, OPENAI_IMAGE_STD, type ClipConfig } from '../src/model/config.js';
import { ClipModel, loadModel } from '../src/model/model.js';
import { loadNativeModel } from '../src/native.js';
import { createTrainer, type TrainerOptions } from '../src/train/trainer.js';
import { repoRoot } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';

const pythonDir = path.join(repoRoot, 'test', 'python');
const FORWARD_TOL = { rtol: 1e-4, atol: 1e-5 };
// test/train-parity.test.ts's tolerances for three Adam steps against torch.optim.Adam.
const TRAIN_TOL = { loss: 2e-5, param: 2e-4, logits: 2e-4 };

interface PythonRun {
  result?: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- the scripts' JSON
  skip?: string;
  failed?: string;
  notices: string[];
}

/** Runs a test/python script; missing python3 or modules become a loud skip reason, other failures a failure. */
function runPython(script: string, args: string[]): Promise<PythonRun> {
  const env = { ...process.env, HF_HUB_DISABLE_PROGRESS_BARS: '1', TRANSFORMERS_VERBOSITY: 'error', TQDM_DISABLE: '1', HF_HUB_OFFLINE: '1' };
  return new Promise((resolve) => {
    execFile('python3', [path.join(pythonDir, script), ...args], { encoding: 'utf8', maxBuffer: 64 << 20, env }, (error, stdout, stderr) => {
      const notices = stderr.split('\n').filter((line) => /^open_clip_env: WARNING|^open_clip_train3: WARNING/.test(line));
      const missing = /No module named '([\w.]+)'/.exec(stderr);
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        resolve({ notices, skip: `SKIPPED: python3 cannot be run (${error.message}); install python3 with torch, open_clip_torch and transformers (.ci/run)` });
      } else if (error && missing) {
        resolve({ notices, skip: `SKIPPED: python3 lacks the '${missing[1]}' module (.ci/run installs open_clip_torch, transformers, safetensors); ${script} cannot run` });
      } else if (error) {
        resolve({ notices, failed: `${script} failed (${error.message}):\n${stderr.slice(-6000)}\n${stdout.slice(-2000)}` });
      } else {
        resolve({ notices, result: JSON.parse(stdout.trim().split('\n').pop()!) });
      }
    });
  });
}

const forwardDir = scratchDir('clip-native-family-');
const trainDir = scratchDir('clip-native-family-train-');
const [family, train3] = await Promise.all([runPython('family_parity.py', [forwardDir]), runPython('open_clip_train3.py', [trainDir])]);
for (const run of [family, train3]) {
  for (const notice of new Set(run.notices)) console.log(`# ${notice}`);
  if (run.skip) console.log(`# ${run.skip}`);
}

/** The Python run's JSON, or a loud skip (no Python stack), or a failure with the script's stderr. */
function need(t: TestContext, run: PythonRun): any {
  if (run.skip) {
    t.skip(run.skip);
    return undefined;
  }
  assert.equal(run.failed, undefined, run.failed);
  return run.result;
}

// ---------------------------------------------------------------------------------------------------
// Closeness, reported as the worst element's share of its tolerance.

interface Closeness {
  ratio: number; // max over elements of |a - b| / (atol + rtol |b|): ≤ 1 passes
  index: number;
  actual: number;
  expected: number;
}

function closeness(actual: ArrayLike<number>, expected: ArrayLike<number>, { rtol, atol }: { rtol: number; atol: number }): Closeness {
  assert.equal(actual.length, expected.length, `${actual.length} elements, expected ${expected.length}`);
  let worst: Closeness = { ratio: 0, index: -1, actual: NaN, expected: NaN };
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const b = expected[i]!;
    const ratio = Math.abs(a - b) / (atol + rtol * Math.abs(b));
    if (!(ratio <= worst.ratio)) worst = { ratio: Number.isNaN(ratio) ? Infinity : ratio, index: i, actual: a, expected: b };
  }
  return worst;
}

function describeCloseness(what: string, c: Closeness, tol: { rtol: number; atol: number }): string {
  if (c.index < 0) return `${what}: exact`;
  return `${what}: worst element ${c.index} is ${c.actual}, reference ${c.expected}: |Δ| = ${Math.abs(c.actual - c.expected).toExponential(2)}, ` +
    `${(c.ratio * 100).toFixed(1)}% of its tolerance (rtol ${tol.rtol}, atol ${tol.atol})`;
}

type Pairs = Array<{ what: string; actual: ArrayLike<number>; expected: ArrayLike<number> }>;

/** Checks every pair and reports each one's worst element; returns those out of tolerance, described. */
function outOfTolerance(t: TestContext, pairs: Pairs, tol: { rtol: number; atol: number }): string[] {
  const failures: string[] = [];
  let worst = { what: '', ratio: -1 };
  for (const { what, actual, expected } of pairs) {
    const c = closeness(actual, expected, tol);
    if (pairs.length <= 12) t.diagnostic(describeCloseness(what, c, tol));
    if (c.ratio > worst.ratio) worst = { what, ratio: c.ratio };
    if (!(c.ratio <= 1)) failures.push(describeCloseness(what, c, tol));
  }
  if (pairs.length > 12) t.diagnostic(`${pairs.length} tensors compared; the worst is ${worst.what} at ${(worst.ratio * 100).toFixed(1)}% of its tolerance`);
  return failures;
}

/** outOfTolerance, failing with all of them named. */
function assertAllWithin(t: TestContext, pairs: Pairs, tol: { rtol: number; atol: number }) {
  const failures = outOfTolerance(t, pairs, tol);
  assert.equal(failures.length, 0, `${failures.length} of ${pairs.length} out of tolerance:\n${failures.join('\n')}`);
}

// ---------------------------------------------------------------------------------------------------
// Loading.

/** The fields every configuration has, OpenAI's values filled in where the optional ones are absent. */
function normalised(config: ClipConfig): Record<string, unknown> {
  const resnet = Array.isArray(config.vision_layers);
  const round = (v: number[] | undefined, fallback: number[]) => (v ?? fallback).map((x) => Math.round(x * 1e7) / 1e7);
  return {
    ...config,
    vision_patch_size: config.vision_patch_size ?? null,
    activation: config.activation ?? 'quick_gelu',
    vision_heads: config.vision_heads ?? (resnet ? (config.vision_width * 32) / 64 : config.vision_width / 64),
    vision_mlp_width: resnet ? undefined : config.vision_mlp_width ?? 4 * config.vision_width,
    transformer_mlp_width: config.transformer_mlp_width ?? 4 * config.transformer_width,
    image_mean: round(config.image_mean, OPENAI_IMAGE_MEAN),
    image_std: round(config.image_std, OPENAI_IMAGE_STD),
    image_resize_mode: config.image_resize_mode ?? 'shortest',
  };
}

const FOLDER_NOT_SUPPORTED = /is a directory, not a weight file/;

/** loadModel(folder), or a skip reason while folder loading has not landed (any other error fails). */
async function loadFolder(folder: string): Promise<{ model?: ClipModel; skip?: string }> {
  try {
    return { model: await loadModel(folder) };
  } catch (e) {
    const message = (e as Error).message;
    if (FOLDER_NOT_SUPPORTED.test(message)) {
      return { skip: `SKIPPED: loadModel(folder) cannot read a ${path.basename(folder)} folder yet ("${message}"); the weight files with the configuration given are checked below` };
    }
    throw e;
  }
}

/** The weight file(s) with the configuration given explicitly (no folder reading involved). */
async function loadFiles(folder: string, weights: string[], config: ClipConfig): Promise<ClipModel> {
  const paths = weights.map((w) => path.join(folder, w));
  if (paths.length === 1) return loadModel(paths[0]!, { config });
  const loaded = await loadNativeModel(paths, { device: 'cpu', strict: true, config: JSON.stringify(config), memoryFormat: 'auto' });
  return new ClipModel(loaded.model, { path: paths[0]!, format: loaded.format, configSource: loaded.configSource, hfNames: loaded.hfNames, report: loaded.report, metadata: loaded.metadata });
}

const clean = { missing: [], unexpected: [], mismatched: [], ignored: [] };

// ---------------------------------------------------------------------------------------------------
// (1) Forward parity, every case.

interface Case {
  name: string;
  library: 'open_clip' | 'transformers';
  folder: string;
  weights: string[];
  dtype: 'fp32' | 'fp16';
  config: ClipConfig;
  notes: string;
  preprocess_vs_formula: number;
}

async function checkForward(t: TestContext, model: ClipModel, ref: LoadedSafetensors, uint8: boolean) {
  model.eval();
  const images = ref.float32('images');
  const pixels = ref.tensor('pixels') as { data: Uint8Array; shape: number[] };
  const tokens = ref.tensor('text_tokens') as { data: BigInt64Array; shape: number[] };
  const imageFeatures = await model.encodeImage(images);
  const textFeatures = await model.encodeText(tokens);
  const { logitsPerImage, logitsPerText } = await model.forward(images, tokens);
  const pairs = [
    { what: 'image_features', actual: imageFeatures.data, expected: ref.float32('image_features').data },
    { what: 'text_features', actual: textFeatures.data, expected: ref.float32('text_features').data },
    { what: 'logits_per_image', actual: logitsPerImage.data, expected: ref.float32('logits_per_image').data },
    { what: 'logits_per_text', actual: logitsPerText.data, expected: ref.float32('logits_per_text').data },
  ];
  if (uint8) {
    // uint8 pixels normalised natively with the model's own mean/std, against the library's preprocessing.
    const fromPixels = await model.forward(pixels, tokens);
    pairs.push({ what: 'logits_per_image from uint8 pixels (the model\'s mean/std)', actual: fromPixels.logitsPerImage.data, expected: ref.float32('logits_per_image').data });
  }
  assertAllWithin(t, pairs, FORWARD_TOL);
}

describe('other CLIP families: fp32 eval-mode outputs match the libraries (rtol 1e-4, atol 1e-5)', () => {
  if (!family.result) {
    test('the libraries\' reference run (test/python/family_parity.py)', (t) => {
      need(t, family);
    });
    return;
  }
  for (const c of family.result.cases as Case[]) {
    describe(`${c.name}: ${c.notes}`, () => {
      const refFile = path.join(forwardDir, `${c.name}.ref.safetensors`);

      test('the weight files with the configuration given: features, logits, and uint8 pixels', async (t) => {
        const ref = await readSafetensors(refFile);
        const model = await loadFiles(c.folder, c.weights, c.config);
        try {
          assert.deepEqual(model.source?.report, clean, 'every weight used, none missing');
          assert.deepEqual(normalised(model.config), normalised(c.config), 'the model holds the configuration it was given');
          await checkForward(t, model, ref, true);
        } finally {
          model.dispose();
        }
      });

      test('loadModel(folder): the configuration from the folder, then features, logits, and uint8 pixels', async (t) => {
        const ref = await readSafetensors(refFile);
        const { model, skip } = await loadFolder(c.folder);
        if (!model) {
          t.skip(skip);
          return;
        }
        try {
          t.diagnostic(`configuration from: ${model.source?.configSource}; format ${model.source?.format}`);
          assert.deepEqual(model.source?.report, clean, 'every weight used, none missing');
          assert.deepEqual(normalised(model.config), normalised(c.config), `the configuration read from ${c.folder} is the one ${c.library} built`);
          await checkForward(t, model, ref, true);
        } finally {
          model.dispose();
        }
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------------
// (2) Three steps of open_clip's training step.

interface Train3 {
  folder: string;
  weights: string[];
  hyper: { lr: number; betas: [number, number]; eps: number; wd: number };
  exclude_rule: string;
  exclude_rule_source: string;
  decayed: Record<string, string[]>;
  config: ClipConfig;
}

async function trainThree(run: Train3, reference: LoadedSafetensors, weightDecay = run.hyper.wd) {
  const model = await loadFiles(run.folder, run.weights, run.config);
  const options: TrainerOptions = {
    optimizer: 'adamw',
    lr: run.hyper.lr,
    betas: run.hyper.betas,
    eps: run.hyper.eps,
    weightDecay,
    schedule: { kind: 'constant' },
    precision: 'fp32',
    gradClip: 0,
    accumulate: 1,
  };
  const trainer = await createTrainer(model, options);
  const losses: number[] = [];
  for (let b = 0; b < 3; b++) {
    // No labels: the targets are the diagonal (open_clip's ClipLoss labels = arange), no multi-positive.
    losses.push(await trainer.step(reference.float32(`batch${b}.images`), reference.tensor(`batch${b}.text_tokens`) as { data: BigInt64Array; shape: number[] }));
  }
  assert.equal(trainer.optimizerSteps, 3);
  return { model, losses };
}

/** Losses, every parameter and the eval logits after training against run `runName` of the reference; fails naming everything out of tolerance. */
async function compareTrained(t: TestContext, model: ClipModel, losses: number[], reference: LoadedSafetensors, runName: string) {
  t.diagnostic(`losses ${losses.map((l) => l.toFixed(6)).join(', ')}; open_clip ${Array.from(reference.float32(`${runName}.losses`).data, (l) => l.toFixed(6)).join(', ')}`);
  const failures = outOfTolerance(t, [{ what: 'losses', actual: losses, expected: reference.float32(`${runName}.losses`).data }], { rtol: 0, atol: TRAIN_TOL.loss });
  const state = await model.stateDict();
  const pairs = state.map(({ name, tensor }) => {
    assert.ok(reference.names().includes(`${runName}.${name}`), `open_clip has no parameter ${name}`);
    return { what: name, actual: tensor.data as Float32Array, expected: reference.float32(`${runName}.${name}`).data };
  });
  failures.push(...outOfTolerance(t, pairs, { rtol: 0, atol: TRAIN_TOL.param }));
  model.eval();
  const after = await model.forward(reference.float32('batch0.images'), reference.tensor('batch0.text_tokens') as { data: BigInt64Array; shape: number[] });
  failures.push(...outOfTolerance(t, [{ what: 'after.logits_per_image', actual: after.logitsPerImage.data, expected: reference.float32(`${runName}.after.logits_per_image`).data }], { rtol: 0, atol: TRAIN_TOL.logits }));
  assert.equal(failures.length, 0, `${failures.length} out of tolerance (losses atol ${TRAIN_TOL.loss}, parameters ${TRAIN_TOL.param}, logits ${TRAIN_TOL.logits}):\n${failures.join('\n')}`);
}

/**
 * Which parameters this trainer's AdamW decays, found by behaviour: one step with weight decay W and one
 * with 0 from the same weights on the same batch differ by lr · W · p exactly for a decayed parameter
 * (decoupled decay) and not at all for the others. Then how that set differs from open_clip's.
 */
let decayProbe: Promise<{ onlyOpenClip: string[]; onlyHere: string[] }> | undefined;
function probeDecay(run: Train3, reference: LoadedSafetensors) {
  decayProbe ??= (async () => {
    const W = 0.5;
    const startModel = await loadFiles(run.folder, run.weights, run.config);
    const start = new Map((await startModel.stateDict()).map((e) => [e.name, e.tensor.data as Float32Array]));
    startModel.dispose();
    const stepOnce = async (wd: number) => {
      const model = await loadFiles(run.folder, run.weights, run.config);
      const trainer = await createTrainer(model, { optimizer: 'adamw', lr: run.hyper.lr, betas: run.hyper.betas, eps: run.hyper.eps, weightDecay: wd, schedule: { kind: 'constant' } });
      await trainer.step(reference.float32('batch0.images'), reference.tensor('batch0.text_tokens') as { data: BigInt64Array; shape: number[] });
      const state = new Map((await model.stateDict()).map((e) => [e.name, e.tensor.data as Float32Array]));
      model.dispose();
      return state;
    };
    const withDecay = await stepOnce(W);
    const without = await stepOnce(0);
    const decayedHere: string[] = [];
    for (const [name, p0] of start) {
      const a = withDecay.get(name)!;
      const b = without.get(name)!;
      let moved = 0;
      let scale = 0;
      for (let i = 0; i < p0.length; i++) {
        moved += Math.abs(b[i]! - a[i]!);
        scale += Math.abs(run.hyper.lr * W * p0[i]!);
      }
      const share = scale > 0 ? moved / scale : 0;
      assert.ok(share < 0.05 || Math.abs(share - 1) < 0.05, `${name}: decay moved it by ${share.toFixed(3)} × lr · wd · p, neither 0 nor 1`);
      if (share > 0.5) decayedHere.push(name);
    }
    const openClip = run.decayed.open_clip!;
    return { onlyOpenClip: openClip.filter((n) => !decayedHere.includes(n)), onlyHere: decayedHere.filter((n) => !openClip.includes(n)) };
  })();
  return decayProbe;
}

describe('three steps of open_clip\'s training step (ClipLoss, AdamW, main.py\'s decay rule) on a GELU model with heads != width / 64', () => {
  test('losses, every parameter and the logits after, against open_clip with its own exclude rule', async (t) => {
    const run = need(t, train3) as Train3 | undefined;
    if (!run) return;
    t.diagnostic(`open_clip's exclude rule (${run.exclude_rule_source}): ${run.exclude_rule}; ${JSON.stringify(run.hyper)}`);
    const reference = await readSafetensors(path.join(trainDir, 'train3.safetensors'));
    const { model, losses } = await trainThree(run, reference);
    try {
      await compareTrained(t, model, losses, reference, 'open_clip');
    } finally {
      model.dispose();
    }
  });

  test('AdamW decays exactly the parameters open_clip\'s main.py decays', async (t) => {
    const run = need(t, train3) as Train3 | undefined;
    if (!run) return;
    const reference = await readSafetensors(path.join(trainDir, 'train3.safetensors'));
    const diff = await probeDecay(run, reference);
    t.diagnostic(`decayed by open_clip only: ${diff.onlyOpenClip.join(', ') || 'none'}; decayed here only: ${diff.onlyHere.join(', ') || 'none'}`);
    assert.deepEqual(
      diff,
      { onlyOpenClip: [], onlyHere: [] },
      `the parameters AdamW decays differ from open_clip_train/main.py's rule (${run.exclude_rule}): ` +
        `open_clip decays ${diff.onlyOpenClip.join(', ') || 'nothing more'}; this trainer decays ${diff.onlyHere.join(', ') || 'nothing more'}`,
    );
  });
});
