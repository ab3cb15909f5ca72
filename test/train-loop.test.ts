// The training loop on real image files: exact resume (straight vs checkpoint + resume, an
// AbortSignal mid-epoch, a SIGKILLed CLI run), metrics, checkpoints, configuration errors and the
// non-finite-loss stop.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { exportFashionMnist } from '../src/data/fashion-mnist.js';
import { parseSafetensorsHeader } from '../src/io/safetensors-header.js';
import { tokenizerFromFile } from '../src/text/tokenizer.js';
import { ConfigError, resolveConfig } from '../src/train/config.js';
import { train, type TrainOptions } from '../src/train/loop.js';
import { listCheckpoints, runName } from '../src/train/run-files.js';
import { FASHION_MNIST_SKIP, fashionMnistPresent } from './helpers/fashion-mnist.js';
import { fixture, repoRoot } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';
import { TINY_MODEL } from './helpers/tiny-model.js';

const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');


const tmp = scratchDir('clip-train-loop-');
let data: string;
let modelJson: string;
before(async () => {
  modelJson = path.join(tmp, 'tiny.json');
  await fs.writeFile(modelJson, JSON.stringify(TINY_MODEL));
  if (fashionMnistPresent) {
    data = path.join(tmp, 'fm');
    await exportFashionMnist({ out: data, trainPerClass: 6, testPerClass: 2, seed: 1 });
  }
});

const tokenizer = () => tokenizerFromFile(fixture('bpe_simple_vocab_16e6.txt.gz'));

async function options(out: string, extra: Partial<TrainOptions> = {}): Promise<TrainOptions> {
  return {
    data,
    ext: 'png',
    model: modelJson,
    init: 'random',
    out: path.join(tmp, out),
    epochs: 2,
    batchSize: 8,
    lr: 1e-3,
    optimizer: 'adamw',
    weightDecay: 0.01,
    // StepLR does not depend on the number of epochs (cosine would), so a 1-epoch run resumed to 2
    // epochs follows the same learning rates as a 2-epoch run.
    schedule: 'step',
    stepEvery: 1,
    gamma: 0.5,
    logEvery: 1,
    checkpointEvery: 1,
    device: 'cpu',
    cacheDir: path.join(tmp, 'crops'),
    tokenizer: await tokenizer(),
    ...extra,
  };
}

/** The data section of a safetensors file: the weights, without the (timestamped) header. */
async function weightBytes(file: string): Promise<Buffer> {
  const bytes = await fs.readFile(file);
  return bytes.subarray(parseSafetensorsHeader(bytes).dataStart);
}

async function metrics(out: string): Promise<Array<Record<string, unknown>>> {
  const text = await fs.readFile(path.join(tmp, out, 'metrics.jsonl'), 'utf8');
  return text.trim().split('\n').map((line) => JSON.parse(line));
}

describe('training loop', () => {
  test('two epochs straight equal one epoch, a checkpoint and a resume, bitwise', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    const messages: string[] = [];
    const straight = await train(await options('straight', { onMessage: (m) => messages.push(m) }));
    assert.equal(straight.epochsCompleted, 2);
    assert.equal(straight.epochLosses.length, 2);
    assert.ok(straight.epochLosses.every(Number.isFinite));
    const lines = await metrics('straight');
    assert.equal(lines.filter((l) => l.type === 'epoch').length, 2);
    // The second epoch's crops come from memory (train()'s default), the first's from decoding or the disk cache.
    const [epoch1, epoch2] = lines.filter((l) => l.type === 'epoch').map((l) => l.images as Record<string, number>);
    assert.equal(epoch1!.decoded + epoch1!.diskCache, 60);
    assert.deepEqual(epoch2, { decoded: 0, diskCache: 0, memory: 60 });
    assert.ok(messages.some((m) => /^60 preprocessed images kept in memory for the next epochs \(\d+ of \d+ MiB allowed\)$/.test(m)), messages.join('\n'));
    assert.equal(lines.filter((l) => l.type === 'step').length, 16, '8 batches per epoch, a line each (logEvery 1)');
    // Each step line carries its own step's loss (reads are taken a step late): an epoch's lines average to its loss.
    for (const epoch of [1, 2]) {
      const losses = lines.filter((l) => l.type === 'step' && l.epoch === epoch).map((l) => l.loss as number);
      const mean = losses.reduce((a, b) => a + b, 0) / losses.length;
      const epochLine = lines.find((l) => l.type === 'epoch' && l.epoch === epoch)!;
      assert.ok(Math.abs(mean - (epochLine.loss as number)) < 1e-5, `epoch ${epoch}: step lines average ${mean}, the epoch ${epochLine.loss}`);
    }
    const config = JSON.parse(await fs.readFile(path.join(tmp, 'straight', 'config.json'), 'utf8'));
    assert.equal(config.batchSize, 8);
    assert.deepEqual(config.modelConfig, TINY_MODEL);

    const first = await train(await options('resumed', { epochs: 1 }));
    assert.equal(first.epochsCompleted, 1);
    const resumed = await train(await options('resumed', { epochs: 2, resume: 'latest' }));
    assert.equal(resumed.epochsCompleted, 2);
    assert.equal(resumed.optimizerSteps, straight.optimizerSteps);
    assert.deepEqual(
      await weightBytes(path.join(tmp, 'resumed', 'tiny_epoch_2.safetensors')),
      await weightBytes(path.join(tmp, 'straight', 'tiny_epoch_2.safetensors')),
    );
    assert.ok((await metrics('resumed')).some((l) => l.type === 'resume'));
  });

  test('memoryCacheMiB bounds the crops kept in memory: the rest come from the disk cache, and the run says so; weightsEvery 0 writes the last weights only', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    const messages: string[] = [];
    const crop = 32 * 32 * 3;
    // And weightsEvery 0: only the last epoch's weights are written.
    const run = await train(await options('memory-limit', { memoryCacheMiB: (10 * crop + 100) / 2 ** 20, checkpointEvery: 0, weightsEvery: 0, onMessage: (m) => messages.push(m) }));
    assert.deepEqual(run.weights, [path.join(tmp, 'memory-limit', 'tiny_epoch_2.safetensors')]);
    assert.deepEqual((await fs.readdir(path.join(tmp, 'memory-limit'))).filter((f) => f.endsWith('.safetensors')), ['tiny_epoch_2.safetensors']);
    const [, epoch2] = (await metrics('memory-limit')).filter((l) => l.type === 'epoch').map((l) => l.images as Record<string, number>);
    assert.deepEqual(epoch2, { decoded: 0, diskCache: 50, memory: 10 });
    assert.ok(messages.some((m) => /^10 preprocessed images kept in memory .*; the limit is reached, the others come from the disk cache \(--memory-cache raises it\)$/.test(m)), messages.join('\n'));
  });

  test('an AbortSignal mid-epoch writes a checkpoint that resumes to the same weights', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    const controller = new AbortController();
    let batches = 0;
    const interrupted = await train(
      await options('aborted', {
        signal: controller.signal,
        onBatch: () => {
          if (++batches === 11) controller.abort(); // epoch 2, batch 3
        },
      }),
    );
    assert.equal(interrupted.interrupted, true);
    const checkpoints = await listCheckpoints(path.join(tmp, 'aborted'));
    assert.deepEqual(checkpoints.at(-1)!.epoch, 1);
    assert.deepEqual(checkpoints.at(-1)!.batch, 3);
    await train(await options('aborted', { resume: 'latest' }));
    assert.deepEqual(
      await weightBytes(path.join(tmp, 'aborted', 'tiny_epoch_2.safetensors')),
      await weightBytes(path.join(tmp, 'straight', 'tiny_epoch_2.safetensors')),
    );
  });

  // bf16 autocast on the CPU: from the second step the weights are cast at once (native/train/flat_weights.h),
  // and a resumed trainer starts that over; the numbers are autocast's either way.
  test('bf16: an abort mid-epoch resumes to the weights of the uninterrupted run, bitwise', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    const straight = await train(await options('bf16-straight', { precision: 'bf16' }));
    assert.ok(straight.epochLosses.every(Number.isFinite));
    const controller = new AbortController();
    let batches = 0;
    const abort = () => {
      if (++batches === 11) controller.abort(); // epoch 2, batch 3
    };
    assert.equal((await train(await options('bf16-aborted', { precision: 'bf16', signal: controller.signal, onBatch: abort }))).interrupted, true);
    await train(await options('bf16-aborted', { precision: 'bf16', resume: 'latest' }));
    assert.deepEqual(
      await weightBytes(path.join(tmp, 'bf16-aborted', 'tiny_epoch_2.safetensors')),
      await weightBytes(path.join(tmp, 'bf16-straight', 'tiny_epoch_2.safetensors')),
    );
    assert.notDeepEqual(
      await weightBytes(path.join(tmp, 'bf16-straight', 'tiny_epoch_2.safetensors')),
      await weightBytes(path.join(tmp, 'straight', 'tiny_epoch_2.safetensors')),
      'bf16 trained exactly as fp32: did autocast run?',
    );
  });

  test('a run killed with SIGKILL in epoch 2 resumes from its last checkpoint to the same weights', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    const out = path.join(tmp, 'killed');
    const args = [cli, 'train', '--data', data, '--ext', 'png', '--model', modelJson, '--init', 'random', '--out', out, '--epochs', '2'];
    args.push('--batch-size', '8', '--lr', '1e-3', '--optimizer', 'adamw', '--weight-decay', '0.01', '--schedule', 'step', '--step-every', '1', '--gamma', '0.5');
    args.push('--log-every', '1', '--checkpoint-every', '1', '--device', 'cpu');
    const env = { ...process.env, CLIP_NATIVE_VOCAB: fixture('bpe_simple_vocab_16e6.txt.gz'), CLIP_NATIVE_CACHE: path.join(tmp, 'cache') };
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const killed = await new Promise<boolean>((resolve) => {
      const timer = setInterval(async () => {
        const text = await fs.readFile(path.join(out, 'metrics.jsonl'), 'utf8').catch(() => '');
        if (text.includes('"type":"step","epoch":2')) {
          clearInterval(timer);
          resolve(child.kill('SIGKILL'));
        }
      }, 5);
      child.on('exit', () => {
        clearInterval(timer);
        resolve(false);
      });
    });
    assert.ok(killed, `the run ended before it could be killed in epoch 2:\n${stderr}`);
    await new Promise((r) => child.once('exit', r));
    assert.equal(existsSync(path.join(out, 'tiny_epoch_2.safetensors')), false, 'killed before epoch 2 finished');
    const resumed = spawn(process.execPath, [...args, '--resume', 'latest'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let resumeErr = '';
    resumed.stderr.on('data', (chunk) => (resumeErr += chunk));
    const code = await new Promise((r) => resumed.once('exit', r));
    assert.equal(code, 0, resumeErr);
    assert.match(resumeErr, /resumed from .*checkpoint-epoch0001-batch000000/);
    assert.deepEqual(await weightBytes(path.join(out, 'tiny_epoch_2.safetensors')), await weightBytes(path.join(tmp, 'straight', 'tiny_epoch_2.safetensors')));
  });

  test('SIGINT finishes the batch, writes a checkpoint, says how to resume and exits with 130', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    const out = path.join(tmp, 'sigint');
    const args = [cli, 'train', '--data', data, '--ext', 'png', '--model', modelJson, '--init', 'random', '--out', out];
    args.push('--epochs', '50', '--batch-size', '8', '--log-every', '1', '--device', 'cpu');
    const env = { ...process.env, CLIP_NATIVE_VOCAB: fixture('bpe_simple_vocab_16e6.txt.gz'), CLIP_NATIVE_CACHE: path.join(tmp, 'cache') };
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    // One SIGINT only: reads still in flight when the first one sees a step would send a second,
    // which means "quit at once" (no checkpoint).
    let sent = false;
    const timer = setInterval(async () => {
      const text = await fs.readFile(path.join(out, 'metrics.jsonl'), 'utf8').catch(() => '');
      if (text.includes('"type":"step"') && !sent) {
        sent = true;
        clearInterval(timer);
        child.kill('SIGINT');
      }
    }, 5);
    const code = await new Promise((r) => child.once('exit', (c) => r(c)));
    clearInterval(timer);
    assert.equal(code, 130, stderr);
    assert.match(stderr, /SIGINT: finishing the current batch/);
    assert.match(stderr, /interrupted: checkpoint written to .*checkpoint-epoch0000-batch\d+\.safetensors; continue with --resume latest/);
    assert.equal((await listCheckpoints(out)).length, 1);
  });

  test('captions (JSONL) train with one positive per image; labels are not required', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    const list = (await fs.readFile(path.join(data, 'meta', 'train.txt'), 'utf8')).trim().split('\n');
    const jsonl = path.join(tmp, 'captions.jsonl');
    await fs.writeFile(
      jsonl,
      list.map((line, i) => JSON.stringify({ image: `fm/images/${line}.png`, caption: `picture ${i} of a ${line.split('/')[0]!.replace(/_/g, ' ')}` })).join('\n'),
    );
    const result = await train(await options('captions', { data: jsonl, epochs: 1, evalEvery: 1 }));
    assert.equal(result.epochsCompleted, 1);
    assert.ok(Number.isFinite(result.epochLosses[0]));
    // Caption data is evaluated by retrieval (before training and after the epoch), not zero-shot.
    assert.deepEqual(result.evals.map((e) => [e.epoch, 'retrieval' in e && e.texts]), [[0, list.length], [1, list.length]]);
  });

  test('evaluating on the training rows (a labelled table without a split column) is said, not silent', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    const list = (await fs.readFile(path.join(data, 'meta', 'train.txt'), 'utf8')).trim().split('\n');
    const csv = path.join(tmp, 'labels.csv');
    const row = (line: string) => `fm/images/${line}.png,${line.split('/')[0]!.replace(/_/g, ' ')}`;
    await fs.writeFile(csv, ['image,label', ...list.map(row)].join('\n'));
    const messages: string[] = [];
    const result = await train(await options('table-no-split', { data: csv, epochs: 1, evalEvery: 1, onMessage: (m) => messages.push(m) }));
    assert.equal(result.evals.length, 2, 'evaluated before and after the epoch');
    assert.ok(messages.some((m) => /warning: zero-shot evaluation runs on the training samples: .*labels\.csv has no split column/.test(m)), messages.join('\n'));
    const withSplit = path.join(tmp, 'labels-split.csv');
    await fs.writeFile(withSplit, ['image,label,split', ...list.map((line, i) => `${row(line)},${i % 3 ? 'train' : 'test'}`)].join('\n'));
    const quiet: string[] = [];
    await train(await options('table-split', { data: withSplit, epochs: 1, evalEvery: 1, onMessage: (m) => quiet.push(m) }));
    assert.ok(!quiet.some((m) => m.includes('training samples')), quiet.join('\n'));
  });

  test('resuming a fine-tuning run needs only the checkpoint, not the pretrained file it started from', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    const pretrained = path.join(tmp, 'pretrained.safetensors');
    await fs.copyFile(fixture('models', 'tiny_vit.safetensors'), pretrained);
    const run = { model: pretrained, init: 'pretrained' as const };
    await train(await options('finetune-straight', run));
    await train(await options('finetune-resumed', { ...run, epochs: 1 }));
    await fs.rm(pretrained);
    const resumed = await train(await options('finetune-resumed', { ...run, resume: 'latest' }));
    assert.equal(resumed.epochsCompleted, 2);
    assert.deepEqual(
      await weightBytes(path.join(tmp, 'finetune-resumed', 'pretrained_epoch_2.safetensors')),
      await weightBytes(path.join(tmp, 'finetune-straight', 'pretrained_epoch_2.safetensors')),
    );
    await assert.rejects(
      train(await options('finetune-resumed', { model: 'ViT-B/32', init: 'pretrained', epochs: 3, resume: 'latest' })),
      /another architecture than ViT-B\/32/,
    );
  });

  test('with gradient accumulation, an epoch ends with its partial group applied and resumes bitwise', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    const accumulate = { accumulate: 3 };
    const straight = await train(await options('accumulate-straight', accumulate));
    assert.equal(straight.optimizerSteps, 2 * Math.ceil(8 / 3), '8 batches per epoch in groups of 3: 3 optimizer steps each');
    await train(await options('accumulate-resumed', { ...accumulate, epochs: 1 }));
    await train(await options('accumulate-resumed', { ...accumulate, resume: 'latest' }));
    assert.deepEqual(
      await weightBytes(path.join(tmp, 'accumulate-resumed', 'tiny_epoch_2.safetensors')),
      await weightBytes(path.join(tmp, 'accumulate-straight', 'tiny_epoch_2.safetensors')),
    );
  });

  test('keep-last prunes old checkpoints; a checkpoint of another architecture is refused', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    await train(await options('pruned', { epochs: 3, keepLast: 1 }));
    const left = await listCheckpoints(path.join(tmp, 'pruned'));
    assert.equal(left.length, 1);
    assert.equal(left[0]!.epoch, 3);
    const other = path.join(tmp, 'other.json');
    await fs.writeFile(other, JSON.stringify({ ...TINY_MODEL, transformer_layers: 2 }));
    await assert.rejects(train(await options('pruned', { model: other, epochs: 4, resume: left[0]!.file })), /another architecture/);
    const corrupt = path.join(tmp, 'corrupt.safetensors');
    await fs.writeFile(corrupt, (await fs.readFile(left[0]!.file)).subarray(0, 1000));
    await assert.rejects(train(await options('pruned', { epochs: 4, resume: corrupt })), /corrupt\.safetensors/);
  });

  test('a diverging run stops after consecutive non-finite losses, naming the step and the fix', async (t) => {
    if (!fashionMnistPresent) return t.skip(FASHION_MNIST_SKIP);
    const run = train(await options('diverged', { lr: 1e30, schedule: 'constant', optimizer: 'adam', epochs: 3, maxNonFinite: 2 }));
    await assert.rejects(run, /not finite for 2 consecutive steps \(last: epoch \d+, batch \d+, optimizer step \d+\).*Lower the learning rate/s);
    // Checkpoints written before the divergence (if any) are intact and loadable.
    for (const c of await listCheckpoints(path.join(tmp, 'diverged'))) {
      parseSafetensorsHeader(await fs.readFile(c.file));
    }
  });
});

describe('training configuration', () => {
  test('weight files are named after the model: a released name made file-safe, or a file stem', () => {
    assert.equal(runName('ViT-B/32'), 'ViT-B-32');
    assert.equal(runName('ViT-L/14@336px'), 'ViT-L-14-336px');
    assert.equal(runName(modelJson), 'tiny');
  });

  test('defaults are the blog recipe', () => {
    const config = resolveConfig({ data: 'd', out: 'o' });
    assert.equal(config.model, 'RN50');
    assert.equal(config.batchSize, 4);
    assert.equal(config.epochs, 30);
    assert.equal(config.optimizer, 'adam');
    assert.equal(config.lr, 1e-6);
    assert.deepEqual(config.betas, [0.9, 0.98]);
    assert.equal(config.eps, 1e-6);
    assert.equal(config.weightDecay, 0.001);
    assert.deepEqual([config.schedule, config.stepEvery, config.gamma], ['step', 10, 0.1]);
    assert.equal(config.logEvery, 4);
    assert.equal(config.checkpointEvery, 4);
    assert.equal(config.templates, 'blog');
  });

  test('every invalid value is reported at once, with its key', () => {
    assert.throws(
      () => resolveConfig({ data: 'd', out: 'o', epochs: 0, lr: -1, optimizer: 'sgd' as 'adam', betas: [0.9, 1.5], decodeThreads: -1, memoryCacheMiB: -1, bogus: 1 } as never),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        const text = err.problems.join('\n');
        for (const key of ['epochs', 'lr', 'optimizer', 'betas', 'decodeThreads', 'memoryCacheMiB', 'bogus']) assert.match(text, new RegExp(`^${key}: `, 'm'));
        return true;
      },
    );
    assert.throws(() => resolveConfig({}), /data: is required[\s\S]*out: is required/);
  });

  test('a YAML file is read, flags override it, and --print-config shows the result', async () => {
    const file = path.join(tmp, 'run.yaml');
    await fs.writeFile(file, 'data: ./images\nout: ./runs/a\nepochs: 5\nlr: 0.0001\nfreeze: ["^visual\\\\.conv1"]\nmemoryCacheMiB: 512\n');
    const { execFileSync } = await import('node:child_process');
    const printed = JSON.parse(execFileSync(process.execPath, [cli, 'train', '--config', file, '--epochs', '7', '--print-config'], { encoding: 'utf8' }));
    assert.equal(printed.epochs, 7);
    assert.equal(printed.memoryCacheMiB, 512);
    const noMemory = JSON.parse(execFileSync(process.execPath, [cli, 'train', '--config', file, '--memory-cache', '0', '--print-config'], { encoding: 'utf8' }));
    assert.equal(noMemory.memoryCacheMiB, 0);
    assert.equal(printed.lr, 0.0001);
    assert.equal(printed.data, path.join(tmp, 'images'));
    assert.deepEqual(printed.freeze, ['^visual\\.conv1']);
    await fs.writeFile(file, 'epochs: many\nbatchSize: -2\n');
    const r = (await import('node:child_process')).spawnSync(process.execPath, [cli, 'train', '--config', file, '--print-config'], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /run\.yaml: epochs: must be a positive integer/);
    assert.match(r.stderr, /run\.yaml: batchSize: must be a positive integer/);
    // Text that is not a number is refused at its flag, not reported later as null.
    const text = (await import('node:child_process')).spawnSync(process.execPath, [cli, 'train', '--data', 'd', '--out', 'o', '--memory-cache', 'lots', '--print-config'], { encoding: 'utf8' });
    assert.equal(text.status, 1);
    assert.match(text.stderr, /option '--memory-cache <MiB>' argument 'lots' is invalid\. expected a number, got "lots"/);
  });
});
