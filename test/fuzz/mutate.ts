/**
 * The fuzz cases: case `index` of campaign `seed` is a pure function of (seed, index) and the seed
 * files, so any case can be rebuilt alone. Each picks a seed file (by a fixed weight table), a
 * mutation strategy for its format and the strategy's parameters from `createRng(seed, index)`.
 *
 * Strategies:
 * - raw-*: bytes of the whole file (bit flips, interesting bytes, boundary integers, chunks deleted,
 *   duplicated or inserted, truncation), biased toward the zip headers / central directory / end
 *   records, or the safetensors JSON header. The 13 MB seeds are only mutated there.
 * - zip-*: the archive taken apart, one record changed (pickle-aware for data.pkl / constants.pkl),
 *   or its structure changed (records dropped, duplicated, renamed, reordered, deflated, a zip bomb),
 *   then written back with correct CRC-32s and sizes; zip-field lies in exactly one header field.
 * - st-*: the safetensors JSON header changed as JSON (dtypes, shapes, offsets, duplicate keys,
 *   nesting, huge numbers) with the 8-byte length kept consistent, or not; or the data region.
 * - pickle: pickle-aware mutations of a legacy (pre-1.6) torch.save stream.
 */
import zlib from 'node:zlib';

import { createRng, type Rng } from '../../src/util/prng.js';
import { BOUNDARY_INTS, mutatePickle, scanPickle } from './pickle.js';
import { parseZip, writeZip, zipFields, zipLayout, type ZipArchive, type ZipEntry, type ZipLayout } from './zip.js';

export type SeedKind = 'torch-zip' | 'torchscript' | 'safetensors' | 'legacy';

export interface SeedSpec {
  /** File name under the fixtures' models/ folder, or "legacy" (written by python3 torch at run time). */
  name: string;
  kind: SeedKind;
  /** Share of cases, out of the table's total. */
  weight: number;
}

/** The seeds and their shares. Fixed: changing it changes every campaign's cases. */
export const SEED_TABLE: readonly SeedSpec[] = [
  { name: 'tiny_vit.golden.pt', kind: 'torch-zip', weight: 14 },
  { name: 'tiny_rn.golden.pt', kind: 'torch-zip', weight: 10 },
  { name: 'tiny_vit.visual.state_dict.pt', kind: 'torch-zip', weight: 15 },
  // The only TorchScript seed; 13 MB, so each case costs ten of the small ones.
  { name: 'tiny_vit.torchscript.pt', kind: 'torchscript', weight: 8 },
  { name: 'tiny_vit.golden.safetensors', kind: 'safetensors', weight: 17 },
  { name: 'tiny_rn.golden.safetensors', kind: 'safetensors', weight: 11 },
  // 13 MB, and its header is the same format as the golden ones'.
  { name: 'tiny_vit.safetensors', kind: 'safetensors', weight: 4 },
  { name: 'legacy', kind: 'legacy', weight: 6 },
];

/** Seeds at least this big are mutated only in their headers (the rest is tensor bytes). */
const BIG = 4 << 20;

type Range = [start: number, end: number];

export interface LoadedSeed {
  spec: SeedSpec;
  bytes: Buffer;
  big: boolean;
  /** Where the structure lives (headers, central directory, JSON header, pickles). */
  hot: Range[];
  zip?: ZipArchive;
  layout?: ZipLayout;
  safetensors?: { headerLength: number; header: string; data: Buffer };
}

export interface SeedSet {
  seeds: Map<string, LoadedSeed>;
  /** Seeds that could not be had, with why (e.g. no python3 torch for the legacy one). */
  missing: Map<string, string>;
}

export function loadSeed(spec: SeedSpec, bytes: Buffer): LoadedSeed {
  const seed: LoadedSeed = { spec, bytes, big: bytes.length >= BIG, hot: [] };
  if (spec.kind === 'torch-zip' || spec.kind === 'torchscript') {
    seed.layout = zipLayout(bytes);
    seed.zip = parseZip(bytes);
    seed.hot.push([seed.layout.centralStart, bytes.length]);
    for (const r of seed.layout.records) {
      seed.hot.push([r.local, r.dataStart]);
      if (/\.pkl$|version$|byteorder$|code\//.test(r.name)) seed.hot.push([r.dataStart, r.dataEnd]);
      if (r.descriptor !== undefined) seed.hot.push([r.descriptor, Math.min(bytes.length, r.descriptor + 16)]);
    }
  } else if (spec.kind === 'safetensors') {
    const headerLength = Number(bytes.readBigUInt64LE(0));
    seed.safetensors = { headerLength, header: bytes.subarray(8, 8 + headerLength).toString('utf8'), data: bytes.subarray(8 + headerLength) };
    seed.hot.push([0, 8 + headerLength], [8 + headerLength, Math.min(bytes.length, 8 + headerLength + 256)]);
  } else {
    seed.hot.push([0, Math.min(bytes.length, 8192)]);
  }
  return seed;
}

export interface FuzzCase {
  index: number;
  seed: string;
  kind: SeedKind;
  strategy: string;
  detail: string;
  /** File name extension the loader sees. */
  ext: string;
  bytes?: Buffer;
  /** Set when the case could not be made (its seed is missing). */
  skipped?: string;
}

// ---------------------------------------------------------------------------------------------
// Random helpers

const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.nextInt(items.length)]!;
const chance = (rng: Rng, p: number): boolean => rng.next() < p;

function weighted<T extends string>(rng: Rng, table: readonly (readonly [T, number])[]): T {
  const total = table.reduce((s, [, w]) => s + w, 0);
  let x = rng.next() * total;
  for (const [v, w] of table) {
    if ((x -= w) < 0) return v;
  }
  return table[table.length - 1]![0];
}

const splice = (bytes: Buffer, start: number, end: number, insert: Buffer): Buffer =>
  Buffer.concat([bytes.subarray(0, start), insert, bytes.subarray(end)]);

function writeUIntLE(out: Buffer, offset: number, width: number, value: bigint): void {
  const v = BigInt.asUintN(width * 8, value);
  for (let i = 0; i < width && offset + i < out.length; i++) out[offset + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}

function readUIntLE(bytes: Buffer, offset: number, width: number): bigint {
  let v = 0n;
  for (let i = width - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[offset + i] ?? 0);
  return v;
}

// ---------------------------------------------------------------------------------------------
// (a) Raw bytes

function position(rng: Rng, length: number, hot: Range[], hotOnly: boolean): number {
  if (length === 0) return 0;
  if (hot.length && (hotOnly || chance(rng, 0.6))) {
    const [a, b] = pick(rng, hot);
    const end = Math.min(b, length);
    if (end > a) return a + rng.nextInt(end - a);
  }
  return rng.nextInt(length);
}

export function rawMutate(bytes: Buffer, rng: Rng, hot: Range[], hotOnly: boolean): { bytes: Buffer; strategy: string; detail: string } {
  const at = () => position(rng, bytes.length, hot, hotOnly);
  const op = weighted(rng, [
    ['bitflip', 3],
    ['byte', 3],
    ['int', 4],
    ['delete', 2],
    ['duplicate', 2],
    ['insert', 2],
    ['truncate', 1],
  ] as const);
  switch (op) {
    case 'bitflip': {
      const out = Buffer.from(bytes);
      const n = pick(rng, [1, 1, 2, 4, 8, 32]);
      const base = at();
      const flipped: number[] = [];
      for (let i = 0; i < n; i++) {
        const p = chance(rng, 0.5) ? Math.min(out.length - 1, base + rng.nextInt(16)) : at();
        out[p] = out[p]! ^ (1 << rng.nextInt(8));
        flipped.push(p);
      }
      return { bytes: out, strategy: 'raw-bitflip', detail: `${n} bit(s) near ${flipped.slice(0, 4).join(',')}` };
    }
    case 'byte': {
      const out = Buffer.from(bytes);
      const n = 1 + rng.nextInt(4);
      const value = pick(rng, [0x00, 0xff, 0x7f, 0x80, 0x01, 0x0a, 0x28, 0x2e]);
      const p = at();
      for (let i = 0; i < n && p + i < out.length; i++) out[p + i] = value;
      return { bytes: out, strategy: 'raw-byte', detail: `${n}x 0x${value.toString(16)} @${p}` };
    }
    case 'int': {
      const out = Buffer.from(bytes);
      const width = pick(rng, [1, 2, 4, 4, 8, 8]);
      const p = at();
      const value = chance(rng, 0.75) ? pick(rng, BOUNDARY_INTS) : readUIntLE(bytes, p, width) + BigInt(pick(rng, [-64, -8, -1, 1, 8, 64, 4096]));
      writeUIntLE(out, p, width, value);
      return { bytes: out, strategy: 'raw-int', detail: `u${width * 8} ${value} @${p}` };
    }
    case 'delete': {
      const p = at();
      const n = pick(rng, [1, 2, 4, 8, 16, 64, 512, 4096]);
      return { bytes: splice(bytes, p, Math.min(bytes.length, p + n), Buffer.alloc(0)), strategy: 'raw-delete', detail: `${n} @${p}` };
    }
    case 'duplicate': {
      const p = at();
      const n = pick(rng, [1, 4, 16, 64, 512, 4096]);
      const chunk = Buffer.from(bytes.subarray(p, Math.min(bytes.length, p + n)));
      const dest = chance(rng, 0.5) ? p : at();
      return { bytes: splice(bytes, dest, dest, chunk), strategy: 'raw-duplicate', detail: `${chunk.length} from @${p} to @${dest}` };
    }
    case 'insert': {
      const p = at();
      const n = pick(rng, [1, 2, 4, 8, 64, 1024]);
      const chunk = chance(rng, 0.5) ? Buffer.alloc(n, pick(rng, [0, 0xff, 0x41, 0x50])) : Buffer.from(Array.from({ length: n }, () => rng.nextInt(256)));
      return { bytes: splice(bytes, p, p, chunk), strategy: 'raw-insert', detail: `${n} @${p}` };
    }
    case 'truncate': {
      const p = chance(rng, 0.3) ? Math.max(0, bytes.length - 1 - rng.nextInt(64)) : at();
      return { bytes: bytes.subarray(0, p), strategy: 'raw-truncate', detail: `to ${p} of ${bytes.length}` };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// (b) Zip-aware

const cloneEntry = (e: ZipEntry, changes: Partial<ZipEntry> = {}): ZipEntry => ({ ...e, ...changes });
const baseName = (e: ZipEntry) => e.name.toString('latin1').replace(/^[^/]*\//, '');

function pickEntry(rng: Rng, zip: ZipArchive, test: (name: string) => boolean): number | undefined {
  const found = zip.entries.map((e, i) => [i, baseName(e)] as const).filter(([, n]) => test(n));
  return found.length ? pick(rng, found)[0] : undefined;
}

let bombCache: { size: number; deflated: Buffer } | undefined;
/** 96 MiB of zeros, deflated (about 100 KB): more than a small archive's records may inflate to. */
function bomb(): { size: number; deflated: Buffer } {
  bombCache ??= { size: 96 << 20, deflated: zlib.deflateRawSync(Buffer.alloc(96 << 20), { level: 9 }) };
  return bombCache;
}

const VERSION_TEXTS = ['', '0', '1', '2', '3', '4', '5', '9', '10', '-1', '99999999999999999999', 'abc', '3\n', ' 3', '3\0', '1.0'];
const BYTEORDER_TEXTS = ['little', 'big', '', 'LITTLE', 'little\0', 'middle'];

function mutateText(rng: Rng, name: string, text: Buffer): { bytes: Buffer; detail: string } {
  if (/(^|\/)version$/.test(name) || name.endsWith('format_version')) {
    const v = pick(rng, VERSION_TEXTS);
    return { bytes: Buffer.from(v, 'latin1'), detail: `${JSON.stringify(v)}` };
  }
  if (name.endsWith('byteorder')) {
    const v = pick(rng, BYTEORDER_TEXTS);
    return { bytes: Buffer.from(v, 'latin1'), detail: `${JSON.stringify(v)}` };
  }
  const s = text.toString('latin1');
  const form = rng.nextInt(6);
  if (form === 0) {
    // What the TorchScript reader looks for: __setstate__, and the attention code's constant index.
    const at = rng.nextInt(s.length + 1);
    return { bytes: Buffer.from(s.slice(0, at) + '\n  def __setstate__(self, state):\n    pass\n' + s.slice(at), 'latin1'), detail: `__setstate__ @${at}` };
  }
  if (form === 1 || form === 2) {
    const numbers = [...s.matchAll(/CONSTANTS\.c(\d+)|\b\d+\b/g)];
    if (numbers.length) {
      const m = pick(rng, numbers);
      const value = pick(rng, ['0', '-1', '999999', '4294967296', '18446744073709551616', '1e309', '']);
      const start = m.index! + (m[1] !== undefined ? m[0].length - m[1].length : 0);
      const end = m.index! + m[0].length;
      return { bytes: Buffer.from(s.slice(0, start) + value + s.slice(end), 'latin1'), detail: `${m[0]} -> ${value}` };
    }
  }
  if (form === 3) {
    const at = rng.nextInt(s.length + 1);
    return { bytes: Buffer.from(s.slice(0, at), 'latin1'), detail: `cut at ${at}` };
  }
  if (form === 4) {
    const divs = [...s.matchAll(/torch\.(div|floor_divide)\(/g)];
    if (divs.length) {
      const m = pick(rng, divs);
      const insert = pick(rng, ['embed_dim, CONSTANTS.c99999, ', 'x, 0, ', '(((((', ')', 'CONSTANTS.c-1, ']);
      const at = m.index! + m[0].length;
      return { bytes: Buffer.from(s.slice(0, at) + insert + s.slice(at), 'latin1'), detail: `after ${m[0]} insert ${JSON.stringify(insert)}` };
    }
  }
  const r = rawMutate(text, rng, [], false);
  return { bytes: r.bytes, detail: `${r.strategy} ${r.detail}` };
}

function zipCase(seed: LoadedSeed, rng: Rng): { bytes: Buffer; strategy: string; detail: string } {
  const zip = seed.zip!;
  const strategy = weighted(rng, [
    ['zip-pickle', 30],
    ['zip-field', 15],
    ['zip-record-raw', 8],
    ['zip-text', seed.spec.kind === 'torchscript' ? 10 : 5],
    ['zip-storage', 8],
    ['zip-structure', 10],
    ['zip-rewrite-lie', 4],
  ] as const);
  const entries = zip.entries.slice();
  const rebuilt = (detail: string, list: ZipEntry[] = entries, extra: Partial<ZipArchive> = {}) => ({ bytes: writeZip({ ...zip, ...extra, entries: list }), strategy, detail });

  const mutateRecord = (): string => {
    // One pickle record (data.pkl, constants.pkl, or any other .pkl) changed pickle-aware.
    const i = pickEntry(rng, zip, (n) => n === 'data.pkl' || n === 'constants.pkl') ?? pickEntry(rng, zip, (n) => n.endsWith('.pkl'));
    if (i === undefined) return 'no pickle';
    const e = entries[i]!;
    const m = chance(rng, 0.85) ? mutatePickle(e.content, rng) : undefined;
    const r = m ?? { bytes: rawMutate(e.content, rng, [], false).bytes, detail: 'raw' };
    entries[i] = cloneEntry(e, { content: r.bytes });
    return `${baseName(e)}: ${r.detail}`;
  };

  switch (strategy) {
    case 'zip-pickle':
      return rebuilt(mutateRecord());
    case 'zip-record-raw': {
      const i = rng.nextInt(entries.length);
      const e = entries[i]!;
      const r = rawMutate(e.content, rng, [], false);
      entries[i] = cloneEntry(e, { content: r.bytes });
      return rebuilt(`${baseName(e)}: ${r.strategy} ${r.detail}`);
    }
    case 'zip-text': {
      const i = pickEntry(rng, zip, (n) => n.startsWith('code/') && n.endsWith('.py')) !== undefined && chance(rng, 0.6)
        ? pickEntry(rng, zip, (n) => n.startsWith('code/') && n.endsWith('.py'))!
        : pickEntry(rng, zip, (n) => !n.startsWith('data/') && !n.endsWith('.pkl')) ?? rng.nextInt(entries.length);
      const e = entries[i]!;
      const r = mutateText(rng, baseName(e), e.content);
      entries[i] = cloneEntry(e, { content: r.bytes });
      return rebuilt(`${baseName(e)}: ${r.detail}`);
    }
    case 'zip-storage': {
      const i = pickEntry(rng, zip, (n) => n.startsWith('data/'));
      if (i === undefined) return rebuilt(mutateRecord());
      const e = entries[i]!;
      const n = e.content.length;
      const form = rng.nextInt(6);
      if (form === 5) {
        entries.splice(i, 1);
        return rebuilt(`${baseName(e)} removed`);
      }
      const size = [0, Math.floor(n / 2), Math.max(0, n - 1), Math.max(0, n - 4), n + 1, n + 4096][form]!;
      const content = size <= n ? e.content.subarray(0, size) : Buffer.concat([e.content, Buffer.alloc(size - n, 0x41)]);
      entries[i] = cloneEntry(e, { content });
      return rebuilt(`${baseName(e)} ${n} -> ${size} bytes`);
    }
    case 'zip-structure': {
      const form = rng.nextInt(10);
      const i = rng.nextInt(entries.length);
      const e = entries[i]!;
      switch (form) {
        case 0: {
          const j = pickEntry(rng, zip, (n) => !n.startsWith('data/')) ?? i;
          const gone = entries.splice(j, 1)[0]!;
          return rebuilt(`${baseName(gone)} dropped`);
        }
        case 1: {
          const copy = cloneEntry(e, chance(rng, 0.5) ? { content: rawMutate(e.content, rng, [], false).bytes } : {});
          entries.splice(chance(rng, 0.5) ? i + 1 : entries.length, 0, copy);
          return rebuilt(`${baseName(e)} twice`);
        }
        case 2: {
          const top = e.name.toString('latin1').split('/')[0]!;
          const name = pick(rng, [
            `other/${baseName(e)}`,
            baseName(e),
            `../${baseName(e)}`,
            `${top}/../${baseName(e)}`,
            `${top}/a/b/${baseName(e)}`,
            `${top}/${baseName(e)}\0x`,
            '',
            '/',
            `${top}/${baseName(e).toUpperCase()}`,
            `${top}/${'x'.repeat(2000)}`,
            `/${top}/${baseName(e)}`,
          ]);
          entries[i] = cloneEntry(e, { name: Buffer.from(name, 'latin1') });
          return rebuilt(`${baseName(e)} renamed ${JSON.stringify(name.slice(0, 60))}`);
        }
        case 3: {
          const order = entries.map((_, k) => k);
          for (let k = order.length - 1; k > 0; k--) {
            const j = rng.nextInt(k + 1);
            [order[k], order[j]] = [order[j]!, order[k]!];
          }
          return rebuilt('records reordered', order.map((k) => entries[k]!));
        }
        case 4: {
          // Deflated records, as a re-zipped archive has them: valid, must load as the original.
          const all = chance(rng, 0.5);
          const list = entries.map((x, k) => (all || k === i ? cloneEntry(x, { method: 8, versionNeeded: 20 }) : x));
          return rebuilt(all ? 'all records deflated' : `${baseName(e)} deflated`, list);
        }
        case 5: {
          const method = pick(rng, [1, 6, 9, 12, 14, 93, 99, 0xffff]);
          entries[i] = cloneEntry(e, { method });
          return rebuilt(`${baseName(e)} method ${method}`);
        }
        case 6: {
          // A zip bomb: a record that inflates to 96 MiB, declared honestly.
          const j = pickEntry(rng, zip, (n) => n === 'data.pkl' || n.startsWith('data/')) ?? i;
          const b = bomb();
          // Patched in by hand: writeZip would deflate 96 MiB per case.
          return { bytes: replaceWithDeflated(zip, entries, j, b.deflated, b.size), strategy, detail: `${baseName(entries[j]!)} is a ${b.size >> 20} MiB zip bomb` };
        }
        case 7: {
          const extra = Array.from({ length: pick(rng, [100, 1000, 5000]) }, (_, k) =>
            cloneEntry(e, { name: Buffer.from(`${e.name.toString('latin1').split('/')[0]}/extra/${k}`, 'latin1'), content: Buffer.from('x') }),
          );
          return rebuilt(`${extra.length} extra records`, [...entries, ...extra]);
        }
        case 8: {
          const comment = Buffer.alloc(pick(rng, [1, 100, 65535]), pick(rng, [0, 0x50]));
          if (comment.length >= 4 && chance(rng, 0.5)) comment.writeUInt32LE(0x06054b50, comment.length - 22 >= 0 ? comment.length - 22 : 0);
          return rebuilt(`archive comment of ${comment.length}`, entries, { comment });
        }
        default: {
          const flags = e.flags ^ pick(rng, [1, 8, 0x800, 0x40]);
          entries[i] = cloneEntry(e, { flags });
          return rebuilt(`${baseName(e)} flags ${flags}`);
        }
      }
    }
    case 'zip-field':
    case 'zip-rewrite-lie': {
      let base = seed.bytes;
      let layout = seed.layout!;
      let before = '';
      if (strategy === 'zip-rewrite-lie') {
        before = `${mutateRecord()}; `;
        base = writeZip({ ...zip, entries });
        layout = zipLayout(base);
      }
      const fields = zipFields(base, layout);
      const group = weighted(rng, [
        ['end', 3],
        ['central', 4],
        ['local', 2],
        ['descriptor', 1],
      ] as const);
      const prefix = group === 'end' ? /^(eocd|eocd64|locator64)\./ : new RegExp(`^${group}\\[`);
      const candidates = fields.filter((f) => prefix.test(f.name));
      const f = candidates.length ? pick(rng, candidates) : pick(rng, fields);
      const out = Buffer.from(base);
      const current = readUIntLE(base, f.offset, f.width);
      const value = chance(rng, 0.6)
        ? pick(rng, BOUNDARY_INTS)
        : current + BigInt(pick(rng, [-4096, -64, -8, -1, 1, 2, 8, 64, 4096, 1 << 20]));
      writeUIntLE(out, f.offset, f.width, value);
      return { bytes: out, strategy, detail: `${before}${f.name} ${current} -> ${BigInt.asUintN(f.width * 8, value)}` };
    }
  }
}

/** The archive with record j replaced by already-deflated bytes that inflate to `size`. */
function replaceWithDeflated(zip: ZipArchive, entries: ZipEntry[], j: number, deflated: Buffer, size: number): Buffer {
  // Write with a placeholder, then patch that record's method, sizes and CRC in place.
  const marker = Buffer.from('FUZZ-BOMB-PLACEHOLDER');
  const list = entries.map((e, k) => (k === j ? cloneEntry(e, { method: 0, flags: e.flags & ~8, content: marker }) : e));
  const plain = writeZip({ ...zip, entries: list });
  const layout = zipLayout(plain);
  const r = layout.records[j]!;
  const out = Buffer.concat([plain.subarray(0, r.dataStart), deflated, plain.subarray(r.dataEnd)]);
  const delta = deflated.length - marker.length;
  // Patch: local header of j, then every later local offset, the central directory and end records.
  const crc = crc32OfZeros(size);
  out.writeUInt16LE(8, r.local + 8);
  out.writeUInt32LE(crc, r.local + 14);
  out.writeUInt32LE(deflated.length, r.local + 18);
  out.writeUInt32LE(size, r.local + 22);
  const shift = (p: number) => (p >= r.dataEnd ? p + delta : p);
  for (const rec of layout.records) {
    const c = shift(rec.central);
    out.writeUInt32LE(shift(rec.local), c + 42);
    if (rec === r) {
      out.writeUInt16LE(8, c + 10);
      out.writeUInt32LE(crc, c + 16);
      out.writeUInt32LE(deflated.length, c + 20);
      out.writeUInt32LE(size, c + 24);
    }
  }
  const eocd = shift(layout.eocd);
  out.writeUInt32LE(shift(layout.centralStart), eocd + 16);
  if (layout.eocd64 !== undefined && layout.locator64 !== undefined) {
    out.writeBigUInt64LE(BigInt(shift(layout.centralStart)), shift(layout.eocd64) + 48);
    out.writeBigUInt64LE(BigInt(shift(layout.eocd64)), shift(layout.locator64) + 8);
  }
  return out;
}

let zerosCrc: { size: number; crc: number } | undefined;
function crc32OfZeros(size: number): number {
  if (zerosCrc?.size !== size) {
    let crc = 0;
    const chunk = Buffer.alloc(1 << 20);
    for (let left = size; left > 0; left -= chunk.length) crc = zlib.crc32(left >= chunk.length ? chunk : chunk.subarray(0, left), crc);
    zerosCrc = { size, crc: crc >>> 0 };
  }
  return zerosCrc.crc;
}

// ---------------------------------------------------------------------------------------------
// (c) safetensors-aware

const DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'I16', 'I8', 'U8', 'U16', 'U32', 'U64', 'BOOL', 'F8_E4M3', 'F8_E5M2', 'C64', 'XX', '', 'f32', 42, null];
const ODD_NUMBERS = ['1e309', '-1e309', '18446744073709551616', '18446744073709551615', '9223372036854775808', '-0', '1.5', '01', '1e2', '0x10', '-1', 'NaN', 'Infinity', '4294967296', '9007199254740993'];

function nest(depth: number, open: string, close: string, inner = '0'): string {
  return open.repeat(depth) + inner + close.repeat(depth);
}

function safetensorsCase(seed: LoadedSeed, rng: Rng): { bytes: Buffer; strategy: string; detail: string } {
  const st = seed.safetensors!;
  const strategy = weighted(rng, [
    ['st-json', 40],
    ['st-text', 15],
    ['st-length', 10],
    ['st-data', 10],
    ['raw', 25],
  ] as const);
  const assemble = (header: string | Buffer, data: Buffer = st.data, lengthLie?: bigint) => {
    const h = typeof header === 'string' ? Buffer.from(header, 'utf8') : header;
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt.asUintN(64, lengthLie ?? BigInt(h.length)));
    return Buffer.concat([len, h, data]);
  };
  const lie = (): bigint | undefined => (chance(rng, 0.15) ? BigInt(st.headerLength) + BigInt(pick(rng, [-1, 1, -8, 8, 4096])) : undefined);

  if (strategy === 'raw') {
    const r = rawMutate(seed.bytes, rng, seed.hot, seed.big);
    return { ...r };
  }
  if (strategy === 'st-length') {
    const n = pick(rng, [0n, 1n, 2n, 7n, 8n, BigInt(st.headerLength) - 1n, BigInt(st.headerLength) + 1n, BigInt(seed.bytes.length - 8), BigInt(seed.bytes.length - 7), 2n ** 32n, (100n << 20n) + 1n, 2n ** 63n, 2n ** 64n - 1n]);
    const out = Buffer.from(seed.bytes);
    out.writeBigUInt64LE(BigInt.asUintN(64, n), 0);
    return { bytes: out, strategy, detail: `header length ${st.headerLength} -> ${BigInt.asUintN(64, n)}` };
  }
  if (strategy === 'st-data') {
    const json = JSON.parse(st.header) as Record<string, { dtype?: string; data_offsets?: [number, number] }>;
    const f32 = Object.entries(json).filter(([k, v]) => k !== '__metadata__' && v.dtype === 'F32' && v.data_offsets && v.data_offsets[1] > v.data_offsets[0]);
    const form = rng.nextInt(4);
    if (form === 0 && f32.length) {
      // A NaN or an Inf in one float tensor: refused at load, naming the tensor.
      const [name, v] = pick(rng, f32);
      const data = Buffer.from(st.data);
      const [a, b] = v.data_offsets!;
      const at = a + 4 * rng.nextInt((b - a) >> 2);
      data.writeUInt32LE(pick(rng, [0x7fc00000, 0x7f800000, 0xff800000, 0x7f800001]), at);
      return { bytes: assemble(st.header, data), strategy, detail: `non-finite in ${name}` };
    }
    if (form === 1) {
      const cut = pick(rng, [0, 1, 4, Math.floor(st.data.length / 2), st.data.length - 1]);
      return { bytes: assemble(st.header, st.data.subarray(0, Math.max(0, st.data.length - cut))), strategy, detail: `data ${cut} bytes short` };
    }
    if (form === 2) return { bytes: assemble(st.header, Buffer.concat([st.data, Buffer.alloc(pick(rng, [1, 7, 4096]), 0x41)])), strategy, detail: 'data with trailing bytes' };
    return { bytes: assemble(st.header, Buffer.alloc(0)), strategy, detail: 'no data' };
  }
  if (strategy === 'st-text') {
    // Bytes of the JSON text itself; the length still says how long it is (mostly).
    const header = Buffer.from(st.header, 'utf8');
    const form = rng.nextInt(4);
    let h: Buffer;
    let detail: string;
    if (form === 0) {
      const p = rng.nextInt(header.length);
      const c = pick(rng, ['{', '}', '[', ']', '"', ',', ':', '\\', '0', '-', 'e', '.', ' ', '\0', '\xff']);
      h = splice(header, p, p + (chance(rng, 0.5) ? 1 : 0), Buffer.from(c, 'latin1'));
      detail = `${JSON.stringify(c)} @${p}`;
    } else if (form === 1) {
      const p = rng.nextInt(header.length);
      h = header.subarray(0, p);
      detail = `cut at ${p}`;
    } else if (form === 2) {
      h = Buffer.concat([header, Buffer.from(pick(rng, ['   ', '\0\0\0', 'x', '}', ',{}', '\n']), 'latin1')]);
      detail = 'trailing bytes in header';
    } else {
      const r = rawMutate(header, rng, [], false);
      h = r.bytes;
      detail = `${r.strategy} ${r.detail}`;
    }
    const l = lie();
    return { bytes: assemble(h, st.data, l), strategy, detail: detail + (l !== undefined ? `, length ${l}` : '') };
  }

  // st-json: change the header as JSON.
  const json = JSON.parse(st.header) as Record<string, unknown>;
  const names = Object.keys(json).filter((k) => k !== '__metadata__');
  const name = pick(rng, names);
  const entry = { ...(json[name] as { dtype: unknown; shape: unknown; data_offsets: unknown }) };
  const offsets = entry.data_offsets as [number, number];
  let detail = '';
  let text: string | undefined; // when the change cannot be said as a JS object
  const form = rng.nextInt(13);
  switch (form) {
    case 0:
      entry.dtype = pick(rng, DTYPES);
      detail = `${name}.dtype = ${JSON.stringify(entry.dtype)}`;
      break;
    case 1: {
      const shapes: unknown[] = [[], [0], [-1], [2 ** 53], [2 ** 31, 2 ** 31], [2 ** 32, 2 ** 32, 2 ** 32], new Array(64).fill(1), new Array(1000).fill(1), [1.5], ['3'], [[3]], null, 'x', {}, [Number.MAX_SAFE_INTEGER, 0]];
      const shape = entry.shape as number[];
      if (chance(rng, 0.4) && Array.isArray(shape) && shape.length) {
        const s = shape.slice();
        const k = rng.nextInt(s.length);
        s[k] = pick(rng, [0, 1, -1, s[k]! + 1, s[k]! * 2, 2 ** 31, 2 ** 32, 2 ** 53]);
        entry.shape = s;
      } else entry.shape = pick(rng, shapes);
      detail = `${name}.shape = ${JSON.stringify(entry.shape).slice(0, 60)}`;
      break;
    }
    case 2: {
      const [a, b] = offsets;
      entry.data_offsets = pick(rng, [
        [b, a],
        [a, b + 1],
        [a, b - 1],
        [a, st.data.length + 1],
        [0, 2 ** 53],
        [-1, b],
        [a + 1, b + 1],
        [a, a],
        [a],
        [a, b, b],
        [1.5, b],
        null,
        [String(a), b],
      ]);
      detail = `${name}.data_offsets = ${JSON.stringify(entry.data_offsets)}`;
      break;
    }
    case 3: {
      // Offsets of another tensor: overlap, or the same bytes twice.
      const other = json[pick(rng, names)] as { data_offsets: [number, number] };
      const [c, d] = other.data_offsets;
      entry.data_offsets = chance(rng, 0.5) ? [c, d] : [c, c + (offsets[1] - offsets[0])];
      detail = `${name}.data_offsets overlap ${JSON.stringify(entry.data_offsets)}`;
      break;
    }
    case 4: {
      const field = pick(rng, ['dtype', 'shape', 'data_offsets', '*']);
      if (field === '*') {
        delete json[name];
        detail = `${name} removed`;
        text = JSON.stringify(json);
      } else {
        delete (entry as Record<string, unknown>)[field];
        detail = `${name}.${field} removed`;
      }
      break;
    }
    case 5: {
      const value = pick(rng, [0, 'x', null, [], [1, 2], true, { dtype: 'F32' }, { dtype: 'F32', shape: [1], data_offsets: [0, 4], extra: 1 }]);
      json[pick(rng, [name, 'new.tensor', '', '__metadata__'])] = value;
      detail = `entry set to ${JSON.stringify(value)}`;
      text = JSON.stringify(json);
      break;
    }
    case 6: {
      const newName = pick(rng, ['', '\0', 'a\0b', 'x'.repeat(70_000), '__metadata__', pick(rng, names), 'module.' + name, '\ud800', '../../x']);
      // A name equal to another is a duplicate key: say it as text.
      text = '{' + Object.entries(json).map(([k, v]) => `${JSON.stringify(k === name ? newName : k)}:${JSON.stringify(v)}`).join(',') + '}';
      detail = `${name} renamed ${JSON.stringify(newName.slice(0, 30))}`;
      break;
    }
    case 7: {
      const meta = pick(rng, [{ format: 'pt' }, { format: 1 }, { a: { b: 'c' } }, [], 'x', null, { x: 'y'.repeat(1 << 20) }, Object.fromEntries(Array.from({ length: 10_000 }, (_, k) => [`k${k}`, 'v']))]);
      json.__metadata__ = meta;
      detail = `__metadata__ = ${JSON.stringify(meta).slice(0, 40)}`;
      text = JSON.stringify(json);
      break;
    }
    case 8: {
      // A duplicate key: the same tensor name twice with different offsets.
      const copy = { ...entry, data_offsets: [0, offsets[1] - offsets[0]] };
      const body = JSON.stringify(json).slice(1, -1);
      text = `{${JSON.stringify(name)}:${JSON.stringify(copy)},${body}}`;
      detail = `${name} twice`;
      break;
    }
    case 9: {
      const depth = pick(rng, [63, 64, 65, 200, 10_000, 100_000]);
      const [o, c] = pick(rng, [['[', ']'], ['{"a":', '}']] as const);
      const where = rng.nextInt(3);
      const body = JSON.stringify(json).slice(1, -1);
      const deep = nest(depth, o, c);
      text = where === 0 ? `{"deep":${deep},${body}}` : where === 1 ? `{${body},"__metadata__":{"x":${deep}}}` : `{${body.replace(/"shape":/, `"shape":${'['.repeat(depth)}`)}${']'.repeat(depth)}}`;
      detail = `nested ${depth} deep (${where})`;
      break;
    }
    case 10: {
      // A number in the text replaced by one JSON can say but a double or u64 cannot.
      const t = JSON.stringify(json);
      const numbers = [...t.matchAll(/-?\d+(\.\d+)?([eE][+-]?\d+)?/g)].filter((m) => !/[A-Za-z_]/.test(t[m.index! - 1] ?? ''));
      if (numbers.length) {
        const m = pick(rng, numbers);
        const n = pick(rng, ODD_NUMBERS);
        text = t.slice(0, m.index!) + n + t.slice(m.index! + m[0].length);
        detail = `${m[0]} -> ${n} @${m.index}`;
      } else text = t;
      break;
    }
    case 11:
      (entry as Record<string, unknown>)[pick(rng, ['extra', 'dtype ', 'DTYPE', ''])] = pick(rng, [1, 'x', null]);
      detail = `${name} extra field`;
      break;
    default:
      text = pick(rng, ['[]', 'null', '"x"', '{}', '0', '', '{"__metadata__":{}}', ' '.repeat(64)]);
      detail = `header ${JSON.stringify(text)}`;
  }
  if (text === undefined) {
    json[name] = entry;
    text = JSON.stringify(json);
  }
  // safetensors pads the header with spaces to 8 bytes; keep that sometimes.
  if (chance(rng, 0.5)) text += ' '.repeat((8 - (Buffer.byteLength(text) % 8)) % 8);
  const l = lie();
  return { bytes: assemble(text, st.data, l), strategy, detail: detail + (l !== undefined ? `, length ${l}` : '') };
}

// ---------------------------------------------------------------------------------------------
// Legacy torch.save: a run of pickles, then raw storages.

function legacyCase(seed: LoadedSeed, rng: Rng): { bytes: Buffer; strategy: string; detail: string } {
  if (chance(rng, 0.5)) return rawMutate(seed.bytes, rng, seed.hot, seed.big);
  // Which of the stream's pickles (magic number, protocol, sys info, the object, storage keys).
  const starts = [0];
  for (let k = 0; k < 4; k++) {
    const ops = scanPickle(seed.bytes, starts[starts.length - 1]);
    const last = ops[ops.length - 1];
    if (!last || last.name !== 'STOP') break;
    starts.push(last.end);
  }
  const from = pick(rng, starts);
  const head = seed.bytes.subarray(0, from);
  const m = mutatePickle(seed.bytes.subarray(from), rng);
  if (!m) return rawMutate(seed.bytes, rng, seed.hot, seed.big);
  return { bytes: Buffer.concat([head, m.bytes]), strategy: 'pickle', detail: `pickle @${from}: ${m.detail}` };
}

// ---------------------------------------------------------------------------------------------

/** Which seed case `index` of campaign `seed` uses (without making the case). */
export function seedOfCase(seed: number, index: number): SeedSpec {
  const rng = createRng(seed, index);
  return SEED_TABLE[seedIndex(rng)]!;
}

function seedIndex(rng: Rng): number {
  const total = SEED_TABLE.reduce((s, x) => s + x.weight, 0);
  let x = rng.next() * total;
  for (let i = 0; i < SEED_TABLE.length; i++) if ((x -= SEED_TABLE[i]!.weight) < 0) return i;
  return SEED_TABLE.length - 1;
}

/** Case `index` of campaign `seed`: the same bytes on every run and machine (given the same seeds). */
export function makeCase(set: SeedSet, seed: number, index: number): FuzzCase {
  const rng = createRng(seed, index);
  const spec = SEED_TABLE[seedIndex(rng)]!;
  const ext = spec.kind === 'safetensors' ? '.safetensors' : '.pt';
  const base = { index, seed: spec.name, kind: spec.kind, ext };
  const loaded = set.seeds.get(spec.name);
  if (!loaded) return { ...base, strategy: 'skipped', detail: '', skipped: set.missing.get(spec.name) ?? 'seed missing' };
  let r: { bytes: Buffer; strategy: string; detail: string };
  if (spec.kind === 'safetensors') r = safetensorsCase(loaded, rng);
  else if (spec.kind === 'legacy') r = legacyCase(loaded, rng);
  else r = chance(rng, 0.25) ? rawMutate(loaded.bytes, rng, loaded.hot, loaded.big) : zipCase(loaded, rng);
  // Now and then a second, raw mutation on top of the first.
  if (chance(rng, 0.08)) {
    const again = rawMutate(r.bytes, rng, [[0, Math.min(r.bytes.length, 4096)], [Math.max(0, r.bytes.length - 4096), r.bytes.length]], loaded.big);
    r = { bytes: again.bytes, strategy: r.strategy, detail: `${r.detail}; then ${again.strategy} ${again.detail}` };
  }
  return { ...base, strategy: r.strategy, detail: r.detail, bytes: r.bytes };
}
