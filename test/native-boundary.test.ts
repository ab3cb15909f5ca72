import assert from 'node:assert/strict';
import { test } from 'node:test';

import { cudaMemory, matmul, runtimeInfo } from '../src/native.js';

test('tensors cross the boundary both ways and the op runs natively', async () => {
  const a = { data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] };
  const b = { data: new Float32Array([7, 8, 9, 10, 11, 12]), shape: [3, 2] };
  const c = await matmul(a, b);
  assert.deepEqual(c.shape, [2, 2]);
  assert.ok(c.data instanceof Float32Array);
  assert.deepEqual(Array.from(c.data), [58, 64, 139, 154]);
});

test('a LibTorch shape error becomes a rejected Promise with the original message, not a crash', async () => {
  const a = { data: new Float32Array(6), shape: [2, 3] };
  const b = { data: new Float32Array(8), shape: [4, 2] };
  await assert.rejects(matmul(a, b), (err: unknown) => {
    assert.ok(err instanceof Error);
    assert.match(err.message, /cannot be multiplied|shapes|size/i);
    assert.doesNotMatch(err.message, /Exception raised from/, 'the C++ backtrace is stripped');
    return true;
  });
  // The process and the addon keep working after the error.
  const ok = await matmul({ data: new Float32Array([2]), shape: [1, 1] }, { data: new Float32Array([3]), shape: [1, 1] });
  assert.deepEqual(Array.from(ok.data), [6]);
});

test('bad arguments are rejected synchronously with errors naming the argument', () => {
  assert.throws(() => matmul({ data: new Float32Array(5), shape: [2, 3] }, { data: new Float32Array(1), shape: [1, 1] }), /a: shape \[2, 3\] holds 6 elements but data has 5/);
  assert.throws(() => matmul({ data: [1, 2] as unknown as Float32Array, shape: [2] }, { data: new Float32Array(1), shape: [1] }), /a\.data must be a TypedArray/);
  assert.throws(() => matmul({ data: new Float32Array(1), shape: [-1] }, { data: new Float32Array(1), shape: [1] }), /a\.shape\[0\] must be a non-negative integer/);
  assert.throws(() => matmul(undefined as unknown as { data: Float32Array; shape: number[] }, { data: new Float32Array(1), shape: [1] }), /a must be \{data/);
});

test('outputs own their memory: results survive garbage collection of the inputs', async () => {
  let last: Float32Array | undefined;
  for (let i = 0; i < 50; i++) {
    const n = 64;
    const eye = new Float32Array(n * n);
    for (let k = 0; k < n; k++) eye[k * n + k] = i;
    const out = await matmul({ data: eye, shape: [n, n] }, { data: new Float32Array(n * n).fill(1), shape: [n, n] });
    last = out.data as Float32Array;
  }
  assert.equal(last![0], 49);
  assert.equal(last![64 * 64 - 1], 49);
});

test('cudaMemory answers without a GPU (unavailable, zeros) and refuses a non-numeric device', (t) => {
  if (runtimeInfo().cudaAvailable) return t.skip('a GPU is visible: test/cuda.test.ts checks the real counts');
  assert.deepEqual(cudaMemory(0, true), { available: false, allocatedBytes: 0, reservedBytes: 0, peakAllocatedBytes: 0, peakReservedBytes: 0 });
  assert.throws(() => (cudaMemory as unknown as (d: unknown) => unknown)('cuda'), /device must be a CUDA device index/);
});
