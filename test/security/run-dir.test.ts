// Runs never lose or mix data (#19 item 4): a run directory is locked while a run trains in it (a
// second run is refused naming the holder; a stale lock is taken over), a new run does not start over
// an old one unless asked (--resume, --overwrite), --keep-last never removes the checkpoint a run
// resumed from, and a run whose files would not fit on the disk is refused before it starts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { epochsWriting, estimateWrites, formatBytes, LOCK_FILE } from '../../src/train/run-dir.js';
import { listCheckpoints } from '../../src/train/run-files.js';
import { scratchDir } from '../helpers/scratch.js';
import { cliEnv, runCli, startCli, tinyRunInputs, tinyTrainArgs, waitFor } from '../helpers/tiny-run.js';

const tmp = scratchDir('clip-run-dir-');
const env = cliEnv(tmp);
let inputs: { data: string; model: string };
before(async () => {
  inputs = await tinyRunInputs(tmp);
});

const args = (out: string, ...extra: string[]) => tinyTrainArgs(inputs, path.join(tmp, out), ...extra);

describe('run directory lock', () => {
  test('a second train on a directory in use is refused naming it and the holder; Ctrl-C releases the lock', { timeout: 60_000 }, async () => {
    const out = path.join(tmp, 'locked');
    const first = startCli(args('locked', '--epochs', '100000', '--weights-every', '0', '--checkpoint-every', '0'), env);
    try {
      await waitFor(async () => (await fs.readFile(path.join(out, 'metrics.jsonl'), 'utf8').catch(() => '')).includes('"type":"step"'), 30_000, `the first run to train\n${first.output()}`);
      const holder = JSON.parse(await fs.readFile(path.join(out, LOCK_FILE), 'utf8'));
      assert.equal(holder.pid, first.child.pid);
      assert.equal(holder.host, os.hostname());
      const second = await runCli(args('locked', '--epochs', '1', '--resume', 'latest'), env);
      assert.equal(second.code, 1, second.stderr);
      assert.match(second.stderr, new RegExp(`${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by another training run \\(pid ${first.child.pid} on host ${os.hostname()}, started `));
      assert.ok(second.seconds < 20, `refused after ${second.seconds.toFixed(1)} s`);
    } finally {
      first.child.kill('SIGINT');
    }
    const ended = await first.done;
    assert.equal(ended.code, 130, ended.stderr);
    assert.match(ended.stderr, /interrupted: checkpoint written to/);
    assert.equal(existsSync(path.join(out, LOCK_FILE)), false, 'the lock is released on the Ctrl-C path');
  });

  test('a stale lock (this host, its process gone) is reported and taken over, then released', { timeout: 60_000 }, async () => {
    const out = path.join(tmp, 'stale');
    await fs.mkdir(out, { recursive: true });
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const pid = Number(gone.stdout);
    await fs.writeFile(path.join(out, LOCK_FILE), JSON.stringify({ pid, host: os.hostname(), started: '2020-01-01T00:00:00.000Z', token: 'old' }));
    const run = await runCli(args('stale', '--epochs', '1'), env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, new RegExp(`taking over a stale lock \\(pid ${pid} on ${os.hostname()}, started 2020-01-01T00:00:00.000Z\\): process ${pid} is no longer running`));
    assert.equal(existsSync(path.join(out, LOCK_FILE)), false, 'released at the end');
  });

  test("another host's lock is refused (it cannot be checked), saying how to clear it", { timeout: 30_000 }, async () => {
    const out = path.join(tmp, 'other-host');
    await fs.mkdir(out, { recursive: true });
    await fs.writeFile(path.join(out, LOCK_FILE), JSON.stringify({ pid: 1, host: 'elsewhere.example', started: '2020-01-01T00:00:00.000Z', token: 'x' }));
    const run = await runCli(args('other-host', '--epochs', '1'), env);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /is in use by another training run \(pid 1 on host elsewhere\.example, .*If no run on elsewhere\.example uses it any more, remove .*\.lock/);
    assert.ok(existsSync(path.join(out, LOCK_FILE)), 'not ours to remove');
  });
});

describe('an old run is not overwritten unless asked', () => {
  test('a new train into a run directory is refused; --overwrite removes the run (only its files); --resume continues', { timeout: 60_000 }, async () => {
    const out = path.join(tmp, 'existing');
    const first = await runCli(args('existing', '--epochs', '1'), env);
    assert.equal(first.code, 0, first.stderr);
    await fs.writeFile(path.join(out, 'notes.txt'), 'mine');

    const again = await runCli(args('existing', '--epochs', '1'), env);
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /existing already holds a training run \(checkpoints\/, config\.json, metrics\.jsonl, skipped\.tsv, tiny_epoch_1\.safetensors\)\. Continue it with --resume latest, start over with --overwrite/);
    assert.ok(again.seconds < 20, `refused after ${again.seconds.toFixed(1)} s`);
    assert.equal((await fs.readFile(path.join(out, 'metrics.jsonl'), 'utf8')).split('\n').filter((l) => l.includes('"type":"epoch"')).length, 1, 'the old run is untouched');

    const overwritten = await runCli(args('existing', '--epochs', '2', '--overwrite'), env);
    assert.equal(overwritten.code, 0, overwritten.stderr);
    assert.match(overwritten.stderr, /--overwrite: removed \(deleted, not moved aside\) the previous run's files in .*existing: checkpoints\/, config\.json, metrics\.jsonl, tiny_epoch_1\.safetensors/);
    const lines = (await fs.readFile(path.join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.filter((l) => l.type === 'epoch').map((l) => l.epoch), [1, 2], 'one run in metrics.jsonl, not two mixed');
    assert.equal(await fs.readFile(path.join(out, 'notes.txt'), 'utf8'), 'mine', 'files that are not the run’s stay');

    const resumed = await runCli(args('existing', '--epochs', '3', '--resume', 'latest'), env);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /resumed from .*checkpoint-epoch0002-batch000000/);

    const both = await runCli(args('existing', '--epochs', '4', '--resume', 'latest', '--overwrite'), env);
    assert.equal(both.code, 1);
    assert.match(both.stderr, /--resume latest and --overwrite: the checkpoint belongs to the run in .*existing that --overwrite would remove; choose one/);
  });

  test('--keep-last on --resume keeps the checkpoint the run resumed from and the newest', { timeout: 60_000 }, async () => {
    const out = path.join(tmp, 'keep-last');
    const first = await runCli(args('keep-last', '--epochs', '1', '--checkpoint-every', '1'), env);
    assert.equal(first.code, 0, first.stderr);
    const [resumedFrom] = await listCheckpoints(out);
    const resumed = await runCli(args('keep-last', '--epochs', '3', '--checkpoint-every', '1', '--keep-last', '1', '--resume', 'latest'), env);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /resumed from .*checkpoint-epoch0001-batch000000/);
    const left = (await listCheckpoints(out)).map((c) => path.basename(c.file));
    assert.deepEqual(left, ['checkpoint-epoch0001-batch000000.safetensors', 'checkpoint-epoch0003-batch000000.safetensors'], resumed.stderr);
    assert.match(resumed.stderr, /removed old checkpoint .*checkpoint-epoch0002-batch000000/);
    assert.doesNotMatch(resumed.stderr, /removed old checkpoint .*checkpoint-epoch0001/);
    assert.ok(existsSync(resumedFrom!.file));
  });
});

describe('disk space', () => {
  test('--epochs 1000000000 with weights every epoch is refused by the estimate of what it writes, before training', { timeout: 30_000 }, async () => {
    const out = path.join(tmp, 'huge');
    const run = await runCli(args('huge', '--epochs', '1000000000'), env);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /not enough disk space for this run: it would write about [\d.]+ (PB|EB|[\d.e+]+ bytes) to .*huge \(1\.00e\+9 weight files of [\d.]+ MB, and up to 2\.50e\+8 checkpoints of [\d.]+ MB at once\), and [\d.]+ \w+ is free there\. Write fewer weight files \(--weights-every 0: the last epoch's only; --weights-every N: every N epochs\), keep fewer checkpoints \(--keep-last 2\)/);
    assert.ok(run.seconds < 20, `refused after ${run.seconds.toFixed(1)} s`);
    // skipped.tsv is started before the model is built (and alone does not make a run).
    assert.deepEqual((await fs.readdir(out)).filter((f) => f !== 'skipped.tsv'), [], 'nothing written');
  });

  test('the estimate counts the weight files and the checkpoints kept of the epochs still to run', () => {
    assert.equal(epochsWriting(0, 10, 1), 10);
    assert.equal(epochsWriting(0, 10, 3), 4, 'epochs 3, 6, 9 and the last');
    assert.equal(epochsWriting(0, 9, 3), 3);
    assert.equal(epochsWriting(4, 10, 0), 1, 'the last only');
    assert.equal(epochsWriting(10, 10, 1), 0);
    assert.equal(epochsWriting(0, 1e9, 1), 1e9);
    const e = estimateWrites({ startEpoch: 2, epochs: 10, weightsEvery: 1, checkpointEvery: 4, keepLast: 1, savePt: true, evalEvery: 1, weightBytes: 1000 });
    assert.equal(e.weightFiles, 8 * 2 + 1, '.safetensors and .pt for epochs 3..10, and the best weights');
    assert.equal(e.checkpoints, 2, 'epochs 4, 8, 10 written, one kept plus the one being written');
    assert.equal(e.bytes, 17 * 1000 + 2 * 3000);
    assert.equal(formatBytes(1.5e12), '1.50 TB');
  });
});
