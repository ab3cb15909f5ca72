/**
 * GPU parity check (not a test: the CI machine has no GPU). Loads both tiny fixture models on a
 * CUDA device and checks, against the reference goldens computed by openai/CLIP on the CPU:
 *   - fp32: encode_image / encode_text / logits within rtol 1e-4, atol 1e-5 (eval mode for both
 *     models, and train mode too for the ResNet, whose eval image features hardly see the image);
 *   - bf16 autocast: logits within a relative bound of our own fp32 logits (max |Δ| / max |logit|).
 *     The issue asks for 1e-2; openai/CLIP itself moves 2.0–2.3 % under CPU bf16 autocast on these
 *     models (test/python/autocast_ref.py), so `ok` uses 3e-2 and `bf16.withinIssueBound` reports 1e-2;
 *   - fp16 autocast: the same figures, informational;
 *   - released architectures (ViT-B/32 and RN50, reference initialisation, seed 0; --released none
 *     skips them): the bf16 drift of real-size models on the fixture photos at 224 px with their
 *     prompts, over the 32 batch variants, ours and openai/CLIP's own on the same weights and batches
 *     (test/python/autocast_ref.py, on the same device), and whether ours is within 1e-2 (the issue's
 *     bound, which the tiny models miss in the reference too). Their weights and batch go through a
 *     temporary folder (TMPDIR; 1 GB).
 * Prints one JSON summary (and writes it with --out).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/gpu-parity.js [--device cuda:0] [--out bench/results/gpu-parity.json]
 *
 * Needs an addon built against a CUDA LibTorch (`npx clip-native doctor` shows it). Exit 0 when all
 * checks pass, 1 when one fails, 2 when the device is unavailable. If fp32 misses by ~1e-3, suspect
 * TF32: cuDNN convolutions use it by default in LibTorch (allowTF32CuDNN), unlike the CPU golden.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { preprocessImage } from '../src/data/preprocess.js';
import { readSafetensors, type LoadedSafetensors } from '../src/io/safetensors-header.js';
import { encodeSafetensors } from '../src/io/safetensors-write.js';
import { architecture } from '../src/model/config.js';
import { createModel, loadModel, type ClipModel, type Precision } from '../src/model/model.js';
import { runtimeInfo } from '../src/native.js';
import { tokenizerFromFile } from '../src/text/tokenizer.js';
import { bf16DriftOverVariants, logitDrift } from '../test/helpers/tensors.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixtures = process.env.CLIP_NATIVE_FIXTURES ?? path.resolve(repoRoot, '..', 'shared', 'fixtures');

function option(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const device = option('device', 'cuda')!;
const out = option('out');
const RTOL = 1e-4;
const ATOL = 1e-5;
const BF16_BOUND = 3e-2;
const ISSUE_BF16_BOUND = 1e-2;

interface Comparison {
  ok: boolean;
  maxAbsDiff: number;
  worstExcess: number;
}

/** torch.allclose(actual, expected, rtol, atol), with the largest |Δ| and the worst excess over the bound. */
function compare(actual: Float32Array, expected: Float32Array): Comparison {
  if (actual.length !== expected.length) return { ok: false, maxAbsDiff: Infinity, worstExcess: Infinity };
  let maxAbsDiff = 0;
  let worstExcess = -Infinity;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    maxAbsDiff = Math.max(maxAbsDiff, Number.isNaN(d) ? Infinity : d);
    worstExcess = Math.max(worstExcess, Number.isNaN(d) ? Infinity : d - (ATOL + RTOL * Math.abs(expected[i]!)));
  }
  return { ok: worstExcess <= 0, maxAbsDiff, worstExcess };
}

async function fp32Parity(model: ClipModel, golden: LoadedSafetensors, prefix: '' | 'train.') {
  const images = golden.float32('images');
  const tokens = golden.tensor('text_tokens') as { data: BigInt64Array; shape: number[] };
  if (prefix === 'train.') model.train();
  else model.eval();
  const imageFeatures = await model.encodeImage(images);
  const textFeatures = await model.encodeText(tokens);
  const { logitsPerImage, logitsPerText } = await model.forward(images, tokens);
  model.eval();
  const checks = {
    image_features: compare(imageFeatures.data, golden.float32(`${prefix}image_features`).data),
    text_features: compare(textFeatures.data, golden.float32(`${prefix}text_features`).data),
    logits_per_image: compare(logitsPerImage.data, golden.float32(`${prefix}logits_per_image`).data),
    logits_per_text: compare(logitsPerText.data, golden.float32(`${prefix}logits_per_text`).data),
  };
  return { ok: Object.values(checks).every((c) => c.ok), ...checks };
}

async function autocast(model: ClipModel, golden: LoadedSafetensors, precision: Precision) {
  const images = golden.float32('images');
  const tokens = golden.tensor('text_tokens') as { data: BigInt64Array; shape: number[] };
  const fp32 = (await model.forward(images, tokens)).logitsPerImage.data;
  const low = (await model.forward(images, tokens, { precision })).logitsPerImage.data;
  const r = logitDrift(low, fp32);
  return { ...r, changed: low.some((v, i) => v !== fp32[i]) };
}

/** The fixture photos at 224 px and a prompt for each, as the reference's tokenizer makes them. */
async function photoBatch() {
  const photos: Array<[string, string]> = [['astronaut.jpg', 'an astronaut'], ['chelsea.jpg', 'a cat'], ['coffee.jpg', 'a cup of coffee'], ['rocket.jpg', 'a rocket']];
  const planes = await Promise.all(photos.map(([file]) => preprocessImage(path.join(fixtures, 'images', file), { resolution: 224 })));
  const images = { data: new Float32Array(planes.length * 3 * 224 * 224), shape: [planes.length, 3, 224, 224] };
  planes.forEach((p, i) => images.data.set(p.data, i * p.data.length));
  const tokenizer = await tokenizerFromFile(path.join(fixtures, 'bpe_simple_vocab_16e6.txt.gz'));
  const ids = tokenizer.tokenize(photos.map(([, label]) => `a photo of ${label}`));
  const tokens = { data: BigInt64Array.from(ids.data, (v) => BigInt(v)), shape: [...ids.shape] };
  return { images, tokens };
}

/** bf16 drift of a released architecture (reference initialisation), ours and openai/CLIP's on the same weights and batches. */
async function releasedDrift(name: string, batch: Awaited<ReturnType<typeof photoBatch>>, dir: string) {
  const model = await createModel(architecture(name), { seed: 0, device });
  model.eval();
  const ours = await bf16DriftOverVariants(
    async (b, precision) => (await model.forward(b.images, b.tokens, { precision })).logitsPerImage.data,
    batch.images,
    batch.tokens,
  );
  const stem = name.replace(/[^\w]/g, '_');
  await model.save(path.join(dir, `${stem}.safetensors`));
  model.dispose();
  const tokens = Float32Array.from(batch.tokens.data, Number); // exact below 2^24; the script reads them as int64
  writeFileSync(path.join(dir, `${stem}.golden.safetensors`), encodeSafetensors([{ name: 'images', ...batch.images }, { name: 'text_tokens', data: tokens, shape: batch.tokens.shape }]));
  const script = path.join(repoRoot, 'test', 'python', 'autocast_ref.py');
  const reference = JSON.parse(execFileSync('python3', [script, dir, '--device', device.split(':')[0]!, stem], { encoding: 'utf8' }))[stem] as {
    variants: number[];
    mean_relative: number;
    max_abs_variants: number[];
    torch: string;
  };
  // The same batches and weights on both sides: each variant's largest fp32 logit agrees.
  const fp32Mismatch = Math.max(...ours.maxAbsLogits.map((m, v) => Math.abs(m - reference.max_abs_variants[v]!) / Math.abs(reference.max_abs_variants[v]!)));
  return {
    sameBatches: fp32Mismatch <= 1e-3,
    fp32Mismatch,
    ours: { variants: ours.variants, mean: ours.mean },
    reference: { variants: reference.variants, mean: reference.mean_relative, torch: reference.torch },
    ratio: ours.mean / reference.mean_relative,
    withinIssueBound: Math.max(...ours.variants) <= ISSUE_BF16_BOUND,
  };
}

/** What a failed part of the check reports in its place. */
function failure(err: unknown): { error: string } {
  return { error: err instanceof Error ? err.message : String(err) };
}

/** releasedDrift of ViT-B/32 and RN50, their files in a temporary folder; a model that fails says why. */
async function releasedDrifts(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clip-parity-'));
  try {
    const batch = await photoBatch();
    const released: Record<string, unknown> = {};
    for (const name of ['ViT-B/32', 'RN50']) {
      released[name] = await releasedDrift(name, batch, dir).catch(failure);
    }
    return released;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const info = runtimeInfo();
  const summary: Record<string, unknown> = {
    device,
    torch: info.torchVersion,
    builtWithCuda: info.builtWithCuda,
    cudaAvailable: info.cudaAvailable,
    devices: info.devices,
    tolerances: { fp32: { rtol: RTOL, atol: ATOL }, bf16Relative: BF16_BOUND, issueBf16Relative: ISSUE_BF16_BOUND },
    date: new Date().toISOString(),
  };
  if (device.startsWith('cuda') && !info.cudaAvailable) {
    summary.ok = false;
    summary.error = info.builtWithCuda ? 'the addon has CUDA but no device is available' : 'the addon was built against a LibTorch without CUDA';
    return finish(summary, 2);
  }
  const models: Record<string, unknown> = {};
  let ok = true;
  for (const name of ['tiny_vit', 'tiny_rn']) {
    const golden = await readSafetensors(path.join(fixtures, 'models', `${name}.golden.safetensors`));
    const model = await loadModel(path.join(fixtures, 'models', `${name}.safetensors`), { device });
    const result: Record<string, unknown> = { device: model.device };
    const eval32 = await fp32Parity(model, golden, '');
    result.fp32 = eval32;
    ok &&= eval32.ok;
    const bf16 = await autocast(model, golden, 'bf16');
    result.bf16 = { ...bf16, ok: bf16.changed && bf16.relative <= BF16_BOUND, withinIssueBound: bf16.relative <= ISSUE_BF16_BOUND };
    ok &&= bf16.changed && bf16.relative <= BF16_BOUND;
    result.fp16 = await autocast(model, golden, 'fp16');
    // Last: a forward in train mode moves the BatchNorms' running statistics (as the reference's
    // does), so the eval-mode checks above would no longer see the golden model.
    if (name === 'tiny_rn') {
      const train32 = await fp32Parity(model, golden, 'train.');
      result.fp32Train = train32;
      ok &&= train32.ok;
    }
    models[name] = result;
    model.dispose();
  }
  summary.models = models;
  // A failure here (no room for the weights, no Python reference) costs this section only.
  if (option('released') !== 'none') summary.released = await releasedDrifts().catch(failure);
  summary.ok = ok;
  return finish(summary, ok ? 0 : 1);
}

function finish(summary: Record<string, unknown>, code: number): number {
  const text = JSON.stringify(summary, null, 2);
  console.log(text);
  if (out) writeFileSync(out, `${text}\n`);
  return code;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    finish({ device, ok: false, ...failure(err) }, 2);
    process.exitCode = 2;
  },
);
