// The model's learned temperature: logits = exp(logit_scale) · cosine, as CLIP.forward computes them.
import type { ClipModel } from '../model/model.js';

export async function logitScale(model: ClipModel): Promise<number> {
  return Math.exp(model.logitScale());
}
