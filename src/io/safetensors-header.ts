import { promises as fs } from 'node:fs';

/**
 * A minimal safetensors reader for tests and tools: u64 LE header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets}, __metadata__?}`, then the raw little-endian data.
 */

export interface TensorEntry {
  dtype: string;
  shape: number[];
  /** Byte offsets relative to the start of the data section. */
  data_offsets: [number, number];
}

export interface SafetensorsHeader {
  /** Byte offset of the data section in the file (8 + N). */
  dataStart: number;
  tensors: Record<string, TensorEntry>;
  metadata: Record<string, string>;
}

export function parseSafetensorsHeader(bytes: Uint8Array): SafetensorsHeader {
  if (bytes.byteLength < 8) throw new Error('safetensors: file shorter than its 8-byte header length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getBigUint64(0, true);
  if (length > BigInt(bytes.byteLength - 8)) {
    throw new Error(`safetensors: header length ${length} exceeds the file (${bytes.byteLength} bytes)`);
  }
  const n = Number(length);
  const json = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
  const { __metadata__, ...tensors } = json;
  return {
    dataStart: 8 + n,
    tensors: tensors as Record<string, TensorEntry>,
    metadata: (__metadata__ ?? {}) as Record<string, string>,
  };
}

/**
 * A safetensors file's `__metadata__`, reading only its header (weights can be gigabytes).
 * Undefined when the file is not safetensors or its header is unreadable.
 */
export async function readSafetensorsMetadata(file: string): Promise<Record<string, string> | undefined> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(file, 'r');
    const size = Buffer.alloc(8);
    await handle.read(size, 0, 8, 0);
    const length = Number(size.readBigUInt64LE(0));
    if (length > 64 << 20) return undefined;
    const bytes = Buffer.alloc(8 + length);
    await handle.read(bytes, 0, 8 + length, 0);
    return parseSafetensorsHeader(bytes).metadata;
  } catch {
    return undefined;
  } finally {
    await handle?.close();
  }
}

type TypedTensor =
  | { dtype: 'F32'; data: Float32Array; shape: number[] }
  | { dtype: 'F64'; data: Float64Array; shape: number[] }
  | { dtype: 'I64'; data: BigInt64Array; shape: number[] }
  | { dtype: 'I32'; data: Int32Array; shape: number[] }
  | { dtype: 'U8'; data: Uint8Array; shape: number[] };

const ARRAY_TYPES = { F32: Float32Array, F64: Float64Array, I64: BigInt64Array, I32: Int32Array, U8: Uint8Array } as const;

export interface LoadedSafetensors {
  header: SafetensorsHeader;
  /** A copy of one F32 tensor's data (copied so alignment never matters). */
  float32(name: string): { data: Float32Array; shape: number[] };
  /** A copy of any F32/F64/I64/I32/U8 tensor as the matching typed array. */
  tensor(name: string): TypedTensor;
  names(): string[];
}

export async function readSafetensors(file: string): Promise<LoadedSafetensors> {
  const bytes = new Uint8Array(await fs.readFile(file));
  const header = parseSafetensorsHeader(bytes);
  function tensor(name: string): TypedTensor {
    const entry = header.tensors[name];
    if (!entry) throw new Error(`safetensors: ${file} has no tensor named ${JSON.stringify(name)}`);
    const ArrayType = ARRAY_TYPES[entry.dtype as keyof typeof ARRAY_TYPES];
    if (!ArrayType) throw new Error(`safetensors: ${name} has unsupported dtype ${entry.dtype}`);
    const [begin, end] = entry.data_offsets;
    const raw = bytes.slice(header.dataStart + begin, header.dataStart + end);
    const count = entry.shape.reduce((a, b) => a * b, 1);
    if (raw.byteLength !== count * ArrayType.BYTES_PER_ELEMENT) throw new Error(`safetensors: ${name} has ${raw.byteLength} bytes for shape [${entry.shape}]`);
    return { dtype: entry.dtype, data: new ArrayType(raw.buffer, raw.byteOffset, count), shape: entry.shape } as TypedTensor;
  }
  return {
    header,
    tensor,
    names: () => Object.keys(header.tensors),
    float32(name) {
      const entry = header.tensors[name];
      if (!entry) throw new Error(`safetensors: ${file} has no tensor named ${JSON.stringify(name)}`);
      if (entry.dtype !== 'F32') throw new Error(`safetensors: ${name} is ${entry.dtype}, not F32`);
      const [begin, end] = entry.data_offsets;
      const raw = bytes.slice(header.dataStart + begin, header.dataStart + end);
      const count = entry.shape.reduce((a, b) => a * b, 1);
      if (raw.byteLength !== count * 4) throw new Error(`safetensors: ${name} has ${raw.byteLength} bytes for shape [${entry.shape}]`);
      return { data: new Float32Array(raw.buffer, raw.byteOffset, count), shape: entry.shape };
    },
  };
}
