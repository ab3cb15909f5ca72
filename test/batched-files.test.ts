// The loader's batched file operations (src/io/batched-files.ts over native/io/file_batch.h) against
// Node's own fs and zlib: the same stats, bytes and CRC-32s, errors shaped as fs errors, and every
// file's answer and bytes reaching its own place when many go in one native call.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { crc32 } from 'node:zlib';

import { copyPartsInto, readBodiesInto, statFileBatch } from '../src/io/batched-files.js';
import { copyBytesInto, joinBytes, readFilesInto } from '../src/native.js';
import { scratchDir } from './helpers/scratch.js';

const tmp = scratchDir('clip-batched-files-');

describe('batched file operations', () => {
  test('statFileBatch gives fs.stat’s isFile, size and mtimeMs (to the last bit), for files and directories', async () => {
    const file = path.join(tmp, 'a.bin');
    await fs.writeFile(file, randomBytes(12345));
    const ours = await statFileBatch([file, tmp]);
    for (const [i, target] of [file, tmp].entries()) {
      const node = await fs.stat(target);
      assert.deepEqual(ours[i], { isFile: node.isFile(), size: node.size, mtimeMs: node.mtimeMs }, target);
    }
  });

  test('a missing file is an Error shaped as fs.stat’s: code ENOENT, the path in the message', async () => {
    const missing = path.join(tmp, 'nope', 'x.jpg');
    const [err] = (await statFileBatch([missing])) as NodeJS.ErrnoException[];
    assert.ok(err instanceof Error);
    assert.equal(err.code, 'ENOENT');
    assert.equal(err.syscall, 'stat');
    assert.equal(err.path, missing);
    assert.match(err.message, /^ENOENT: no such file or directory, stat '.*x\.jpg'$/);
  });

  test('readBodiesInto: headers back, bodies into their slots of dest with zlib’s CRC-32; another length or none is undefined; other errors as fs’s', async () => {
    const bytes = randomBytes(150_557);
    const file = path.join(tmp, 'entry.crop');
    await fs.writeFile(file, bytes);
    const body = bytes.length - 20;
    const dest = Buffer.alloc(3 * body, 0xee);
    const paths = [file, file, path.join(tmp, 'gone'), tmp, path.join(tmp, 'entry.crop', 'below-a-file')];
    const r = await readBodiesInto(paths, 20, body, dest, [2, 0, 1, 1, 1]);
    for (const [i, slot] of [[0, 2], [1, 0]] as const) {
      const read = r[i];
      assert.ok(read && !(read instanceof Error), `read ${i}`);
      assert.ok(read.header.equals(bytes.subarray(0, 20)));
      assert.equal(read.crc, crc32(bytes.subarray(20)));
      assert.ok(dest.subarray(slot * body, (slot + 1) * body).equals(bytes.subarray(20)), `slot ${slot}`);
    }
    assert.equal(r[2], undefined, 'a missing file');
    assert.ok(r[3] instanceof Error && (r[3] as NodeJS.ErrnoException).code === 'EISDIR', 'a directory');
    assert.ok(r[4] instanceof Error && (r[4] as NodeJS.ErrnoException).code === 'ENOTDIR', 'below a file');
    assert.deepEqual(await readBodiesInto([file], 20, body - 1, dest, [0]), [undefined], 'longer than expected');
    assert.deepEqual(await readBodiesInto([file], 20, body + 1, Buffer.alloc(body + 1), [0]), [undefined], 'shorter than expected');
    await assert.rejects(async () => readBodiesInto([file], 20, body, dest, [3]), /outside dest/);
    await assert.rejects(async () => readBodiesInto([file], 20, body, dest, [-1]), /outside dest/);
  });

  test('300 files at once, in chunks over several pool threads: each lands in its own slot, with its own answer', async () => {
    const files = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const file = path.join(tmp, `many-${i}.bin`);
        const data = Buffer.alloc(4096, i % 251);
        data.writeUInt32LE(i, 0);
        await fs.writeFile(file, data);
        return { file, data };
      }),
    );
    const paths = files.map(({ file }, i) => (i % 7 === 3 ? `${file}/below` : file));
    const slots = files.map((_, i) => 299 - i); // reversed: slots need not follow the paths
    const dest = Buffer.alloc(300 * 4092);
    const reads = await readBodiesInto(paths, 4, 4092, dest, slots);
    reads.forEach((r, i) => {
      if (i % 7 === 3) return assert.ok(r instanceof Error && /ENOTDIR/.test(r.message), `request ${i}`);
      assert.ok(r && !(r instanceof Error) && r.header.equals(files[i]!.data.subarray(0, 4)), `request ${i}`);
      assert.equal(r.crc, crc32(files[i]!.data.subarray(4)));
      assert.ok(dest.subarray(slots[i]! * 4092, (slots[i]! + 1) * 4092).equals(files[i]!.data.subarray(4)), `slot of ${i}`);
    });
    const stats = await statFileBatch(files.map(({ file }) => file));
    assert.ok(stats.every((s) => !(s instanceof Error) && s.isFile && s.size === 4096));
  });

  test('the portable CRC-32 (experiment portable-crc: tables, no zlib) equals zlib’s, at every alignment and length', async () => {
    const bytes = randomBytes(70_001);
    const file = path.join(tmp, 'crc.bin');
    await fs.writeFile(file, bytes);
    const saved = process.env.CLIP_NATIVE_EXPERIMENTS;
    process.env.CLIP_NATIVE_EXPERIMENTS = 'portable-crc';
    try {
      for (const from of [0, 1, 2, 3, 5, 7, 8, 9, 13, 69_990, 70_000, 70_001]) {
        const r = await readFilesInto([file], from, bytes.length - from, Buffer.alloc(bytes.length - from + 1), Int32Array.of(0));
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

  test('copyPartsInto puts each part at its offset (many parts, several pool requests), the rest of dest untouched', async () => {
    const part = 1000;
    const parts = Array.from({ length: 70 }, () => randomBytes(part));
    // Slots in a shuffled order with gaps: part i at slot (i * 37) % 100.
    const slots = parts.map((_, i) => (i * 37) % 100);
    const dest = Buffer.alloc(100 * part, 0xab);
    await copyPartsInto(parts, dest, slots.map((s) => s * part));
    const expected = Buffer.alloc(100 * part, 0xab);
    parts.forEach((p, i) => p.copy(expected, slots[i]! * part));
    assert.ok(dest.equals(expected));
    await copyPartsInto([], dest, []);
  });

  test('copyBytesInto refuses parts that do not fit, offsets that are not whole bytes, and counts that differ', async () => {
    const dest = new Uint8Array(10);
    assert.throws(() => copyBytesInto([new Uint8Array(4)], dest, Float64Array.of(7)), /part 0 \(4 bytes at 7\) does not fit in dest \(10 bytes\)/);
    assert.throws(() => copyBytesInto([new Uint8Array(1)], dest, Float64Array.of(-1)), /does not fit/);
    assert.throws(() => copyBytesInto([new Uint8Array(1)], dest, Float64Array.of(1.5)), /does not fit/);
    assert.throws(() => copyBytesInto([new Uint8Array(1)], dest, Float64Array.of(Number.NaN)), /does not fit/);
    assert.throws(() => copyBytesInto([new Uint8Array(1), new Uint8Array(1)], dest, Float64Array.of(0)), /2 parts, 1 offsets/);
    assert.throws(() => copyBytesInto([new Int8Array(1) as unknown as Uint8Array], dest, Float64Array.of(0)), /part 0 is not a Uint8Array/);
    assert.throws(() => copyBytesInto([], dest, new Float32Array(0) as unknown as Float64Array), /offsets a Float64Array/);
    await copyBytesInto([Uint8Array.of(1, 2, 3)], dest, Float64Array.of(7));
    assert.deepEqual([...dest], [0, 0, 0, 0, 0, 0, 0, 1, 2, 3]);
  });
});
