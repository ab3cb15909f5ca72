// bench/trace-kernels.ts: GPU kernels added up under the CPU operators that launched them, on a trace
// laid out as LibTorch's Kineto writes one (cpu_op events nesting in time; kernels linked by External id).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { kernelsByOperator } from '../bench/trace-kernels.js';

const op = (name: string, ts: number, dur: number, id: number, tid = 1) => ({ ph: 'X', cat: 'cpu_op', name, ts, dur, tid, args: { 'External id': id } });
const kernel = (name: string, ts: number, dur: number, id: number) => ({ ph: 'X', cat: 'kernel', name, ts, dur, tid: 7, args: { 'External id': id } });

test('each kernel is counted under its launching operator and that operator\'s parents, innermost first', () => {
  const events = [
    op('autograd::engine::evaluate_function: ConvolutionBackward0', 0, 100, 1),
    op('aten::convolution_backward', 1, 98, 2),
    op('aten::contiguous', 2, 10, 3),
    op('aten::copy_', 3, 8, 4),
    op('aten::cudnn_convolution', 20, 70, 5),
    op('aten::linear', 200, 50, 6), // another operator on its own
    op('aten::copy_', 300, 5, 7, 2), // another thread: must not nest under anything above
    kernel('direct_copy_kernel', 500, 40, 4),
    kernel('direct_copy_kernel', 600, 60, 4),
    kernel('wgrad_kernel', 700, 300, 5),
    kernel('gemm', 1000, 25, 6),
    kernel('direct_copy_kernel', 1100, 5, 7),
    kernel('graph_kernel', 1200, 10, 99), // no operator with this id
    { ph: 'X', cat: 'cuda_runtime', name: 'cudaLaunchKernel', ts: 4, dur: 1, tid: 1, args: { 'External id': 4 } },
  ];
  const rows = kernelsByOperator(events, 3);
  assert.deepEqual(
    rows.map((r) => [r.kernel, r.chain.join(' < '), r.calls, r.us]),
    [
      ['wgrad_kernel', 'aten::cudnn_convolution < aten::convolution_backward < ConvolutionBackward0', 1, 300],
      ['direct_copy_kernel', 'aten::copy_ < aten::contiguous < aten::convolution_backward', 2, 100],
      ['gemm', 'aten::linear', 1, 25],
      ['graph_kernel', '(no CPU operator: e.g. inside a CUDA graph)', 1, 10],
      ['direct_copy_kernel', 'aten::copy_', 1, 5],
    ],
  );
  assert.deepEqual(kernelsByOperator(events, 1)[1]!.chain, ['aten::copy_']);
});

test('with shapes in the trace, each row carries its launching operator\'s tensor inputs as most of its calls had them', () => {
  const copy = (ts: number, id: number, strides: number[]) => ({
    ...op('aten::copy_', ts, 5, id),
    args: { 'External id': id, 'Input Dims': [[8, 64, 56, 56], [8, 64, 56, 56], []], 'Input Strides': [[200704, 1, 3584, 64], strides, []] },
  });
  const contiguous = [200704, 3136, 56, 1];
  const events = [
    copy(0, 1, contiguous),
    copy(10, 2, contiguous),
    copy(20, 3, [200704, 1, 3584, 64]),
    op('aten::add', 30, 5, 4),
    kernel('direct_copy_kernel', 100, 10, 1),
    kernel('direct_copy_kernel', 200, 10, 2),
    kernel('direct_copy_kernel', 300, 10, 3),
    kernel('add_kernel', 400, 10, 4),
  ];
  const rows = kernelsByOperator(events, 1);
  assert.equal(rows.find((r) => r.kernel === 'direct_copy_kernel')!.inputs, '[8,64,56,56]:[200704,1,3584,64], [8,64,56,56]:[200704,3136,56,1] (2 of 3 calls)');
  assert.equal(rows.find((r) => r.kernel === 'add_kernel')!.inputs, undefined);
});
