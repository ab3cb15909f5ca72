// src/experiments.ts is the one declaration of CLIP_NATIVE_EXPERIMENTS: the names the native sources
// read are exactly the declared ones, and an unknown name is refused. What each path computes is
// tested in experiments.test.ts (CPU) and cuda.test.ts.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { activeExperiments, EXPERIMENTS } from '../src/experiments.js';
import { createNativeModel } from '../src/native.js';
import { withExperiments } from './helpers/experiments.js';
import { repoRoot } from './helpers/fixtures.js';

function nativeSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return nativeSources(full);
    return /\.(cc|h|cu|cuh)$/.test(entry.name) ? [full] : [];
  });
}

/** Names read by experiment_enabled("…") and by CudaDefault's two names ("on", "off"), in any native source. */
function namesReadNatively(): Set<string> {
  const names = new Set<string>();
  const single = /experiment_enabled\("([^"]+)"\)/g;
  // CudaDefault members: `CudaDefault fold{"on", "off"}` or, in a constructor's list, `fused_("on", "off")`.
  const pair = /(?:CudaDefault\s+\w+\s*\{|\b\w+_\()\s*"([^"]+)",\s*"([^"]+)"\s*[})]/g;
  for (const file of nativeSources(path.join(repoRoot, 'native'))) {
    if (file.endsWith(path.join('common', 'experiments.h'))) continue;
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(single)) names.add(m[1]!);
    for (const m of text.matchAll(pair)) names.add(m[1]!).add(m[2]!);
  }
  return names;
}

test('the native sources read exactly the declared experiments: none undeclared, none dead', () => {
  const read = [...namesReadNatively()].sort();
  const declared = EXPERIMENTS.map((e) => e.name).sort();
  assert.ok(read.includes('fused-mlp') && read.includes('portable-crc'), `the scan found too little: ${read.join(', ')}`);
  assert.deepEqual(read, declared);
});

test('each declared experiment says what it switches, where it is the default, and what keeps it', () => {
  assert.equal(new Set(EXPERIMENTS.map((e) => e.name)).size, EXPERIMENTS.length, 'a name declared twice');
  for (const e of EXPERIMENTS) {
    assert.match(e.name, /^[a-z0-9]+(-[a-z0-9]+)*$/, e.name);
    assert.ok(['cuda', 'cpu', 'none'].includes(e.defaultOn), `${e.name}: defaultOn ${e.defaultOn}`);
    assert.ok(e.switches.length > 10, `${e.name}: what it switches`);
    assert.match(e.kept, /test\/[\w-]+\.test\.ts|bench\//, `${e.name}: the test or measurement that keeps it`);
  }
});

test('the measured dead ends are gone', () => {
  for (const name of ['dense-qkv', 'cudnn-benchmark', 'half-layernorm', 'quick-gelu-kernel']) {
    assert.throws(() => activeExperiments(name), new RegExp(`"${name}", which is no experiment`));
  }
});

test('activeExperiments: the listed ones in order; unknown names refused with the known ones listed', () => {
  assert.deepEqual(activeExperiments(undefined), []);
  assert.deepEqual(activeExperiments(''), []);
  assert.deepEqual(activeExperiments('full-text-context,,fused-mlp').map((e) => e.name), ['full-text-context', 'fused-mlp']);
  assert.throws(() => activeExperiments('fused-mlp,nope,also-nope'), /names "nope", "also-nope", which are no experiments; the known ones are fused-mlp, reference-mlp, /);
  // The native side compares the items as written: a padded name would switch nothing there.
  assert.throws(() => activeExperiments('fused-mlp, reference-mlp'), /" reference-mlp", which is no experiment/);
});

test('a name set after the addon loaded is checked when a model is built', async () => {
  await assert.rejects(
    withExperiments('fused-mpl', async () => createNativeModel('{}', { seed: 0, device: 'cpu', memoryFormat: 'contiguous' })),
    /CLIP_NATIVE_EXPERIMENTS names "fused-mpl", which is no experiment/,
  );
});
