// `clip-native demo`: a fine-tuning run a newcomer can start with nothing of their own: the example
// set is drawn at run time, pretrained weights are used when they are already on this machine (never
// downloaded unless a model is named), and otherwise a small CLIP is trained from random weights.
// Zero-shot accuracy is measured before the first epoch and after the last; the HTML report follows.
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';

import { resolvePretrained } from '../model/pretrained.js';
import { writeReport } from '../report/html.js';
import { train, type TrainOptions, type TrainResult } from '../train/loop.js';
import { writeExampleSet, type ExampleSet } from './example-set.js';

/** A small CLIP (32 px ViT, two layers per tower) that learns the example set's colours in about a minute on 2 cores. */
export const DEMO_MODEL_CONFIG = {
  embed_dim: 64,
  image_resolution: 32,
  vision_layers: 2,
  vision_width: 64,
  vision_patch_size: 8,
  context_length: 77,
  vocab_size: 49408,
  transformer_width: 64,
  transformer_heads: 2,
  transformer_layers: 2,
};

/** The released model the demo uses when its weights are already cached (the smallest on a CPU). */
export const DEMO_PRETRAINED = 'ViT-B/32';
/** Marks a folder the demo wrote, so that a second run may replace it and nothing else is. */
const MARKER = 'clip-native-demo.json';

export interface DemoOptions {
  out: string;
  /** 'auto': DEMO_PRETRAINED when cached, else DEMO_MODEL_CONFIG from random weights; a name: those weights (downloaded if needed). */
  model?: string;
  device?: string;
  /** Epochs (default: 2 for pretrained weights, 12 from random weights). */
  epochs?: number;
  cacheDir?: string;
  onMessage?: (message: string) => void;
  hooks?: Pick<TrainOptions, 'onBatch' | 'onLog' | 'onEpoch' | 'signal'>;
}

export interface DemoResult {
  model: string;
  pretrained: boolean;
  data: ExampleSet;
  /** Zero-shot top-1 on the example set's test split before the first epoch and after the last. */
  before: number;
  after: number;
  report: string;
  run: TrainResult;
}

interface ModelChoice {
  model: string;
  pretrained: boolean;
  why: string;
}

/** Refuses an `out` that holds anything but an earlier demo: the demo replaces its own folder only. */
async function claimOut(out: string): Promise<void> {
  const entries = await fs.readdir(out).catch(() => [] as string[]);
  if (entries.length > 0 && !entries.includes(MARKER)) {
    throw new Error(`${out} is not empty and was not written by clip-native demo; choose another --out`);
  }
  await fs.mkdir(out, { recursive: true });
  await fs.writeFile(path.join(out, MARKER), JSON.stringify({ writtenBy: 'clip-native demo' }) + '\n');
}

/** Whether DEMO_PRETRAINED's weights are on this machine (checked, never downloaded). */
async function cachedPretrained(cacheDir: string | undefined): Promise<boolean> {
  const notCached = async (): Promise<void> => {
    throw new Error('not cached');
  };
  try {
    await resolvePretrained(DEMO_PRETRAINED, { cacheDir, download: notCached });
    return true;
  } catch {
    return false;
  }
}

async function chooseModel(options: DemoOptions, out: string): Promise<ModelChoice> {
  const asked = options.model ?? 'auto';
  if (asked !== 'auto') return { model: asked, pretrained: true, why: `${asked} as asked` };
  if (await cachedPretrained(options.cacheDir)) return { model: DEMO_PRETRAINED, pretrained: true, why: `${DEMO_PRETRAINED}'s pretrained weights, found in the model cache` };
  const file = path.join(out, 'small-clip.json');
  await fs.writeFile(file, JSON.stringify(DEMO_MODEL_CONFIG, null, 2) + '\n');
  return {
    model: file,
    pretrained: false,
    why:
      `no pretrained weights cached (${DEMO_PRETRAINED} is not in the model cache), so a small CLIP from random weights (${file}); ` +
      `\`clip-native demo --model ${DEMO_PRETRAINED}\` downloads the pretrained weights (about 350 MB) and fine-tunes them instead`,
  };
}

/** The run's settings: a short fine-tune of pretrained weights, or enough epochs for a random start to learn. */
function trainSettings(choice: ModelChoice, data: ExampleSet, options: DemoOptions, out: string): TrainOptions {
  const epochs = options.epochs ?? (choice.pretrained ? 2 : 12);
  const common = {
    data: data.dir,
    ext: 'png',
    model: choice.model,
    out: path.join(out, 'run'),
    overwrite: true,
    epochs,
    evalEvery: epochs,
    templates: 'a photo of a {label} shape',
    optimizer: 'adamw' as const,
    schedule: 'cosine' as const,
    weightsEvery: 0,
    checkpointEvery: 0,
    logEvery: 5,
    device: options.device ?? 'auto',
    cacheDir: options.cacheDir,
  };
  if (choice.pretrained) return { ...common, init: 'pretrained', batchSize: 24, lr: 1e-5, weightDecay: 0.1, warmup: 2 };
  return { ...common, init: 'random', batchSize: 32, lr: 2e-3, weightDecay: 0.1, warmup: 10 };
}

function top1(evaluation: TrainResult['evals'][number] | undefined): number {
  if (!evaluation || !('top1' in evaluation)) throw new Error('the demo run ended without a zero-shot evaluation');
  return evaluation.top1;
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const out = path.resolve(options.out);
  const say = options.onMessage ?? (() => {});
  await claimOut(out);
  const choice = await chooseModel(options, out);
  say(`model: ${choice.why}`);
  // ViT-B/32 at 224 px costs ~100× the small model per image: fewer images keep it near a minute on 2 cores.
  const data = await writeExampleSet(path.join(out, 'example-data'), choice.pretrained ? { trainPerClass: 12, testPerClass: 6 } : {});
  say(`data: ${data.train} training and ${data.test} test images of ${data.labels.length} colours (${data.labels.join(', ')}), drawn in ${data.dir}`);
  const run = await train({ ...trainSettings(choice, data, options, out), ...options.hooks, onMessage: say });
  const { out: report } = await writeReport(run.out);
  if (!existsSync(report)) throw new Error(`the report was not written to ${report}`);
  return { model: choice.model, pretrained: choice.pretrained, data, before: top1(run.evals[0]), after: top1(run.evals.at(-1)), report, run };
}
