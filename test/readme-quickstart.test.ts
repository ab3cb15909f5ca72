// The README's quick start, run as a newcomer runs it: in a fresh clone of the checkout after `npm ci`,
// each `npx clip-native …` line exactly as written, through npx and the bin npm resolves (in a checkout
// npx links the checkout into its own cache and runs the package's install script again). Then the
// package as npm installs it: `npm pack`, installed into an empty project, its bin run through npx.
//
// What is reused rather than rebuilt, and why: the native addon. Compiling it takes minutes and is
// tested elsewhere (the build itself, test/build-node-gyp.test.ts); here the checkout's
// build/Release is copied into the clone before `npm ci`, which runs with CLIP_NATIVE_SKIP_BUILD=1.
// The npx runs do not set it: the install script npx triggers finds the copied addon and says it is
// not rebuilding it, as it would for a user. npm runs offline, from its cache (what `npm ci` in the
// checkout left there); where that cache lacks a package the test is skipped, saying so.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';

import { repoRoot } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';

const tmp = scratchDir('clip-readme-');
const clone = path.join(tmp, 'clip-native');
const ADDON_FILES = ['clip_native.node', 'build-info.json'];

/** The shell a newcomer has: no npm_* variables of an enclosing `npm test`, no vocabulary path, an empty cache, no network. */
function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key) && !key.startsWith('CLIP_NATIVE_')) env[key] = value;
  return { ...env, CLIP_NATIVE_CACHE: path.join(tmp, 'model-cache'), CLIP_NATIVE_OFFLINE: '1', HF_HUB_OFFLINE: '1', CI: '1', ...extra };
}

function sh(command: string, cwd: string, env = userEnv(), timeout = 240_000): SpawnSyncReturns<string> {
  return spawnSync('sh', ['-c', command], { cwd, env, encoding: 'utf8', timeout, maxBuffer: 1 << 26 });
}

function ok(run: SpawnSyncReturns<string>, what: string): string {
  assert.equal(run.status, 0, `${what} exited ${run.status ?? run.signal}:\n${run.stdout}\n${run.stderr}`);
  return run.stdout;
}

const NOT_CACHED = /ENOTCACHED|only-if-cached/;

/** Why an offline npm command failed for want of a package in npm's cache, or undefined. */
function notCached(run: SpawnSyncReturns<string>): string | undefined {
  if (run.status === 0 || !NOT_CACHED.test(run.stderr)) return undefined;
  return `npm's cache lacks a package and the test runs offline: ${run.stderr.split('\n').find((l) => NOT_CACHED.test(l))}`;
}

/** Runs an offline npm command; false (the test skipped, saying why) when npm's cache lacks a package. */
function npmOffline(t: TestContext, command: string, cwd: string, env = userEnv()): boolean {
  const run = sh(command, cwd, env);
  const why = notCached(run);
  if (why) {
    t.skip(`SKIPPED: ${why}`);
    return false;
  }
  ok(run, command);
  return true;
}

/** The `npx clip-native …` lines of the README's quick-start code block, as written. */
function quickStartCommands(readme: string): string[] {
  const section = readme.split(/^## /m).find((s) => s.startsWith('Quick start'));
  assert.ok(section, 'the README has a Quick start section');
  const block = /```sh\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'the quick start has a sh block');
  return block[1]!.split('\n').filter((line) => line.startsWith('npx clip-native '));
}

/** A command that names a dataset of the user's own cannot run here: its options are resolved instead. */
const NEEDS_USER_DATA = /--data \.\/my-dataset\b/;

/** Why the test cannot run here, or undefined. */
function missing(): string | undefined {
  if (!existsSync(path.join(repoRoot, '.git'))) return `${repoRoot} is not a git checkout`;
  const built = path.join(repoRoot, 'build', 'Release', 'clip_native.node');
  if (!existsSync(built)) return `no built addon to reuse (${built}); run npm run build:native`;
  for (const tool of ['git', 'npm', 'npx']) if (spawnSync(tool, ['--version']).status !== 0) return `${tool} is not runnable`;
  return undefined;
}

function copyAddon(into: string): void {
  mkdirSync(path.join(into, 'build', 'Release'), { recursive: true });
  for (const file of ADDON_FILES) copyFileSync(path.join(repoRoot, 'build', 'Release', file), path.join(into, 'build', 'Release', file));
}

/** A clone of the checkout's HEAD: what CI and a newcomer get (uncommitted edits are not in it). */
function cloneCheckout(): void {
  ok(spawnSync('git', ['clone', '--quiet', repoRoot, clone], { encoding: 'utf8' }), 'git clone');
}

/** npx's cache folder for a local directory (libnpmexec: the first 16 hex digits of the SHA-512 of its path), removed afterwards. */
function npxCacheEntry(dir: string): string {
  const cache = spawnSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8', env: userEnv() }).stdout.trim();
  return path.join(cache, '_npx', createHash('sha512').update(dir).digest('hex').slice(0, 16));
}

/** An empty project whose lockfile pins the tarball and the checkout's locked dependencies, so `npm ci --offline` installs it. */
function projectInstalling(tarball: string, dir: string): void {
  const lock = JSON.parse(readFileSync(path.join(clone, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> };
  const root = lock.packages['']!;
  const spec = `file:${tarball}`;
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  const packages: Record<string, unknown> = {
    '': { name: 'quick-start-user', version: '1.0.0', dependencies: { 'clip-native': spec } },
    'node_modules/clip-native': { version: root.version, resolved: spec, integrity, hasInstallScript: true, license: root.license, dependencies: root.dependencies, bin: root.bin, engines: root.engines },
  };
  for (const [key, entry] of Object.entries(lock.packages)) if (key.startsWith('node_modules/') && !entry.dev) packages[key] = entry;
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'quick-start-user', version: '1.0.0', private: true, dependencies: { 'clip-native': spec } }, null, 2));
  writeFileSync(path.join(dir, 'package-lock.json'), JSON.stringify({ name: 'quick-start-user', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2));
}

function assertExecutable(file: string): void {
  assert.ok((statSync(file).mode & 0o111) !== 0, `${file} is executable (mode ${(statSync(file).mode & 0o777).toString(8)})`);
}

const why = missing();

describe('the README quick start in a fresh clone', { skip: why ? `SKIPPED: ${why}` : false }, () => {
  let ciSkip: string | undefined;
  const npxEntries: string[] = [];
  before(() => {
    cloneCheckout();
    copyAddon(clone);
    const ci = sh('npm ci --offline --no-audit --no-fund', clone, userEnv({ CLIP_NATIVE_SKIP_BUILD: '1' }));
    ciSkip = notCached(ci);
    if (!ciSkip) ok(ci, 'npm ci');
    npxEntries.push(npxCacheEntry(clone));
  });
  after(() => npxEntries.forEach((entry) => rmSync(entry, { recursive: true, force: true })));

  test('npm ci leaves the bin executable; npm install would not change package-lock.json', (t) => {
    if (ciSkip) return t.skip(`SKIPPED: ${ciSkip}`);
    assertExecutable(path.join(clone, 'dist', 'src', 'cli', 'bin.cjs'));
    const committed = readFileSync(path.join(clone, 'package-lock.json'), 'utf8');
    if (!npmOffline(t, 'npm install --package-lock-only --ignore-scripts --offline --no-audit --no-fund', clone)) return;
    assert.equal(readFileSync(path.join(clone, 'package-lock.json'), 'utf8'), committed, 'the lockfile is in sync with package.json');
    const lock = JSON.parse(readFileSync(path.join(clone, 'package-lock.json'), 'utf8')) as { packages: Record<string, { bin?: unknown }> };
    const pkg = JSON.parse(readFileSync(path.join(clone, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    assert.deepEqual(lock.packages['']!.bin, Object.fromEntries(Object.entries(pkg.bin).map(([k, v]) => [k, v.replace(/^\.\//, '')])), 'the lockfile names the same bin');
  });

  test("each `npx clip-native` line of the quick start, as written, in the checkout", (t) => {
    if (ciSkip) return t.skip(`SKIPPED: ${ciSkip}`);
    const commands = quickStartCommands(readFileSync(path.join(clone, 'README.md'), 'utf8'));
    assert.ok(commands.some((c) => c.startsWith('npx clip-native demo')) && commands.some((c) => c.startsWith('npx clip-native doctor')), commands.join('\n'));
    for (const command of commands) {
      if (NEEDS_USER_DATA.test(command)) {
        // The user's dataset and a download of RN50 are not here: its options must still resolve.
        t.diagnostic(`not trained (needs the user's ./my-dataset and RN50's weights): ${command} --print-config`);
        const config = JSON.parse(ok(sh(`${command.replace(/\s+#.*$/, '')} --print-config`, clone), command)) as { data: string; model: string };
        assert.deepEqual([config.data, config.model], ['./my-dataset', 'RN50']);
        continue;
      }
      const out = ok(sh(command, clone), command);
      if (command.startsWith('npx clip-native doctor')) {
        assert.match(out, new RegExp(`addon\\s+${path.join(clone, 'build', 'Release', 'clip_native.node').replace(/[.]/g, '\\.')}`));
        assert.match(out, /vocabulary\s+\S+assets\/bpe_simple_vocab_16e6\.txt\.gz \(found; from package\)/);
      }
      if (command.startsWith('npx clip-native demo')) {
        const report = /^report: (.+)$/m.exec(out)?.[1];
        assert.ok(report && existsSync(report), `the demo names its report: ${out}`);
        assert.match(out, /zero-shot top-1 on \d+ test images [\d.]+ % before, [\d.]+ % after/);
      }
    }
  });

  test('installed from `npm pack` into an empty project: the bin is linked, executable, and runs through npx', (t) => {
    if (ciSkip) return t.skip(`SKIPPED: ${ciSkip}`);
    // dist/ is the one npm ci's prepare built; packing runs no script again.
    const packed = ok(sh(`npm pack --ignore-scripts --pack-destination ${JSON.stringify(tmp)} --json`, clone), 'npm pack');
    const [{ filename, files }] = JSON.parse(packed.slice(packed.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string; mode: number }> }>;
    const paths = files.map((f) => f.path);
    for (const needed of ['dist/src/cli/bin.cjs', 'assets/bpe_simple_vocab_16e6.txt.gz', 'assets/LICENSE-openai-clip.txt', 'scripts/build-native.mjs']) assert.ok(paths.includes(needed), `the package holds ${needed}`);
    assert.ok(!paths.some((p) => p.startsWith('test/') || p.startsWith('dist/test/')), 'no tests in the package');
    const user = path.join(tmp, 'user-project');
    projectInstalling(path.join(tmp, filename), user);
    if (!npmOffline(t, 'npm ci --offline --no-audit --no-fund', user, userEnv({ CLIP_NATIVE_SKIP_BUILD: '1' }))) return;
    const installed = path.join(user, 'node_modules', 'clip-native');
    assertExecutable(path.join(installed, 'dist', 'src', 'cli', 'bin.cjs'));
    assert.equal(readFileSync(path.join(user, 'node_modules', '.bin', 'clip-native'), 'utf8'), readFileSync(path.join(installed, 'dist', 'src', 'cli', 'bin.cjs'), 'utf8'));
    copyAddon(installed);
    const out = ok(sh('npx clip-native doctor', user), 'npx clip-native doctor in the installing project');
    assert.ok(out.includes(path.join(installed, 'assets', 'bpe_simple_vocab_16e6.txt.gz')) && /\(found; from package\)/.test(out), out);
  });
});
