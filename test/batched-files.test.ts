// The loader's batched file operations (src/io/batched-files.ts over native/io/file_batch.h) against
// Node's own fs and zlib: the same stats, bytes and CRC-32s, errors shaped as fs errors, and every
// answer reaching its own request when many are gathered into one native call.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { crc32 } from 'node:zlib';

import { readFileOfLength, statFile } from '../src/io/batched-files.js';
import { joinBytes, readFiles } from '../src/native.js';
import { scratchDir } from './helpers/scratch.js';

const tmp = scratchDir('clip-batched-files-');

describe('batched file operations', () => {
  test('statFile gives fs.stat’s isFile, size and mtimeMs (to the last bit), for files and directories', async () => {
    const file = path.join(tmp, 'a.bin');
    await fs.writeFile(file, randomBytes(12345));
    for (const target of [file, tmp]) {
      const [ours, node] = [await statFile(target), await fs.stat(target)];
      assert.deepEqual(ours, { isFile: node.isFile(), size: node.size, mtimeMs: node.mtimeMs }, target);
    }
  });

  test('a missing file rejects as fs.stat does: code ENOENT, the path in the message', async () => {
    const missing = path.join(tmp, 'nope', 'x.jpg');
    const err = await statFile(missing).then(
      () => assert.fail('resolved'),
      (e: NodeJS.ErrnoException) => e,
    );
    assert.equal(err.code, 'ENOENT');
    assert.equal(err.syscall, 'stat');
    assert.equal(err.path, missing);
    assert.match(err.message, /^ENOENT: no such file or directory, stat '.*x\.jpg'$/);
  });

  test('readFileOfLength: the bytes and zlib’s CRC-32 of the tail; another length or none is undefined; other errors reject as fs does', async () => {
    const bytes = randomBytes(150_557);
    const file = path.join(tmp, 'entry.crop');
    await fs.writeFile(file, bytes);
    const r = await readFileOfLength(file, bytes.length, 20);
    assert.ok(r && r.data.equals(bytes));
    assert.equal(r.crc, crc32(bytes.subarray(20)));
    assert.equal(await readFileOfLength(file, bytes.length - 1, 20), undefined, 'longer than expected');
    assert.equal(await readFileOfLength(file, bytes.length + 1, 20), undefined, 'shorter than expected');
    await assert.rejects(readFileOfLength(tmp, 10, 0), (e: NodeJS.ErrnoException) => e.code === 'EISDIR');
    assert.equal(await readFileOfLength(path.join(tmp, 'gone'), 10, 0), undefined, 'a missing file');
    await assert.rejects(readFileOfLength(path.join(tmp, 'entry.crop', 'below-a-file'), 10, 0), (e: NodeJS.ErrnoException) => e.code === 'ENOTDIR');
  });

  test('300 requests at once, gathered into batches: each gets its own file’s answer', async () => {
    const files = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const file = path.join(tmp, `many-${i}.bin`);
        const data = Buffer.alloc(4096, i % 251);
        data.writeUInt32LE(i, 0);
        await fs.writeFile(file, data);
        return { file, data };
      }),
    );
    const reads = await Promise.all(files.map(({ file }, i) => (i % 7 === 3 ? readFileOfLength(`${file}/below`, 4096, 4) : readFileOfLength(file, 4096, 4)).catch((e: Error) => e)));
    reads.forEach((r, i) => {
      if (i % 7 === 3) return assert.ok(r instanceof Error && /ENOTDIR/.test(r.message), `request ${i}`);
      assert.ok(r && !(r instanceof Error) && r.data.equals(files[i]!.data), `request ${i}`);
      assert.equal(r.crc, crc32(files[i]!.data.subarray(4)));
    });
    const stats = await Promise.all(files.map(({ file }) => statFile(file)));
    assert.ok(stats.every((s) => s.isFile && s.size === 4096));
  });

  test('the portable CRC-32 (experiment portable-crc: tables, no zlib) equals zlib’s, at every alignment and length', async () => {
    const bytes = randomBytes(70_001);
    const file = path.join(tmp, 'crc.bin');
    await fs.writeFile(file, bytes);
    const saved = process.env.CLIP_NATIVE_EXPERIMENTS;
    process.env.CLIP_NATIVE_EXPERIMENTS = 'portable-crc';
    try {
      for (const from of [0, 1, 2, 3, 5, 7, 8, 9, 13, 69_990, 70_000, 70_001]) {
        const r = await readFiles([file], bytes.length, from);
        assert.equal(r.crcs[0], crc32(bytes.subarray(from)), `from ${from}`);
      }
    } finally {
      if (saved === undefined) delete process.env.CLIP_NATIVE_EXPERIMENTS;
      else process.env.CLIP_NATIVE_EXPERIMENTS = saved;
    }
  });

  test('joinBytes equals Buffer.concat, empty parts and an empty list included', async () => {
    const parts = [randomBytes(10), new Uint8Array(0), randomBytes(150_528), randomBytes(3)];
    assert.ok((await joinBytes(parts)).equals(Buffer.concat(parts)));
    assert.equal((await joinBytes([])).length, 0);
    assert.throws(() => joinBytes([new Float32Array(2) as unknown as Uint8Array]), /Uint8Arrays/);
  });
});
