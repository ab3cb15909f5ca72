import { promises as fs } from 'node:fs';
import type { Command } from 'commander';

import { classify } from '../eval/classify.js';
import { deviceOption, positiveInteger, precisionOption, templatesOption } from './cli-options.js';
import { formatPredictions } from '../eval/format.js';
import type { Precision } from '../model/model.js';

interface PredictFlags {
  labels?: string;
  labelsFile?: string;
  model: string;
  templates: string;
  top?: number;
  device: string;
  precision: Precision;
  json?: boolean;
}

/** Labels from --labels a,b,c or --labels-file (one per line); exactly one of the two. */
async function readLabels(flags: PredictFlags): Promise<string[]> {
  if ((flags.labels === undefined) === (flags.labelsFile === undefined)) throw new Error('give exactly one of --labels a,b,c and --labels-file <file>');
  const labels =
    flags.labels !== undefined
      ? flags.labels.split(',').map((l) => l.trim())
      : (await fs.readFile(flags.labelsFile!, 'utf8')).split(/\r?\n/).map((l) => l.trim());
  const kept = labels.filter((l) => l !== '');
  if (kept.length === 0) throw new Error(flags.labels !== undefined ? '--labels lists no label' : `--labels-file ${flags.labelsFile}: no labels (one per line)`);
  return kept;
}

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('rank labels for images by zero-shot probability')
    .argument('<images...>', 'image files')
    .option('--labels <labels>', 'comma-separated candidate labels')
    .option('--labels-file <file>', 'candidate labels, one per line')
    .requiredOption('--model <model>', 'model name (ViT-B/32, RN50, …) or weight file')
    .addOption(templatesOption())
    .option('--top <k>', 'labels to show per image (default: all)', positiveInteger)
    .addOption(deviceOption())
    .addOption(precisionOption())
    .option('--json', 'print JSON: one object per image with its ranking')
    .action(async (images: string[], flags: PredictFlags) => {
      const labels = await readLabels(flags);
      const predictions = await classify(images, labels, {
        model: flags.model,
        templates: flags.templates,
        top: flags.top,
        device: flags.device,
        precision: flags.precision,
      });
      process.stdout.write(flags.json ? JSON.stringify(predictions) + '\n' : formatPredictions(predictions) + '\n');
    });
}
