import type { Batch } from '../data/loader.js';
import { labelToPrompt, resolveTemplates } from '../text/prompts.js';
import type { ClipTokenizer } from '../text/tokenizer.js';

/**
 * Prompts → tokens, cached per distinct text: labelled data repeats a handful of prompts. Captions are
 * mostly distinct, so the cache stops growing at `maxCached` texts (≈ 40 MB at the default) and later
 * ones are tokenized each time they come (cheap beside an image; docs/performance.md).
 */
export class BatchTokenizer {
  private readonly cache = new Map<string, Int32Array>();
  private readonly templates: readonly string[];

  constructor(
    private readonly tokenizer: ClipTokenizer,
    templates: string,
    private readonly contextLength: number,
    private readonly maxCached = 100_000,
  ) {
    this.templates = resolveTemplates(templates);
  }

  tokens(batch: Batch, epoch: number): { data: Int32Array; shape: number[] } {
    const texts = batch.samples.map((sample, i) => {
      if (sample.caption !== undefined) return sample.caption;
      // With a template ensemble, each sample gets one template, deterministic in (epoch, position).
      const template = this.templates[(epoch * 7919 + batch.cursor - batch.samples.length + i) % this.templates.length]!;
      return labelToPrompt(sample.label ?? '', template);
    });
    const data = new Int32Array(texts.length * this.contextLength);
    texts.forEach((text, i) => {
      let row = this.cache.get(text);
      if (!row) {
        row = this.tokenizer.tokenize([text], { contextLength: this.contextLength, truncate: true }).data;
        if (this.cache.size < this.maxCached) this.cache.set(text, row);
      }
      data.set(row, i * this.contextLength);
    });
    return { data, shape: [texts.length, this.contextLength] };
  }
}
