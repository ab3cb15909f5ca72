// One rank of the data-parallel checks in test/distributed.test.ts, started by torchrun (or with the
// same environment by the test itself). Trains the tiny model a few steps on a fixed global batch,
// this rank's slice of it (DDP_ACCUMULATE=n: as n micro-batches of one contrastive group), and prints
// one JSON line: its losses and its weights' bytes (hashed, and a sample). With DDP_REFERENCE=1 and no
// WORLD_SIZE it is the single process on the whole global batch.
// Run without either (as `node --test` runs every file under test/), it does nothing.
import { createHash } from 'node:crypto';

import { launchFromEnv, ProcessGroup } from '../../src/distributed/group.js';
import { createModel } from '../../src/model/model.js';
import { createTrainer } from '../../src/train/trainer.js';
import { createRng } from '../../src/util/prng.js';
import { TINY_MODEL } from './tiny-model.js';

const env = process.env;
const launch = launchFromEnv(env);
if (launch || env.DDP_REFERENCE === '1') await main();

/** Step s's global batch: images, end-of-text tokens at varied lengths, labels with repeats. */
function globalBatch(step: number, size: number) {
  const rng = createRng(7, step);
  const r = TINY_MODEL.image_resolution;
  const images = new Float32Array(size * 3 * r * r).map(() => rng.next() * 2 - 1);
  const tokens = new Int32Array(size * 77);
  const labels: number[] = [];
  for (let i = 0; i < size; i++) {
    const length = 2 + rng.nextInt(10);
    tokens[i * 77] = 49406;
    for (let j = 1; j < length; j++) tokens[i * 77 + j] = 1 + rng.nextInt(40000);
    tokens[i * 77 + length] = 49407;
    labels.push(rng.nextInt(Math.max(2, Math.floor(size / 2))));
  }
  return { images, tokens, labels };
}

async function main() {
  const world = launch?.worldSize ?? 1;
  const rank = launch?.rank ?? 0;
  const perRank = Number(env.DDP_BATCH ?? 4);
  const steps = Number(env.DDP_STEPS ?? 3);
  const useLabels = env.DDP_LABELS === '1';
  const group = launch && launch.worldSize > 1 ? await ProcessGroup.join(launch, 'cpu', { timeoutMs: Number(env.DDP_TIMEOUT_MS ?? 60_000) }) : undefined;
  // Another initialisation on every rank: the trainer must start them all from rank 0's weights.
  const model = await createModel(TINY_MODEL, { seed: 100 + rank });
  const accumulate = Number(env.DDP_ACCUMULATE ?? 1);
  const trainer = await createTrainer(model, { optimizer: 'adamw', lr: 1e-3, weightDecay: 0.1, group, localLoss: env.DDP_LOCAL_LOSS === '1', accumulate });
  const losses: number[] = [];
  const r = TINY_MODEL.image_resolution;
  for (let s = 0; s < steps; s++) {
    const batch = globalBatch(s, perRank * world);
    const micro = perRank / accumulate;
    for (let k = 0; k < accumulate; k++) {
      const from = rank * perRank + k * micro;
      const images = { data: batch.images.slice(from * 3 * r * r, (from + micro) * 3 * r * r), shape: [micro, 3, r, r] };
      const tokens = { data: batch.tokens.slice(from * 77, (from + micro) * 77), shape: [micro, 77] };
      const result = await trainer.stepWithInfo(images, tokens, useLabels ? batch.labels.slice(from, from + micro) : undefined);
      if (result.lossRead) losses.push(result.loss);
    }
    if (env.DDP_DIE_AT_STEP && Number(env.DDP_DIE_AT_STEP) === s && rank === Number(env.DDP_DIE_RANK ?? 1)) process.kill(process.pid, 'SIGKILL');
  }
  const state = await model.native.stateDict();
  const hash = createHash('sha256');
  for (const { name, tensor } of state) hash.update(name).update(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength));
  const sample = Object.fromEntries(state.filter((e) => e.tensor.data instanceof Float32Array).map((e) => [e.name, Array.from(e.tensor.data as Float32Array)]));
  process.stdout.write(JSON.stringify({ rank, world, losses, weightsSha256: hash.digest('hex'), weights: env.DDP_PRINT_WEIGHTS === '1' ? sample : undefined }) + '\n');
}
