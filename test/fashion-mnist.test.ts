import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { loadDataset } from '../src/data/load-dataset.js';
import { DEBIAN_FASHION_MNIST_DIR, exportFashionMnist, FASHION_MNIST_CLASSES, readIdx } from '../src/data/fashion-mnist.js';
import { createLoader } from '../src/data/loader.js';
import { scratchDir } from './helpers/scratch.js';

const packagePresent = existsSync(path.join(DEBIAN_FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'));
const SKIP_REASON = `Debian package dataset-fashion-mnist is not installed (${DEBIAN_FASHION_MNIST_DIR} missing): apt-get install dataset-fashion-mnist`;

const tmp = scratchDir('clip-fmnist-');

describe('idx reader', () => {
  test('reads gzipped idx and rejects a truncated one', async () => {
    const header = Buffer.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3]);
    const file = path.join(tmp, 'tiny-idx3-ubyte.gz');
    await fs.writeFile(file, gzipSync(Buffer.concat([header, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])])));
    const idx = await readIdx(file);
    assert.deepEqual(idx.dims, [2, 2, 3]);
    assert.deepEqual(Array.from(idx.data), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    await fs.writeFile(file, gzipSync(Buffer.concat([header, Buffer.from([1, 2, 3])])));
    await assert.rejects(readIdx(file), /truncated/);
  });

  test('a missing source says what is missing', async () => {
    await assert.rejects(exportFashionMnist({ out: path.join(tmp, 'none'), source: path.join(tmp, 'nowhere') }), /Fashion-MNIST not found.*train-images-idx3-ubyte\.gz/);
  });
});

describe('Fashion-MNIST end to end', () => {
  test('a seeded, balanced subset in the blog layout loads and batches', async (t) => {
    if (!packagePresent) {
      t.skip(SKIP_REASON);
      return;
    }
    const out = path.join(tmp, 'fm');
    const result = await exportFashionMnist({ out, trainPerClass: 4, testPerClass: 2, seed: 0 });
    assert.deepEqual([result.train, result.test], [40, 20]);

    const trainLines = (await fs.readFile(path.join(out, 'meta', 'train.txt'), 'utf8')).trim().split('\n');
    for (const name of FASHION_MNIST_CLASSES) assert.equal(trainLines.filter((l) => l.startsWith(`${name}/`)).length, 4, name);
    const again = await exportFashionMnist({ out: path.join(tmp, 'fm-again'), trainPerClass: 4, testPerClass: 2, seed: 0 });
    assert.equal(again.train, 40);
    assert.deepEqual((await fs.readFile(path.join(tmp, 'fm-again', 'meta', 'train.txt'), 'utf8')).trim().split('\n'), trainLines);
    await exportFashionMnist({ out: path.join(tmp, 'fm-seed1'), trainPerClass: 4, testPerClass: 2, seed: 1 });
    assert.notDeepEqual((await fs.readFile(path.join(tmp, 'fm-seed1', 'meta', 'train.txt'), 'utf8')).trim().split('\n'), trainLines);

    // The PNG holds exactly the idx pixels of the image its stem names.
    const [label, stem] = trainLines[0]!.split('/') as [string, string];
    const index = Number(stem.replace('train_', ''));
    const idx = await readIdx(path.join(DEBIAN_FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'));
    const labels = await readIdx(path.join(DEBIAN_FASHION_MNIST_DIR, 'train-labels-idx1-ubyte.gz'));
    assert.equal(FASHION_MNIST_CLASSES[labels.data[index]!], label);
    const png = await sharp(path.join(out, 'images', label, `${stem}.png`)).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([png.info.width, png.info.height, png.info.channels], [28, 28, 1]);
    assert.equal((await sharp(path.join(out, 'images', label, `${stem}.png`)).metadata()).channels, 1, 'stored as greyscale');
    assert.deepEqual(new Uint8Array(png.data), idx.data.subarray(index * 784, (index + 1) * 784));

    const train = await loadDataset(out, { ext: 'png' });
    const test = await loadDataset(out, { ext: 'png', split: 'test' });
    assert.equal(train.format, 'blog');
    assert.deepEqual(train.classes, [...FASHION_MNIST_CLASSES].sort());
    assert.deepEqual(train.problems, []);
    assert.equal(test.samples.length, 20);
    const loader = createLoader(train, { batchSize: 16, resolution: 32, seed: 0, cacheDir: path.join(tmp, 'cache') });
    const batches = [];
    for await (const batch of loader) batches.push(batch);
    assert.deepEqual(batches.map((b) => b.images.shape[0]), [16, 16, 8]);
    assert.equal(loader.stats().skipped, 0);
    assert.ok(batches.every((b) => b.labelIndices!.every((i) => i >= 0 && i < 10)));
  });
});
