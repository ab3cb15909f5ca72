import type { Command } from 'commander';

import { doctor, formatDoctor } from '../doctor.js';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('show the LibTorch, CUDA and file locations this installation uses')
    .option('--json', 'print one JSON object')
    .action((options: { json?: boolean }) => {
      const report = doctor();
      process.stdout.write(options.json ? JSON.stringify(report, null, 2) + '\n' : formatDoctor(report) + '\n');
    });
}
