import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import sharp from 'sharp';
import { parseDelimited } from '../src/data/csv.js';
import { DatasetError, formatProblem, type Dataset } from '../src/data/dataset.js';
import { detectDatasetFormat, loadDataset } from '../src/data/load-dataset.js';
import { scratchDir } from './helpers/scratch.js';

const tmp = scratchDir('clip-datasets-');

/** A real (tiny) PNG, so the files are what a user would have. */
async function writeImage(file: string, shade = 128): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await sharp({ create: { width: 8, height: 6, channels: 3, background: { r: shade, g: 0, b: 255 - shade } } }).png().toFile(file);
}

async function writeText(file: string, text: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, text);
}

const problemLines = (d: Dataset) => d.problems.map(formatProblem);

describe('blog layout (meta/train.txt, meta/test.txt)', () => {
  let root: string;
  before(async () => {
    root = path.join(tmp, 'blog');
    for (const stem of ['apple_pie/1', 'apple_pie/2', 'baby_back_ribs/3', 'caesar_salad/4', 'caesar_salad/5']) {
      await writeImage(path.join(root, 'images', `${stem}.png`));
    }
    await writeText(path.join(root, 'meta', 'train.txt'), 'apple_pie/1\nbaby_back_ribs/3\n\napple_pie/1\n./apple_pie//1\nnoslash\ncaesar_salad/4\n');
    await writeText(path.join(root, 'meta', 'test.txt'), 'apple_pie/2\ncaesar_salad/5\ncaesar_salad/4\n');
  });

  test('is detected, reads labels before the slash and keeps raw names', async () => {
    assert.equal(await detectDatasetFormat(root), 'blog');
    const train = await loadDataset(root, { ext: 'png' });
    assert.equal(train.kind, 'labels');
    assert.equal(train.format, 'blog');
    assert.deepEqual(train.classes, ['apple_pie', 'baby_back_ribs', 'caesar_salad']);
    assert.deepEqual(
      train.samples.map((s) => [path.relative(root, s.image), s.label, s.labelIndex, s.source.line]),
      [
        [path.join('images', 'apple_pie', '1.png'), 'apple_pie', 0, 1],
        [path.join('images', 'baby_back_ribs', '3.png'), 'baby_back_ribs', 1, 2],
        [path.join('images', 'caesar_salad', '4.png'), 'caesar_salad', 2, 7],
      ],
    );
  });

  test('reports duplicates (also as normalised paths), malformed lines and train/test overlap by file:line', async () => {
    const train = await loadDataset(root, { ext: 'png' });
    const lines = problemLines(train);
    const trainTxt = path.join(root, 'meta', 'train.txt');
    assert.ok(lines.some((l) => l.startsWith(`${trainTxt}:4: duplicate`)), lines.join('\n'));
    assert.ok(lines.some((l) => l.startsWith(`${trainTxt}:5: duplicate entry "./apple_pie//1" (first on line 1)`)), lines.join('\n'));
    assert.ok(lines.some((l) => l.startsWith(`${trainTxt}:6:`) && l.includes('class_name/image_stem')), lines.join('\n'));
    assert.ok(lines.some((l) => l.startsWith(`${trainTxt}:7:`) && l.includes('overlap')), lines.join('\n'));
    assert.equal(train.problems.length, 4);
  });

  test('test split uses the same class indices as train', async () => {
    const test = await loadDataset(root, { ext: 'png', split: 'test' });
    assert.deepEqual(test.classes, ['apple_pie', 'baby_back_ribs', 'caesar_salad']);
    assert.deepEqual(test.samples.map((s) => s.labelIndex), [0, 2, 2]);
  });

  test('strict mode fails with every problem named', async () => {
    await assert.rejects(loadDataset(root, { ext: 'png', strict: true }), (err: unknown) => {
      assert.ok(err instanceof DatasetError);
      assert.match(err.message, /train\.txt:4: duplicate/);
      assert.match(err.message, /train\.txt:5: duplicate/);
      return true;
    });
  });

  test('image folder and extension are configurable; an empty split is an error naming the file', async () => {
    const other = path.join(tmp, 'blog2');
    await writeImage(path.join(other, 'pics', 'cat', 'a.png'));
    await writeText(path.join(other, 'meta', 'train.txt'), 'cat/a.png\n');
    await writeText(path.join(other, 'meta', 'test.txt'), '\n\n');
    const train = await loadDataset(other, { imagesDir: 'pics', ext: '' });
    assert.equal(train.samples[0]!.image, path.join(other, 'pics', 'cat', 'a.png'));
    await assert.rejects(loadDataset(other, { split: 'test' }), /test\.txt.*empty split/s);
  });
});

describe('folder per class', () => {
  let root: string;
  before(async () => {
    root = path.join(tmp, 'folders');
    for (let i = 0; i < 10; i++) await writeImage(path.join(root, 'cat', `c${i}.png`), i * 20);
    for (let i = 0; i < 5; i++) await writeImage(path.join(root, 'dog', `d${i}.png`), i * 40);
    await writeText(path.join(root, 'dog', 'notes.txt'), 'not an image');
    await writeText(path.join(root, 'dog', '.DS_Store'), 'hidden files are ignored silently');
  });

  test('seeded split is disjoint, complete, stratified and repeatable', async () => {
    assert.equal(await detectDatasetFormat(root), 'folder');
    const train = await loadDataset(root, { seed: 7, testFraction: 0.2 });
    const test = await loadDataset(root, { seed: 7, testFraction: 0.2, split: 'test' });
    assert.deepEqual(train.classes, ['cat', 'dog']);
    const trainSet = new Set(train.samples.map((s) => s.image));
    const testSet = new Set(test.samples.map((s) => s.image));
    assert.equal(trainSet.size + testSet.size, 15);
    for (const image of testSet) assert.ok(!trainSet.has(image), `${image} in both splits`);
    assert.equal(test.samples.filter((s) => s.label === 'cat').length, 2);
    assert.equal(test.samples.filter((s) => s.label === 'dog').length, 1);
    const again = await loadDataset(root, { seed: 7, testFraction: 0.2, split: 'test' });
    assert.deepEqual(again.samples, test.samples);
    const seeds = await Promise.all([1, 2, 3, 4, 5].map((seed) => loadDataset(root, { seed, split: 'test' })));
    assert.ok(seeds.some((d) => JSON.stringify(d.samples) !== JSON.stringify(test.samples)), 'the seed should change the split');
  });

  test('a non-image file is reported and ignored', async () => {
    const train = await loadDataset(root);
    assert.deepEqual(problemLines(train), [`${path.join(root, 'dog', 'notes.txt')}: not an image (.jpg .jpeg .png .webp .gif .tif .tiff .avif); ignored`]);
  });

  test('train/ and test/ folders give the split', async () => {
    const split = path.join(tmp, 'split-folders');
    await writeImage(path.join(split, 'train', 'ant', '1.png'));
    await writeImage(path.join(split, 'train', 'bee', '2.png'));
    await writeImage(path.join(split, 'test', 'bee', '3.png'));
    const train = await loadDataset(split);
    const test = await loadDataset(split, { split: 'test' });
    assert.deepEqual(train.samples.map((s) => s.label), ['ant', 'bee']);
    assert.deepEqual(test.samples.map((s) => [s.label, s.labelIndex]), [['bee', 1]]);
    assert.deepEqual(test.classes, ['ant', 'bee']);
  });
});

describe('CSV, TSV and JSONL tables', () => {
  test('CSV parser handles quotes, doubled quotes, newlines in fields, CRLF and BOM', () => {
    const parsed = parseDelimited('\uFEFFimage,caption\r\n"a.png","a cat, ""sitting""\non two lines"\r\nb.png,plain\r\n\r\n', ',');
    assert.deepEqual(parsed.records, [
      { fields: ['image', 'caption'], line: 1 },
      { fields: ['a.png', 'a cat, "sitting"\non two lines'], line: 2 },
      { fields: ['b.png', 'plain'], line: 4 },
    ]);
    assert.equal(parseDelimited('a,b\n"open,1\n', ',').unterminatedQuoteLine, 2);
  });

  test('CSV with captions: paths relative to the file, problems by line', async () => {
    const dir = path.join(tmp, 'csv');
    await writeImage(path.join(dir, 'img', 'a.png'));
    await writeImage(path.join(dir, 'img', 'b.png'));
    const file = path.join(dir, 'captions.csv');
    await writeText(
      file,
      'file,text\nimg/a.png,"a cat, ""sitting"""\nimg/a.png,a second caption for the same image\n,nope\nimg/b.png,\nimg/a.png,"a cat, ""sitting"""\nimg/b.png,"multi\nline"\n',
    );
    assert.equal(await detectDatasetFormat(file), 'csv');
    const d = await loadDataset(file);
    assert.equal(d.kind, 'captions');
    assert.deepEqual(d.classes, []);
    assert.deepEqual(
      d.samples.map((s) => [path.relative(dir, s.image), s.caption, s.source.line]),
      [
        [path.join('img', 'a.png'), 'a cat, "sitting"', 2],
        [path.join('img', 'a.png'), 'a second caption for the same image', 3],
        [path.join('img', 'b.png'), 'multi\nline', 7],
      ],
    );
    const lines = problemLines(d);
    assert.equal(lines.length, 3, lines.join('\n'));
    assert.match(lines[0]!, /captions\.csv:4: empty or missing "file"/);
    assert.match(lines[1]!, /captions\.csv:5: empty or missing "text"/);
    assert.match(lines[2]!, /captions\.csv:6: duplicate/);
  });

  test('TSV with labels and custom column names', async () => {
    const dir = path.join(tmp, 'tsv');
    await writeImage(path.join(dir, 'x.png'));
    await writeImage(path.join(dir, 'y.png'));
    const file = path.join(dir, 'list.tsv');
    await writeText(file, 'img\tkind\tnote\nx.png\tzebra\tstripes, many\ny.png\taardvark\t"quoted\ttab"\n');
    const d = await loadDataset(file, { columns: { image: 'img', label: 'kind' } });
    assert.equal(d.kind, 'labels');
    assert.deepEqual(d.classes, ['aardvark', 'zebra']);
    assert.deepEqual(d.samples.map((s) => [s.label, s.labelIndex]), [['zebra', 1], ['aardvark', 0]]);
    await assert.rejects(loadDataset(file), /no image column/);
    await assert.rejects(loadDataset(file, { columns: { image: 'img', label: 'missing' } }), /no column "missing"/);
  });

  test('a split column selects train or test rows; classes span both splits', async () => {
    const dir = path.join(tmp, 'split-column');
    for (const name of ['a', 'b', 'c']) await writeImage(path.join(dir, `${name}.png`));
    const file = path.join(dir, 'list.csv');
    await writeText(file, 'image,label,split\na.png,cat,train\nb.png,dog,test\nc.png,cat,Test\nc.png,bird,valid\n');
    const train = await loadDataset(file, { split: 'train' });
    const test = await loadDataset(file, { split: 'test' });
    assert.deepEqual(train.samples.map((s) => path.basename(s.image)), ['a.png']);
    assert.deepEqual(test.samples.map((s) => path.basename(s.image)), ['b.png', 'c.png']);
    assert.equal(test.split, 'test');
    assert.deepEqual(train.classes, ['cat', 'dog']);
    assert.deepEqual(test.classes, train.classes);
    assert.deepEqual(test.samples.map((s) => s.labelIndex), [1, 0]);
    assert.match(problemLines(train)[0]!, /list\.csv:5: "split" must be train or test, got "valid"/);
  });

  test('JSONL with labels; bad lines reported, strict fails', async () => {
    const dir = path.join(tmp, 'jsonl');
    await writeImage(path.join(dir, 'p', '1.png'));
    const file = path.join(dir, 'data.jsonl');
    await writeText(file, '{"path": "p/1.png", "class": "t-shirt_top"}\n{not json\n\n["array"]\n{"path": "p/1.png", "class": 3}\n');
    const d = await loadDataset(file);
    assert.deepEqual(d.samples.map((s) => [s.label, s.source.line]), [['t-shirt_top', 1], ['3', 5]]);
    const lines = problemLines(d);
    assert.match(lines[0]!, /data\.jsonl:2: invalid JSON/);
    assert.match(lines[1]!, /data\.jsonl:4: expected a JSON object/);
    await assert.rejects(loadDataset(file, { strict: true }), /data\.jsonl:2: invalid JSON/);
  });

  test('an unknown file type and a missing path are clear errors', async () => {
    const file = path.join(tmp, 'data.xlsx');
    await writeText(file, 'x');
    await assert.rejects(loadDataset(file), /unknown dataset file type "\.xlsx"/);
    await assert.rejects(loadDataset(path.join(tmp, 'nowhere')), /dataset not found/);
  });
});
