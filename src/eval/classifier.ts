// The zero-shot classifier: one text embedding per class, an ensemble over prompt templates.
import type { ClipModel } from '../model/model.js';
import { promptsFor, resolveTemplates, type TemplateSetName } from '../text/prompts.js';
import type { ClipTokenizer } from '../text/tokenizer.js';
import { normalizeRows, type Matrix } from './matrix.js';
import { encodeTexts, type TextFeatureOptions } from './text-features.js';

export type Templates = TemplateSetName | string | readonly string[];

/**
 * Class embeddings [classes.length, embed_dim], as OpenAI built their ImageNet classifier: each
 * prompt embedding normalised, averaged over a class's templates, the mean renormalised. Rows
 * follow `classes`; a cosine against a normalised image embedding is then a zero-shot score.
 */
export async function zeroShotClassifier(
  model: ClipModel,
  classes: readonly string[],
  templates: Templates,
  tokenizer: ClipTokenizer,
  options: TextFeatureOptions = {},
): Promise<Matrix> {
  if (classes.length === 0) throw new Error('zeroShotClassifier: no classes given');
  const perClass = resolveTemplates(templates).length;
  const prompts = promptsFor(classes, templates).flat();
  const features = await encodeTexts(model, tokenizer, prompts, options);
  const dim = features.shape[1];
  const means = new Float32Array(classes.length * dim);
  for (let c = 0; c < classes.length; c++) {
    const sum = new Float64Array(dim);
    for (let t = 0; t < perClass; t++) {
      const row = (c * perClass + t) * dim;
      for (let k = 0; k < dim; k++) sum[k]! += features.data[row + k]!;
    }
    for (let k = 0; k < dim; k++) means[c * dim + k] = sum[k]! / perClass;
  }
  return normalizeRows({ data: means, shape: [classes.length, dim] });
}
