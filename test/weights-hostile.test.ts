// Weight files crafted to hurt the loader: each is refused with a message naming the file.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

import { loadModel } from '../src/model/model.js';
import { scratchDir } from './helpers/scratch.js';

const tmp = scratchDir('clip-hostile-');

test('a torch.save view that repeats its storage (zero strides, huge size) is refused before any copy', (t) => {
  const file = path.join(tmp, 'repeating.pt');
  // 2 floats of storage seen as 10^12 × 2 elements: a contiguous copy would need 8 TB.
  const made = spawnSync('python3', ['-c', `import torch; torch.save({'w': torch.zeros(2).expand(10**12, 2)}, ${JSON.stringify(file)})`], { encoding: 'utf8' });
  if (made.status !== 0) return t.skip(`SKIPPED: python3 with torch is needed to write the file: ${made.stderr.trim().split('\n').pop()}`);
  return assert.rejects(loadModel(file), (err: unknown) => {
    assert.ok(err instanceof Error);
    assert.match(err.message, /repeating\.pt/);
    assert.match(err.message, /more elements than its storage/);
    return true;
  });
});
