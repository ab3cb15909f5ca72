// A small safetensors writer for float32 tensors (embeddings, interpolated matrices):
// u64 LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets}, __metadata__},
// padded with spaces so the data section starts 8-byte aligned, then the data in header order.
// https://github.com/huggingface/safetensors#format

export interface NamedFloat32 {
  name: string;
  data: Float32Array;
  shape: readonly number[];
}

export function encodeSafetensors(tensors: readonly NamedFloat32[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || Object.hasOwn(header, t.name)) throw new Error(`safetensors: tensor name ${JSON.stringify(t.name)} is reserved or repeated`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`safetensors: ${t.name} has shape [${t.shape.join(', ')}] but ${t.data.length} values`);
    header[t.name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(headerBytes.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.fill(0x20, 8, 8 + headerLength);
  out.set(headerBytes, 8);
  let position = 8 + headerLength;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), position);
    position += t.data.byteLength;
  }
  return out;
}
