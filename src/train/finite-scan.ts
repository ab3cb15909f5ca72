// Whether a safetensors file holds only finite floating-point values: read tensor by tensor in
// bounded chunks, so a checkpoint of gigabytes is checked without holding it in memory.
import { promises as fs } from 'node:fs';

import { parseSafetensorsHeader } from '../io/safetensors-header.js';

const CHUNK = 16 << 20;

/** Exponent bits of each float format: all set means infinity or NaN. */
const FORMATS: Record<string, { bytes: 2 | 4 | 8; exponent: bigint | number }> = {
  F16: { bytes: 2, exponent: 0x7c00 },
  BF16: { bytes: 2, exponent: 0x7f80 },
  F32: { bytes: 4, exponent: 0x7f800000 },
  F64: { bytes: 8, exponent: 0x7ff0000000000000n },
};

function firstNonFinite(bytes: Buffer, format: { bytes: 2 | 4 | 8; exponent: bigint | number }): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Math.floor(bytes.byteLength / format.bytes);
  if (format.bytes === 4) {
    const e = format.exponent as number;
    for (let i = 0; i < n; i++) if ((view.getUint32(i * 4, true) & e) === e) return i;
  } else if (format.bytes === 2) {
    const e = format.exponent as number;
    for (let i = 0; i < n; i++) if ((view.getUint16(i * 2, true) & e) === e) return i;
  } else {
    const e = format.exponent as bigint;
    for (let i = 0; i < n; i++) if ((view.getBigUint64(i * 8, true) & e) === e) return i;
  }
  return -1;
}

/** Names of the floating-point tensors of `file` that hold an infinity or a NaN. */
export async function nonFiniteTensors(file: string): Promise<string[]> {
  const handle = await fs.open(file, 'r');
  try {
    const size = Buffer.alloc(8);
    await handle.read(size, 0, 8, 0);
    const headerLength = Number(size.readBigUInt64LE(0));
    const headerBytes = Buffer.alloc(8 + headerLength);
    await handle.read(headerBytes, 0, headerBytes.byteLength, 0);
    const header = parseSafetensorsHeader(headerBytes);
    const found: string[] = [];
    const buffer = Buffer.alloc(CHUNK);
    for (const [name, entry] of Object.entries(header.tensors)) {
      const format = FORMATS[entry.dtype];
      if (!format) continue;
      const [begin, end] = entry.data_offsets;
      for (let at = begin; at < end; at += CHUNK) {
        const length = Math.min(CHUNK, end - at);
        const { bytesRead } = await handle.read(buffer, 0, length, header.dataStart + at);
        if (firstNonFinite(buffer.subarray(0, bytesRead), format) >= 0) {
          found.push(name);
          break;
        }
      }
    }
    return found;
  } finally {
    await handle.close();
  }
}
