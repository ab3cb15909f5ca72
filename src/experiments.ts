// The environment switches CLIP_NATIVE_EXPERIMENTS=name[,name…]: other code paths of the native model
// and trainer, read by native/common/experiments.h when a model or trainer is built. This table is the
// one declaration of them. An unknown name is refused before the addon loads (src/native.ts), `doctor`
// lists the active ones, and test/experiments-table.test.ts checks that the native sources read exactly
// these names. A switch stays only while a test or a measurement needs it (the `kept` column).

/**
 * Where the path a name selects is taken when no name is given: `cuda` (CUDA's default, measured
 * faster there; the name takes it on the CPU too), `cpu` (the reference's formulation, the CPU's
 * default; the name takes it on CUDA too), `none` (taken only with the name).
 */
export type ExperimentDefault = 'cuda' | 'cpu' | 'none';

export interface Experiment {
  name: string;
  /** The path the name selects. */
  switches: string;
  defaultOn: ExperimentDefault;
  /** The test or measurement that keeps the switch. */
  kept: string;
}

export const EXPERIMENTS: readonly Experiment[] = [
  {
    name: 'fused-mlp',
    switches: 'QuickGELU as silu with its two scalings inside the matrix products',
    defaultOn: 'cuda',
    kept: 'test/experiments.test.ts and test/train-parity.test.ts run CUDA\'s form on the CPU against the goldens; bench/results/levers.md round one',
  },
  {
    name: 'reference-mlp',
    switches: "QuickGELU as the reference writes it, x·sigmoid(1.702x)",
    defaultOn: 'cpu',
    kept: 'test/cuda.test.ts (goldens and Adam steps on CUDA); bench/gpu.sh measures it against fused-mlp',
  },
  {
    name: 'aten-layernorm',
    switches: "ATen's LayerNorm (casts to fp32 and back) and the blocks' residual adds apart, instead of the own LayerNorm kernels with the add joined",
    defaultOn: 'cpu',
    kept: 'test/experiments.test.ts (bit for bit on the CPU), test/cuda.test.ts; bench/results/levers.md round five',
  },
  {
    name: 'own-linear-backward',
    switches: "the transformer products' backward written out: bias gradients by an own column-sum kernel, alpha inside the products",
    defaultOn: 'cuda',
    kept: 'test/experiments.test.ts (forced on the CPU); bench/results/levers.md round five',
  },
  {
    name: 'autograd-linear',
    switches: "autograd's backward of the transformer products (at::linear)",
    defaultOn: 'cpu',
    kept: 'test/cuda.test.ts; bench/gpu.sh',
  },
  {
    name: 'fold-batchnorm',
    switches: "frozen BatchNorm folded into the ResNet convolution before it",
    defaultOn: 'cuda',
    kept: 'test/experiments.test.ts (forced on the CPU); bench/results/levers.md round three',
  },
  {
    name: 'separate-batchnorm',
    switches: 'frozen BatchNorm as its own pass after each ResNet convolution',
    defaultOn: 'cpu',
    kept: 'test/cuda.test.ts; bench/gpu.sh',
  },
  {
    name: 'pool-by-mean',
    switches: "the ResNet's anti-aliasing pools as means over a channels-last view",
    defaultOn: 'cuda',
    kept: 'test/experiments.test.ts (forced on the CPU); bench/results/levers.md round three',
  },
  {
    name: 'avg-pool2d',
    switches: "the ResNet's anti-aliasing pools by ATen's avg_pool2d",
    defaultOn: 'cpu',
    kept: 'test/cuda.test.ts; bench/gpu.sh',
  },
  {
    name: 'bias-relu-kernel',
    switches: 'with the BatchNorm folded: the shift, the residual and the ReLU after each ResNet convolution in one kernel (on the CPU, its arithmetic)',
    defaultOn: 'cuda',
    kept: 'test/experiments.test.ts, test/cuda-kernels-on-cpu.test.ts; bench/results/levers.md round six',
  },
  {
    name: 'separate-bias-relu',
    switches: "with the BatchNorm folded: the shift, the residual and the ReLU as ATen's separate passes",
    defaultOn: 'cpu',
    kept: 'test/cuda.test.ts; bench/gpu.sh',
  },
  {
    name: 'full-text-context',
    switches: "the text tower over all 77 positions, as the reference, instead of cut after the batch's last end-of-text token",
    defaultOn: 'none',
    kept: "test/experiments.test.ts (the same training as the cut); bench/gpu.sh's rows at 77 positions, like for like with the Python peers",
  },
  {
    name: 'per-op-casts',
    switches: "under bf16/fp16 training, autocast's cast of each product weight at its product instead of one cast of them all per step",
    defaultOn: 'none',
    kept: 'test/flat-weights.test.ts (bit for bit), test/cuda.test.ts; bench/results/levers.md round four',
  },
  {
    name: 'portable-crc',
    switches: "the crop cache's CRC-32 by table even where the process has zlib",
    defaultOn: 'none',
    kept: 'test/batched-files.test.ts (the table and zlib agree)',
  },
];

export const EXPERIMENTS_ENV = 'CLIP_NATIVE_EXPERIMENTS';

/**
 * The experiments `list` (CLIP_NATIVE_EXPERIMENTS by default) switches on, in its order; an unknown
 * name is an Error that lists the known ones. Items are not trimmed: the native side compares them as
 * written, so " fused-mlp" would switch nothing there.
 */
export function activeExperiments(list: string | undefined = process.env[EXPERIMENTS_ENV]): Experiment[] {
  const names = (list ?? '').split(',').filter(Boolean);
  const unknown = names.filter((name) => !EXPERIMENTS.some((e) => e.name === name));
  if (unknown.length) {
    const known = EXPERIMENTS.map((e) => e.name).join(', ');
    throw new Error(`${EXPERIMENTS_ENV} names ${unknown.map((n) => JSON.stringify(n)).join(', ')}, which ${unknown.length === 1 ? 'is no experiment' : 'are no experiments'}; the known ones are ${known} (src/experiments.ts)`);
  }
  return names.map((name) => EXPERIMENTS.find((e) => e.name === name)!);
}
