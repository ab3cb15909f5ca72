// The model's learned temperature: logits = exp(logit_scale) · cosine, as CLIP.forward computes them.
import type { ClipModel } from '../model/model.js';

/**
 * exp(logit_scale) read from the state dict. The native model has no accessor for this one scalar,
 * so this copies the weights once; callers should read it once per model, not per batch.
 */
export async function logitScale(model: ClipModel): Promise<number> {
  const entry = (await model.stateDict()).find((e) => e.name === 'logit_scale');
  if (!entry || !(entry.tensor.data instanceof Float32Array) || entry.tensor.data.length !== 1) {
    throw new Error('model state dict has no scalar float logit_scale');
  }
  return Math.exp(entry.tensor.data[0]!);
}
