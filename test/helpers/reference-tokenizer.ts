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

/**
 * open_clip's package folder, found by the `python3` on PATH without importing it: the reference may run
 * under another interpreter (Debian's /usr/bin/python3, the fixtures' Unicode) that has `regex` but not
 * open_clip, and loads its tokenizer.py from there.
 */
function openClipDir(): string | undefined {
  const probe = "import importlib.util as u; s = u.find_spec('open_clip'); print(list(s.submodule_search_locations)[0] if s else '')";
  const run = spawnSync('python3', ['-c', probe], { encoding: 'utf8' });
  return run.status === 0 && run.stdout.trim() ? run.stdout.trim() : undefined;
}

/**
 * openai/CLIP's tokenizer, as open_clip's SimpleTokenizer set to openai/CLIP's special tokens and
 * whitespace rule (test/python/open_clip_tokenizer.py, ftfy stubbed), on each text, in one process.
 */
export function runReferenceTokenizer(python: string, vocabPath: string, texts: string[]): ReferenceOutput[] {
  const dir = openClipDir();
  const script = path.join(repoRoot, 'test', 'python', 'open_clip_tokenizer.py');
  const run = spawnSync(python, [script, vocabPath, ...(dir ? ['--open-clip-dir', dir] : [])], {
    input: texts.map((text) => JSON.stringify(text)).join('\n') + '\n',
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  assert.equal(run.status, 0, `reference failed (it needs open_clip_torch: pip install open_clip_torch): ${run.stderr}`);
  const outputs = run.stdout.trim().split('\n').map((line) => JSON.parse(line) as ReferenceOutput);
  assert.equal(outputs.length, texts.length);
  return outputs;
}
