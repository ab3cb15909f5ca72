// Turns what bench/gpu.sh left in its output folder into one markdown report, ready to commit as
// bench/results/gpu-<card>.md: the train-step table against the Python reference and the Hugging Face
// peer of the same run at the same text positions, the lever rows, the short training runs, the CUDA tests' summary, parity and
// the end-to-end run.
//
//   node dist/bench/gpu-report.js --dir $OUT [--command "bash bench/gpu.sh"] [--write $OUT/gpu-report.md]
//
// A committed run keeps its raw outputs in bench/results/<card-date>/<run>/raw.tar.xz beside this
// report: `tar xJf raw.tar.xz -C <folder>` gives the folder --dir reads.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { architecture } from '../src/model/config.js';
import { trainStepFlops } from './flops.js';
import { leverDeltas } from './lever-deltas.js';

// ../shared/measurements/h100-reference.md: the best Python number per case (images/s) and its mode.
const PYTHON_BEST: Record<string, { imagesPerSecond: number; mode: string }> = {
  'ViT-B/32 256': { imagesPerSecond: 3094, mode: 'hf (eager); 5,280 with torch.compile' },
  'ViT-B/32 32': { imagesPerSecond: 540, mode: 'seed (eager); 2,816 with compile + CUDA graphs' },
  'RN50 256': { imagesPerSecond: 1902, mode: 'amp-bf16-cl (eager)' },
  'RN50 32': { imagesPerSecond: 522, mode: 'amp-bf16-cl (eager)' },
};
// Issue 8's targets (images/s, bf16).
const TARGETS: Record<string, number> = { 'ViT-B/32 256': 5300, 'ViT-B/32 32': 2800, 'RN50 256': 2300, 'RN50 32': 1500 };

interface StepRow {
  model: string;
  batch: number;
  precision: string;
  imagesPerSecond: number;
  msPerStep: number;
  tflops: number | null;
  firstStepSeconds: number;
  peakGiB: number | null;
  peakReservedGiB?: number | null;
  loss: number;
  syncEveryStep?: boolean;
  cudaGraph?: string;
  memoryFormat?: string;
  pixels?: string;
  experiments?: string;
  textLength?: number;
  /** A ResNet's BatchNorm (frozen or train); absent in rows from before 2026-12-06, which all ran frozen (the trainer's default). */
  batchNorm?: string | null;
  /** Where each step's batch came from: host (copied inside the step) or device; absent: ours host, a peer's device. */
  batchFrom?: string;
  gpu?: string | null;
  torch?: string;
  peer?: string;
  kernelMsPerStep?: number;
  kernelsPerStep?: number;
  profile?: Array<{ name: string; calls: number; ms: number; share: number }>;
  /** Set on a row whose run failed (bench/train-step.ts --json): why. */
  error?: string;
}

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    command: { type: 'string', default: 'bash bench/gpu.sh' },
    write: { type: 'string' },
  },
});
if (!values.dir) throw new Error('usage: gpu-report --dir <the folder bench/gpu.sh wrote> [--write report.md]');
const dir = values.dir;

function read(name: string): string | undefined {
  const file = path.join(dir, name);
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

function jsonLines<T>(name: string): T[] {
  return (read(name) ?? '')
    .split('\n')
    .filter((line) => line.trim().startsWith('{'))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as T];
      } catch {
        return [];
      }
    });
}

/** TFLOP/s from the FLOPs of the text positions the row ran (rows written before 2026-12-06 counted 77 on every row). */
function tflops(r: StepRow): number | null {
  try {
    return (trainStepFlops(architecture(r.model), r.textLength ?? 77, r.batch).gflopPerPair * r.imagesPerSecond) / 1000;
  } catch {
    return r.tflops;
  }
}

/** What keeps a row from comparing like for like with the Python reference (77 positions, RN50's BatchNorm trained, its mode's precision). */
function unlikeReference(r: StepRow, referenceMode: string): string[] {
  const reasons: string[] = [];
  // The reference's `seed` mode trains fp16 weights (openai/CLIP's convert_weights), not bf16 autocast.
  if (referenceMode.startsWith('seed') && r.precision !== 'fp16') reasons.push(`${r.precision} vs the reference's fp16 weights`);
  if ((r.textLength ?? 77) !== 77) reasons.push(`text ${r.textLength} vs 77 positions`);
  if (r.model.startsWith('RN') && (r.batchNorm ?? 'frozen') !== 'train') reasons.push('BatchNorm frozen vs trained');
  return reasons;
}

const fmt = (n: number | null | undefined, digits = 0) => (n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));

function variant(r: StepRow): string {
  const parts: string[] = [];
  const graph = r.cudaGraph ?? 'off';
  parts.push(graph === 'captured' ? 'CUDA graph' : graph === 'off' ? 'eager' : `eager: CUDA graph asked for, ${graph}`);
  if (r.syncEveryStep) parts.push('read-back every step');
  if (r.memoryFormat && r.memoryFormat !== 'auto') parts.push(r.memoryFormat);
  if (r.pixels && r.pixels !== 'uint8') parts.push(`${r.pixels} pixels`);
  if (r.experiments) parts.push(`experiment ${r.experiments}`);
  // Rows from before 2026-11-27 carry no textLength: the text tower then always ran all 77 positions.
  parts.push(`text ${r.textLength ?? 77} positions`);
  if (r.model.startsWith('RN')) parts.push(`BatchNorm ${r.batchNorm ?? 'frozen'}`);
  parts.push(`batch from ${r.batchFrom ?? 'host'}`);
  return parts.join(', ');
}

const stepRows = jsonLines<StepRow>('train-step.jsonl');
const steps = stepRows.filter((r) => r.error === undefined);
const failedSteps = stepRows.filter((r) => r.error !== undefined);
const peers = jsonLines<StepRow>('hf-peer.jsonl');
const shortRuns = jsonLines<StepRow>('short-runs.jsonl');
const doctor = (() => {
  try {
    return JSON.parse(read('doctor.json') ?? 'null') as { libtorch?: { version?: string }; cuda?: { devices?: Array<{ name: string }>; graphs?: boolean } } | null;
  } catch {
    return null;
  }
})();
const card = doctor?.cuda?.devices?.[0]?.name ?? steps.find((s) => s.gpu)?.gpu ?? 'unknown GPU';

const lines: string[] = [
  `# Native train step on ${card}`,
  '',
  `- command: \`${values.command}\` (on the GPU machine; this report: \`node dist/bench/gpu-report.js --dir <its output>\`)`,
  `- date: ${new Date().toISOString().slice(0, 10)}`,
  `- LibTorch ${doctor?.libtorch?.version ?? steps[0]?.torch ?? '?'}; CUDA graphs in this build: ${doctor?.cuda?.graphs === undefined ? '?' : doctor.cuda.graphs ? 'yes' : 'no'}`,
  '- each step: forward of both towers, loss, backward, AdamW; random weights; bf16 autocast with fp32 master weights; uint8 pixels sent from the host every step unless said',
  '- prompts of 13 tokens: "text 16 positions", the text tower ran only those (cut after the end token, as clip-native does by default); "text 77 positions", all of them, as the Python reference and the peer at 77 do',
  '- TFLOP/s counts the FLOPs of the positions run, computed here from images/s (bench/flops.ts: PyTorch\'s FLOP counter\'s count for the reference\'s model; 44.2 GFLOP per pair for ViT-B/32 and 52.7 for RN50 at 77 positions, 29.9 and 38.4 at 16)',
  '- "batch from host": our step copies its batch from host memory inside the timed step; the Python reference and the peers keep theirs on the GPU. RN50 rows say their BatchNorm mode: the Python reference trains it (model.train())',
  '- the best-Python column is the reference at 77 positions with its batch on the GPU and RN50\'s BatchNorm training: a row that differs says "unlike" and how; the HF peer column is the peer at the same batch and text positions as the row',
  '',
  '## Against the targets (issue 8) and the Python reference',
  '',
  '| model | batch | variant | images/s | ms/step | TFLOP/s | peak GiB allocated / reserved | first step s | target | best Python (same card) | HF peer, this run |',
  '|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|',
];
for (const r of steps) {
  const key = `${r.model} ${r.batch}`;
  const python = PYTHON_BEST[key];
  // The peer at the same batch and text positions (peers from before 2026-12-06 ran 77 only).
  const peer = r.model === 'ViT-B/32' ? peers.find((p) => p.batch === r.batch && (p.textLength ?? 77) === (r.textLength ?? 77)) : undefined;
  const target = TARGETS[key];
  const mark = target ? (r.imagesPerSecond >= target ? ' ✓' : ' ✗') : '';
  const unlike = python ? unlikeReference(r, python.mode) : [];
  lines.push(
    `| ${r.model} | ${r.batch} | ${variant(r)} | ${fmt(r.imagesPerSecond)} | ${fmt(r.msPerStep, 1)} | ${fmt(tflops(r))} | ${fmt(r.peakGiB, 1)} / ${fmt(r.peakReservedGiB, 1)} | ${fmt(r.firstStepSeconds, 1)} | ` +
      `${target ? fmt(target) + mark : '–'} | ${python ? `${fmt(python.imagesPerSecond)} (${python.mode}); ×${fmt(r.imagesPerSecond / python.imagesPerSecond, 2)}${unlike.length ? `; unlike: ${unlike.join(', ')}` : ''}` : '–'} | ` +
      `${peer ? `${fmt(peer.imagesPerSecond)}; ×${fmt(r.imagesPerSecond / peer.imagesPerSecond, 2)}` : '–'} |`,
  );
}
if (steps.length === 0) lines.push('| (no train-step results in this run) |||||||||||');
if (failedSteps.length > 0) {
  lines.push('', '## Train-step runs that failed', '', '| model | batch | experiments | error |', '|---|---:|---|---|');
  for (const r of failedSteps) lines.push(`| ${r.model} | ${r.batch} | ${r.experiments || '–'} | ${r.error!.replace(/\|/g, '\\|').replace(/\n/g, ' ')} |`);
}

const leverLines = leverDeltas(steps).map(
  ({ row, lever, base, msDelta, imagesPercent }) =>
    `| ${row.model} | ${row.batch} | \`${lever}\` | ${base.experiments ? variant(base) : `default path, ${variant(base)}`} | ${fmt(base.msPerStep, 1)} → ${fmt(row.msPerStep, 1)} | ` +
    `${msDelta > 0 ? '+' : ''}${fmt(msDelta, 2)} | ${imagesPercent > 0 ? '+' : ''}${fmt(imagesPercent, 1)} % |`,
);
if (leverLines.length) {
  lines.push('', '## Levers against the row they add to (same run)', '', '| model | batch | lever | against | ms/step | Δ ms/step | Δ images/s |', '|---|---:|---|---|---:|---:|---:|', ...leverLines);
}

for (const r of steps.filter((s) => s.profile?.length)) {
  const busy = r.kernelMsPerStep !== undefined ? `; GPU busy ${fmt(r.kernelMsPerStep, 1)} of ${fmt(r.msPerStep, 1)} ms per step (${fmt((100 * r.kernelMsPerStep) / r.msPerStep)} %)` : '';
  const launches = r.kernelsPerStep !== undefined ? `, ${fmt(r.kernelsPerStep)} kernels per step` : '';
  lines.push('', `## Where the time goes: ${r.model}, batch ${r.batch}, ${variant(r)}${busy}${launches}`, '', '| kernel | calls/step | ms/step | share |', '|---|---:|---:|---:|');
  for (const k of r.profile!) lines.push(`| \`${k.name.replace(/\|/g, '\\|')}\` | ${fmt(k.calls, 1)} | ${fmt(k.ms, 3)} | ${fmt(100 * k.share, 1)} % |`);
}

lines.push('', '## Hugging Face peer (same run; bf16, batch already on the GPU)', '', '| batch | text positions | images/s | ms/step | TFLOP/s | peak GiB | first step s |', '|---:|---:|---:|---:|---:|---:|---:|');
for (const p of peers) lines.push(`| ${p.batch} | ${p.textLength ?? 77} | ${fmt(p.imagesPerSecond)} | ${fmt(p.msPerStep, 1)} | ${fmt(tflops({ ...p, model: 'ViT-B/32' }))} | ${fmt(p.peakGiB, 1)} | ${fmt(p.firstStepSeconds, 1)} |`);

lines.push('', '## Short training runs (issue 6: batch 128, 200 steps from random weights)', '', '| model | precision | images/s | last loss | finite |', '|---|---|---:|---:|---|');
for (const r of shortRuns) lines.push(`| ${r.model} | ${r.precision} | ${fmt(r.imagesPerSecond)} | ${fmt(r.loss, 4)} | ${Number.isFinite(r.loss) ? 'yes' : '**no**'} |`);

const tests = read('cuda-tests.txt');
if (tests) {
  const count = (what: string) => tests.match(new RegExp(`^# ${what} (\\d+)`, 'm'))?.[1] ?? '?';
  lines.push('', '## CUDA tests (test/cuda.test.ts)', '', `${count('tests')} tests: ${count('pass')} pass, ${count('fail')} fail, ${count('skipped')} skipped.`);
  const failures = tests.split('\n').filter((l) => /^\s*not ok/.test(l));
  if (failures.length) lines.push('', ...failures.map((l) => `- ${l.trim()}`));
  const diagnostics = tests.split('\n').filter((l) => /^\s*# (tiny_|ViT|RN)/.test(l));
  if (diagnostics.length) lines.push('', ...diagnostics.map((l) => `- ${l.trim().slice(2)}`));
}

const disks = read('disks.txt');
if (disks) lines.push('', '## Disks of the loader runs (`df -h /tmp /dev/shm`)', '', '```', disks.trim(), '```');
const parity = read('gpu-parity.json');
if (parity) lines.push('', '## CUDA parity with the reference goldens (bench/gpu-parity.ts)', '', '```json', parity.trim(), '```');
const e2e = read('e2e.md');
if (e2e) lines.push('', '## End to end from JPEG files', '', ...e2e.trim().split('\n').slice(1));
const e2eInMemory = read('e2e-shm.md');
if (e2eInMemory) lines.push('', '## End to end from JPEG files, images and cache in memory (/dev/shm)', '', ...e2eInMemory.trim().split('\n').slice(1));
for (const [file, title] of [
  ['loader.md', 'The loader alone (default decode threads)'],
  ['loader-shm.md', 'The loader alone, images and cache in memory (/dev/shm)'],
  ['loader-8-threads.md', 'The loader alone, 8 decode threads'],
  ['loader-main-thread.md', 'The loader alone, decoding on the main thread'],
  ['loader-1-thread.md', 'The loader alone, 1 decode thread'],
  ['loader-2-arenas.md', "The loader alone, glibc's malloc arenas capped at 2"],
]) {
  const text = read(file!);
  if (text) lines.push('', `## ${title}`, '', ...text.trim().split('\n').slice(1));
}
// bench/trace-kernels.ts output, one file per model: which operators launch the GPU time.
for (const file of readdirSync(dir).filter((f) => /^kernels-by-op-.*\.md$/.test(f)).sort()) {
  lines.push('', `## Kernels by launching operator: ${file.slice('kernels-by-op-'.length, -3)}, batch 256, eager`, '', read(file)!.trim());
}
lines.push('');

const report = lines.join('\n');
process.stdout.write(report);
if (values.write) writeFileSync(values.write, report);
