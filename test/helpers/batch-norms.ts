// The fixture ResNet's BatchNorms are the identity (γ 1, β 0, running mean 0, variance 1), under which
// a wrong fold of their statistics, or a wrong shift, goes unseen: these give them values of their own.
import type { ClipModel } from '../../src/model/model.js';

const BATCH_NORM = /(^|\.)(bn\d|downsample\.1)\.(weight|bias|running_mean|running_var)$/;

/** Sets every BatchNorm's γ, β, running mean and variance to seeded values (variance in [0.5, 2]). */
export async function randomizeBatchNorms(model: ClipModel, seed = 1): Promise<void> {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const entries = (await model.stateDict()).filter(({ name }) => BATCH_NORM.test(name));
  if (entries.length === 0) throw new Error('randomizeBatchNorms: the model has no BatchNorm');
  await model.loadStateDict(
    entries.map(({ name, tensor }) => {
      const [lo, hi] = name.endsWith('running_var') ? [0.5, 2] : name.endsWith('weight') ? [0.5, 1.5] : [-0.5, 0.5];
      return { name, tensor: { data: Float32Array.from({ length: tensor.data.length }, () => lo + (hi - lo) * next()), shape: tensor.shape } };
    }),
    { partial: true },
  );
}
