import type { Command } from 'commander';

import { writeReport } from '../report/html.js';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('one self-contained HTML page with loss, learning rate, accuracy, per-class accuracy and confusion matrix of a run')
    .argument('<run-dir>', 'training run folder (holds metrics.jsonl and config.json)')
    .option('--out <file>', 'HTML file to write (default <run-dir>/report.html)')
    .action(async (runDir: string, flags: { out?: string }) => {
      const { out, run } = await writeReport(runDir, flags.out);
      for (const problem of run.problems) process.stderr.write(`warning: ${problem}\n`);
      process.stdout.write(`${out}\n`);
    });
}
