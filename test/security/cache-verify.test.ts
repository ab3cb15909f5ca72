// Cached downloads are checked when they are used, not only when they are downloaded: a file replaced
// in the cache afterwards is refused, naming the file, both hashes and how to download it anew. The
// sidecar `<file>.verified.json` saves re-hashing an unchanged file; any change of size, mtime, ctime
// or inode, or a sidecar that does not vouch for the file as it is, means hashing it again.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { pretrainedFile, resolvePretrained } from '../../src/model/pretrained.js';
import { resolveVocabularyPath, VOCAB_FILE_NAME } from '../../src/text/vocabulary.js';
import { downloadVerified, type DownloadProgress } from '../../src/util/download.js';
import { ChecksumMismatchError, sidecarPath, verifyCachedFile, type HashProgress } from '../../src/util/verified-file.js';
import { fixture, repoRoot } from '../helpers/fixtures.js';
import { scratchDir } from '../helpers/scratch.js';

const tmp = scratchDir('clip-cache-verify-');
const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
/** File timestamps come from a coarse clock (a jiffy): wait past it so a change shows in ctime. */
const tick = () => new Promise((resolve) => setTimeout(resolve, 30));

const GOOD = Buffer.from('the right weights\n'.repeat(4096));
const GOOD_SHA = sha256(GOOD);
const ROUND_TIME = 1_700_000_000;

let counter = 0;
/** A fresh cache file holding GOOD, and a verify() that says whether it hashed. */
function cachedFile() {
  const file = path.join(tmp, `unit-${counter++}`, 'model.pt');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, GOOD);
  // Whole seconds, so a test can set the mtime back exactly (utimes takes seconds as a double).
  utimesSync(file, ROUND_TIME, ROUND_TIME);
  const hashed: HashProgress[] = [];
  const verify = () => verifyCachedFile(file, GOOD_SHA, { onHashProgress: (p) => hashed.push(p) });
  return { file, hashed, verify };
}

function assertMismatch(err: unknown, file: string, expected: string, actual: string): true {
  assert.ok(err instanceof ChecksumMismatchError, `a ChecksumMismatchError, got ${String(err)}`);
  assert.ok(err.message.includes(file), `names the file: ${err.message}`);
  assert.ok(err.message.includes(`expected ${expected}`), `gives the expected hash: ${err.message}`);
  assert.ok(err.message.includes(`got ${actual}`), `gives the actual hash: ${err.message}`);
  assert.ok(err.message.includes(`rm '${file}'`), `says to delete it: ${err.message}`);
  assert.match(err.message, /download it anew/);
  return true;
}

describe('verifyCachedFile', () => {
  test('a correct file passes, writes its sidecar, and is not hashed again while unchanged', async () => {
    const { file, hashed, verify } = cachedFile();
    assert.equal(await verify(), 'hashed');
    assert.deepEqual(hashed.at(-1), { file, loaded: GOOD.length, total: GOOD.length }, 'progress reaches the size');
    const record = JSON.parse(readFileSync(sidecarPath(file), 'utf8')) as Record<string, string>;
    const stat = statSync(file, { bigint: true });
    assert.equal(record.sha256, GOOD_SHA);
    assert.equal(record.file, file);
    assert.equal(record.size, String(stat.size));
    assert.equal(record.mtimeNs, String(stat.mtimeNs));
    assert.equal(record.ctimeNs, String(stat.ctimeNs));
    assert.equal(record.ino, String(stat.ino));
    hashed.length = 0;
    assert.equal(await verify(), 'sidecar');
    assert.equal(await verify(), 'sidecar');
    assert.deepEqual(hashed, [], 'no hashing while the sidecar vouches for the file');
  });

  test('bytes replaced in place (same size, new mtime) are refused with both hashes and how to download anew', async () => {
    const { file, verify } = cachedFile();
    await verify();
    await tick();
    const evil = Buffer.from(GOOD.toString('latin1').replace('right', 'wrong'), 'latin1');
    assert.equal(evil.length, GOOD.length);
    writeFileSync(file, evil);
    utimesSync(file, new Date(), new Date(Date.now() + 60_000));
    await assert.rejects(verify(), (err) => assertMismatch(err, file, GOOD_SHA, sha256(evil)));
    assert.equal(existsSync(sidecarPath(file)), false, 'the record of the old file is removed');
    assert.equal(existsSync(file), true, 'the file itself is left for the user to look at');
    await assert.rejects(verify(), ChecksumMismatchError, 'and refused again on the next use');
  });

  test('a replaced file with its mtime set back to the recorded one, but another size, is refused', async () => {
    const { file, verify } = cachedFile();
    await verify();
    const recorded = statSync(file, { bigint: true }).mtimeNs;
    await tick();
    const evil = Buffer.concat([GOOD, Buffer.from('one more layer')]);
    writeFileSync(file, evil);
    utimesSync(file, ROUND_TIME, ROUND_TIME);
    assert.equal(statSync(file, { bigint: true }).mtimeNs, recorded, 'mtime as recorded');
    await assert.rejects(verify(), (err) => assertMismatch(err, file, GOOD_SHA, sha256(evil)));
  });

  test('same size and mtime set back: the ctime still differs, so the file is hashed and refused', async () => {
    const { file, verify } = cachedFile();
    await verify();
    const before = statSync(file, { bigint: true });
    await tick();
    const evil = Buffer.from(GOOD.toString('latin1').replace('right', 'wrong'), 'latin1');
    writeFileSync(file, evil);
    utimesSync(file, ROUND_TIME, ROUND_TIME);
    const after = statSync(file, { bigint: true });
    assert.deepEqual([after.size, after.mtimeNs, after.ino], [before.size, before.mtimeNs, before.ino], 'size, mtime and inode as recorded');
    assert.notEqual(after.ctimeNs, before.ctimeNs);
    await assert.rejects(verify(), (err) => assertMismatch(err, file, GOOD_SHA, sha256(evil)));
  });

  test('a tampered, truncated or foreign sidecar never vouches: the file is hashed again (and refused when wrong)', async () => {
    const { file, hashed, verify } = cachedFile();
    await verify();
    const sidecar = sidecarPath(file);
    const good = JSON.parse(readFileSync(sidecar, 'utf8')) as Record<string, unknown>;
    const tampered: Array<[string, string]> = [
      ['another hash', JSON.stringify({ ...good, sha256: sha256('something else') })],
      ['another size', JSON.stringify({ ...good, size: String(GOOD.length + 1) })],
      ['another mtime', JSON.stringify({ ...good, mtimeNs: '1' })],
      ['another file', JSON.stringify({ ...good, file: file + '.other' })],
      ['a number where a string is recorded', JSON.stringify({ ...good, size: GOOD.length })],
      ['a field missing', JSON.stringify({ ...good, ino: undefined })],
      ['the fields under a __proto__ key', `{"__proto__": ${JSON.stringify(good)}}`],
      ['not JSON', '{"sha256": '],
      ['an array', '[]'],
      ['empty', ''],
    ];
    for (const [what, text] of tampered) {
      writeFileSync(sidecar, text);
      hashed.length = 0;
      assert.equal(await verify(), 'hashed', what);
      assert.ok(hashed.length > 0, `${what}: hashed`);
      assert.deepEqual(JSON.parse(readFileSync(sidecar, 'utf8')), good, `${what}: the record is rewritten`);
    }
    // A sidecar copied from the good file cannot vouch for a changed one.
    await tick();
    writeFileSync(file, Buffer.alloc(GOOD.length));
    writeFileSync(sidecar, JSON.stringify(good));
    await assert.rejects(verify(), (err) => assertMismatch(err, file, GOOD_SHA, sha256(Buffer.alloc(GOOD.length))));
  });

  test('the sidecar can live elsewhere (for a folder that is not ours); a missing file is an error', async () => {
    const { file } = cachedFile();
    const sidecar = path.join(tmp, 'elsewhere.verified.json');
    assert.equal(await verifyCachedFile(file, GOOD_SHA, { sidecar }), 'hashed');
    assert.equal(existsSync(sidecarPath(file)), false);
    assert.equal(await verifyCachedFile(file, GOOD_SHA, { sidecar }), 'sidecar');
    await assert.rejects(verifyCachedFile(path.join(tmp, 'absent.pt'), GOOD_SHA), { code: 'ENOENT' });
  });

  test('a verified download leaves the sidecar, so its first use does not hash it again', async () => {
    const server = createServer((_, res) => res.end(GOOD));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const target = path.join(tmp, 'downloaded', 'model.pt');
      const seen: DownloadProgress[] = [];
      await downloadVerified(`http://127.0.0.1:${(server.address() as AddressInfo).port}/model.pt`, target, GOOD_SHA, (p) => seen.push(p));
      assert.equal(seen.at(-1)?.status, 'done');
      assert.equal(await verifyCachedFile(target, GOOD_SHA), 'sidecar');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('the caches that use it', () => {
  const envKeys = ['CLIP_NATIVE_CACHE', 'CLIP_NATIVE_OFFLINE', 'HF_HUB_OFFLINE', 'CLIP_NATIVE_VOCAB', 'XDG_CACHE_HOME', 'HOME'] as const;
  const saved: Record<string, string | undefined> = {};
  const home = path.join(tmp, 'home');
  before(() => {
    for (const k of envKeys) saved[k] = process.env[k];
    for (const k of envKeys) delete process.env[k];
    // OpenAI's cache (~/.cache/clip) is looked for under $HOME: an empty one here.
    process.env.HOME = home;
    process.env.CLIP_NATIVE_OFFLINE = '1';
  });
  after(() => {
    for (const k of envKeys) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  test('a released model replaced in our cache is refused by resolvePretrained: file, hashes, how to download anew', async () => {
    const cache = path.join(tmp, 'model-cache');
    const file = path.join(cache, 'openai', 'RN50.pt');
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, 'not the released RN50 weights');
    let downloads = 0;
    for (const options of [{ cacheDir: cache }, {}]) {
      process.env.CLIP_NATIVE_CACHE = cache;
      await assert.rejects(
        resolvePretrained('RN50', { ...options, download: async () => void downloads++ }),
        (err: Error) => assertMismatch(err, file, pretrainedFile('RN50')!.sha256, sha256('not the released RN50 weights')) && /load RN50 again/.test(err.message),
      );
      delete process.env.CLIP_NATIVE_CACHE;
    }
    assert.equal(downloads, 0, 'a refused cache file is not silently replaced');
    assert.equal(existsSync(sidecarPath(file)), false);
  });

  test("a file in OpenAI's own cache that does not match is passed over, and no record is kept for it", async () => {
    const theirs = path.join(home, '.cache', 'clip', 'ViT-B-32.pt');
    mkdirSync(path.dirname(theirs), { recursive: true });
    writeFileSync(theirs, 'not the released ViT-B/32 weights');
    const cache = path.join(tmp, 'empty-model-cache');
    await assert.rejects(resolvePretrained('ViT-B/32', { cacheDir: cache }), /not in the model cache and offline mode is on/);
    assert.equal(existsSync(sidecarPath(theirs)), false, "nothing written into OpenAI's cache");
    assert.equal(existsSync(path.join(cache, 'openai', 'ViT-B-32.pt.openai-cache.verified.json')), false);
  });

  test('the cached vocabulary is checked against its pinned SHA-256 when used', async () => {
    const cache = path.join(tmp, 'vocab-cache');
    const cached = path.join(cache, VOCAB_FILE_NAME);
    mkdirSync(cache, { recursive: true });
    copyFileSync(fixture('bpe_simple_vocab_16e6.txt.gz'), cached);
    assert.equal(await resolveVocabularyPath({ cacheDir: cache }, undefined, null), cached);
    assert.ok(existsSync(sidecarPath(cached)), 'the sidecar is written after the check');
    await tick();
    writeFileSync(cached, 'a vocabulary of our own');
    await assert.rejects(resolveVocabularyPath({ cacheDir: cache }, undefined, null), (err: Error) => {
      assert.ok(err instanceof ChecksumMismatchError);
      assert.ok(err.message.includes(cached) && err.message.includes(`rm '${cached}'`) && err.message.includes(sha256('a vocabulary of our own')), err.message);
      return true;
    });
  });

  test('`clip-native predict --model RN50` with a replaced cache file exits 1 with the message', () => {
    const cache = path.join(tmp, 'cli-cache');
    const file = path.join(cache, 'openai', 'RN50.pt');
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, 'replaced');
    const run = spawnSync(
      process.execPath,
      [path.join(repoRoot, 'dist', 'src', 'cli', 'main.js'), 'predict', fixture('images', 'coffee.jpg'), '--labels', 'coffee,rocket', '--model', 'RN50'],
      { encoding: 'utf8', env: { ...process.env, CLIP_NATIVE_CACHE: cache, CLIP_NATIVE_OFFLINE: '1', CLIP_NATIVE_VOCAB: fixture('bpe_simple_vocab_16e6.txt.gz') } },
    );
    assert.equal(run.status, 1, run.stderr);
    assert.equal(run.stdout, '');
    assert.ok(run.stderr.includes(`${file} does not match its known SHA-256 (expected ${pretrainedFile('RN50')!.sha256}, got ${sha256('replaced')})`), run.stderr);
    assert.ok(run.stderr.includes(`rm '${file}'`), run.stderr);
  });
});
