import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { repoRoot } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';

// The CUDA kernels of native/kernels/ run only on a GPU, which CI has not. What can be checked here
// is checked here: that nvcc compiles them for the GPUs CMakeLists.txt builds for, that the code
// built only against a CUDA LibTorch compiles (scripts/check-cuda-syntax.sh), and that the kernels'
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

test('the CUDA-only code compiles: native/kernels/ by nvcc for sm_80 and sm_90, the CUDA paths of native/ against CUDA headers', { timeout: 5 * 60_000 }, (t) => {
  if (!nvcc || !cudaInclude) return t.skip('SKIPPED: no nvcc on PATH or no CUDA headers beside it, so the CUDA code cannot be compiled on this machine');
  let output: string;
  try {
    output = execFileSync('bash', [path.join(repoRoot, 'scripts', 'check-cuda-syntax.sh')], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, NVCC: nvcc, CUDA_INCLUDE: cudaInclude },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    assert.fail(`scripts/check-cuda-syntax.sh failed:\n${stdout ?? ''}${stderr ?? err}`);
  }
  const checked = output.trim().split('\n');
  for (const line of checked) t.diagnostic(line);
  const kernels = readdirSync(path.join(native, 'kernels')).filter((name) => name.endsWith('.cu'));
  for (const kernel of kernels) assert.ok(checked.includes(`ok   native/kernels/${kernel} (nvcc, sm_80 and sm_90)`), output);
  assert.ok(checked.includes('ok   native/model/layer_norm_kernel.cc') && checked.includes('ok   native/runtime/cuda_graph.cc'), output);
});

/** Builds test/native/<name>.cc against the emulation and runs it: one line per case, each "ok" or "FAIL". */
function runEmulated(name: string): string[] {
  const binary = path.join(dir, name);
  execFileSync('g++', ['-std=c++20', '-O1', '-pthread', '-x', 'c++', '-I', cudaInclude!, '-I', native, path.join(repoRoot, 'test', 'native', `${name}.cc`), '-o', binary], {
    stdio: 'pipe',
  });
  try {
    return execFileSync(binary, { encoding: 'utf8' }).trim().split('\n');
  } catch (err) {
    return assert.fail(`cases failed:\n${(err as { stdout?: string }).stdout ?? err}`);
  }
}

const NO_HEADERS = 'SKIPPED: no CUDA headers (cuda_bf16.h) found under CUDA_HOME, next to nvcc or in /usr/local/cuda';

/** Runs test/native/<name>.cc: `count` cases, all "ok", among them one of each form (a regular expression). */
function assertEmulatedCases(t: { diagnostic: (line: string) => void }, name: string, count: number, forms: string[]): void {
  const cases = runEmulated(name);
  for (const line of cases) t.diagnostic(line);
  assert.equal(cases.length, count, cases.join('\n'));
  for (const line of cases) assert.match(line, /^ok /, line);
  for (const form of forms) assert.ok(cases.some((line) => new RegExp(form).test(line)), `no case of the form ${form}`);
}

test('the LayerNorm kernels, run on the CPU, give LayerNorm forward and backward (fp32, fp16, bf16, fp32 in and half out, the residual add joined; vector and scalar loads)', (t) => {
  if (!cudaInclude) return t.skip(NO_HEADERS);
  assertEmulatedCases(t, 'layer_norm_check', 16, [
    'bf16→bf16 .* vector',
    'fp16→fp16 .* scalar',
    'fp32→fp32 .* scalar',
    'fp32→bf16 .* vector',
    'fp32→bf16 .* scalar',
    'bf16→bf16\\s+\\+ bf16 .* vector',
    'fp32→bf16\\s+\\+ bf16 .* vector',
    'fp32→fp16\\s+\\+ fp16 .* scalar',
  ]);
});

test('the column-sum kernels (bias gradients), run on the CPU, give the columns\' sums (fp32, fp16, bf16 in; fp32 or the input\'s type out; vector and scalar loads)', (t) => {
  if (!cudaInclude) return t.skip(NO_HEADERS);
  assertEmulatedCases(t, 'column_sum_check', 7, ['bf16→bf16 .* vector', 'bf16→fp32 .* scalar', 'fp32→fp32 .* vector', 'fp16→fp16 .* vector']);
});

test('the bias + residual + ReLU kernel (bias-relu-kernel, CUDA\'s default), run on the CPU, gives the same fp32 arithmetic rounded once (fp32, fp16, bf16; vector and scalar loads; NaN kept)', (t) => {
  if (!cudaInclude) return t.skip(NO_HEADERS);
  assertEmulatedCases(t, 'bias_relu_check', 6, ['bf16 .* vector \\+ residual', 'bf16 .* vector,', 'fp16 .* scalar', 'fp32 .* scalar \\+ residual']);
});
