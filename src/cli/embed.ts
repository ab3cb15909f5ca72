import type { Command } from 'commander';

import { deviceOption, positiveInteger, precisionOption, progressLine } from './cli-options.js';
import { embedImages, embedTexts } from '../eval/embed.js';
import { writeEmbeddings, type EmbeddingFormat, type EmbeddingSet } from '../eval/embedding-files.js';
import { readTextLines } from '../eval/image-list.js';
import { withModel } from '../eval/model-source.js';
import type { Precision } from '../model/model.js';

interface EmbedFlags {
  model: string;
  images?: string;
  texts?: string;
  out: string;
  format: EmbeddingFormat;
  batchSize: number;
  device: string;
  precision: Precision;
  truncate?: boolean;
  cache: boolean;
}

export function registerEmbed(program: Command): void {
  program
    .command('embed')
    .description('write L2-normalised image and/or text embeddings (.npy or safetensors) with a JSON-lines index per row')
    .requiredOption('--model <model>', 'model name (ViT-B/32, RN50, …) or weight file')
    .option('--images <folder|list>', 'a folder of images (recursive) or a file listing image paths, one per line')
    .option('--texts <file>', 'texts to embed, one per line')
    .requiredOption('--out <dir>', 'output folder')
    .option('--format <format>', 'npy or safetensors', 'npy')
    .option('--batch-size <n>', 'images per batch', positiveInteger, 32)
    .addOption(deviceOption())
    .addOption(precisionOption())
    .option('--truncate', 'cut texts longer than the context instead of refusing them')
    .option('--no-cache', 'do not use the cache of preprocessed images')
    .action(async (flags: EmbedFlags) => {
      if (flags.images === undefined && flags.texts === undefined) throw new Error('give --images <folder|list>, --texts <file>, or both');
      if (flags.format !== 'npy' && flags.format !== 'safetensors') throw new Error(`--format must be npy or safetensors, got ${JSON.stringify(flags.format)}`);
      const sets: EmbeddingSet[] = [];
      // One model load for both kinds.
      await withModel(flags.model, flags.device, async (model) => {
        if (flags.images !== undefined) {
          const result = await embedImages(flags.images, {
            model,
            batchSize: flags.batchSize,
            precision: flags.precision,
            cache: flags.cache,
            onProgress: progressLine('embedded images'),
          });
          for (const skipped of result.skipped) process.stderr.write(`skipped ${skipped.message}\n`);
          sets.push({ kind: 'image', features: result.features, index: result.files.map((file) => ({ file })) });
        }
        if (flags.texts !== undefined) {
          const lines = await readTextLines(flags.texts);
          const features = await embedTexts(
            lines.map((l) => l.text),
            { model, precision: flags.precision, truncate: flags.truncate },
          );
          sets.push({ kind: 'text', features, index: lines.map(({ text, line }) => ({ text, line })) });
        }
      });
      const written = await writeEmbeddings(flags.out, sets, flags.format, { model: flags.model });
      for (const file of written.files) process.stdout.write(`${file}\n`);
    });
}
