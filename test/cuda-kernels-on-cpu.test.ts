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

test('the LayerNorm kernels, run on the CPU, give LayerNorm forward and backward (fp32, fp16, bf16, fp32 in and half out, the residual add joined; vector and scalar loads)', (t) => {
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
  assert.equal(cases.length, 16, output);
  for (const line of cases) assert.match(line, /^ok /, line);
  assert.ok(['bf16→bf16 .* vector', 'fp16→fp16 .* scalar', 'fp32→fp32 .* scalar', 'fp32→bf16 .* vector', 'fp32→bf16 .* scalar', 'bf16→bf16\\s+\\+ bf16 .* vector', 'fp32→bf16\\s+\\+ bf16 .* vector', 'fp32→fp16\\s+\\+ fp16 .* scalar'].every((form) => cases.some((line) => new RegExp(form).test(line))), output);
});
