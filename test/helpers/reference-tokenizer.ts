import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import path from 'node:path';

import { repoRoot } from './fixtures.js';

export interface ReferenceOutput {
  ids: number[] | null;
  tokens77: number[];
  decoded: string;
  newer_unicode: boolean;
}

/** openai/CLIP's tokenizer (test/python/clip_tokenizer_ref.py, ftfy stubbed) on each text, in one process. */
export function runReferenceTokenizer(python: string, vocabPath: string, texts: string[]): ReferenceOutput[] {
  const run = spawnSync(python, [path.join(repoRoot, 'test', 'python', 'clip_tokenizer_ref.py'), vocabPath], {
    input: texts.map((text) => JSON.stringify(text)).join('\n') + '\n',
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  assert.equal(run.status, 0, `reference failed: ${run.stderr}`);
  const outputs = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as ReferenceOutput);
  assert.equal(outputs.length, texts.length);
  return outputs;
}
