/**
 * Retrieval evaluation benchmark (not a test): is scoring many pairs bounded by the encoders or by the
 * metric code? For N image–caption pairs, times
 *   - the encoders: a CLIP's image tower on N preprocessed images (random pixels: decoding is the
 *     loader's cost, benchmarked in bench/loader.ts) and its text tower on N captions, tokenizer included;
 *   - the metrics on precomputed features: both directions' ranks in blocks (src/eval/retrieval-metrics.ts)
 *     and the validation loss, at the model's width and at ViT-B/32's (512).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/retrieval.js [--pairs 50000] [--model tiny|ViT-B/32|<config.json>] [--device cpu] [--out FILE]
 *
 * The vocabulary comes from CLIP_NATIVE_VOCAB / the cache, else ../shared/fixtures.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { normalizeRows, type Matrix } from '../src/eval/matrix.js';
import { matmul } from '../src/native.js';
import { BLOCK_ENTRIES, contrastiveLoss, rankMetrics, retrievalRanks } from '../src/eval/retrieval-metrics.js';
import { encodeTexts } from '../src/eval/text-features.js';
import { architecture, type ClipConfig } from '../src/model/config.js';
import { createModel, type ClipModel } from '../src/model/model.js';
import { runtimeInfo } from '../src/native.js';
import { loadTokenizer } from '../src/text/tokenizer.js';
import { createRng } from '../src/util/prng.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The tiny CLIP of the caption end-to-end test (test/caption-retrieval-e2e.test.ts). */
const TINY: ClipConfig = {
  embed_dim: 64,
  image_resolution: 32,
  vision_layers: 2,
  vision_width: 64,
  vision_patch_size: 8,
  context_length: 77,
  vocab_size: 49408,
  transformer_width: 64,
  transformer_heads: 4,
  transformer_layers: 2,
} as ClipConfig;

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1]! : fallback;
}

const seconds = (start: number) => (performance.now() - start) / 1000;

function captions(n: number): string[] {
  const rng = createRng(3);
  const colours = ['red', 'green', 'blue', 'yellow', 'black', 'white', 'orange', 'purple'];
  const things = ['circle', 'square', 'triangle', 'dog', 'cat', 'car', 'tree', 'house', 'boat', 'bird'];
  const relations = ['above', 'below', 'to the left of', 'to the right of', 'next to', 'behind'];
  const pick = (list: string[]) => list[rng.nextInt(list.length)]!;
  return Array.from({ length: n }, () => `a ${pick(colours)} ${pick(things)} ${pick(relations)} a ${pick(colours)} ${pick(things)}`);
}

async function timeImageTower(model: ClipModel, n: number, batch: number): Promise<{ seconds: number; features: Matrix }> {
  const r = model.config.image_resolution;
  const rng = createRng(4);
  const input = Float32Array.from({ length: batch * 3 * r * r }, () => rng.next() * 4 - 2);
  const out = new Float32Array(n * model.config.embed_dim);
  const start = performance.now();
  for (let done = 0; done < n; done += batch) {
    const rows = Math.min(batch, n - done);
    const features = await model.encodeImage({ data: input.subarray(0, rows * 3 * r * r), shape: [rows, 3, r, r] });
    out.set(normalizeRows({ data: features.data, shape: [rows, model.config.embed_dim] }).data, done * model.config.embed_dim);
  }
  return { seconds: seconds(start), features: { data: out, shape: [n, model.config.embed_dim] } };
}

/** Random unit features with text t close to image t, so ranks spread as a trained model's do. */
function pairedFeatures(n: number, d: number): { images: Matrix; texts: Matrix } {
  const rng = createRng(5, d);
  const images = normalizeRows({ data: Float32Array.from({ length: n * d }, () => rng.next() * 2 - 1), shape: [n, d] });
  const texts = normalizeRows({ data: Float32Array.from(images.data, (v) => v + (rng.next() * 2 - 1) * 0.8), shape: [n, d] });
  return { images, texts };
}

/** The score blocks retrievalRanks computes, products only, nothing ranked. */
async function timeProducts(images: Matrix, texts: Matrix): Promise<number> {
  const [n, d] = images.shape;
  const m = texts.shape[0];
  const right = new Float32Array(d * m);
  for (let t = 0; t < m; t++) for (let k = 0; k < d; k++) right[k * m + t] = texts.data[t * d + k]!;
  const blockRows = Math.max(1, Math.floor(BLOCK_ENTRIES / m));
  const start = performance.now();
  for (let i = 0; i < n; i += blockRows) {
    const rows = Math.min(blockRows, n - i);
    await matmul({ data: images.data.subarray(i * d, (i + rows) * d), shape: [rows, d] }, { data: right, shape: [d, m] });
  }
  return seconds(start);
}

async function timeMetrics(images: Matrix, texts: Matrix): Promise<{ ranks: number; products: number; loss: number; r1: number }> {
  const textImage = Int32Array.from({ length: texts.shape[0] }, (_, i) => i);
  const products = await timeProducts(images, texts);
  let start = performance.now();
  const ranks = await retrievalRanks(images, texts, textImage);
  const r1 = rankMetrics(ranks.imageToText).r1;
  rankMetrics(ranks.textToImage);
  const rankSeconds = seconds(start);
  start = performance.now();
  contrastiveLoss(images, texts, textImage, 100, 32);
  return { ranks: rankSeconds, products, loss: seconds(start), r1 };
}

async function main(): Promise<void> {
  const n = Number(flag('pairs', '50000'));
  const modelFlag = flag('model', 'tiny');
  const device = flag('device', 'cpu');
  // tiny, a released architecture's name (random weights: only the cost matters), or a JSON configuration.
  const config = modelFlag === 'tiny' ? TINY : modelFlag.endsWith('.json') ? (JSON.parse(readFileSync(modelFlag, 'utf8')) as ClipConfig) : architecture(modelFlag);
  if (!process.env.CLIP_NATIVE_VOCAB) {
    const shared = path.resolve(repoRoot, '..', 'shared', 'fixtures', 'bpe_simple_vocab_16e6.txt.gz');
    if (existsSync(shared)) process.env.CLIP_NATIVE_VOCAB = shared;
  }
  const model = await createModel(config, { seed: 0, device });
  model.eval();
  const tokenizer = await loadTokenizer();
  const texts = captions(n);
  const image = await timeImageTower(model, n, 256);
  let start = performance.now();
  const textFeatures = await encodeTexts(model, tokenizer, texts, { batchSize: 256, truncate: true });
  const textSeconds = seconds(start);
  const own = await timeMetrics(image.features, textFeatures);
  const wide = pairedFeatures(n, 512);
  const at512 = await timeMetrics(wide.images, wide.texts);
  const runtime = runtimeInfo();
  const rows = [
    `| image tower, ${n} images (${config.image_resolution} px) | ${image.seconds.toFixed(2)} |`,
    `| text tower, ${n} captions (tokenizer included) | ${textSeconds.toFixed(2)} |`,
    `| ranks both ways, ${n} × ${n}, width ${config.embed_dim} (this model's features) | ${own.ranks.toFixed(2)} |`,
    `| … of which the score products alone (LibTorch matmul, same blocks) | ${own.products.toFixed(2)} |`,
    `| validation loss, width ${config.embed_dim} | ${own.loss.toFixed(2)} |`,
    `| ranks both ways, ${n} × ${n}, width 512 (ViT-B/32's; random paired features, R@1 ${own.r1.toFixed(3)} → ${at512.r1.toFixed(3)}) | ${at512.ranks.toFixed(2)} |`,
    `| … of which the score products alone | ${at512.products.toFixed(2)} |`,
    `| validation loss, width 512 | ${at512.loss.toFixed(2)} |`,
  ];
  const report = [
    `- command: \`node dist/bench/retrieval.js --pairs ${n} --model ${modelFlag} --device ${device}\``,
    `- date: ${new Date().toISOString()}`,
    `- machine: ${os.availableParallelism()} CPUs (${os.cpus()[0]?.model.trim() ?? 'unknown'}), no GPU used; Node ${process.version}; LibTorch ${runtime.torchVersion}, ${runtime.threads} threads; load average at the end ${os.loadavg().map((l) => l.toFixed(1)).join(', ')}`,
    '',
    '| stage | seconds |',
    '|---|---:|',
    ...rows,
  ].join('\n');
  process.stdout.write(report + '\n');
  const out = flag('out', '');
  if (out) writeFileSync(out, report + '\n');
  model.dispose();
}

await main();
