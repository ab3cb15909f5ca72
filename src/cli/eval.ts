import type { Command } from 'commander';

import { deviceOption, positiveInteger, precisionOption, progressLine, templatesOption } from './cli-options.js';
import { formatEvaluation, formatRetrieval } from '../eval/format.js';
import { isRetrieval } from '../eval/retrieval.js';
import { evaluate } from '../eval/zero-shot.js';
import type { Precision } from '../model/model.js';

interface EvalFlags {
  data: string;
  split: 'train' | 'test';
  model: string;
  templates: string;
  batchSize: number;
  device: string;
  precision: Precision;
  ext?: string;
  cache: boolean;
  json?: boolean;
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('a labelled dataset: zero-shot top-1, top-5, per class, confusion matrix; a caption dataset: retrieval R@1/5/10, mean and median rank both ways, validation loss')
    .requiredOption('--data <dataset>', 'dataset folder (blog layout or folder per class) or .csv/.tsv/.jsonl file')
    .requiredOption('--model <model>', 'model name (ViT-B/32, RN50, …) or weight file')
    .option('--split <split>', 'split to evaluate: train or test', 'test')
    .addOption(templatesOption())
    .option('--batch-size <n>', 'images per batch', positiveInteger, 32)
    .addOption(deviceOption())
    .addOption(precisionOption())
    .option('--ext <ext>', "image extension the blog layout's list lines leave out (default jpg)")
    .option('--no-cache', 'do not use the cache of preprocessed images')
    .option('--json', 'print one JSON object')
    .action(async (flags: EvalFlags) => {
      if (flags.split !== 'train' && flags.split !== 'test') throw new Error(`--split must be train or test, got ${JSON.stringify(flags.split)}`);
      const result = await evaluate({
        data: flags.data,
        split: flags.split,
        dataOptions: flags.ext !== undefined ? { ext: flags.ext } : {},
        model: flags.model,
        templates: flags.templates,
        batchSize: flags.batchSize,
        device: flags.device,
        precision: flags.precision,
        cache: flags.cache,
        onProgress: flags.json ? undefined : progressLine('scored'),
      });
      const text = isRetrieval(result) ? formatRetrieval(result) : formatEvaluation(result);
      process.stdout.write(flags.json ? JSON.stringify(result) + '\n' : text + '\n');
    });
}
