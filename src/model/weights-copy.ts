// A model's weights as a copy to write, and what export.ts needs of a model: in a module of their own
// so that export.ts, which ClipModel.export() calls, does not import model.ts back.
import type { ClipConfig } from './config.js';

export type WeightFormat = 'safetensors' | 'pt';

/** Weights copied from a model (ClipModel.copyWeights), written as ClipModel.save writes them. */
export interface WeightsCopy {
  save(path: string, options?: { format?: WeightFormat; metadata?: Record<string, string> }): Promise<void>;
}

/** A model whose weights can be copied out with its configuration (ClipModel is one). */
export interface WeightsSource {
  readonly config: ClipConfig;
  copyWeights(options?: { naming?: 'openai' | 'hf' }): Promise<WeightsCopy>;
}
