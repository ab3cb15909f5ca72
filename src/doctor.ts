// The facts a user (or a bug report) needs about this installation, gathered without side effects.
import { existsSync } from 'node:fs';
import path from 'node:path';

import { defaultCropMemoryBudget } from './data/crop-memory.js';
import { activeExperiments, EXPERIMENTS_ENV, type Experiment } from './experiments.js';
import { addonPath, buildInfo, distributedBackends, runtimeInfo } from './native.js';
import { BUNDLED_VOCAB, VOCAB_ENV, VOCAB_FILE_NAME } from './text/vocabulary.js';
import { cacheDir } from './util/cache.js';
import { version } from './version.js';

export interface DoctorReport {
  version: string;
  node: string;
  platform: string;
  addon: { path: string; buildPath: string | null };
  libtorch: { version: string; source: string | null; path: string | null; builtWithCuda: boolean };
  threads: number;
  cuda: {
    available: boolean;
    graphs: boolean;
    kernels: boolean;
    devices: Array<{ index: number; name: string; capability: string; memoryBytes: number; bf16: boolean }>;
  };
  bf16: { cpu: boolean; cuda: boolean };
  vocab: { path: string; exists: boolean; source: string };
  cache: { dir: string; exists: boolean };
  /** Bytes of preprocessed crops a training run keeps in memory by default (memoryCacheMiB 'auto'). */
  cropMemoryBytes: number;
  /** CLIP_NATIVE_EXPERIMENTS: the other code paths switched on for this process (src/experiments.ts). */
  experiments: Array<Pick<Experiment, 'name' | 'switches' | 'defaultOn'>>;
  /** Data parallel: the c10d process groups this build can create, and why each other one cannot be (with the fix). */
  distributed: { backends: string[]; missing: Record<string, string> };
}

const BACKENDS = ['gloo', 'nccl'] as const;

function distributedReport(): DoctorReport['distributed'] {
  const { built, missing } = distributedBackends();
  return { backends: built, missing: Object.fromEntries(BACKENDS.filter((b) => !built.includes(b)).map((b) => [b, missing(b)])) };
}

/** The place `resolveVocabularyPath` looks first, without hashing it (doctor has no side effects and stays quick). */
function vocabLocation(): DoctorReport['vocab'] {
  const fromEnv = process.env[VOCAB_ENV];
  if (fromEnv) return { path: fromEnv, exists: existsSync(fromEnv), source: VOCAB_ENV };
  if (existsSync(BUNDLED_VOCAB)) return { path: BUNDLED_VOCAB, exists: true, source: 'package' };
  const cached = path.join(cacheDir(), VOCAB_FILE_NAME);
  return { path: cached, exists: existsSync(cached), source: 'cache' };
}

export function doctor(): DoctorReport {
  const runtime = runtimeInfo();
  const build = buildInfo();
  return {
    version,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    addon: { path: addonPath(), buildPath: build?.buildPath ?? null },
    libtorch: {
      version: runtime.torchVersion,
      source: build?.libtorch.source ?? null,
      path: build?.libtorch.path ?? null,
      builtWithCuda: runtime.builtWithCuda,
    },
    threads: runtime.threads,
    cuda: { available: runtime.cudaAvailable, graphs: runtime.cudaGraphs, kernels: runtime.cudaKernels, devices: runtime.devices },
    bf16: { cpu: runtime.cpuBf16, cuda: runtime.devices.some((d) => d.bf16) },
    vocab: vocabLocation(),
    cache: { dir: cacheDir(), exists: existsSync(cacheDir()) },
    cropMemoryBytes: defaultCropMemoryBudget(),
    experiments: activeExperiments().map(({ name, switches, defaultOn }) => ({ name, switches, defaultOn })),
    distributed: distributedReport(),
  };
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

export function formatDoctor(report: DoctorReport): string {
  const lines = [
    `clip-native ${report.version}`,
    `  node          ${report.node} (${report.platform})`,
    `  libtorch      ${report.libtorch.version} from ${report.libtorch.source ?? 'unknown source'}${report.libtorch.path ? `: ${report.libtorch.path}` : ''}`,
    `                ${report.libtorch.builtWithCuda ? 'built with CUDA' : 'CPU-only build'}`,
    `  addon         ${report.addon.path} (built with ${report.addon.buildPath ?? 'unknown'})`,
    `  cpu threads   ${report.threads}`,
    `  cuda          ${report.cuda.available ? `available, ${report.cuda.devices.length} device(s)` : 'not available'}` +
      `; CUDA graphs ${report.cuda.graphs ? 'supported' : 'not in this build'}; own kernels ${report.cuda.kernels ? 'built' : 'not built'}`,
    ...report.cuda.devices.map(
      (d) => `    cuda:${d.index}      ${d.name}, compute capability ${d.capability}, ${gib(d.memoryBytes)}${d.bf16 ? ', bf16' : ''}`,
    ),
    `  bf16          cpu ${report.bf16.cpu ? 'yes' : 'no'}, cuda ${report.bf16.cuda ? 'yes' : 'no'}`,
    `  vocabulary    ${report.vocab.path} (${report.vocab.exists ? 'found' : 'missing'}; from ${report.vocab.source})`,
    `  model cache   ${report.cache.dir}${report.cache.exists ? '' : ' (not created yet)'}`,
    `  crop memory   up to ${gib(report.cropMemoryBytes)} of preprocessed images kept between epochs by default (--memory-cache)`,
    ...report.experiments.map((e, i) => `  ${(i ? '' : 'experiments').padEnd(14)}${e.name}: ${e.switches} (${EXPERIMENTS_ENV})`),
    `  distributed   ${report.distributed.backends.length ? `c10d process groups: ${report.distributed.backends.join(', ')}` : 'no c10d process group: one process only (WORLD_SIZE > 1 is refused)'}`,
    ...Object.entries(report.distributed.missing).map(([backend, why]) => `    no ${backend.padEnd(10)}${why}`),
  ];
  return lines.join('\n');
}
