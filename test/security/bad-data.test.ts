// Bad data is named, and too much of it stops the run (issue #19, item 6), through the CLI on real
// files: every skipped entry is in skipped.tsv with its reason, a split with too many unreadable
// images stops before training (or in the first epoch, when only the decode finds them) with a
// non-zero exit and the counts, and a list that leaves the dataset or is not UTF-8 is an error
// naming the file and where.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { parseSkippedTsv, SKIPPED_COLUMNS, SKIPPED_FILE } from '../../src/train/bad-data.js';
import {
  writeBmp,
  writeCorruptPixelsPng,
  writeEmpty,
  writeGoodJpeg,
  writeGoodPng,
  writeText,
  writeTruncatedJpeg,
} from '../helpers/bad-images.js';
import { fixture, repoRoot } from '../helpers/fixtures.js';
import { scratchDir } from '../helpers/scratch.js';
import { writeTinyModel } from '../helpers/tiny-model.js';

const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'bin.cjs');
const tmp = scratchDir('clip-bad-data-');
let model: string;
before(async () => {
  model = await writeTinyModel(tmp);
});

/** `clip-native train` on a blog-layout dataset whose list lines carry their extensions. */
function train(data: string, out: string, ...extra: string[]) {
  const args = ['train', '--data', data, '--ext', '', '--model', model, '--init', 'random', '--out', out, '--epochs', '1', '--batch-size', '4'];
  args.push('--device', 'cpu', '--no-cache', '--memory-cache', '0', '--json', ...extra);
  return spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CLIP_NATIVE_VOCAB: fixture('bpe_simple_vocab_16e6.txt.gz'), CLIP_NATIVE_CACHE: path.join(tmp, 'cache') },
  });
}

async function writeList(root: string, lines: string[] | Buffer): Promise<string> {
  const file = path.join(root, 'meta', 'train.txt');
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, Array.isArray(lines) ? lines.join('\n') + '\n' : lines);
  return file;
}

async function readSkipped(out: string) {
  const text = await fs.readFile(path.join(out, SKIPPED_FILE), 'utf8');
  assert.equal(text.split('\n')[0], SKIPPED_COLUMNS.join('\t'));
  return parseSkippedTsv(text);
}

const weightFiles = async (out: string) => (await fs.readdir(out)).filter((f) => f.endsWith('.safetensors'));

describe('unreadable images', () => {
  test('five bad entries of eight: the run stops before training, names the counts, and skipped.tsv lists all five with reasons', async () => {
    const root = path.join(tmp, 'five-bad');
    const images = path.join(root, 'images');
    await writeGoodPng(path.join(images, 'cat', 'good1.png'), 1);
    await writeTruncatedJpeg(path.join(images, 'cat', 'truncated.jpg'));
    await writeGoodJpeg(path.join(images, 'dog', 'good2.jpg'), 2);
    await writeEmpty(path.join(images, 'dog', 'zero.jpg'));
    await writeText(path.join(images, 'dog', 'text.jpg'));
    await writeBmp(path.join(images, 'cat', 'old.bmp'));
    await writeGoodPng(path.join(images, 'cat', 'good3.png'), 3);
    const list = await writeList(root, ['cat/good1.png', 'cat/truncated.jpg', 'dog/good2.jpg', 'dog/zero.jpg', 'dog/text.jpg', 'cat/old.bmp', 'dog/missing.jpg', 'cat/good3.png']);
    const out = path.join(tmp, 'run-five-bad');
    const run = train(root, out);
    assert.notEqual(run.status, 0, run.stderr);
    assert.match(run.stderr, /train split: 5 of 8 entries unreadable \(/);
    for (const count of ['truncated 1', 'empty 1', 'unsupported 2', 'missing 1']) assert.ok(run.stderr.includes(count), `${count}?\n${run.stderr}`);
    assert.match(run.stderr, /more than --max-bad-fraction 0\.01 allows; found before training; nothing was trained/);
    assert.ok(run.stderr.includes(path.join(out, SKIPPED_FILE)), run.stderr);
    assert.deepEqual(await weightFiles(out), []);

    const rows = await readSkipped(out);
    assert.deepEqual(
      rows.map((r) => [r.line, path.relative(images, r.file), r.kind, r.split, r.epoch, r.listFile]),
      [
        [2, path.join('cat', 'truncated.jpg'), 'truncated', 'train', 0, list],
        [4, path.join('dog', 'zero.jpg'), 'empty', 'train', 0, list],
        [5, path.join('dog', 'text.jpg'), 'unsupported', 'train', 0, list],
        [6, path.join('cat', 'old.bmp'), 'unsupported', 'train', 0, list],
        [7, path.join('dog', 'missing.jpg'), 'missing', 'train', 0, list],
      ],
    );
    for (const row of rows) assert.ok(row.reason.length > 10 && !row.reason.startsWith(row.file), row.reason);
    assert.match(rows.find((r) => r.kind === 'missing')!.reason, /not found/);
    assert.match(rows.find((r) => r.kind === 'empty')!.reason, /empty/);
  });

  test('one bad image among many under a generous --max-bad-fraction: the run trains, and skipped.tsv lists it once over two epochs', async () => {
    const root = path.join(tmp, 'one-bad');
    const lines: string[] = [];
    for (let i = 0; i < 12; i++) {
      await writeGoodPng(path.join(root, 'images', i % 2 ? 'cat' : 'dog', `${i}.png`), i);
      lines.push(`${i % 2 ? 'cat' : 'dog'}/${i}.png`);
    }
    // Header and end intact: only decoding it in the first epoch finds it.
    await writeCorruptPixelsPng(path.join(root, 'images', 'cat', 'scrambled.png'));
    lines.splice(5, 0, 'cat/scrambled.png');
    const list = await writeList(root, lines);
    const out = path.join(tmp, 'run-one-bad');
    const run = train(root, out, '--max-bad-fraction', '0.1', '--epochs', '2');
    assert.equal(run.status, 0, run.stderr);
    const summary = JSON.parse(run.stdout);
    assert.equal(summary.epochsCompleted, 2);
    // Scrambled compressed pixels fail inside libpng: "libpng read error" (sorted as truncated), but
    // with other images decoding at once libvips sometimes reports "Unknown error" (undecodable).
    const kind = Object.keys(summary.skipped.byKind)[0];
    assert.ok(kind === 'truncated' || kind === 'undecodable', JSON.stringify(summary.skipped));
    assert.deepEqual(summary.skipped, { file: path.join(out, SKIPPED_FILE), total: 1, byKind: { [kind!]: 1 } });
    assert.match(run.stderr, new RegExp(`epoch 1: skipped 1 unreadable image\\(s\\) \\(${kind} 1\\), each listed in .*skipped\\.tsv`));
    const rows = await readSkipped(out);
    assert.equal(rows.length, 1, JSON.stringify(rows));
    assert.deepEqual([rows[0]!.epoch, rows[0]!.line, rows[0]!.listFile, path.basename(rows[0]!.file)], [1, 6, list, 'scrambled.png']);
    assert.equal((await weightFiles(out)).length, 2);
  });

  test('unreadable images found only by the first epoch’s decode stop the run there, with a non-zero exit', async () => {
    const root = path.join(tmp, 'decode-bad');
    const lines: string[] = [];
    for (let i = 0; i < 8; i++) {
      const file = `${i % 2 ? 'cat' : 'dog'}/${i}.png`;
      await (i % 2 ? writeCorruptPixelsPng : writeGoodPng)(path.join(root, 'images', file), i);
      lines.push(file);
    }
    await writeList(root, lines);
    const out = path.join(tmp, 'run-decode-bad');
    const run = train(root, out, '--epochs', '3');
    assert.notEqual(run.status, 0, run.stderr);
    // truncated or undecodable: see the scrambled PNG above (libvips' "Unknown error" under concurrency).
    assert.match(run.stderr, /train split: \d+ of 8 entries unreadable \((truncated|undecodable) \d+(, (truncated|undecodable) \d+)?\) .*found in epoch 1; the run stops/);
    const rows = await readSkipped(out);
    assert.ok(rows.length >= 1 && rows.every((r) => r.epoch === 1 && (r.kind === 'truncated' || r.kind === 'undecodable')), JSON.stringify(rows));
    assert.deepEqual(await weightFiles(out), []);
  });
});

describe('list files', () => {
  test('`cat/../dog/2` and an absolute path are errors naming the list file and line, not reads of another class', async () => {
    const root = path.join(tmp, 'dotdot');
    await writeGoodPng(path.join(root, 'images', 'cat', '1.png'), 1);
    await writeGoodPng(path.join(root, 'images', 'dog', '2.png'), 2);
    const list = await writeList(root, ['cat/1.png', 'cat/../dog/2.png', 'dog/2.png', '/etc/passwd']);
    const out = path.join(tmp, 'run-dotdot');
    const run = train(root, out);
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /2 list entries leave the dataset folder or contain '\.\.'/);
    assert.ok(run.stderr.includes(`${list}:2: "cat/../dog/2.png" contains a '..' segment`), run.stderr);
    assert.ok(run.stderr.includes(`${list}:4: "/etc/passwd" is an absolute path`), run.stderr);
    assert.equal(existsSync(path.join(out, SKIPPED_FILE)), false);
  });

  test('a list that is not UTF-8 is an error naming the file and the byte offset of the first invalid byte', async () => {
    const root = path.join(tmp, 'latin1');
    await writeGoodPng(path.join(root, 'images', 'cat', '1.png'), 1);
    await writeGoodPng(path.join(root, 'images', 'café', '2.png'), 2);
    // "café" in Latin-1: 0xE9 after "cat/1.png\n" (10 bytes) and "caf", at byte 13, on line 2.
    const list = await writeList(root, Buffer.from('cat/1.png\ncaf\xe9/2.png\n', 'latin1'));
    const run = train(root, path.join(tmp, 'run-latin1'));
    assert.equal(run.status, 1, run.stderr);
    assert.ok(run.stderr.includes(`${list}: not valid UTF-8: invalid byte sequence at byte offset 13 (line 2: 0xE9 0x2F 0x32 0x2E)`), run.stderr);
  });
});
