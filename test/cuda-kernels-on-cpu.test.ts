import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { repoRoot } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';

// The CUDA kernels of native/kernels/ run only on a GPU, which CI has not. What can be checked here
// is checked here: that nvcc compiles them for the GPUs CMakeLists.txt builds for, and that their
// device code computes the right numbers when run on the CPU by test/native/cuda_emulation.h.

function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, command);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

const nvcc = which('nvcc');
const cudaInclude = [process.env.CUDA_HOME && path.join(process.env.CUDA_HOME, 'include'), nvcc && path.join(path.dirname(realpathSync(nvcc)), '..', 'include'), '/usr/local/cuda/include']
  .filter((dir): dir is string => Boolean(dir))
  .find((dir) => existsSync(path.join(dir, 'cuda_bf16.h')));
const native = path.join(repoRoot, 'native');
const dir = scratchDir('clip-native-kernels-');

test('nvcc compiles every kernel of native/kernels/ for sm_80 and sm_90', (t) => {
  if (!nvcc) return t.skip('SKIPPED: no nvcc on PATH, so the CUDA kernels cannot be compiled on this machine');
  const sources = readdirSync(path.join(native, 'kernels')).filter((name) => name.endsWith('.cu'));
  assert.ok(sources.length >= 2, `kernel sources: ${sources.join(', ')}`);
  for (const source of sources) {
    execFileSync(
      nvcc,
      ['-std=c++17', '-gencode', 'arch=compute_80,code=sm_80', '-gencode', 'arch=compute_90,code=sm_90', '-I', native, '-c', path.join(native, 'kernels', source), '-o', path.join(dir, `${source}.o`)],
      { stdio: 'pipe' },
    );
  }
});

test('the LayerNorm kernels, run on the CPU, give LayerNorm forward and backward (fp32, fp16, bf16, fp32 in and half out; vector and scalar loads)', (t) => {
  if (!cudaInclude) return t.skip('SKIPPED: no CUDA headers (cuda_bf16.h) found under CUDA_HOME, next to nvcc or in /usr/local/cuda');
  const binary = path.join(dir, 'layer_norm_check');
  execFileSync('g++', ['-std=c++20', '-O1', '-pthread', '-x', 'c++', '-I', cudaInclude, '-I', native, path.join(repoRoot, 'test', 'native', 'layer_norm_check.cc'), '-o', binary], {
    stdio: 'pipe',
  });
  let output: string;
  try {
    output = execFileSync(binary, { encoding: 'utf8' });
  } catch (err) {
    assert.fail(`cases failed:\n${(err as { stdout?: string }).stdout ?? err}`);
  }
  const cases = output.trim().split('\n');
  for (const line of cases) t.diagnostic(line);
  assert.equal(cases.length, 11, output);
  for (const line of cases) assert.match(line, /^ok /, line);
  assert.ok(['bf16→bf16 .* vector', 'fp16→fp16 .* scalar', 'fp32→fp32 .* scalar', 'fp32→bf16 .* vector', 'fp32→bf16 .* scalar'].every((form) => cases.some((line) => new RegExp(form).test(line))), output);
});
