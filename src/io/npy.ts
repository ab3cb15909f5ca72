// NumPy's .npy format, version 1.0, for little-endian float32 arrays:
// magic "\x93NUMPY", version 1 0, u16 LE header length, a Python dict literal padded with spaces
// and ending in "\n" so that magic + length + header is a multiple of 64 bytes, then the raw data.
// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html

const MAGIC = Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59); // \x93NUMPY
const PREAMBLE = MAGIC.length + 2 + 2; // magic, version, header length
const ALIGN = 64;

export interface Float32Array2 {
  data: Float32Array;
  shape: readonly number[];
}

function pythonShape(shape: readonly number[]): string {
  // A one-element tuple needs its trailing comma: (3,) not (3).
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

/** The bytes of a .npy file holding `array` as '<f4' in C order. */
export function encodeNpy(array: Float32Array2): Uint8Array {
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (count !== array.data.length) throw new Error(`npy: shape [${array.shape.join(', ')}] needs ${count} values, got ${array.data.length}`);
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${pythonShape(array.shape)}, }`;
  const padded = Math.ceil((PREAMBLE + header.length + 1) / ALIGN) * ALIGN;
  header = header.padEnd(padded - PREAMBLE - 1, ' ') + '\n';
  if (header.length > 0xffff) throw new Error('npy: header longer than version 1.0 allows');
  const out = new Uint8Array(PREAMBLE + header.length + array.data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), PREAMBLE);
  // Float32Array uses the platform's byte order; every platform Node supports is little-endian.
  out.set(new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength), PREAMBLE + header.length);
  return out;
}

/** Reads what encodeNpy writes (v1.0/2.0, '<f4', C order); anything else is refused by name. */
export function decodeNpy(bytes: Uint8Array, name = 'npy'): { data: Float32Array; shape: number[] } {
  if (bytes.length < PREAMBLE || !MAGIC.every((b, i) => bytes[i] === b)) throw new Error(`${name}: not a .npy file (no \\x93NUMPY magic)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6]!;
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(headerStart, headerStart + headerLength));
  if (!/'descr':\s*'<f4'/.test(header)) throw new Error(`${name}: only '<f4' arrays are supported, header is ${header.trim()}`);
  if (!/'fortran_order':\s*False/.test(header)) throw new Error(`${name}: Fortran-order arrays are not supported`);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (shapeText === undefined) throw new Error(`${name}: header has no shape: ${header.trim()}`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = headerStart + headerLength;
  if (bytes.length - start !== count * 4) throw new Error(`${name}: ${bytes.length - start} data bytes for shape (${shape.join(', ')})`);
  return { data: new Float32Array(bytes.slice(start).buffer), shape };
}
