// Data parallel on this machine: the train step of 2 Gloo ranks (torchrun, loopback) against 1 rank,
// and the time of the gradients' all-reduce in each step, measured under LibTorch's profiler (c10d's
// own record of the collective). Prints one table row per configuration, with the command, the
// machine and the date; --write appends them to a results file.
//
//   node dist/bench/data-parallel.js [--batch 8] [--steps 10] [--warmup 3] [--write bench/results/data-parallel-cpu.md]
//
// Configurations: 1 rank with the per-rank batch (the work of one rank), 1 rank with the global batch
// (what 2 ranks replace), each with every core and with one thread; 2 ranks with the per-rank batch,
// one thread each (as torchrun sets OMP_NUM_THREADS), and the same with the per-rank loss only
// (no feature gather). The model is a small ViT CLIP (below): on CPUs a released model's step takes
// seconds, and the all-reduce's share of a step depends on the ratio of parameters to compute anyway.
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { launchFromEnv, ProcessGroup } from '../src/distributed/group.js';
import { architecture } from '../src/model/config.js';
import { createModel } from '../src/model/model.js';
import { runtimeInfo } from '../src/native.js';
import { createTrainer } from '../src/train/trainer.js';
import { createRng } from '../src/util/prng.js';

/** 64 px ViT, 4 layers of width 256 per tower: 19.8M parameters (12.6M of them the token embedding). */
export const BENCH_MODEL = {
  embed_dim: 256,
  image_resolution: 64,
  vision_layers: 4,
  vision_width: 256,
  vision_patch_size: 16,
  context_length: 77,
  vocab_size: 49408,
  transformer_width: 256,
  transformer_heads: 4,
  transformer_layers: 4,
};

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '8' },
    steps: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    worker: { type: 'boolean', default: false },
    'local-loss': { type: 'boolean', default: false },
    write: { type: 'string' },
    // Worker options for bench/multi-gpu.sh: cuda (cuda:LOCAL_RANK, bf16, nccl), a released model,
    // and a process group even for one rank (its collectives then run too).
    device: { type: 'string', default: 'cpu' },
    model: { type: 'string' },
    group: { type: 'boolean', default: false },
  },
});

interface WorkerResult {
  world: number;
  batch: number;
  threads: number;
  localLoss: boolean;
  parameters: number;
  stepMs: number;
  /** Per step, from the profiler: c10d's all-reduce records (the gradients' buckets and the loss). */
  allReduceMs: number;
  /** Per step, the other collectives the step makes (the features' all-gather). */
  otherCollectiveMs: number;
  collectiveNames: string[];
}

async function worker(): Promise<void> {
  const launch = launchFromEnv();
  const world = launch?.worldSize ?? 1;
  const batch = Number(values.batch);
  const device = values.device === 'cuda' ? `cuda:${launch?.localRank ?? 0}` : 'cpu';
  const group = launch && (world > 1 || values.group) ? await ProcessGroup.join(launch, device, { timeoutMs: 120_000 }) : undefined;
  const config = values.model ? architecture(values.model) : BENCH_MODEL;
  const model = await createModel(config, { seed: 1, device });
  const precision = device === 'cpu' ? 'fp32' : 'bf16';
  const trainer = await createTrainer(model, { optimizer: 'adamw', lr: 1e-4, group, localLoss: values['local-loss'], precision });
  const rng = createRng(11, launch?.rank ?? 0);
  const r = config.image_resolution;
  const images = { data: new Float32Array(batch * 3 * r * r).map(() => rng.next() * 2 - 1), shape: [batch, 3, r, r] };
  const tokens = new Int32Array(batch * 77);
  for (let i = 0; i < batch; i++) {
    tokens[i * 77] = 49406;
    for (let j = 1; j < 12; j++) tokens[i * 77 + j] = 1 + rng.nextInt(40000);
    tokens[i * 77 + 12] = 49407;
  }
  const tokenData = { data: tokens, shape: [batch, 77] };
  for (let i = 0; i < Number(values.warmup); i++) await trainer.step(images, tokenData);
  const times: number[] = [];
  for (let i = 0; i < Number(values.steps); i++) {
    // The same start on every rank: a step's time is then its own, not a wait for a slower rank's previous one.
    await group?.barrier();
    const start = performance.now();
    await trainer.step(images, tokenData);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const profiled = 3;
  const rows = await trainer.profile(images, tokenData, { steps: profiled });
  // c10d's own records ('gloo:all_reduce', 'gloo:all_gather', 'nccl:…'): the time each collective took to its end.
  const collectives = rows.filter((row) => /^(gloo|nccl):/.test(row.name));
  const allReduce = collectives.filter((row) => /all_?reduce/i.test(row.name));
  const other = collectives.filter((row) => !/all_?reduce/i.test(row.name));
  const perStep = (list: typeof rows) => list.reduce((sum, row) => sum + row.totalUs, 0) / 1000 / profiled;
  const result: WorkerResult = {
    world,
    batch,
    threads: runtimeInfo().threads,
    localLoss: values['local-loss'],
    parameters: model.parameterCount(),
    stepMs: times[Math.floor(times.length / 2)]!,
    allReduceMs: perStep(allReduce),
    otherCollectiveMs: perStep(other),
    collectiveNames: collectives.map((row) => `${row.name} ×${row.calls / profiled}`),
  };
  if ((launch?.rank ?? 0) === 0) process.stdout.write(JSON.stringify(result) + '\n');
}

function runWorker(args: string[], env: NodeJS.ProcessEnv, world: number): WorkerResult {
  const self = fileURLToPath(import.meta.url);
  const command =
    world > 1
      ? { program: 'python3', args: ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', String(world), '--no-python', process.execPath, self, '--worker', ...args] }
      : { program: process.execPath, args: [self, '--worker', ...args] };
  const run = spawnSync(command.program, command.args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 600_000 });
  const line = run.stdout.split('\n').find((l) => l.startsWith('{'));
  if (run.status !== 0 || !line) throw new Error(`${command.program} ${command.args.join(' ')} failed (${run.status}):\n${run.stderr}`);
  return JSON.parse(line) as WorkerResult;
}

async function main(): Promise<void> {
  const batch = Number(values.batch);
  const common = ['--steps', values.steps!, '--warmup', values.warmup!];
  const cores = os.availableParallelism();
  const configs: Array<{ label: string; world: number; batch: number; threads: number; localLoss?: boolean }> = [
    { label: `1 rank, batch ${batch}`, world: 1, batch, threads: 1 },
    { label: `1 rank, batch ${batch}`, world: 1, batch, threads: cores },
    { label: `1 rank, batch ${2 * batch} (the global batch)`, world: 1, batch: 2 * batch, threads: 1 },
    { label: `1 rank, batch ${2 * batch} (the global batch)`, world: 1, batch: 2 * batch, threads: cores },
    { label: `2 ranks × batch ${batch} (gloo, loopback)`, world: 2, batch, threads: 1 },
    { label: `2 ranks × batch ${batch}, per-rank loss (--local-loss: no feature gather)`, world: 2, batch, threads: 1, localLoss: true },
  ];
  const rows: string[] = [];
  const results: WorkerResult[] = [];
  for (const c of configs) {
    const result = runWorker(['--batch', String(c.batch), ...common, ...(c.localLoss ? ['--local-loss'] : [])], { OMP_NUM_THREADS: String(c.threads) }, c.world);
    results.push(result);
    const images = (c.batch * c.world * 1000) / result.stepMs;
    const collectives = c.world > 1 ? `${result.allReduceMs.toFixed(1)} | ${result.otherCollectiveMs.toFixed(1)}` : '– | –';
    rows.push(`| ${c.label} | ${c.world * c.threads} (${c.threads} per rank) | ${result.stepMs.toFixed(1)} | ${images.toFixed(1)} | ${collectives} |`);
    process.stderr.write(`${rows.at(-1)}\n`);
  }
  const parameters = results[0]!.parameters;
  const names = results.find((r) => r.world > 1 && !r.localLoss)?.collectiveNames ?? [];
  const info = runtimeInfo();
  const command = `node dist/bench/data-parallel.js ${process.argv.slice(2).join(' ')}`.trim();
  const text = [
    `# Data parallel on this machine: 2 Gloo ranks vs 1 rank`,
    '',
    `- command: \`${command}\``,
    `- date: ${new Date().toISOString()}`,
    `- machine: ${cores} CPUs (${os.cpus()[0]?.model.trim() ?? 'unknown'}); Node ${process.version}; LibTorch ${info.torchVersion}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`,
    `- model: 64 px ViT CLIP, 4 layers of width 256 per tower, ${(parameters / 1e6).toFixed(1)}M parameters (${((parameters * 4) / 2 ** 20).toFixed(0)} MiB of fp32 gradients all-reduced per step), fp32, AdamW`,
    `- step: median of ${values.steps} after ${values.warmup} warm-up, the ranks starting each at a barrier; collectives per step from LibTorch's profiler over 3 more steps (2 ranks: ${names.join(', ') || 'none recorded'})`,
    `- the machine is shared: the load average above includes other processes, and 2 ranks on 2 cores compete with them for both`,
    '',
    '| configuration | threads | ms/step | images/s | all-reduce ms/step | other collectives ms/step |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows,
    '',
  ].join('\n');
  process.stdout.write(text);
  if (values.write) {
    await fs.mkdir(path.dirname(values.write), { recursive: true });
    await fs.appendFile(values.write, text + '\n');
  }
}

await (values.worker ? worker() : main());
