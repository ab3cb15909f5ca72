#!/usr/bin/env node
// Write a seeded, class-balanced Fashion-MNIST subset in the blog's layout (images/<class>/<stem>.png,
// meta/train.txt, meta/test.txt) from Debian's dataset-fashion-mnist package.
// Needs the TypeScript build: npx tsc -p tsconfig.json
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    'train-per-class': { type: 'string', default: '100' },
    'test-per-class': { type: 'string', default: '20' },
    seed: { type: 'string', default: '0' },
    ext: { type: 'string', default: 'png' },
    source: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
const usage = 'usage: node scripts/fashion-mnist.mjs --out <dir> [--train-per-class 100] [--test-per-class 20] [--seed 0] [--ext png|jpg] [--source <dir with idx files>]';
if (values.help) {
  console.log(usage);
  process.exit(0);
}
if (!values.out || !['png', 'jpg'].includes(values.ext)) {
  console.error(usage);
  process.exit(2);
}
const integer = (name) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} must be a non-negative integer`);
    process.exit(2);
  }
  return n;
};

let exportFashionMnist;
try {
  ({ exportFashionMnist } = await import('../dist/src/data/fashion-mnist.js'));
} catch (err) {
  console.error(`cannot load dist/src/data/fashion-mnist.js (run: npx tsc -p tsconfig.json): ${err.message}`);
  process.exit(1);
}
try {
  const result = await exportFashionMnist({
    out: values.out,
    trainPerClass: integer('train-per-class'),
    testPerClass: integer('test-per-class'),
    seed: integer('seed'),
    ext: values.ext,
    source: values.source,
  });
  console.log(`wrote ${result.train} train and ${result.test} test images of ${result.classes.length} classes to ${result.out}`);
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
