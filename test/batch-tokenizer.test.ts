// Prompts of a batch → token rows (src/train/batch-tokenizer.ts): each row the tokenizer's own, and
// the cache of distinct texts bounded, so a caption dataset cannot grow it without end.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { Batch } from '../src/data/loader.js';
import { tokenizerFromFile, type ClipTokenizer } from '../src/text/tokenizer.js';
import { BatchTokenizer } from '../src/train/batch-tokenizer.js';
import { fixture } from './helpers/fixtures.js';

const captions = (texts: string[]): Batch =>
  ({
    index: 0,
    images: { data: new Uint8Array(0), shape: [texts.length, 0, 0, 3] },
    samples: texts.map((caption) => ({ image: `${caption}.jpg`, caption, source: { file: 'list.jsonl', line: 1 } })),
    labelIndices: undefined,
    cursor: texts.length,
  }) as Batch;

test('rows are the tokenizer’s; past maxCached distinct texts, new ones are tokenized each time instead of kept', async () => {
  const tokenizer = await tokenizerFromFile(fixture('bpe_simple_vocab_16e6.txt.gz'));
  let calls = 0;
  const counting: ClipTokenizer = Object.assign(Object.create(Object.getPrototypeOf(tokenizer)), tokenizer, {
    tokenize: (...args: Parameters<ClipTokenizer['tokenize']>) => (calls++, tokenizer.tokenize(...args)),
  });
  const batches = new BatchTokenizer(counting, 'blog', 77, 2);
  const texts = ['a red fox', 'a blue jay', 'a green frog'];
  const first = batches.tokens(captions(texts), 0);
  assert.deepEqual(first.shape, [3, 77]);
  assert.deepEqual(first.data, tokenizer.tokenize(texts, { contextLength: 77, truncate: true }).data);
  assert.equal(calls, 3);
  batches.tokens(captions(texts), 1);
  assert.equal(calls, 4, 'the first two came from the cache, the third was tokenized again');
});
