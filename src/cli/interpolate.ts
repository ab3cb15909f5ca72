import type { Command } from 'commander';

import { unitInterval } from './cli-options.js';
import { interpolateWeights } from '../eval/interpolate.js';

export function registerInterpolate(program: Command): void {
  program
    .command('interpolate')
    .description('weight-space ensemble (WiSE-FT): (1 - alpha) * from + alpha * to, saved as a new model')
    .requiredOption('--from <model>', 'zero-shot endpoint (alpha = 0): model name or weight file')
    .requiredOption('--to <model>', 'fine-tuned endpoint (alpha = 1): model name or weight file')
    .requiredOption('--alpha <alpha>', 'mixing weight of --to, from 0 to 1', unitInterval)
    .requiredOption('--out <file>', 'output weights: .safetensors, .pt or .pth')
    .option('--device <device>', 'device to load both models on', 'cpu')
    .action(async (flags: { from: string; to: string; alpha: number; out: string; device: string }) => {
      const result = await interpolateWeights(flags);
      process.stdout.write(`wrote ${result.out} (${result.format}): alpha ${result.alpha}, ${result.mixed} of ${result.tensors} tensors mixed\n`);
    });
}
