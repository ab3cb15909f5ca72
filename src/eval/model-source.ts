// Functions that accept "a model or where to find one": load when given a name or path (and dispose
// it afterwards), and run inference in eval mode, restoring a caller's training mode afterwards.
import { loadModel, type ClipModel } from '../model/model.js';
import { loadTokenizer, type ClipTokenizer } from '../text/tokenizer.js';

export type ModelSource = ClipModel | string;

export async function withModel<T>(source: ModelSource, device: string | undefined, use: (model: ClipModel) => Promise<T>): Promise<T> {
  if (typeof source !== 'string') return inEvalMode(source, use);
  const model = await loadModel(source, { device });
  try {
    return await inEvalMode(model, use);
  } finally {
    model.dispose();
  }
}

/** BatchNorm (ResNet towers) must use running statistics when scoring, even mid-training. */
export async function inEvalMode<T>(model: ClipModel, use: (model: ClipModel) => Promise<T>): Promise<T> {
  const wasTraining = model.training;
  model.eval();
  try {
    return await use(model);
  } finally {
    model.train(wasTraining);
  }
}

export function tokenizerFor(tokenizer: ClipTokenizer | undefined): Promise<ClipTokenizer> {
  return tokenizer ? Promise.resolve(tokenizer) : loadTokenizer();
}
