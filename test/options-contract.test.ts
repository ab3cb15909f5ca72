// One options contract: the trainer's defaults come from the training configuration's, the CLI help
// states those, and the binding takes a complete NativeTrainerOptions (every key required, none
// defaulted there).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Command } from 'commander';

import { registerTrain } from '../src/cli/train.js';
import { loadModel } from '../src/model/model.js';
import { createNativeTrainer, type NativeTrainerOptions } from '../src/native.js';
import { DEFAULT_CONFIG } from '../src/train/config.js';
import { createTrainer, DEFAULT_TRAINER_OPTIONS } from '../src/train/trainer.js';
import { fixture } from './helpers/fixtures.js';

const COMPLETE: NativeTrainerOptions = {
  optimizer: 'adam',
  betas: [0.9, 0.98],
  eps: 1e-6,
  weightDecay: 0.001,
  precision: 'fp32',
  batchNorm: 'frozen',
  gradClip: 0,
  accumulate: 1,
  accumulateMode: 'contrastive',
  gradCheckpointing: false,
  lockImage: false,
  lockText: false,
  freeze: [],
  clampLogitScale: true,
  cudaGraph: true,
  initScale: 65536,
  growthInterval: 2000,
  group: null,
  localLoss: false,
};

test('the trainer defaults are the configuration defaults wherever both have the key', () => {
  const shared = { localLoss: 'localLossOnly' } as Record<string, string>;
  for (const key of Object.keys(DEFAULT_TRAINER_OPTIONS)) {
    const configKey = (shared[key] ?? key) as keyof typeof DEFAULT_CONFIG;
    if (key === 'precision' || key === 'schedule' || !(configKey in DEFAULT_CONFIG)) continue;
    assert.deepEqual(DEFAULT_TRAINER_OPTIONS[key as keyof typeof DEFAULT_TRAINER_OPTIONS], DEFAULT_CONFIG[configKey], key);
  }
  // The two that disagreed before (issue 25): the binding's weight decay 0, trainer.h's CUDA graph off.
  assert.equal(DEFAULT_TRAINER_OPTIONS.weightDecay, 0.001);
  assert.equal(DEFAULT_TRAINER_OPTIONS.cudaGraph, true);
  // Every key of the native contract has a default on the TypeScript side (group: none).
  for (const key of Object.keys(COMPLETE)) if (key !== 'group') assert.ok(key in DEFAULT_TRAINER_OPTIONS, `no default for ${key}`);
});

function trainHelp(): Map<string, string> {
  const program = new Command();
  registerTrain(program);
  const train = program.commands.find((c) => c.name() === 'train')!;
  return new Map(train.options.map((o) => [o.long!, o.description]));
}

test('train --help states the defaults DEFAULT_CONFIG has', () => {
  const help = trainHelp();
  const flags: Array<[string, keyof typeof DEFAULT_CONFIG, string]> = [
    ['--epochs', 'epochs', '30'],
    ['--lr', 'lr', '1e-6'],
    ['--weight-decay', 'weightDecay', '0.001'],
    ['--eps', 'eps', '1e-6'],
    ['--batch-size', 'batchSize', '4'],
    ['--log-every', 'logEvery', '4'],
    ['--checkpoint-every', 'checkpointEvery', '4'],
  ];
  for (const [flag, key, shown] of flags) {
    assert.equal(Number(shown), DEFAULT_CONFIG[key], `${flag}: the expected text is stale`);
    assert.match(help.get(flag)!, new RegExp(`\\(default ${shown.replace('.', '\\.')}[;)]`), flag);
  }
  assert.match(help.get('--accumulate-mode')!, /default contrastive/);
  assert.match(help.get('--resample')!, /default pillow/);
});

test("--precision auto's help says what auto picks on each device", () => {
  const text = trainHelp().get('--precision')!;
  assert.match(text, /default auto/);
  assert.match(text, /bf16 on a CUDA device with bf16.*fp16 on another CUDA device.*fp32 on the CPU/);
});

test('the binding requires every key of NativeTrainerOptions: a missing one is a TypeError naming it', async () => {
  const model = await loadModel(fixture('models', 'tiny_vit.safetensors'));
  const trainer = await createNativeTrainer(model.native, COMPLETE);
  assert.equal(trainer.counters().optimizerSteps, 0);
  for (const key of Object.keys(COMPLETE) as Array<keyof NativeTrainerOptions>) {
    const { [key]: _left, ...partial } = COMPLETE;
    await assert.rejects(
      async () => createNativeTrainer(model.native, partial as NativeTrainerOptions),
      (err: Error) => err instanceof TypeError && err.message === `option '${key}' is required`,
      key,
    );
  }
});

test('createTrainer fills what it is not given from DEFAULT_TRAINER_OPTIONS (undefined keeps the default)', async () => {
  const model = await loadModel(fixture('models', 'tiny_vit.safetensors'));
  const trainer = await createTrainer(model, { lr: 1e-4, weightDecay: undefined });
  assert.equal(trainer.options.lr, 1e-4);
  assert.equal(trainer.options.weightDecay, DEFAULT_TRAINER_OPTIONS.weightDecay);
  assert.equal(trainer.options.cudaGraph, true);
});
