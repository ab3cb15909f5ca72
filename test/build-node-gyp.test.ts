import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { repoRoot } from './helpers/fixtures.js';

// The second build path compiles the whole addon again (minutes on 2 cores), so it runs where
// CLIP_NATIVE_TEST_GYP=1 asks for it: .ci/run sets it.
const enabled = process.env.CLIP_NATIVE_TEST_GYP === '1';

test('node-gyp builds the same addon from binding.gyp, against the same LibTorch', { timeout: 30 * 60_000 }, (t) => {
  if (!enabled) {
    t.skip('SKIPPED: set CLIP_NATIVE_TEST_GYP=1 to build the addon with node-gyp (a full second compile; .ci/run does)');
    return;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clip-native-gyp-'));
  try {
    for (const entry of ['native', 'scripts', 'binding.gyp', 'package.json', 'dist']) {
      cpSync(path.join(repoRoot, entry), path.join(dir, entry), { recursive: true });
    }
    symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
    const log = execFileSync(process.execPath, ['scripts/build-native.mjs'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, CLIP_NATIVE_BUILD: 'node-gyp' },
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
    });
    assert.match(log, /building with node-gyp \(CLIP_NATIVE_BUILD\)/);
    const addon = path.join(dir, 'build', 'Release', 'clip_native.node');
    const env = { ...process.env, CLIP_NATIVE_ADDON: addon };
    const report = JSON.parse(execFileSync(process.execPath, [path.join(dir, 'dist', 'src', 'cli', 'main.js'), 'doctor', '--json'], { encoding: 'utf8', env }));
    assert.equal(report.addon.path, addon);
    assert.equal(report.addon.buildPath, 'node-gyp');
    const main = JSON.parse(execFileSync(process.execPath, [path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'), 'doctor', '--json'], { encoding: 'utf8' }));
    assert.equal(report.libtorch.version, main.libtorch.version);
    assert.equal(report.libtorch.path, main.libtorch.path);
    // The boundary tests pass against the node-gyp build too.
    execFileSync(process.execPath, ['--test', path.join(repoRoot, 'dist', 'test', 'native-boundary.test.js')], { env, stdio: 'pipe' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
