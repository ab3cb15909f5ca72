import { Command, InvalidArgumentError, Option } from 'commander';

import { addAugmentArgument } from '../data/augment.js';
import { launchFromEnv } from '../distributed/group.js';
import { launchLocal } from '../distributed/launch.js';
import { formatKinds } from '../train/bad-data.js';
import { BEST_METRICS, DEFAULT_CONFIG, readConfigFile, resolveConfig, type TrainConfig } from '../train/config.js';
import { train } from '../train/loop.js';
import { createTrainProgress } from './train-progress.js';

/** A flag's number. Text that is none is refused here, naming the flag; range and integrality are the
 * configuration's checks (every problem at once, by key). */
const num = (v: string) => {
  const n = Number(v);
  if (v.trim() === '' || Number.isNaN(n)) throw new InvalidArgumentError(`expected a number, got ${JSON.stringify(v)}`);
  return n;
};
const autoOrNumber = (v: string) => (v === 'auto' ? v : num(v));
const list = (v: string, previous: string[] = []) => [...previous, v];
/** `--augment` alone is true (open_clip's defaults); each key=value after it an option. */
const augmentArgument = (v: string, previous: unknown) => {
  try {
    return addAugmentArgument(v, typeof previous === 'object' && previous !== null ? (previous as Record<string, unknown>) : {});
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};

/** "default X", X being DEFAULT_CONFIG's value, so the help cannot disagree with what runs. */
const dflt = (key: keyof typeof DEFAULT_CONFIG): string => {
  const value = DEFAULT_CONFIG[key];
  const text = typeof value === 'string' ? value : typeof value === 'number' && value > 0 && value < 1e-3 ? value.toExponential() : JSON.stringify(value);
  return `default ${text}`;
};

interface TrainFlags extends Partial<TrainConfig> {
  config?: string;
  printConfig?: boolean;
  json?: boolean;
  nproc?: number;
}

/** The command line without --nproc and its value: what each rank runs. */
export function withoutNproc(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--nproc') i++;
    else if (!args[i]!.startsWith('--nproc=')) out.push(args[i]!);
  }
  return out;
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('fine-tune CLIP on a dataset (defaults: the blog recipe, without its bugs)')
    .option('--data <path>', 'dataset: blog layout folder (meta/train.txt), folder per class, or .csv/.tsv/.jsonl')
    .option('--model <name|path>', 'released model name (RN50, ViT-B/32, …), weight file, or JSON model config with --init random')
    .option('--out <dir>', 'run directory: config.json, metrics.jsonl, weights, checkpoints')
    .option('--config <file>', 'JSON or YAML file of options; flags override it')
    .addOption(new Option('--init <init>', 'start from the pretrained weights or random ones').choices(['pretrained', 'random']))
    .option('--name <prefix>', 'prefix of the per-epoch weight files')
    .option('--epochs <n>', `epochs (${dflt('epochs')})`, num)
    .option('--batch-size <n|auto>', `images per batch, per rank (${dflt('batchSize')}; data parallel: the global batch is this × the ranks, as open_clip counts); auto (CUDA): the largest power of two that fits`, autoOrNumber)
    .addOption(new Option('--optimizer <name>', `adam (L2 decay, the blog) or adamw (decoupled) (${dflt('optimizer')})`).choices(['adam', 'adamw']))
    .option('--lr <lr>', `learning rate (${dflt('lr')})`, num)
    .option('--weight-decay <wd>', `weight decay (${dflt('weightDecay')})`, num)
    .option('--eps <eps>', `Adam epsilon (${dflt('eps')})`, num)
    .addOption(new Option('--schedule <kind>', `learning-rate schedule (${dflt('schedule')}; step: ×gamma every --step-every epochs)`).choices(['step', 'cosine', 'constant']))
    .option('--step-every <epochs>', `StepLR period in epochs (${dflt('stepEvery')})`, num)
    .option('--gamma <g>', `StepLR factor (${dflt('gamma')})`, num)
    .option('--warmup <steps>', `cosine warm-up in optimizer steps (${dflt('warmup')})`, num)
    .option('--grad-clip <norm>', `clip gradients to this global norm (${dflt('gradClip')}: no clipping)`, num)
    .option('--accumulate <n>', 'micro-batches per optimizer step, one contrastive batch of n × batch size (see --accumulate-mode)', num)
    .addOption(
      new Option('--accumulate-mode <mode>', `contrastive: the micro-batches are one batch's negatives; independent: each micro-batch's own loss (${dflt('accumulateMode')})`).choices([
        'contrastive',
        'independent',
      ]),
    )
    .option('--grad-checkpointing', 'recompute activations in backward (each transformer block, each ResNet stage): less memory, more time')
    .option('--lock-image', 'freeze the image tower')
    .option('--lock-text', 'freeze the text tower')
    .option('--freeze <regex>', 'freeze parameters whose name matches (repeatable)', list)
    .addOption(new Option('--batchnorm <mode>', `ResNet BatchNorm: keep statistics frozen or train them (${dflt('batchNorm')})`).choices(['frozen', 'train']))
    .addOption(new Option('--multi-positive <mode>', 'same-label pairs as positives (auto: on for labels and for --captions all, off otherwise)').choices(['auto', 'on', 'off']))
    .addOption(new Option('--captions <mode>', `several captions per image: one per image per epoch, drawn per (seed, epoch, image), or all, the captions of one image each other's positives (${dflt('captions')})`).choices(['one', 'all']))
    .addOption(new Option('--best-metric <metric>', 'what chooses <name>_best.safetensors (auto: top1 for labels, mean-r1 = mean of R@1 both ways for captions; val-loss: lowest)').choices([...BEST_METRICS]))
    .option('--no-fix-text', "tokenize captions and prompts as they are, without ftfy's fix_text cleaning (on by default, as openai/CLIP)")
    .option('--templates <set|template>', `prompt template set (blog: 'a photo of {label}', default, openai-imagenet) or a template with {label} (${dflt('templates')})`)
    .option('--seed <n>', `seed for initialisation and data order (${dflt('seed')})`, num)
    .option('--device <device>', `auto (the first CUDA device, else the CPU), cpu, cuda or cuda:<n> (${dflt('device')})`)
    .addOption(new Option('--precision <p>', `${dflt('precision')}; auto: bf16 on a CUDA device with bf16 (compute capability ≥ 8), fp16 on another CUDA device, fp32 on the CPU`).choices(['auto', 'fp32', 'bf16', 'fp16']))
    .option('--drop-last', 'drop a last smaller batch')
    .option(
      '--augment [key=value...]',
      'training augmentation (open_clip\'s): a random resized crop, by default of 90–100 % of the area; scale=0.5,1 ratio=0.75,1.333 hflip=0.5 color_jitter=0.4,0.4,0.4,0.1 color_jitter_prob=0.8 gray_scale_prob=0.2 (docs/data.md)',
      augmentArgument,
    )
    .option('--no-cuda-graph', 'run every train step eagerly instead of replaying it as a CUDA graph')
    .option('--workers <n>', `images read and decoded at once (${dflt('workers')}; auto: twice the CPU cores, at least 4)`, autoOrNumber)
    .option('--decode-threads <n>', `worker threads that decode images (${dflt('decodeThreads')}; auto: none below 4 cores, else a quarter of them, at most 4; 0: the main thread)`, autoOrNumber)
    .addOption(new Option('--resample <mode>', `how images are resized: pillow (Pillow's antialiased bicubic to the bit, as openai/CLIP and open_clip preprocess) or libvips (sharp's cubic: faster, a few uint8 steps off on sharp edges; docs/data.md) (${dflt('resample')})`).choices(['pillow', 'libvips']))
    .option('--no-cache', 'do not cache preprocessed images on disk')
    .option('--memory-cache <MiB>', `MiB of preprocessed images kept in memory between epochs (${dflt('memoryCacheMiB')}; auto: a quarter of the memory, at most half of the free; 0: none)`, autoOrNumber)
    .option('--strict', 'fail on the first unreadable image instead of skipping it')
    .option('--max-bad-fraction <f>', `stop when more than this fraction of a split is unreadable, or all of it (${dflt('maxBadFraction')}; every skipped entry is listed in <out>/skipped.tsv)`, num)
    .option('--log-every <n>', `log every n batches (${dflt('logEvery')})`, num)
    .option('--weights-every <n>', `weight files every n epochs and after the last (${dflt('weightsEvery')}; 1: every epoch; 0: the last only)`, num)
    .option('--checkpoint-every <n>', `full checkpoint every n epochs (${dflt('checkpointEvery')}; 0: only at the end)`, num)
    .option('--save-pt', 'also write each epoch’s weights as .pt')
    .option('--keep-last <n>', 'keep only the newest n checkpoints', num)
    .option('--eval-every <n>', 'evaluation every n epochs (and before the first): zero-shot accuracy for labels, retrieval metrics and validation loss for captions', num)
    .option('--images-dir <dir>', `blog layout: images folder (${dflt('imagesDir')})`)
    .option('--ext <ext>', `blog layout: image extension (${dflt('ext')})`)
    .option('--resume <path|latest>', 'continue from a checkpoint (refused, naming each difference, when the settings its state depends on differ: docs/resume.md)')
    .option('--overwrite', 'start a new run in an --out that holds one, deleting its files first (without this or --resume, such a directory is refused)')
    .option('--max-nonfinite-steps <n>', `stop after n steps in a row with a non-finite loss, with a checkpoint of the last finite state and exit code 1 (${dflt('maxNonFiniteSteps')})`, num)
    .option('--nproc <n>', 'data parallel: start n ranks on this machine (through torchrun when python3 has torch, else its own launch); under torchrun, leave it out (docs/distributed.md)', num)
    .option('--dist-timeout <seconds>', `data parallel: how long any wait for the other ranks may take before it fails (${dflt('distTimeout')})`, num)
    .option('--allow-reshard', 'resume a checkpoint made with another number of ranks but the same global batch, re-sliced')
    .option('--local-loss-only', "data parallel: each rank's loss over its own batch only, without the other ranks' negatives")
    .option('--print-config', 'print the resolved configuration and exit')
    .option('--json', 'print the result as JSON at the end')
    .action(async (flags: TrainFlags & { cache?: boolean; cudaGraph?: boolean; fixText?: boolean; batchnorm?: TrainConfig['batchNorm']; memoryCache?: TrainConfig['memoryCacheMiB']; maxNonfiniteSteps?: number }) => {
      const { config, printConfig, json, batchnorm, cache, cudaGraph, fixText, memoryCache, maxNonfiniteSteps, nproc, ...rest } = flags;
      // Negatable flags default to true in commander; only an explicit --no-… may override the config file.
      const overrides: Partial<TrainConfig> = {
        ...rest,
        batchNorm: batchnorm,
        memoryCacheMiB: memoryCache,
        maxNonFiniteSteps: maxNonfiniteSteps,
        cache: cache === false ? false : undefined,
        cudaGraph: cudaGraph === false ? false : undefined,
        fixText: fixText === false ? false : undefined,
      };
      if (printConfig) {
        const resolved = resolveConfig(config ? await readConfigFile(config) : undefined, overrides);
        process.stdout.write(JSON.stringify(resolved, null, 2) + '\n');
        return;
      }
      // Data parallel: --nproc starts the ranks (each runs this command without it); under a launcher
      // this process is one rank, and rank 0 alone shows progress and the summary.
      const launch = launchFromEnv();
      if (nproc !== undefined && nproc > 1) {
        if (launch) throw new Error(`--nproc ${nproc}: this process is already rank ${launch.rank} of ${launch.worldSize} of a launch (WORLD_SIZE is set); leave --nproc out under torchrun`);
        process.exitCode = await launchLocal({ nproc, command: [process.execPath, ...process.execArgv, process.argv[1]!, ...withoutNproc(process.argv.slice(2))] });
        return;
      }
      const distributed = launch !== undefined && launch.worldSize > 1;
      const isMain = !distributed || launch.rank === 0;
      const progress = isMain ? createTrainProgress() : rankProgress();
      const controller = new AbortController();
      let interrupts = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        interrupts++;
        if (interrupts > 1) process.exit(130);
        if (isMain) progress.message(`${signal}: finishing the current batch and writing a checkpoint (again to quit at once)${distributed ? '; every rank stops at the same step' : ''}`);
        controller.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const result = await train({
          ...overrides,
          config,
          signal: controller.signal,
          onBatch: progress.onBatch,
          onLog: progress.onLog,
          onEpoch: progress.onEpoch,
          onMessage: progress.message,
        }).catch((err: unknown) => {
          // Which rank says it: every rank's errors reach the launcher's output.
          if (distributed && err instanceof Error) err.message = `rank ${launch.rank} of ${launch.worldSize}: ${err.message}`;
          throw err;
        });
        progress.stop();
        if (!isMain) {
          if (result.interrupted) process.exitCode = 130;
          return;
        }
        const summary = {
          out: result.out,
          epochsCompleted: result.epochsCompleted,
          optimizerSteps: result.optimizerSteps,
          skippedSteps: result.skippedSteps,
          cudaGraph: result.cudaGraph,
          interrupted: result.interrupted,
          epochLosses: result.epochLosses,
          lastWeights: result.weights.at(-1),
          lastCheckpoint: result.checkpoints.at(-1),
          evals: result.evals.map((e) => ('retrieval' in e ? { epoch: e.epoch, retrieval: e.retrieval } : { epoch: e.epoch, top1: e.top1, top5: e.top5 })),
          skipped: result.skipped,
        };
        if (json) process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
        else {
          process.stderr.write(
            `${result.interrupted ? 'interrupted' : 'done'}: ${result.epochsCompleted}/${result.config.epochs} epochs, ${result.optimizerSteps} optimizer steps` +
              `${result.skippedSteps ? ` (${result.skippedSteps} skipped)` : ''}; weights ${summary.lastWeights ?? '-'}; checkpoint ${summary.lastCheckpoint ?? '-'}` +
              `${result.skipped.total ? `; ${result.skipped.total} entries skipped (${formatKinds(result.skipped.byKind)}), listed in ${result.skipped.file}` : ''}\n`,
          );
        }
        if (result.interrupted) process.exitCode = 130;
      } finally {
        progress.stop();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}

/** A rank other than 0: no bar, no per-step lines; only its own messages (they name the rank). */
function rankProgress(stream: NodeJS.WriteStream = process.stderr): ReturnType<typeof createTrainProgress> {
  return { onBatch() {}, onLog() {}, onEpoch() {}, message: (text) => void stream.write(text + '\n'), stop() {} };
}
