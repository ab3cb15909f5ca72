import type { Command } from 'commander';

import { runDemo } from '../demo/demo.js';
import { createTrainProgress } from './train-progress.js';

const pct = (v: number) => `${(v * 100).toFixed(1)} %`;

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('fine-tune on a small example set drawn at run time (no dataset, no network): accuracy before and after, and an HTML report')
    .option('--out <dir>', 'folder for the example set, the run and the report (replaced when an earlier demo wrote it)', 'clip-native-demo')
    .option('--model <name|path>', 'auto: ViT-B/32 if its weights are cached, else a small CLIP from random weights; or a released name (downloaded if needed) or a weight file to fine-tune', 'auto')
    .option('--device <device>', 'auto, cpu, cuda or cuda:<n>', 'auto')
    .option('--epochs <n>', 'epochs (default 2 pretrained, 12 from random weights)', (v) => Number(v))
    .action(async (flags: { out: string; model: string; device: string; epochs?: number }) => {
      const progress = createTrainProgress();
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      try {
        const result = await runDemo({
          ...flags,
          onMessage: progress.message,
          hooks: { onBatch: progress.onBatch, onLog: progress.onLog, onEpoch: progress.onEpoch, signal: controller.signal },
        });
        progress.stop();
        if (result.run.interrupted) {
          process.stdout.write(`interrupted after ${result.run.epochsCompleted} epoch(s); report: ${result.report}\n`);
          process.exitCode = 130;
          return;
        }
        const what = result.pretrained ? `fine-tuned ${result.model}` : 'trained a small CLIP from random weights';
        process.stdout.write(
          `${what} on ${result.data.train} images: zero-shot top-1 on ${result.data.test} test images ${pct(result.before)} before, ${pct(result.after)} after\n` +
            `report: ${result.report}\n`,
        );
      } finally {
        progress.stop();
        process.off('SIGINT', stop);
      }
    });
}
