// Resume checks compatibility (#19 item 5): a checkpoint records what its state depends on (model and
// initial weights, data, batch size, optimizer and its hyperparameters, schedule, precision…); a
// resume that differs is refused naming each key with both values, one that changes only what may
// change (epochs, logging, cadences, workers, device…) goes on, and an old checkpoint without the
// record resumes with a warning that it could not be checked.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import sharp from 'sharp';

import { parseSafetensorsHeader, readSafetensorsMetadata } from '../../src/io/safetensors-header.js';
import { DEFAULT_CONFIG, type TrainConfig } from '../../src/train/config.js';
import { compatDifferences, compatError, compatRecord, COMPAT_METADATA_KEY } from '../../src/train/resume-compat.js';
import { listCheckpoints } from '../../src/train/run-files.js';
import { scratchDir } from '../helpers/scratch.js';
import { cliEnv, runCli, tinyRunInputs, tinyTrainArgs } from '../helpers/tiny-run.js';

const tmp = scratchDir('clip-resume-compat-');
const env = cliEnv(tmp);
let inputs: { data: string; model: string };
before(async () => {
  inputs = await tinyRunInputs(tmp);
});

const args = (out: string, ...extra: string[]) => tinyTrainArgs(inputs, path.join(tmp, out), ...extra);

/** `file` without the given metadata key, as a checkpoint written before the key existed. */
async function withoutMetadata(file: string, key: string): Promise<void> {
  const bytes = await fs.readFile(file);
  const header = parseSafetensorsHeader(bytes);
  const json = JSON.parse(bytes.subarray(8, header.dataStart).toString('utf8'));
  delete json.__metadata__[key];
  const text = Buffer.from(JSON.stringify(json));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(text.length));
  await fs.writeFile(file, Buffer.concat([length, text, bytes.subarray(header.dataStart)]));
}

describe('resume compatibility', () => {
  test('a resume with other settings is refused naming each key with the old and new values; safe changes resume', { timeout: 60_000 }, async () => {
    const first = await runCli(args('run', '--epochs', '1', '--schedule', 'step', '--gamma', '0.5'), env);
    assert.equal(first.code, 0, first.stderr);
    const [checkpoint] = await listCheckpoints(path.join(tmp, 'run'));
    const record = JSON.parse((await readSafetensorsMetadata(checkpoint!.file))![COMPAT_METADATA_KEY]!);
    assert.equal(record.lr, 1e-3);
    assert.equal(record.batchSize, 4);
    assert.equal(record.worldSize, 1);
    assert.match(record.dataset, /^[0-9a-f]{64}$/);
    assert.match(record.initialWeights, /^random:[0-9a-f]{64}$/);

    const refused = await runCli(args('run', '--epochs', '2', '--schedule', 'step', '--gamma', '0.25', '--lr', '5e-4', '--batch-size', '8', '--optimizer', 'adamw', '--resume', 'latest'), env);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /cannot resume from .*checkpoint-epoch0001-batch000000\.safetensors: 4 setting\(s\) its state depends on differ from this run's:/);
    assert.match(refused.stderr, /^ {2}batchSize: checkpoint 4, this run 8$/m);
    assert.match(refused.stderr, /^ {2}optimizer: checkpoint adam, this run adamw$/m);
    assert.match(refused.stderr, /^ {2}lr: checkpoint 0\.001, this run 0\.0005$/m);
    assert.match(refused.stderr, /^ {2}gamma: checkpoint 0\.5, this run 0\.25$/m);
    assert.doesNotMatch(refused.stderr, /^ {2}epochs:/m, 'epochs may change');
    assert.match(refused.stderr, /Options that may change on resume: epochs, logEvery, .*\(docs\/resume\.md\)/);
    assert.ok(refused.seconds < 20, `refused after ${refused.seconds.toFixed(1)} s`);

    // Another training list: one more image.
    const extra = path.join(inputs.data, 'train', 'red', 'extra.png');
    await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toFile(extra);
    try {
      const otherData = await runCli(args('run', '--epochs', '2', '--schedule', 'step', '--gamma', '0.5', '--resume', 'latest'), env);
      assert.equal(otherData.code, 1, otherData.stderr);
      assert.match(otherData.stderr, /^ {2}dataset: checkpoint [0-9a-f]{64}, this run [0-9a-f]{64}$/m);
    } finally {
      await fs.rm(extra);
    }

    const safe = ['--epochs', '2', '--schedule', 'step', '--gamma', '0.5', '--log-every', '2', '--checkpoint-every', '1', '--keep-last', '3', '--workers', '2', '--decode-threads', '0', '--weights-every', '2', '--no-cache'];
    const resumed = await runCli(args('run', ...safe, '--resume', 'latest'), env);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /resumed from .*checkpoint-epoch0001-batch000000/);
    assert.doesNotMatch(resumed.stderr, /could not be (checked|compared)/);
  });

  test('a checkpoint without the record (written before it existed) resumes with a warning that it could not be checked', { timeout: 60_000 }, async () => {
    const first = await runCli(args('old', '--epochs', '1'), env);
    assert.equal(first.code, 0, first.stderr);
    const [checkpoint] = await listCheckpoints(path.join(tmp, 'old'));
    await withoutMetadata(checkpoint!.file, COMPAT_METADATA_KEY);
    const resumed = await runCli(args('old', '--epochs', '2', '--lr', '5e-4', '--resume', 'latest'), env);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /warning: .*checkpoint-epoch0001-batch000000\.safetensors holds no record of the settings it was trained with .*could not be checked against this run's/);
    assert.match(resumed.stderr, /resumed from /);
  });

  test('differences: unknown values are unchecked, settings of another schedule are not listed twice', () => {
    const base = { lr: 1, schedule: 'step', stepEvery: 10, gamma: 0.1, initialWeights: 'sha256:aa' };
    assert.deepEqual(compatDifferences(base, { ...base }), { differences: [], unchecked: [] });
    assert.deepEqual(compatDifferences(base, { ...base, initialWeights: null }), { differences: [], unchecked: ['initialWeights'] });
    const cosine = { lr: 1, schedule: 'cosine', warmup: 5, initialWeights: 'sha256:aa' };
    assert.deepEqual(compatDifferences(base, cosine).differences, [{ key: 'schedule', checkpoint: 'step', run: 'cosine' }]);
    assert.deepEqual(compatDifferences({ lr: 1 }, { lr: 1, accumulate: 2 }).differences, [{ key: 'accumulate', checkpoint: undefined, run: 2 }]);
  });

  test('records made before an option existed stand for its old behaviour: independent accumulation, no text cleaning', () => {
    const resolved = { precision: 'fp32' as const, architecture: {} as never, initialWeights: undefined, dataset: 'x', worldSize: 1 };
    const record = (over: Partial<TrainConfig>) => compatRecord({ ...DEFAULT_CONFIG, data: 'd', out: 'o', ...over } as TrainConfig, resolved);
    const old = record({ fixText: false, accumulate: 2, accumulateMode: 'independent' });
    assert.ok(!('fixText' in old) && !('accumulateMode' in old), 'the old behaviours record nothing, as records made before the options');
    const now = record({ accumulate: 2 });
    assert.equal(now.fixText, true);
    assert.equal(now.accumulateMode, 'contrastive');
    const { differences } = compatDifferences(old, now);
    assert.deepEqual(differences.map((d) => d.key).sort(), ['accumulateMode', 'fixText']);
    assert.match(compatError('c.safetensors', differences).message, /fixText: checkpoint \(not recorded\), this run true \(runs before text cleaning existed tokenized without it: resume them with --no-fix-text\)/);
    assert.ok(!('accumulateMode' in record({ accumulate: 1 })), 'no accumulation, nothing to record');
  });
});
