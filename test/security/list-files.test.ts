// List and table files as untrusted input (issue #19, item 6): paths are normalised and may not
// leave the dataset (every layout), text must be UTF-8 (the first invalid byte is named), and
// skipped.tsv survives any file name and a resumed run without repeating a row.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { DatasetError, firstInvalidUtf8, normaliseListedPath } from '../../src/data/dataset.js';
import { loadDataset } from '../../src/data/load-dataset.js';
import { parseSkippedTsv, SkippedLog, type SkippedEntry } from '../../src/train/bad-data.js';
import { writeGoodPng } from '../helpers/bad-images.js';
import { scratchDir } from '../helpers/scratch.js';

const tmp = scratchDir('clip-list-files-');

async function write(file: string, data: string | Buffer): Promise<string> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, data);
  return file;
}

/** Rejects with a DatasetError whose message holds every one of `parts`. */
async function rejectsNaming(promise: Promise<unknown>, ...parts: string[]): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof DatasetError, String(err));
    for (const part of parts) assert.ok(err.message.includes(part), `${JSON.stringify(part)} not in:\n${err.message}`);
    return true;
  });
}

describe('list paths', () => {
  test('are normalised to relative POSIX paths; .., absolute and drive paths are refused', () => {
    const ok = (raw: string) => (normaliseListedPath(raw) as { path: string }).path;
    const error = (raw: string) => (normaliseListedPath(raw) as { error?: string }).error;
    assert.equal(ok('cat/1'), 'cat/1');
    assert.equal(ok('./cat//1'), 'cat/1');
    assert.equal(ok('cat\\sub\\1.png'), 'cat/sub/1.png');
    assert.equal(ok('cat/./1..png'), 'cat/1..png');
    assert.match(error('cat/../dog/2')!, /'\.\.' segment/);
    assert.match(error('..\\..\\etc\\passwd')!, /'\.\.' segment/);
    assert.match(error('cat/..')!, /'\.\.' segment/);
    assert.match(error('/etc/passwd')!, /absolute/);
    assert.match(error('\\\\server\\share\\x.png')!, /absolute/);
    assert.match(error('C:/images/x.png')!, /absolute/);
    assert.match(error('./')!, /empty/);
    assert.match(error('cat/a\0b')!, /NUL/);
  });

  test('blog layout: a .. entry of either split list is an error naming file and line; nothing is read from dog/ under cat', async () => {
    const root = path.join(tmp, 'blog');
    await writeGoodPng(path.join(root, 'images', 'cat', '1.png'));
    await writeGoodPng(path.join(root, 'images', 'dog', '2.png'));
    const train = await write(path.join(root, 'meta', 'train.txt'), 'cat/1\n');
    const testList = await write(path.join(root, 'meta', 'test.txt'), 'dog/2\n# a comment\ncat/../dog/2\n');
    await rejectsNaming(loadDataset(root, { ext: 'png' }), `${testList}:3: "cat/../dog/2" contains a '..' segment`, '1 list entry leaves');
    await write(testList, 'dog/2\n');
    await write(train, '\uFEFF./cat//1\r\ncat\\1\r\n');
    const d = await loadDataset(root, { ext: 'png' });
    assert.deepEqual(d.samples.map((s) => [s.label, path.relative(root, s.image), s.source.line]), [['cat', path.join('images', 'cat', '1.png'), 1]]);
    assert.deepEqual(d.problems.map((p) => [p.line, p.kind]), [[2, 'duplicate']]);
  });

  test('CSV, TSV and JSONL: escaping paths are errors naming file and line, in any split; absolute paths inside the folder are kept', async () => {
    const dir = path.join(tmp, 'tables');
    await writeGoodPng(path.join(dir, 'img', 'a.png'));
    const csv = await write(path.join(dir, 'list.csv'), 'image,label,split\nimg/a.png,cat,train\n../outside.png,dog,test\nimg/../../x.png,dog,train\n');
    await rejectsNaming(loadDataset(csv), `${csv}:3: "../outside.png" contains a '..' segment`, `${csv}:4: "img/../../x.png"`, '2 list entries leave');
    const tsv = await write(path.join(dir, 'list.tsv'), 'image\tlabel\nimg\\..\\..\\x.png\tcat\n');
    await rejectsNaming(loadDataset(tsv), `${tsv}:2: "img\\\\..\\\\..\\\\x.png" contains a '..' segment`);
    const jsonl = await write(path.join(dir, 'list.jsonl'), `{"path": "/etc/passwd", "label": "x"}\n{"path": ${JSON.stringify(path.join(dir, 'img', 'a.png'))}, "label": "y"}\n`);
    await rejectsNaming(loadDataset(jsonl), `${jsonl}:1: "/etc/passwd" is an absolute path outside the table's folder`);
    await write(jsonl, `{"path": ${JSON.stringify(path.join(dir, 'img', 'a.png'))}, "label": "y"}\n{"path": "./img//a.png", "label": "z"}\n`);
    const d = await loadDataset(jsonl);
    assert.deepEqual(d.samples.map((s) => [s.image, s.label]), [[path.join(dir, 'img', 'a.png'), 'y'], [path.join(dir, 'img', 'a.png'), 'z']]);
  });
});

describe('UTF-8', () => {
  test('firstInvalidUtf8 agrees with a fatal TextDecoder and names the first bad byte', () => {
    const at = (...bytes: number[]) => firstInvalidUtf8(Uint8Array.from(bytes));
    assert.equal(firstInvalidUtf8(new TextEncoder().encode('café 😀 ∑')), -1);
    assert.equal(at(0x61, 0xc0, 0x80), 1); // overlong
    assert.equal(at(0x61, 0x62, 0xe0, 0x80, 0x80), 2); // overlong
    assert.equal(at(0xed, 0xa0, 0x80), 0); // surrogate
    assert.equal(at(0xf4, 0x90, 0x80, 0x80), 0); // above U+10FFFF
    assert.equal(at(0x61, 0xe2, 0x82), 1); // cut short
    assert.equal(at(0x80), 0);
    assert.equal(at(0xf5, 0x80, 0x80, 0x80), 0);
    assert.equal(at(0x63, 0x61, 0x66, 0xe9, 0x2f), 3); // Latin-1 é
    // Random bytes, biased to UTF-8's lead and continuation bytes: the scan and the decoder agree.
    let seed = 1;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16;
    const pool = [0x41, 0x80, 0x9f, 0xa0, 0xbf, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xc0, 0x0a];
    const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
    for (let n = 0; n < 3000; n++) {
      const bytes = Uint8Array.from({ length: 1 + (next() % 8) }, () => pool[next() % pool.length]!);
      const offset = firstInvalidUtf8(bytes);
      let valid = true;
      try {
        decoder.decode(bytes);
      } catch {
        valid = false;
      }
      assert.equal(offset === -1, valid, `${[...bytes]}`);
      if (offset >= 0) assert.doesNotThrow(() => decoder.decode(bytes.subarray(0, offset)), `${[...bytes]}`);
    }
  });

  test('a Latin-1 CSV and a UTF-16 list are errors naming the file and byte offset; a BOM is fine', async () => {
    const dir = path.join(tmp, 'encodings');
    await writeGoodPng(path.join(dir, 'a.png'));
    const csv = await write(path.join(dir, 'latin1.csv'), Buffer.from('image,label\na.png,caf\xe9\n', 'latin1'));
    await rejectsNaming(loadDataset(csv), `${csv}: not valid UTF-8: invalid byte sequence at byte offset 21 (line 2: 0xE9 0x0A)`);
    const withBom = await write(path.join(dir, 'bom.csv'), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('image,label\na.png,café\n')]));
    assert.deepEqual((await loadDataset(withBom)).classes, ['café']);
    const blog = path.join(dir, 'blog');
    const list = await write(path.join(blog, 'meta', 'train.txt'), Buffer.from('\uFEFFcat/1\n', 'utf16le'));
    await rejectsNaming(loadDataset(blog), `${list}: not valid UTF-8: invalid byte sequence at byte offset 0 (line 1: 0xFF 0xFE`);
  });

  test('folder layout: a file or folder name that is not UTF-8 is an error, not a garbled label', async () => {
    const root = path.join(tmp, 'folder-names');
    await writeGoodPng(path.join(root, 'cat', '1.png'));
    await fs.mkdir(Buffer.from(path.join(root, 'caf\xe9'), 'latin1'));
    await rejectsNaming(loadDataset(root), `${root}: file names that are not valid UTF-8`, 'caf\uFFFD');
  });
});

describe('skipped.tsv', () => {
  const entry = (over: Partial<SkippedEntry>): SkippedEntry => ({
    split: 'train',
    epoch: 0,
    file: '/d/images/cat/1.jpg',
    listFile: '/d/meta/train.txt',
    line: 1,
    kind: 'missing',
    reason: 'image file not found',
    ...over,
  });

  test('escapes tabs, newlines and backslashes; a row per entry however often it is found; a resumed run appends, a fresh one starts anew', async () => {
    const file = path.join(tmp, 'skipped.tsv');
    const log = await SkippedLog.open(file, { resume: false });
    const odd = entry({ file: '/d/images/cat/a\tb\\c\nd.jpg', line: 2, reason: 'one\ttwo\r\nthree' });
    assert.equal(log.add([entry({}), odd, entry({ epoch: 3 })]).length, 2);
    assert.equal(log.add([entry({ epoch: 2 }), odd]).length, 0);
    assert.equal(log.add([entry({ file: '', line: 7, kind: 'malformed', reason: 'expected "class_name/image_stem"' })]).length, 1);
    const text = await fs.readFile(file, 'utf8');
    assert.equal(text.split('\n').length, 5, text); // header, three rows, and the final newline
    assert.deepEqual(parseSkippedTsv(text), [entry({}), odd, entry({ file: '', line: 7, kind: 'malformed', reason: 'expected "class_name/image_stem"' })]);

    const resumed = await SkippedLog.open(file, { resume: true });
    assert.deepEqual([resumed.total, resumed.byKind()], [3, { missing: 2, malformed: 1 }]);
    assert.equal(resumed.add([entry({ epoch: 5 }), entry({ line: 9, kind: 'empty' })]).length, 1);
    assert.equal(parseSkippedTsv(await fs.readFile(file, 'utf8')).length, 4);

    const fresh = await SkippedLog.open(file, { resume: false });
    assert.equal(fresh.total, 0);
    assert.deepEqual(parseSkippedTsv(await fs.readFile(file, 'utf8')), []);
  });
});
