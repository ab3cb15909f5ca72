/**
 * A small zip reader/writer for the fuzzer: enough of the format to take a PyTorch archive apart
 * (torch.save's stored records with data descriptors and a zip64 end record; torch.jit.save's padded
 * local headers), change one record, and write it back with correct CRC-32s, sizes and offsets, so a
 * mutation inside a record gets past the zip reader's checks and reaches the parser behind it.
 * It also says where each header field lies, so a mutation can lie in exactly one of them.
 */
import zlib from 'node:zlib';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;
const SIG_DESCRIPTOR = 0x08074b50;

export interface ZipEntry {
  name: Buffer;
  /** 0 (stored) or 8 (deflated) as read; the writer deflates `content` when it is 8. */
  method: number;
  flags: number;
  versionMade: number;
  versionNeeded: number;
  time: number;
  date: number;
  internalAttr: number;
  externalAttr: number;
  localExtra: Buffer;
  centralExtra: Buffer;
  comment: Buffer;
  /** The record's bytes, uncompressed. */
  content: Buffer;
}

export interface ZipArchive {
  entries: ZipEntry[];
  /** Whether the end records include the zip64 pair (torch.save writes it). */
  zip64: boolean;
  comment: Buffer;
}

/** Where a header field lies in a file: byte offset and width. */
export interface ZipField {
  name: string;
  offset: number;
  width: 1 | 2 | 4 | 8;
}

export interface ZipLayout {
  eocd: number;
  eocd64?: number;
  locator64?: number;
  centralStart: number;
  centralEnd: number;
  /** Per entry, in central-directory order. */
  records: { name: string; central: number; local: number; dataStart: number; dataEnd: number; descriptor?: number }[];
}

export function isZip(bytes: Buffer): boolean {
  return bytes.length >= 4 && bytes.readUInt32LE(0) === SIG_LOCAL;
}

function findEocd(bytes: Buffer): number {
  const lowest = Math.max(0, bytes.length - 22 - 0xffff);
  for (let i = bytes.length - 22; i >= lowest; i--) if (bytes.readUInt32LE(i) === SIG_EOCD) return i;
  throw new Error('no end-of-central-directory record');
}

/** Where everything is; throws on a file this small reader does not understand. */
export function zipLayout(bytes: Buffer): ZipLayout {
  const eocd = findEocd(bytes);
  let count = bytes.readUInt16LE(eocd + 10);
  let centralStart = bytes.readUInt32LE(eocd + 16);
  let eocd64: number | undefined;
  let locator64: number | undefined;
  if (eocd >= 20 && bytes.readUInt32LE(eocd - 20) === SIG_LOCATOR64) {
    locator64 = eocd - 20;
    const at = Number(bytes.readBigUInt64LE(locator64 + 8));
    if (at + 56 <= bytes.length && bytes.readUInt32LE(at) === SIG_EOCD64) {
      eocd64 = at;
      count = Number(bytes.readBigUInt64LE(at + 32));
      centralStart = Number(bytes.readBigUInt64LE(at + 48));
    }
  }
  const records: ZipLayout['records'] = [];
  let p = centralStart;
  for (let i = 0; i < count; i++) {
    if (p + 46 > bytes.length || bytes.readUInt32LE(p) !== SIG_CENTRAL) throw new Error(`central entry ${i} missing`);
    const flags = bytes.readUInt16LE(p + 8);
    let csize = bytes.readUInt32LE(p + 20);
    const nameLen = bytes.readUInt16LE(p + 28);
    const extraLen = bytes.readUInt16LE(p + 30);
    const commentLen = bytes.readUInt16LE(p + 32);
    let local = bytes.readUInt32LE(p + 42);
    const name = bytes.subarray(p + 46, p + 46 + nameLen).toString('latin1');
    // zip64 extra: the 0xFFFFFFFF fields, in the order usize, csize, offset.
    const extra = bytes.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
    for (let q = 0; q + 4 <= extra.length; ) {
      const id = extra.readUInt16LE(q);
      const len = extra.readUInt16LE(q + 2);
      if (id === 0x0001) {
        let r = q + 4;
        if (bytes.readUInt32LE(p + 24) === 0xffffffff && r + 8 <= q + 4 + len) r += 8;
        if (csize === 0xffffffff && r + 8 <= q + 4 + len) ((csize = Number(extra.readBigUInt64LE(r))), (r += 8));
        if (local === 0xffffffff && r + 8 <= q + 4 + len) local = Number(extra.readBigUInt64LE(r));
      }
      q += 4 + len;
    }
    if (local + 30 > bytes.length || bytes.readUInt32LE(local) !== SIG_LOCAL) throw new Error(`local header of ${name} missing`);
    const dataStart = local + 30 + bytes.readUInt16LE(local + 26) + bytes.readUInt16LE(local + 28);
    const dataEnd = dataStart + csize;
    if (dataEnd > bytes.length) throw new Error(`data of ${name} past the end`);
    let descriptor: number | undefined;
    if (flags & 8) descriptor = dataEnd;
    records.push({ name, central: p, local, dataStart, dataEnd, descriptor });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return { eocd, eocd64, locator64, centralStart, centralEnd: p, records };
}

/** Takes a zip apart into records (stored and deflated ones). */
export function parseZip(bytes: Buffer): ZipArchive {
  const layout = zipLayout(bytes);
  const entries: ZipEntry[] = layout.records.map((r) => {
    const c = r.central;
    const method = bytes.readUInt16LE(c + 10);
    const nameLen = bytes.readUInt16LE(c + 28);
    const extraLen = bytes.readUInt16LE(c + 30);
    const commentLen = bytes.readUInt16LE(c + 32);
    const raw = bytes.subarray(r.dataStart, r.dataEnd);
    let content: Buffer;
    if (method === 0) content = raw;
    else if (method === 8) content = zlib.inflateRawSync(raw);
    else throw new Error(`${r.name}: compression method ${method}`);
    const localNameLen = bytes.readUInt16LE(r.local + 26);
    return {
      name: Buffer.from(bytes.subarray(c + 46, c + 46 + nameLen)),
      method,
      flags: bytes.readUInt16LE(c + 8),
      versionMade: bytes.readUInt16LE(c + 4),
      versionNeeded: bytes.readUInt16LE(c + 6),
      time: bytes.readUInt16LE(c + 12),
      date: bytes.readUInt16LE(c + 14),
      internalAttr: bytes.readUInt16LE(c + 36),
      externalAttr: bytes.readUInt32LE(c + 38),
      localExtra: Buffer.from(bytes.subarray(r.local + 30 + localNameLen, r.dataStart)),
      centralExtra: Buffer.from(bytes.subarray(c + 46 + nameLen, c + 46 + nameLen + extraLen)),
      comment: Buffer.from(bytes.subarray(c + 46 + nameLen + extraLen, c + 46 + nameLen + extraLen + commentLen)),
      content,
    };
  });
  const commentLen = bytes.readUInt16LE(layout.eocd + 20);
  return { entries, zip64: layout.eocd64 !== undefined, comment: Buffer.from(bytes.subarray(layout.eocd + 22, layout.eocd + 22 + commentLen)) };
}

/**
 * torch's writers pad the local extra field ("FB" + length + 'Z's) so that each record's data starts
 * on a 64-byte boundary; keep that, re-sized for where the record now lands.
 */
function alignedLocalExtra(extra: Buffer, headerEnd: number): Buffer {
  if (extra.length < 4 || extra[0] !== 0x46 || extra[1] !== 0x42) return extra;
  const rest = extra.subarray(4 + extra.readUInt16LE(2));
  const base = headerEnd + 4 + rest.length;
  const pad = (64 - (base % 64)) % 64;
  const out = Buffer.alloc(4 + pad + rest.length, 0x5a);
  out.write('FB', 0, 'latin1');
  out.writeUInt16LE(pad, 2);
  rest.copy(out, 4 + pad);
  return out;
}

/** Writes the archive back with every CRC-32, size, count and offset correct. */
export function writeZip(zip: ZipArchive): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  const push = (b: Buffer) => {
    parts.push(b);
    at += b.length;
  };
  const centrals: Buffer[] = [];
  for (const e of zip.entries) {
    const data = e.method === 8 ? zlib.deflateRawSync(e.content, { level: 1 }) : e.content;
    const crc = zlib.crc32(e.content) >>> 0;
    const descriptor = (e.flags & 8) !== 0;
    const offset = at;
    const extra = alignedLocalExtra(e.localExtra, offset + 30 + e.name.length);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(SIG_LOCAL, 0);
    local.writeUInt16LE(e.versionNeeded, 4);
    local.writeUInt16LE(e.flags, 6);
    local.writeUInt16LE(e.method, 8);
    local.writeUInt16LE(e.time, 10);
    local.writeUInt16LE(e.date, 12);
    local.writeUInt32LE(descriptor ? 0 : crc, 14);
    local.writeUInt32LE(descriptor ? 0 : data.length, 18);
    local.writeUInt32LE(descriptor ? 0 : e.content.length, 22);
    local.writeUInt16LE(e.name.length, 26);
    local.writeUInt16LE(extra.length, 28);
    push(local);
    push(e.name);
    push(extra);
    push(data);
    if (descriptor) {
      const d = Buffer.alloc(16);
      d.writeUInt32LE(SIG_DESCRIPTOR, 0);
      d.writeUInt32LE(crc, 4);
      d.writeUInt32LE(data.length, 8);
      d.writeUInt32LE(e.content.length, 12);
      push(d);
    }
    const c = Buffer.alloc(46);
    c.writeUInt32LE(SIG_CENTRAL, 0);
    c.writeUInt16LE(e.versionMade, 4);
    c.writeUInt16LE(e.versionNeeded, 6);
    c.writeUInt16LE(e.flags, 8);
    c.writeUInt16LE(e.method, 10);
    c.writeUInt16LE(e.time, 12);
    c.writeUInt16LE(e.date, 14);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(data.length, 20);
    c.writeUInt32LE(e.content.length, 24);
    c.writeUInt16LE(e.name.length, 28);
    c.writeUInt16LE(e.centralExtra.length, 30);
    c.writeUInt16LE(e.comment.length, 32);
    c.writeUInt16LE(e.internalAttr, 36);
    c.writeUInt32LE(e.externalAttr, 38);
    c.writeUInt32LE(offset, 42);
    centrals.push(c, e.name, e.centralExtra, e.comment);
  }
  const centralStart = at;
  for (const c of centrals) push(c);
  const centralSize = at - centralStart;
  const n = zip.entries.length;
  if (zip.zip64) {
    const eocd64Start = at;
    const r = Buffer.alloc(56);
    r.writeUInt32LE(SIG_EOCD64, 0);
    r.writeBigUInt64LE(44n, 4);
    r.writeUInt16LE(0x031e, 12);
    r.writeUInt16LE(45, 14);
    r.writeBigUInt64LE(BigInt(n), 24);
    r.writeBigUInt64LE(BigInt(n), 32);
    r.writeBigUInt64LE(BigInt(centralSize), 40);
    r.writeBigUInt64LE(BigInt(centralStart), 48);
    push(r);
    const l = Buffer.alloc(20);
    l.writeUInt32LE(SIG_LOCATOR64, 0);
    l.writeBigUInt64LE(BigInt(eocd64Start), 8);
    l.writeUInt32LE(1, 16);
    push(l);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(SIG_EOCD, 0);
  end.writeUInt16LE(Math.min(n, 0xffff), 8);
  end.writeUInt16LE(Math.min(n, 0xffff), 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(centralStart, 16);
  end.writeUInt16LE(zip.comment.length, 20);
  push(end);
  push(zip.comment);
  return Buffer.concat(parts, at);
}

/** Every header field of every record and end record, named, for a mutation to lie in one. */
export function zipFields(bytes: Buffer, layout: ZipLayout = zipLayout(bytes)): ZipField[] {
  const fields: ZipField[] = [];
  const add = (prefix: string, base: number, list: [string, number, 1 | 2 | 4 | 8][]) => {
    for (const [name, off, width] of list) if (base + off + width <= bytes.length) fields.push({ name: `${prefix}.${name}`, offset: base + off, width });
  };
  add('eocd', layout.eocd, [
    ['disk', 4, 2],
    ['centralDisk', 6, 2],
    ['entriesOnDisk', 8, 2],
    ['entries', 10, 2],
    ['centralSize', 12, 4],
    ['centralOffset', 16, 4],
    ['commentLength', 20, 2],
  ]);
  if (layout.locator64 !== undefined)
    add('locator64', layout.locator64, [
      ['disk', 4, 4],
      ['eocd64Offset', 8, 8],
      ['disks', 16, 4],
    ]);
  if (layout.eocd64 !== undefined)
    add('eocd64', layout.eocd64, [
      ['recordSize', 4, 8],
      ['versionNeeded', 14, 2],
      ['disk', 16, 4],
      ['centralDisk', 20, 4],
      ['entriesOnDisk', 24, 8],
      ['entries', 32, 8],
      ['centralSize', 40, 8],
      ['centralOffset', 48, 8],
    ]);
  for (const r of layout.records) {
    add(`central[${r.name}]`, r.central, [
      ['versionNeeded', 6, 2],
      ['flags', 8, 2],
      ['method', 10, 2],
      ['crc', 16, 4],
      ['compressedSize', 20, 4],
      ['size', 24, 4],
      ['nameLength', 28, 2],
      ['extraLength', 30, 2],
      ['commentLength', 32, 2],
      ['diskStart', 34, 2],
      ['localOffset', 42, 4],
    ]);
    add(`local[${r.name}]`, r.local, [
      ['versionNeeded', 4, 2],
      ['flags', 6, 2],
      ['method', 8, 2],
      ['crc', 14, 4],
      ['compressedSize', 18, 4],
      ['size', 22, 4],
      ['nameLength', 26, 2],
      ['extraLength', 28, 2],
    ]);
    if (r.descriptor !== undefined && r.descriptor + 16 <= bytes.length && bytes.readUInt32LE(r.descriptor) === SIG_DESCRIPTOR)
      add(`descriptor[${r.name}]`, r.descriptor, [
        ['crc', 4, 4],
        ['compressedSize', 8, 4],
        ['size', 12, 4],
      ]);
  }
  return fields;
}
