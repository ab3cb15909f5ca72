// Times the native train step (forward of both towers, loss, backward, optimizer step) on random
// weights and a synthetic batch, as ../shared/measurements/h100-reference.md measures PyTorch.
//
//   node dist/bench/train-step.js --model ViT-B/32 --batch 256 --device cuda --precision bf16 [--steps 20] [--warmup 5]
//        [--eager] [--memory-format auto|channels_last|contiguous] [--pixels uint8|float32] [--sync-every-step]
//        [--profile N [--trace trace.json]] [--activation quick_gelu|gelu] [--grad-checkpointing] [--batchnorm frozen|train] [--json]
//
// --batch auto: the largest power of two (up to 4096) whose step fits (src/train/memory.ts), then timed.
// --grad-checkpointing: each transformer block (ResNet stage) recomputed in backward.
// --batchnorm train: a ResNet's BatchNorm updates its statistics from each batch, as the Python
// reference's model.train() does (the trainer's default, frozen, keeps the running statistics and on
// CUDA folds them into the convolutions).
//
// --activation gelu: the released architecture with open_clip's exact GELU (LAION, DataComp
// checkpoints), which takes none of QuickGELU's own kernels or fused forms.
//
// --profile N: after the timed steps, N more under LibTorch's profiler; the result gains `profile`,
// the 25 longest GPU kernels (CPU operators on a CPU) with their share of the profiled time.
//
// Each step sends its batch from host memory, as training does: by default uint8 pixels [n, R, R, 3]
// normalised on the device (the loader's path; a quarter of float32's bytes), so unlike the Python
// reference, whose batch already sits on the GPU, every timed step includes its host-to-device copy.
//
// Prompts of 13 tokens: by default the text tower runs 16 of the 77 positions (cut after the end
// token); CLIP_NATIVE_EXPERIMENTS=full-text-context runs all 77, as the Python reference does.
//
// Prints images/s, ms/step, achieved TFLOP/s (bench/flops.ts: the FLOPs PyTorch's counter gives the
// reference's model, at the text positions this run's text tower ran), peak GPU memory over the timed
// steps, and the time from process start to the end of the first step.
import { parseArgs } from 'node:util';

import { createModel } from '../src/model/model.js';
import { architecture, isResNet } from '../src/model/config.js';
import { cudaMemory, runtimeInfo } from '../src/native.js';
import { autoBatchSize } from '../src/train/memory.js';
import { createTrainer } from '../src/train/trainer.js';
import { trainStepFlops } from './flops.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'ViT-B/32' },
    batch: { type: 'string', default: '32' },
    device: { type: 'string', default: 'cpu' },
    precision: { type: 'string', default: 'fp32' },
    steps: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
    'sync-every-step': { type: 'boolean', default: false },
    // The trainer's default on CUDA is the CUDA graph; --eager times eager steps.
    eager: { type: 'boolean', default: false },
    'memory-format': { type: 'string', default: 'auto' },
    pixels: { type: 'string', default: 'uint8' },
    profile: { type: 'string', default: '0' },
    trace: { type: 'string' },
    activation: { type: 'string', default: 'quick_gelu' },
    'grad-checkpointing': { type: 'boolean', default: false },
    batchnorm: { type: 'string', default: 'frozen' },
  },
});

// With --json a failed run is a row too, saying why (bench/gpu-report.ts lists it), not only a stack
// trace beside the rows.
if (values.json) {
  process.on('uncaughtException', (err) => {
    const { model, batch, device, precision } = values;
    const experiments = process.env.CLIP_NATIVE_EXPERIMENTS ?? '';
    process.stdout.write(JSON.stringify({ model, batch: Number(batch), device, precision, eager: values.eager, batchNorm: values.batchnorm, experiments, error: err.message }) + '\n');
    process.exitCode = 1;
  });
}

if (values.activation !== 'quick_gelu' && values.activation !== 'gelu') throw new Error(`--activation must be quick_gelu or gelu, got ${values.activation}`);
if (values.batchnorm !== 'frozen' && values.batchnorm !== 'train') throw new Error(`--batchnorm must be frozen or train, got ${values.batchnorm}`);
const config = { ...architecture(values.model!), ...(values.activation === 'gelu' ? { activation: 'gelu' as const } : {}) };
const r = config.image_resolution;
const memoryFormat = values['memory-format'] as 'auto' | 'channels_last' | 'contiguous';
const model = await createModel(config, { seed: 0, device: values.device, memoryFormat });
const trainerOptions = {
  optimizer: 'adamw' as const,
  lr: 1e-5,
  weightDecay: 0.1,
  precision: values.precision as 'fp32' | 'bf16' | 'fp16',
  cudaGraph: !values.eager,
  gradCheckpointing: values['grad-checkpointing'],
  batchNorm: values.batchnorm as 'frozen' | 'train',
};
const batch = values.batch === 'auto' ? await autoBatchSize(model, trainerOptions, 4096) : Number(values.batch);
const images =
  values.pixels === 'float32'
    ? { data: new Float32Array(batch * 3 * r * r).map(() => Math.random() * 2 - 1), shape: [batch, 3, r, r] }
    : { data: new Uint8Array(batch * r * r * 3).map(() => Math.floor(Math.random() * 256)), shape: [batch, r, r, 3] };
const tokens = { data: new Int32Array(batch * 77), shape: [batch, 77] };
for (let i = 0; i < batch; i++) {
  tokens.data[i * 77] = 49406;
  for (let j = 1; j < 12; j++) tokens.data[i * 77 + j] = 1000 + ((i * 31 + j * 7) % 40000);
  tokens.data[i * 77 + 12] = 49407;
}

const trainer = await createTrainer(model, trainerOptions);
const deviceIndex = values.device!.startsWith('cuda') ? Number(values.device!.split(':')[1] ?? 0) : -1;
await trainer.step(images, tokens);
const firstStepSeconds = performance.now() / 1000;
for (let i = 1; i < Number(values.warmup); i++) await trainer.step(images, tokens);
// The peak covers the timed steps only (a CUDA graph's pool included), not the warm-up's lazy setup.
if (deviceIndex >= 0) cudaMemory(deviceIndex, true);
const steps = Number(values.steps);
const start = performance.now();
let loss = 0;
// As the training loop runs on CUDA: no read-back inside the timed steps but the last, which waits for
// the queue to drain (--sync-every-step reads every loss, the host synchronisation issue 8 lists).
for (let i = 0; i < steps; i++) {
  const readLoss = values['sync-every-step'] || i === steps - 1;
  const result = await trainer.stepWithInfo(images, tokens, undefined, { readLoss });
  if (result.lossRead) loss = result.loss;
}
const seconds = (performance.now() - start) / 1000;
const msPerStep = (seconds / steps) * 1000;
const imagesPerSecond = (batch * steps) / seconds;
const profileSteps = Number(values.profile);
let profile: Array<{ name: string; calls: number; ms: number; share: number }> | undefined;
let kernelMsPerStep: number | undefined; // GPU busy time per step: all its kernels and copies
let kernelsPerStep: number | undefined; // how many: at small batches each costs its few µs of minimum
let profileError: string | undefined;
// The timing stands on its own: a build without the profiler still reports it.
const rows = profileSteps > 0 ? await trainer.profile(images, tokens, { steps: profileSteps, trace: values.trace }).catch((err: Error) => void (profileError = err.message)) : undefined;
if (rows) {
  const device = values.device!.startsWith('cuda') ? 'cuda' : 'cpu';
  // Kineto also puts the step's own annotation (clip_native::train_step) on the GPU timeline, spanning
  // its kernels; a name that is also a CPU operator is no kernel.
  const cpuNames = new Set(rows.filter((r) => r.device === 'cpu').map((r) => r.name));
  const mine = rows.filter((r) => r.device === device && (device === 'cpu' || !cpuNames.has(r.name)));
  // GPU kernels do not nest, so their sum is the GPU's busy time; CPU operators nest, so shares of
  // the largest (the whole step's) are shown instead.
  const whole = device === 'cuda' ? mine.reduce((sum, r) => sum + r.totalUs, 0) : (mine[0]?.totalUs ?? 1);
  if (device === 'cuda') {
    kernelMsPerStep = Math.round((whole / profileSteps / 1000) * 100) / 100;
    kernelsPerStep = Math.round(mine.reduce((sum, r) => sum + r.calls, 0) / profileSteps);
  }
  profile = mine.slice(0, 25).map((r) => ({
    name: r.name.length > 120 ? `${r.name.slice(0, 117)}...` : r.name,
    calls: r.calls / profileSteps,
    ms: Math.round((r.totalUs / profileSteps / 1000) * 1000) / 1000,
    share: Math.round((r.totalUs / whole) * 1000) / 1000,
  }));
}
// The FLOPs of the positions the text tower ran (16 for these prompts by default, 77 with
// full-text-context), not the reference's 77 on every row.
const flops = trainStepFlops(config, trainer.textLength, batch);
const memory = deviceIndex >= 0 ? cudaMemory(deviceIndex) : undefined;
const result = {
  model: values.model,
  activation: values.activation,
  batch,
  batchAuto: values.batch === 'auto',
  gradCheckpointing: values['grad-checkpointing'],
  device: values.device,
  precision: values.precision,
  imagesPerSecond: Math.round(imagesPerSecond * 10) / 10,
  msPerStep: Math.round(msPerStep * 100) / 100,
  tflops: Math.round(((flops.perStep * steps) / seconds / 1e12) * 10) / 10,
  gflopPerPair: Math.round(flops.gflopPerPair * 10) / 10,
  firstStepSeconds: Math.round(firstStepSeconds * 100) / 100,
  peakGiB: memory?.available ? Math.round((memory.peakAllocatedBytes / 2 ** 30) * 100) / 100 : null,
  peakReservedGiB: memory?.available ? Math.round((memory.peakReservedBytes / 2 ** 30) * 100) / 100 : null,
  loss,
  syncEveryStep: values['sync-every-step'],
  cudaGraph: trainer.cudaGraphStatus,
  kernelsPerStep,
  // Positions the text tower ran: the prompts end at 13 tokens (rounded up to 16); 77 with
  // CLIP_NATIVE_EXPERIMENTS=full-text-context. `tflops` counts these.
  textLength: trainer.textLength,
  // A ResNet's BatchNorm: frozen (running statistics) or train (batch statistics); null for a ViT.
  batchNorm: isResNet(config) ? values.batchnorm : null,
  // Where each step's batch comes from: host memory, copied to the device inside the timed step (the
  // Python reference and the peers keep theirs on the GPU).
  batchFrom: 'host',
  memoryFormat,
  pixels: values.pixels,
  experiments: process.env.CLIP_NATIVE_EXPERIMENTS ?? '',
  kernelMsPerStep,
  profile,
  profileError,
  torch: runtimeInfo().torchVersion,
  gpu: runtimeInfo().devices[0]?.name ?? null,
};
if (values.json) process.stdout.write(JSON.stringify(result) + '\n');
else {
  process.stdout.write(
    `${result.model} batch ${batch} ${result.precision} on ${result.device}, text ${result.textLength} positions${result.batchNorm ? `, BatchNorm ${result.batchNorm}` : ''}: ` +
      `${result.imagesPerSecond} images/s, ${result.msPerStep} ms/step, ${result.tflops} TFLOP/s${result.peakGiB !== null ? `, peak ${result.peakGiB} GiB` : ''}` +
      `, first step after ${result.firstStepSeconds} s; CUDA graph: ${result.cudaGraph}\n`,
  );
}
