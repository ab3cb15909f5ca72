// Small dense float32 helpers for embeddings: row-major matrices [rows, cols] in plain JS. The
// matrices here are (images × classes) or (prompts × embed_dim), small enough that a native call
// would cost more in crossing the boundary than it saves.
import type { TensorData } from '../native.js';

export interface Matrix {
  data: Float32Array;
  shape: [number, number];
}

export function asMatrix(tensor: TensorData<Float32Array>, what: string): Matrix {
  if (tensor.shape.length !== 2) throw new Error(`${what}: expected a 2-D tensor, got shape [${tensor.shape.join(', ')}]`);
  return { data: tensor.data, shape: [tensor.shape[0]!, tensor.shape[1]!] };
}

/** Each row divided by its L2 norm (a zero row stays zero rather than becoming NaN). */
export function normalizeRows(m: Matrix): Matrix {
  const [rows, cols] = m.shape;
  const out = new Float32Array(m.data.length);
  for (let r = 0; r < rows; r++) {
    const offset = r * cols;
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += m.data[offset + c]! ** 2;
    const inv = sum > 0 ? 1 / Math.sqrt(sum) : 0;
    for (let c = 0; c < cols; c++) out[offset + c] = m.data[offset + c]! * inv;
  }
  return { data: out, shape: [rows, cols] };
}

/** a · bᵀ for a [n, d] and b [m, d]: every row of a against every row of b. */
export function matmulTransposed(a: Matrix, b: Matrix): Matrix {
  const [n, d] = a.shape;
  const [m, d2] = b.shape;
  if (d !== d2) throw new Error(`matmulTransposed: inner dimensions differ (${d} vs ${d2})`);
  const out = new Float32Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let sum = 0;
      for (let k = 0; k < d; k++) sum += a.data[i * d + k]! * b.data[j * d + k]!;
      out[i * m + j] = sum;
    }
  }
  return { data: out, shape: [n, m] };
}

/** Row indices sorted by descending value (ties keep the lower index first). */
export function rankRow(m: Matrix, row: number): number[] {
  const cols = m.shape[1];
  const values = m.data.subarray(row * cols, (row + 1) * cols);
  return Array.from(values.keys()).sort((x, y) => values[y]! - values[x]! || x - y);
}

/** Softmax of one row, computed in float64 after subtracting the maximum. */
export function softmaxRow(m: Matrix, row: number): Float64Array {
  const cols = m.shape[1];
  const values = m.data.subarray(row * cols, (row + 1) * cols);
  let max = -Infinity;
  for (const v of values) max = Math.max(max, v);
  const out = new Float64Array(cols);
  let sum = 0;
  for (let i = 0; i < cols; i++) sum += out[i] = Math.exp(values[i]! - max);
  for (let i = 0; i < cols; i++) out[i] = out[i]! / sum;
  return out;
}

/** Concatenate row blocks of the same width. */
export function concatRows(blocks: Matrix[], cols: number): Matrix {
  const rows = blocks.reduce((n, b) => n + b.shape[0], 0);
  const data = new Float32Array(rows * cols);
  let offset = 0;
  for (const block of blocks) {
    if (block.shape[1] !== cols) throw new Error(`concatRows: a block has ${block.shape[1]} columns, expected ${cols}`);
    data.set(block.data, offset);
    offset += block.data.length;
  }
  return { data, shape: [rows, cols] };
}
