/**
 * Pickle-aware mutations for the fuzzer: the stream is split into opcodes (protocols 0–5), and a
 * mutation changes what a parser acts on — an opcode for another, an integer argument for a boundary
 * value, a length prefix that lies, a global's name, a span repeated or nested — rather than random
 * bytes that a parser refuses at the first opcode.
 */
import type { Rng } from '../../src/util/prng.js';

/** How an opcode's argument is laid out. */
type Arg =
  | 'none'
  | 'u1' // fixed-width little-endian unsigned
  | 'u2'
  | 'i4' // BININT, signed
  | 'u4'
  | 'u8'
  | 'f8' // BINFLOAT, big-endian double
  | 'len1' // length prefix, then that many bytes
  | 'len4'
  | 'len8'
  | 'line' // text up to '\n'
  | 'line2'; // two such lines (GLOBAL, INST)

const OPCODES: Record<number, [name: string, arg: Arg]> = {};
function op(ch: string | number, name: string, arg: Arg): void {
  OPCODES[typeof ch === 'string' ? ch.charCodeAt(0) : ch] = [name, arg];
}
op('(', 'MARK', 'none');
op('.', 'STOP', 'none');
op('0', 'POP', 'none');
op('1', 'POP_MARK', 'none');
op('2', 'DUP', 'none');
op('F', 'FLOAT', 'line');
op('I', 'INT', 'line');
op('J', 'BININT', 'i4');
op('K', 'BININT1', 'u1');
op('L', 'LONG', 'line');
op('M', 'BININT2', 'u2');
op('N', 'NONE', 'none');
op('P', 'PERSID', 'line');
op('Q', 'BINPERSID', 'none');
op('R', 'REDUCE', 'none');
op('S', 'STRING', 'line');
op('T', 'BINSTRING', 'len4');
op('U', 'SHORT_BINSTRING', 'len1');
op('V', 'UNICODE', 'line');
op('X', 'BINUNICODE', 'len4');
op('a', 'APPEND', 'none');
op('b', 'BUILD', 'none');
op('c', 'GLOBAL', 'line2');
op('d', 'DICT', 'none');
op('}', 'EMPTY_DICT', 'none');
op('e', 'APPENDS', 'none');
op('g', 'GET', 'line');
op('h', 'BINGET', 'u1');
op('i', 'INST', 'line2');
op('j', 'LONG_BINGET', 'u4');
op('l', 'LIST', 'none');
op(']', 'EMPTY_LIST', 'none');
op('o', 'OBJ', 'none');
op('p', 'PUT', 'line');
op('q', 'BINPUT', 'u1');
op('r', 'LONG_BINPUT', 'u4');
op('s', 'SETITEM', 'none');
op('t', 'TUPLE', 'none');
op(')', 'EMPTY_TUPLE', 'none');
op('u', 'SETITEMS', 'none');
op('G', 'BINFLOAT', 'f8');
op(0x80, 'PROTO', 'u1');
op(0x81, 'NEWOBJ', 'none');
op(0x82, 'EXT1', 'u1');
op(0x83, 'EXT2', 'u2');
op(0x84, 'EXT4', 'u4');
op(0x85, 'TUPLE1', 'none');
op(0x86, 'TUPLE2', 'none');
op(0x87, 'TUPLE3', 'none');
op(0x88, 'NEWTRUE', 'none');
op(0x89, 'NEWFALSE', 'none');
op(0x8a, 'LONG1', 'len1');
op(0x8b, 'LONG4', 'len4');
op('B', 'BINBYTES', 'len4');
op('C', 'SHORT_BINBYTES', 'len1');
op(0x8c, 'SHORT_BINUNICODE', 'len1');
op(0x8d, 'BINUNICODE8', 'len8');
op(0x8e, 'BINBYTES8', 'len8');
op(0x8f, 'EMPTY_SET', 'none');
op(0x90, 'ADDITEMS', 'none');
op(0x91, 'FROZENSET', 'none');
op(0x92, 'NEWOBJ_EX', 'none');
op(0x93, 'STACK_GLOBAL', 'none');
op(0x94, 'MEMOIZE', 'none');
op(0x95, 'FRAME', 'u8');
op(0x96, 'BYTEARRAY8', 'len8');
op(0x97, 'NEXT_BUFFER', 'none');
op(0x98, 'READONLY_BUFFER', 'none');

const OPCODE_BYTES = Object.keys(OPCODES).map(Number);
const BY_ARG = new Map<Arg, number[]>();
for (const code of OPCODE_BYTES) {
  const arg = OPCODES[code]![1];
  BY_ARG.set(arg, [...(BY_ARG.get(arg) ?? []), code]);
}

export interface PickleOp {
  code: number;
  name: string;
  arg: Arg;
  /** The opcode byte's offset; the argument runs from start+1 to end. */
  start: number;
  end: number;
  /** For length-prefixed ops, where the payload starts. */
  payload?: number;
}

/** The opcodes of the first pickle in `bytes` (up to and including STOP, or as far as they parse). */
export function scanPickle(bytes: Buffer, from = 0): PickleOp[] {
  const ops: PickleOp[] = [];
  let p = from;
  while (p < bytes.length) {
    const code = bytes[p]!;
    const def = OPCODES[code];
    if (!def) break;
    const [name, arg] = def;
    let end = p + 1;
    let payload: number | undefined;
    switch (arg) {
      case 'none':
        break;
      case 'u1':
        end += 1;
        break;
      case 'u2':
        end += 2;
        break;
      case 'i4':
      case 'u4':
        end += 4;
        break;
      case 'u8':
      case 'f8':
        end += 8;
        break;
      case 'len1':
        if (end + 1 > bytes.length) return ops;
        payload = end + 1;
        end = payload + bytes[end]!;
        break;
      case 'len4':
        if (end + 4 > bytes.length) return ops;
        payload = end + 4;
        end = payload + bytes.readUInt32LE(end);
        break;
      case 'len8': {
        if (end + 8 > bytes.length) return ops;
        payload = end + 8;
        const n = bytes.readBigUInt64LE(end);
        if (n > BigInt(bytes.length)) return ops;
        end = payload + Number(n);
        break;
      }
      case 'line':
      case 'line2': {
        let q = bytes.indexOf(0x0a, end);
        if (q < 0) return ops;
        if (arg === 'line2') q = bytes.indexOf(0x0a, q + 1);
        if (q < 0) return ops;
        end = q + 1;
        break;
      }
    }
    if (end > bytes.length) break;
    ops.push({ code, name, arg, start: p, end, payload });
    p = end;
    if (name === 'STOP') break;
  }
  return ops;
}

const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.nextInt(items.length)]!;

/** Integers at the edges of what a shape, stride, offset, memo index or length can hold. */
export const BOUNDARY_INTS: readonly bigint[] = [
  0n, 1n, 2n, 3n, 7n, 8n, 255n, 256n, 65535n, 65536n, -1n, -2n, -128n, -32768n,
  2n ** 31n - 1n, 2n ** 31n, -(2n ** 31n), 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n, 2n ** 62n,
  2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n, 2n ** 64n, 10n ** 30n, -(10n ** 30n),
];

function fitWidth(value: bigint, bytes: number, signed: boolean): bigint {
  return signed ? BigInt.asIntN(bytes * 8, value) : BigInt.asUintN(bytes * 8, value);
}

/** The pickle encoding of an integer in the form a writer would choose, or a deliberately odd one. */
function encodeInt(value: bigint, rng: Rng): Buffer {
  const form = rng.nextInt(4);
  if (form === 0 && value >= 0n && value < 256n) return Buffer.from([0x4b, Number(value)]);
  if (form === 1 && value >= 0n && value < 65536n) {
    const b = Buffer.alloc(3);
    b[0] = 0x4d;
    b.writeUInt16LE(Number(value), 1);
    return b;
  }
  if (form <= 2 && value >= -(2n ** 31n) && value < 2n ** 31n) {
    const b = Buffer.alloc(5);
    b[0] = 0x4a;
    b.writeInt32LE(Number(value), 1);
    return b;
  }
  // LONG1: little-endian two's complement of minimal length (or padded).
  const out: number[] = [];
  let v = value;
  do {
    out.push(Number(BigInt.asUintN(8, v)));
    v >>= 8n;
  } while (!(v === 0n && (out[out.length - 1]! & 0x80) === 0) && !(v === -1n && (out[out.length - 1]! & 0x80) !== 0));
  if (rng.nextInt(8) === 0) out.push(value < 0n ? 0xff : 0);
  return Buffer.from([0x8a, out.length, ...out]);
}

/** Strings a restricted unpickler decides on: globals, storage types, keys, devices. */
const GLOBALS = [
  'torch._utils\n_rebuild_tensor_v2',
  'torch._utils\n_rebuild_tensor',
  'torch._utils\n_rebuild_parameter',
  'torch._utils\n_rebuild_parameter_with_state',
  'torch._utils\n_rebuild_qtensor',
  'torch._utils\n_rebuild_sparse_tensor',
  'torch._utils\n_rebuild_meta_tensor_no_storage',
  'torch\nFloatStorage',
  'torch\nHalfStorage',
  'torch\nBFloat16Storage',
  'torch\nDoubleStorage',
  'torch\nLongStorage',
  'torch\nIntStorage',
  'torch\nBoolStorage',
  'torch\nByteStorage',
  'torch\nComplexFloatStorage',
  'torch\nQInt8Storage',
  'torch.storage\nUntypedStorage',
  'torch\nSize',
  'torch\ndevice',
  'torch\nfloat32',
  'torch\nfrom_file',
  'torch\nload',
  'collections\nOrderedDict',
  'collections\ndefaultdict',
  'builtins\nset',
  'builtins\neval',
  '__builtin__\nset',
  'os\nsystem',
  'posix\nsystem',
  'subprocess\nPopen',
  '_codecs\nencode',
  'numpy.core.multiarray\n_reconstruct',
  'torch.jit._pickle\nbuild_intlist',
  'torch.jit._pickle\nbuild_tensorlist',
  'torch.jit._pickle\nrestore_type_tag',
  '__torch__\nCLIP',
  '__torch__.torch.classes.quantized\nLinearPackedParamsBase',
  '__torch__.torch.nn.modules.linear\nLinear',
  '\n',
  'torch._utils\n',
];
const STRINGS = [
  '', '0', '1', '9', '99999', '-1', '4294967296', 'data/0', '../0', '../../etc/passwd', '/etc/passwd', 'data.pkl',
  'cpu', 'cuda', 'cuda:0', 'cuda:99', 'meta', 'mps', 'xla:0', 'storage', 'cpu\0cuda',
  'FloatStorage', 'HalfStorage', 'LongStorage', 'BoolStorage', 'UntypedStorage', 'QInt8Storage',
  'state_dict', 'model', 'module.', 'visual.conv1.weight', 'positional_embedding', 'logit_scale',
  'input_resolution', 'context_length', 'vocab_size', '__setstate__', 'training', '_parameters', '_buffers',
  'latin1', 'utf-8', '\u00ff\u00fe', '\ud800', 'x'.repeat(300), 'y'.repeat(70_000),
];

function lenPrefixed(code: number, payload: Buffer): Buffer {
  const arg = OPCODES[code]?.[1];
  if (arg === 'len1' && payload.length < 256) return Buffer.concat([Buffer.from([code, payload.length]), payload]);
  if (arg === 'len8') {
    const h = Buffer.alloc(9);
    h[0] = code;
    h.writeBigUInt64LE(BigInt(payload.length), 1);
    return Buffer.concat([h, payload]);
  }
  const h = Buffer.alloc(5);
  h[0] = arg === 'len4' ? code : 0x58; // BINUNICODE for anything too long for a 1-byte length
  h.writeUInt32LE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

const splice = (bytes: Buffer, start: number, end: number, insert: Buffer): Buffer =>
  Buffer.concat([bytes.subarray(0, start), insert, bytes.subarray(end)]);

export interface PickleMutation {
  bytes: Buffer;
  detail: string;
}

/**
 * One pickle-aware mutation of the first pickle in `bytes` (anything after its STOP is kept), or
 * undefined when no opcode could be scanned.
 */
export function mutatePickle(bytes: Buffer, rng: Rng): PickleMutation | undefined {
  const ops = scanPickle(bytes);
  if (ops.length === 0) return undefined;
  const anyOp = () => pick(rng, ops);
  const where = (predicate: (o: PickleOp) => boolean) => {
    const found = ops.filter(predicate);
    return found.length ? pick(rng, found) : undefined;
  };
  const boundary = () => pick(rng, BOUNDARY_INTS);
  const kind = rng.nextInt(15);
  switch (kind) {
    case 0: {
      // An opcode for another with the same argument layout: the stream still scans.
      const o = anyOp();
      const peers = BY_ARG.get(o.arg)!.filter((c) => c !== o.code);
      if (!peers.length) break;
      const code = pick(rng, peers);
      const out = Buffer.from(bytes);
      out[o.start] = code;
      return { bytes: out, detail: `opcode ${o.name}@${o.start} -> ${OPCODES[code]![0]}` };
    }
    case 1: {
      // An opcode for any byte at all.
      const o = anyOp();
      const code = rng.nextInt(2) ? pick(rng, OPCODE_BYTES) : rng.nextInt(256);
      const out = Buffer.from(bytes);
      out[o.start] = code;
      return { bytes: out, detail: `opcode ${o.name}@${o.start} -> byte 0x${code.toString(16)}` };
    }
    case 2:
    case 3: {
      // A fixed-width integer argument (shape, stride, offset, memo index, protocol) at a boundary.
      const o = where((x) => ['u1', 'u2', 'i4', 'u4', 'u8'].includes(x.arg)) ?? anyOp();
      if (!['u1', 'u2', 'i4', 'u4', 'u8'].includes(o.arg)) break;
      const width = o.end - o.start - 1;
      const v = fitWidth(rng.nextInt(3) ? boundary() : BigInt(rng.nextInt(2 ** 16)), width, o.arg === 'i4');
      const out = Buffer.from(bytes);
      if (width === 1) out.writeUInt8(Number(v), o.start + 1);
      else if (width === 2) out.writeUInt16LE(Number(v), o.start + 1);
      else if (width === 4) o.arg === 'i4' ? out.writeInt32LE(Number(v), o.start + 1) : out.writeUInt32LE(Number(v), o.start + 1);
      else out.writeBigUInt64LE(v, o.start + 1);
      return { bytes: out, detail: `${o.name}@${o.start} arg -> ${v}` };
    }
    case 4: {
      // An integer replaced by any boundary integer, in any encoding (LONG1 for the big ones).
      const o = where((x) => ['BININT', 'BININT1', 'BININT2', 'LONG1'].includes(x.name));
      if (!o) break;
      const v = boundary();
      return { bytes: splice(bytes, o.start, o.end, encodeInt(v, rng)), detail: `int ${o.name}@${o.start} -> ${v}` };
    }
    case 5: {
      // A length prefix that lies about its payload.
      const o = where((x) => x.arg === 'len1' || x.arg === 'len4' || x.arg === 'len8');
      if (!o) break;
      const have = o.end - o.payload!;
      const choices = [0, have - 1, have + 1, have + 7, 255, 2 ** 31 - 1, 2 ** 32 - 1, Number.MAX_SAFE_INTEGER];
      const n = pick(rng, choices.filter((c) => c >= 0));
      const out = Buffer.from(bytes);
      if (o.arg === 'len1') out.writeUInt8(n & 0xff, o.start + 1);
      else if (o.arg === 'len4') out.writeUInt32LE(n >>> 0, o.start + 1);
      else out.writeBigUInt64LE(BigInt(n), o.start + 1);
      return { bytes: out, detail: `${o.name}@${o.start} length ${have} -> ${n}` };
    }
    case 6: {
      // A global, or a string (storage key, dtype, device, dict key), replaced.
      const g = rng.nextInt(2) ? where((x) => x.name === 'GLOBAL') : undefined;
      if (g) {
        const name = pick(rng, GLOBALS);
        return { bytes: splice(bytes, g.start, g.end, Buffer.from(`c${name}\n`, 'latin1')), detail: `GLOBAL@${g.start} -> ${JSON.stringify(name)}` };
      }
      const o = where((x) => x.payload !== undefined && ['SHORT_BINUNICODE', 'BINUNICODE', 'SHORT_BINSTRING', 'BINSTRING', 'BINUNICODE8'].includes(x.name));
      if (!o) break;
      const text = pick(rng, STRINGS);
      const payload = rng.nextInt(10) === 0 ? Buffer.from([0xc3, 0x28, 0xff]) : Buffer.from(text, 'utf8');
      return { bytes: splice(bytes, o.start, o.end, lenPrefixed(o.code, payload)), detail: `${o.name}@${o.start} -> ${JSON.stringify(text.slice(0, 40))}` };
    }
    case 7: {
      // A span of opcodes deleted.
      const i = rng.nextInt(ops.length);
      const j = Math.min(ops.length - 1, i + rng.nextInt(4));
      return { bytes: splice(bytes, ops[i]!.start, ops[j]!.end, Buffer.alloc(0)), detail: `delete ops ${i}..${j}` };
    }
    case 8: {
      // A span of opcodes repeated, from twice to many times (memo reuse, nesting, duplicated keys).
      const i = rng.nextInt(ops.length);
      const j = Math.min(ops.length - 1, i + rng.nextInt(12));
      const span = bytes.subarray(ops[i]!.start, ops[j]!.end);
      const times = pick(rng, [2, 3, 10, 100, 1000, 10_000]);
      const reps = Math.min(times, Math.max(1, Math.floor(4_000_000 / Math.max(1, span.length))));
      return { bytes: splice(bytes, ops[j]!.end, ops[j]!.end, Buffer.alloc(span.length * reps).fill(span)), detail: `repeat ops ${i}..${j} x${reps}` };
    }
    case 9: {
      // MARKs or an opcode dropped in between two opcodes.
      const o = anyOp();
      const insert = rng.nextInt(2) ? Buffer.alloc(1 + rng.nextInt(3), 0x28) : Buffer.from([pick(rng, BY_ARG.get('none')!)]);
      return { bytes: splice(bytes, o.start, o.start, insert), detail: `insert ${insert.toString('hex')} @${o.start}` };
    }
    case 10: {
      // Deep nesting: many openers (and sometimes their closers) at one point.
      const o = anyOp();
      const depth = pick(rng, [64, 199, 200, 201, 1000, 100_000, 1_000_000]);
      const [open, close] = pick(rng, [
        [']', 'a'],
        ['}', ''],
        ['(', 't'],
        ['(', 'l'],
        [')', '\x85'],
        ['N', '\x85'],
      ] as const);
      const body = open.repeat(depth) + (rng.nextInt(2) ? close.repeat(depth) : '');
      return { bytes: splice(bytes, o.start, o.start, Buffer.from(body, 'latin1')), detail: `nest ${JSON.stringify(open)}x${depth} @${o.start}` };
    }
    case 11: {
      // A memo reference to an entry that was never stored, or a PUT over a used index.
      const o = anyOp();
      const idx = pick(rng, [0, 1, 255, 256, 65535, 2 ** 31 - 1, 2 ** 32 - 1]);
      const b = Buffer.alloc(5);
      b[0] = pick(rng, [0x6a, 0x72]); // LONG_BINGET / LONG_BINPUT
      b.writeUInt32LE(idx >>> 0, 1);
      return { bytes: splice(bytes, o.start, o.start, b), detail: `${OPCODES[b[0]!]![0]} ${idx} @${o.start}` };
    }
    case 12: {
      // Two opcodes swapped.
      const a = anyOp();
      const b = anyOp();
      if (a === b) break;
      const [x, y] = a.start < b.start ? [a, b] : [b, a];
      const out = Buffer.concat([bytes.subarray(0, x.start), bytes.subarray(y.start, y.end), bytes.subarray(x.end, y.start), bytes.subarray(x.start, x.end), bytes.subarray(y.end)]);
      return { bytes: out, detail: `swap ${x.name}@${x.start} ${y.name}@${y.start}` };
    }
    case 13: {
      // The stream cut at an opcode boundary, or its STOP removed, or junk after STOP.
      const o = anyOp();
      const form = rng.nextInt(3);
      if (form === 0) return { bytes: bytes.subarray(0, o.start), detail: `cut at op @${o.start}` };
      const stop = ops[ops.length - 1]!;
      if (form === 1 && stop.name === 'STOP') return { bytes: splice(bytes, stop.start, stop.end, Buffer.alloc(0)), detail: 'STOP removed' };
      return { bytes: splice(bytes, stop.end, stop.end, Buffer.from(']q\x00h\x00.', 'latin1')), detail: 'junk after STOP' };
    }
    case 14: {
      // A float argument at its edges (NaN, Inf, denormals).
      const o = where((x) => x.name === 'BINFLOAT') ?? where((x) => x.name === 'BININT1');
      if (!o) break;
      const b = Buffer.alloc(9);
      b[0] = 0x47;
      b.writeDoubleBE(pick(rng, [NaN, Infinity, -Infinity, 0, -0, 5e-324, 1.7976931348623157e308, 1e300]), 1);
      return { bytes: splice(bytes, o.start, o.end, b), detail: `BINFLOAT @${o.start}` };
    }
  }
  // The chosen mutation did not apply to this pickle: fall back to a boundary integer in place.
  const o = anyOp();
  const out = Buffer.from(bytes);
  out[o.start] = pick(rng, OPCODE_BYTES);
  return { bytes: out, detail: `opcode @${o.start} (fallback)` };
}
