#!/usr/bin/env node
// `clip-native` command line: each subcommand lives in its own module and registers itself here.
import { Command } from 'commander';

import { setDownloadProgress } from '../model/resolve-name.js';
import { version } from '../version.js';
import { registerDemo } from './demo.js';
import { createDownloadProgress } from './download-progress.js';
import { registerDoctor } from './doctor.js';
import { registerEmbed } from './embed.js';
import { registerEval } from './eval.js';
import { registerExport } from './export.js';
import { registerInterpolate } from './interpolate.js';
import { registerPredict } from './predict.js';
import { registerReport } from './report.js';
import { registerTrain } from './train.js';

setDownloadProgress(createDownloadProgress());

const program = new Command();
program.name('clip-native').description('Fine-tune OpenAI CLIP from Node.js on a LibTorch native addon').version(version);
registerDoctor(program);
registerDemo(program);
registerTrain(program);
registerEval(program);
registerPredict(program);
registerEmbed(program);
registerInterpolate(program);
registerExport(program);
registerReport(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`clip-native: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
