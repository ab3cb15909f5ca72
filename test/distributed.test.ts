// Data parallel training (#21): the launch contract, the shard arithmetic, and 2 and 3 Gloo ranks on
// loopback through the real CLI (`clip-native train` under torchrun, and `--nproc` with its own
// launch) on a tiny random model: the ranks' weights bitwise equal, step 1's loss the single process's
// on the global batch, the later steps and weights within a tolerance from the update size, shards
// disjoint and covering, sharded evaluation equal to one process's, a Ctrl-C that stops every rank at
// the same step with a checkpoint that resumes bitwise, a killed rank that fails the run at once, and a
// rank with other data refused at start.
//
// Needs python3 with torch (torchrun) and a build with c10d (gloo): skipped loudly without them.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { promises as fs, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import sharp from 'sharp';

import { agreedBatches, trimBatch } from '../src/distributed/agreed-batches.js';
import { metricsFromCounts, evalPart } from '../src/distributed/eval.js';
import { launchFromEnv } from '../src/distributed/group.js';
import { hasTorchrun, rankEnv } from '../src/distributed/launch.js';
import { checkWorld } from '../src/distributed/reshard.js';
import type { ProcessGroup } from '../src/distributed/group.js';
import { digestNumbers, RankFailedError, ranksDiffering, RunGroup } from '../src/distributed/run-group.js';
import { batchesPerEpoch, evalShard, globalBatches, samplesLeftOut, shardOrder } from '../src/distributed/shard.js';
import { withoutNproc } from '../src/cli/train.js';
import type { Batch } from '../src/data/loader.js';
import { createLoader } from '../src/data/loader.js';
import type { Dataset } from '../src/data/dataset.js';
import { MetricsAccumulator } from '../src/eval/metrics.js';
import { readSafetensors } from '../src/io/safetensors-header.js';
import { distributedBackends } from '../src/native.js';
import { createRng, seededPermutation } from '../src/util/prng.js';
import { repoRoot } from './helpers/fixtures.js';
import { scratchDir } from './helpers/scratch.js';
import { cliEnv, startCli, tinyRunInputs, waitFor, type CliResult } from './helpers/tiny-run.js';

const bin = path.join(repoRoot, 'dist', 'src', 'cli', 'bin.cjs');
const rankScript = path.join(repoRoot, 'dist', 'test', 'helpers', 'ddp-rank.js');

function skipReason(): string | false {
  const built = distributedBackends().built;
  if (!built.includes('gloo')) return `this build has no gloo process group (${distributedBackends().missing('gloo')})`;
  if (!hasTorchrun()) return 'python3 with torch (torch.distributed.run) is not installed';
  return false;
}
const skip = skipReason();
if (skip) process.stderr.write(`\nWARNING: test/distributed.test.ts: the multi-rank tests are SKIPPED: ${skip}\n\n`);

describe('launch contract (unit)', () => {
  test('launchFromEnv reads torchrun\u2019s variables and refuses incomplete ones', () => {
    assert.equal(launchFromEnv({}), undefined);
    assert.deepEqual(launchFromEnv({ WORLD_SIZE: '4', RANK: '3', LOCAL_RANK: '1', MASTER_ADDR: 'node0', MASTER_PORT: '29400', TORCHELASTIC_USE_AGENT_STORE: 'True' }), {
      rank: 3,
      worldSize: 4,
      localRank: 1,
      masterAddr: 'node0',
      masterPort: 29400,
      agentStore: true,
    });
    // torchrun --nproc_per_node 1: one rank, no store needed.
    assert.deepEqual(launchFromEnv({ WORLD_SIZE: '1', RANK: '0' }), { rank: 0, worldSize: 1, localRank: 0, masterAddr: '127.0.0.1', masterPort: 29500, agentStore: false });
    assert.throws(() => launchFromEnv({ WORLD_SIZE: '2' }), /RANK is not/);
    assert.throws(() => launchFromEnv({ WORLD_SIZE: '2', RANK: '2', MASTER_ADDR: 'a', MASTER_PORT: '1' }), /not below WORLD_SIZE=2/);
    assert.throws(() => launchFromEnv({ WORLD_SIZE: '2', RANK: '1' }), /MASTER_ADDR and MASTER_PORT/);
    assert.throws(() => launchFromEnv({ WORLD_SIZE: 'two', RANK: '0' }), /WORLD_SIZE="two" must be an integer/);
  });

  test('the own launch gives each rank torchrun\u2019s environment, with rank 0 hosting the store', () => {
    const env = rankEnv({ PATH: '/bin', TORCHELASTIC_USE_AGENT_STORE: 'True', OMP_NUM_THREADS: '3' }, 1, 2, 4567);
    assert.equal(env.TORCHELASTIC_USE_AGENT_STORE, undefined);
    assert.deepEqual(launchFromEnv(env), { rank: 1, worldSize: 2, localRank: 1, masterAddr: '127.0.0.1', masterPort: 4567, agentStore: false });
    assert.equal(env.OMP_NUM_THREADS, '3');
    assert.deepEqual(withoutNproc(['train', '--nproc', '2', '--data', 'd', '--nproc=3', '--lr', '1']), ['train', '--data', 'd', '--lr', '1']);
  });
});

describe('shard arithmetic (unit)', () => {
  test('rank slices of every global batch: equal sizes, disjoint, covering all but a last remainder < world', () => {
    for (let n = 0; n <= 23; n++) {
      const order = seededPermutation(n, 5, n);
      for (let batch = 1; batch <= 4; batch++) {
        for (let world = 1; world <= 4; world++) {
          for (const dropLast of [false, true]) {
            const parts = Array.from({ length: world }, (_, r) => shardOrder(order, batch, r, world, dropLast));
            const what = `n ${n} batch ${batch} world ${world} dropLast ${dropLast}`;
            assert.ok(parts.every((p) => p.length === parts[0]!.length), `${what}: equal lengths`);
            const { full, lastPerRank } = globalBatches(n, batch, world, dropLast);
            // Global batch k, ranks' slices in rank order, is the single process's batch k of batch × world.
            const rebuilt: number[] = [];
            for (let k = 0; k < full; k++) for (const p of parts) rebuilt.push(...p.subarray(k * batch, (k + 1) * batch));
            for (const p of parts) rebuilt.push(...p.subarray(full * batch));
            assert.deepEqual(rebuilt, Array.from(order.subarray(0, rebuilt.length)), `${what}: the single-process order`);
            assert.equal(new Set(rebuilt).size, rebuilt.length, `${what}: disjoint`);
            assert.equal(samplesLeftOut(n, batch, world, dropLast), n - rebuilt.length);
            assert.ok(dropLast ? n - rebuilt.length < batch * world : n - rebuilt.length < world, `${what}: only a remainder left out`);
            assert.equal(batchesPerEpoch(n, batch, world, dropLast), full + (lastPerRank > 0 ? 1 : 0));
            if (world === 1) {
              assert.deepEqual(parts[0], dropLast ? order.subarray(0, Math.floor(n / batch) * batch) : order, `${what}: world 1 is the order`);
              assert.equal(batchesPerEpoch(n, batch, 1, dropLast), dropLast ? Math.floor(n / batch) : Math.ceil(n / batch));
            }
          }
        }
      }
    }
  });

  test('the loader trains the rank\u2019s part: its order and batch count', () => {
    const samples = Array.from({ length: 23 }, (_, i) => ({ image: `/nowhere/${i}.png`, source: { file: `/nowhere/${i}.png`, line: 0 } }));
    const dataset: Dataset = { root: '/nowhere', format: 'folder', kind: 'captions', classes: [], samples, problems: [] };
    for (const rank of [0, 1, 2]) {
      const loader = createLoader(dataset, { batchSize: 3, seed: 4, epoch: 2, shard: { rank, worldSize: 3 }, cache: false });
      assert.deepEqual(loader.order, shardOrder(seededPermutation(23, 4, 2), 3, rank, 3, false));
      // 2 full global batches of 9, then 5 left: 1 per rank, 2 left out.
      assert.equal(loader.order.length, 7);
      assert.equal(loader.batchesPerEpoch, 3);
    }
  });

  test('evaluation shards whole batches, disjoint and covering; counts summed give the single process\u2019s metrics', () => {
    for (const n of [0, 1, 31, 32, 33, 100]) {
      for (const world of [1, 2, 3]) {
        const all = Array.from({ length: world }, (_, r) => evalShard(n, 32, r, world)).flat();
        assert.deepEqual([...all].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
      }
    }
    const classes = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const rng = createRng(3, 0);
    const scores = { data: new Float32Array(50 * 7).map(() => rng.next()), shape: [50, 7] as [number, number] };
    const labels = Int32Array.from({ length: 50 }, () => rng.nextInt(7));
    const whole = new MetricsAccumulator(classes);
    whole.add(scores, labels);
    const parts = [new MetricsAccumulator(classes), new MetricsAccumulator(classes)];
    for (let i = 0; i < 50; i++) parts[i % 2]!.add({ data: scores.data.subarray(i * 7, (i + 1) * 7), shape: [1, 7] }, [labels[i]!]);
    const results = parts.map((p) => p.result());
    const confusion = classes.map((_, i) => classes.map((_, j) => results[0]!.confusion[i]![j]! + results[1]!.confusion[i]![j]!));
    const hits = results.reduce((sum, r) => sum + Math.round(r.top5 * r.n), 0);
    assert.deepEqual(metricsFromCounts(classes, confusion, hits, 50), whole.result());
    const dataset = { samples: Array.from({ length: 70 }, (_, i) => i) } as unknown as Dataset;
    assert.deepEqual(evalPart(dataset, 32, 1, 2).samples, Array.from({ length: 32 }, (_, i) => 32 + i));
  });

  test('a batch cut to the size the ranks agreed on keeps its first samples', () => {
    const batch: Batch = {
      index: 0,
      images: { data: Uint8Array.from({ length: 3 * 2 * 2 * 3 }, (_, i) => i), shape: [3, 2, 2, 3] },
      samples: [0, 1, 2].map((i) => ({ image: `${i}`, source: { file: '', line: 0 } })),
      labelIndices: Int32Array.from([5, 6, 7]),
      cursor: 9,
    };
    const cut = trimBatch(batch, 2);
    assert.deepEqual(cut.images.shape, [2, 2, 2, 3]);
    assert.deepEqual(Array.from(cut.images.data), Array.from({ length: 24 }, (_, i) => i));
    assert.deepEqual(Array.from(cut.labelIndices!), [5, 6]);
    assert.equal(cut.samples.length, 2);
    assert.equal(cut.cursor, 9);
    assert.equal(trimBatch(batch, 3), batch);
  });

  test('a failure on one rank reaches the others with its rank and message; batches agreed on stop and size', async () => {
    // Rank 1 of 2; "rank 0" is simulated by what the collectives return.
    let rank0: number[] = [];
    const calls: string[] = [];
    const fake = {
      rank: 1,
      worldSize: 2,
      launch: { localRank: 1 },
      gather: async (values: number[]) => (calls.push('gather'), [rank0, values]),
      max: async (values: number[]) => (calls.push('max'), values.map((v, i) => Math.max(v, rank0[i]!))),
    } as unknown as ProcessGroup;
    const group = new RunGroup(fake);
    rank0 = [1, ...Array.from('disk full', (c) => c.charCodeAt(0)), ...new Array(160 - 9).fill(0)];
    let ran = false;
    await assert.rejects(
      group.together('writing a checkpoint', () => void (ran = true), { mainOnly: true }),
      (err: unknown) => err instanceof RankFailedError && err.message === 'rank 0 failed writing a checkpoint: disk full' && err.ranks[0] === 0,
    );
    assert.equal(ran, false, 'mainOnly work runs on rank 0 alone');
    rank0 = [0, ...new Array(160).fill(0)];
    assert.equal(await group.together('x', () => 7), 7);

    const batch = (n: number): Batch => ({
      index: 0,
      images: { data: new Uint8Array(n * 12), shape: [n, 2, 2, 3] },
      samples: Array.from({ length: n }, (_, i) => ({ image: `${i}`, source: { file: '', line: 0 } })),
      labelIndices: undefined,
      cursor: n,
    });
    async function* mine() {
      yield batch(3);
      yield batch(3);
      yield batch(3);
    }
    const sizes: number[] = [];
    let stopped = false;
    // Rank 0 has a full batch, then a smaller one (it skipped images), then wants to stop.
    const plan = [[0, -3], [0, -2], [1, -3]];
    let k = 0;
    const ranked = { ...fake, max: async (values: number[]) => values.map((v, i) => Math.max(v, plan[k]![i]!)) } as unknown as ProcessGroup;
    for await (const b of agreedBatches(new RunGroup(ranked), mine(), () => false, () => (stopped = true))) {
      sizes.push(b.samples.length);
      k++;
    }
    assert.deepEqual(sizes, [3, 2]);
    assert.ok(stopped);
  });

  test('fingerprints carry exactly; resume at another world size needs the same global batch and --allow-reshard', () => {
    const hex = 'ffffffffffff0123456789abcdef00112233445566778899aabbccddeeff0011';
    assert.deepEqual(digestNumbers(hex).map((n) => n.toString(16).padStart(12, '0')).join(''), hex.slice(0, 48));
    assert.ok(digestNumbers(hex).every(Number.isSafeInteger));
    assert.deepEqual(ranksDiffering([[1, 2], [1, 2], [1, 3], [0, 2]]), [2, 3]);
    const saved = { worldSize: 2, batchSize: 4, lr: 1 };
    assert.deepEqual(checkWorld('c', saved, { worldSize: 2, batchSize: 8, lr: 1 }, false).record, saved, 'same world: the record compares batchSize');
    assert.throws(() => checkWorld('c', saved, { worldSize: 4, batchSize: 4, lr: 1 }, true), /global batch is 8 \(2 ranks × --batch-size 4\), this run's would be 16 \(4 ranks × --batch-size 4\).*--batch-size 2 \(per rank\) and --allow-reshard/);
    assert.throws(() => checkWorld('c', saved, { worldSize: 4, batchSize: 2, lr: 1 }, false), /the same global batch of 8.*--allow-reshard continues on 4 ranks/);
    const resharded = checkWorld('c', saved, { worldSize: 4, batchSize: 2, lr: 1 }, true);
    assert.deepEqual(resharded, { record: { worldSize: 4, batchSize: 2, lr: 1 }, resharded: { worldSize: 2, batchSize: 4 } });
    // A single process's checkpoint (world 1) continued on 2 ranks with half the batch each.
    assert.equal(checkWorld('c', { worldSize: 1, batchSize: 8 }, { worldSize: 2, batchSize: 4 }, true).resharded?.worldSize, 1);
  });
});

// ---------------------------------------------------------------------------------------------------
// Several ranks through the CLI.

interface RankReport {
  rank: number;
  worldSize: number;
  optimizerSteps: number;
  interrupted: boolean;
  weightsSha256: string;
  epochs: Array<{ epoch: number; samples: string[] }>;
}

const LR = 1e-3;
const EPOCHS = 2;

function reports(dir: string): RankReport[] {
  return readdirSync(dir)
    .filter((f) => /^rank-\d+\.json$/.test(f))
    .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as RankReport)
    .sort((a, b) => a.rank - b.rank);
}

async function metrics(out: string): Promise<Array<Record<string, unknown>>> {
  return (await fs.readFile(path.join(out, 'metrics.jsonl'), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Children of a process (Linux /proc), with their RANK. */
function rankProcesses(parent: number): Map<number, number> {
  const ranks = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parent) continue;
      const rank = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').find((v) => v.startsWith('RANK='));
      if (rank) ranks.set(Number(rank.slice(5)), Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return ranks;
}

/** Max |a - b| over every F32 tensor of two weight files (and the tensor where it is). */
async function weightsDiff(a: string, b: string): Promise<{ max: number; at: string }> {
  const [x, y] = await Promise.all([readSafetensors(a), readSafetensors(b)]);
  let max = 0;
  let at = '';
  for (const name of x.names()) {
    if (x.header.tensors[name]!.dtype !== 'F32') continue;
    const p = x.float32(name).data;
    const q = y.float32(name).data;
    for (let i = 0; i < p.length; i++) {
      const d = Math.abs(p[i]! - q[i]!);
      if (d > max) [max, at] = [d, name];
    }
  }
  return { max, at };
}

describe('data parallel with contrastive accumulation (Gloo on loopback)', { skip }, () => {
  test('2 ranks × 2 micro-batches of 2, labels across them: the single process\u2019s loss on the global batch of 8', { timeout: 120_000 }, async () => {
    const common = { DDP_BATCH: '4', DDP_STEPS: '3', DDP_LABELS: '1', OMP_NUM_THREADS: '1' };
    const runRanks = (extra: NodeJS.ProcessEnv) =>
      new Promise<string>((resolve, reject) => {
        const args = ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '--no-python', process.execPath, rankScript];
        const child = spawn('python3', args, { env: { ...process.env, ...common, ...extra } });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`torchrun exited ${code}:\n${err}`))));
      });
    const lines = (out: string) => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { rank: number; losses: number[]; weightsSha256: string });
    const reference = lines(execFileSync(process.execPath, [rankScript], { env: { ...process.env, ...common, DDP_BATCH: '8', DDP_REFERENCE: '1' }, encoding: 'utf8' }))[0]!;
    const ranks = lines(await runRanks({ DDP_ACCUMULATE: '2' }));
    assert.equal(ranks.length, 2);
    assert.equal(new Set(ranks.map((r) => r.weightsSha256)).size, 1, 'the ranks\u2019 weights differ');
    for (const r of ranks) {
      assert.equal(r.losses.length, 3, 'one loss per optimizer step');
      // Step 1 from the same weights: rounding only. Later steps: AdamW moves each weight by about lr.
      r.losses.forEach((loss, i) => {
        const tolerance = Math.abs(reference.losses[i]!) * (i === 0 ? 1e-6 : 1e-6 + 1e-3 * i);
        assert.ok(Math.abs(loss - reference.losses[i]!) <= tolerance, `rank ${r.rank} step ${i + 1}: ${loss} vs one process ${reference.losses[i]}`);
      });
    }
  });
});

describe('data parallel through the CLI (Gloo on loopback)', { skip }, () => {
  const tmp = scratchDir('clip-distributed-');
  const env = cliEnv(tmp);
  let inputs: { data: string; model: string };
  // 31 images per class: 62 training images. A global batch of 6 makes 10 full batches and one of 2.
  // Evaluation on the 62 training images (the test split has 4): two batches of the evaluation's 32.
  const evalConfig = path.join(tmp, 'eval-on-train.json');
  before(async () => {
    inputs = await tinyRunInputs(tmp, { perClass: 31 });
    await fs.writeFile(evalConfig, JSON.stringify({ evalSplit: 'train' }));
  });
  /** The run's flags: the global batch is 6 in every run (per rank: 6 / world). */
  const trainArgs = (out: string, batch: number, ...extra: string[]) => [
    'train',
    ...['--data', inputs.data, '--model', inputs.model, '--init', 'random', '--out', path.join(tmp, out)],
    ...['--batch-size', String(batch), '--lr', String(LR), '--optimizer', 'adamw', '--schedule', 'constant', '--device', 'cpu', '--log-every', '1'],
    ...['--eval-every', '1', '--config', evalConfig, '--checkpoint-every', '1', '--dist-timeout', '60', ...extra],
  ];
  const torchrun = (nproc: number, args: string[]) => ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', String(nproc), '--no-python', process.execPath, bin, ...args];
  const withReport = (name: string, extra: NodeJS.ProcessEnv = {}) => ({ ...env, ...extra, CLIP_NATIVE_RANK_REPORT: path.join(tmp, `report-${name}`) });
  /** Runs a command (not the CLI itself: python3 for torchrun) and collects its output. */
  const run = (program: string, args: string[], runEnv: NodeJS.ProcessEnv): Promise<CliResult> => startProgram(program, args, runEnv).done;

  test('2 and 3 ranks: weights bitwise equal on every rank, the single process\u2019s losses, weights and evaluation; shards disjoint and covering', { timeout: 240_000 }, async (t) => {
    // One process with the global batch (as torchrun does, one thread), 2 ranks × 3 and 3 ranks × 2 through torchrun.
    const [single, two, three] = await Promise.all([
      startCli(trainArgs('single', 6, '--epochs', String(EPOCHS)), withReport('single', { OMP_NUM_THREADS: '1' })).done,
      run('python3', torchrun(2, trainArgs('two', 3, '--epochs', String(EPOCHS))), withReport('two')),
      run('python3', torchrun(3, trainArgs('three', 2, '--epochs', '1')), withReport('three')),
    ]);
    for (const [name, r] of Object.entries({ single, two, three })) assert.equal(r.code, 0, `${name}:\n${r.stderr}`);
    assert.match(two.stderr, /data parallel: 2 ranks \(gloo\), --batch-size 3 per rank, global batch 6; 11 steps per epoch/);
    assert.match(three.stderr, /global batch 6; 10 steps per epoch, 2 sample\(s\) of each epoch's last global batch left out/);

    const [reference] = reports(path.join(tmp, 'report-single'));
    for (const [name, world] of [['two', 2], ['three', 3]] as const) {
      const ranks = reports(path.join(tmp, `report-${name}`));
      assert.equal(ranks.length, world);
      // Every rank ends with rank 0's weights, bitwise.
      assert.deepEqual(new Set(ranks.map((r) => r.weightsSha256)).size, 1, `${name}: ranks' weights differ`);
      // Shards: global batch k, ranks' slices in rank order, is the single process's batch k.
      const per = 6 / world;
      for (const [e, epoch] of ranks[0]!.epochs.entries()) {
        const global: string[] = [];
        const count = epoch.samples.length;
        for (let start = 0; start < count; start += per) for (const r of ranks) global.push(...r.epochs[e]!.samples.slice(start, Math.min(count, start + per)));
        assert.equal(new Set(global).size, global.length, `${name} epoch ${e + 1}: shards overlap`);
        assert.deepEqual(global, reference!.epochs[e]!.samples.slice(0, global.length), `${name} epoch ${e + 1}: not the single process's batches`);
        assert.equal(global.length, world === 2 ? 62 : 60, `${name} epoch ${e + 1}: coverage`);
      }
    }

    // Losses: step 1 equal to 1e-6 (relative); later steps within what the updates can have moved apart.
    const steps = async (out: string) => (await metrics(path.join(tmp, out))).filter((m) => m.type === 'step').map((m) => m.loss as number);
    const [lossSingle, lossTwo, lossThree] = await Promise.all([steps('single'), steps('two'), steps('three')]);
    assert.equal(lossTwo.length, lossSingle.length);
    for (const other of [lossTwo, lossThree]) assert.ok(Math.abs(other[0]! - lossSingle[0]!) <= 1e-6 * Math.abs(lossSingle[0]!), `step 1: ${other[0]} vs ${lossSingle[0]}`);
    // AdamW moves a weight by about lr per step: after s steps two runs that agree to rounding differ by
    // well under lr·s in any weight, and the loss by a small multiple of that relative to itself.
    lossTwo.forEach((loss, i) => {
      const tolerance = Math.abs(lossSingle[i]!) * (1e-6 + LR * (i + 1));
      assert.ok(Math.abs(loss - lossSingle[i]!) <= tolerance, `step ${i + 1}: 2 ranks ${loss}, one process ${lossSingle[i]} (tolerance ${tolerance})`);
    });
    lossThree.slice(0, 10).forEach((loss, i) => assert.ok(Math.abs(loss - lossSingle[i]!) <= Math.abs(lossSingle[i]!) * (1e-6 + LR * (i + 1)), `3 ranks step ${i + 1}`));
    const totalSteps = lossSingle.length;
    const diff = await weightsDiff(path.join(tmp, 'single', `tiny_epoch_${EPOCHS}.safetensors`), path.join(tmp, 'two', `tiny_epoch_${EPOCHS}.safetensors`));
    assert.ok(diff.max <= LR * totalSteps, `weights after ${totalSteps} steps differ by ${diff.max} (${diff.at}), more than lr × steps = ${LR * totalSteps}`);
    const worstLoss = Math.max(...lossTwo.map((loss, i) => Math.abs(loss - lossSingle[i]!) / Math.abs(lossSingle[i]!)));
    t.diagnostic(`2 ranks vs one process over ${totalSteps} steps: loss relative difference at most ${worstLoss.toExponential(2)}, weights ${diff.max.toExponential(2)} (lr × steps ${LR * totalSteps})`);

    // Evaluation sharded over the ranks (62 images: batches of 32 on rank 0 and 30 on rank 1), its
    // counts summed: before training (the same weights) the single process's, exactly.
    const evals = async (out: string) => (await metrics(path.join(tmp, out))).filter((m) => m.type === 'eval');
    const [evalSingle, evalTwo, evalThree] = await Promise.all([evals('single'), evals('two'), evals('three')]);
    assert.equal(evalTwo.length, EPOCHS + 1);
    for (const e of [evalTwo[0]!, evalThree[0]!]) {
      const { time: _t, ...mine } = e;
      const { time: _u, ...theirs } = evalSingle[0]!;
      assert.deepEqual(mine, theirs);
    }
    assert.equal(evalTwo.at(-1)!.n, 62);

    // Rank 0 alone wrote the run's files; its checkpoints record the world size and the per-rank batch.
    const written = await fs.readdir(path.join(tmp, 'two'));
    assert.ok(written.includes('config.json') && written.includes('skipped.tsv') && written.includes('metrics.jsonl'));
    const config = JSON.parse(await fs.readFile(path.join(tmp, 'two', 'config.json'), 'utf8'));
    assert.deepEqual(config.distributed, { worldSize: 2, backend: 'gloo', globalBatchSize: 6 });
    const checkpoint = await readSafetensors(path.join(tmp, 'two', 'checkpoints', 'checkpoint-epoch0001-batch000000.safetensors'));
    const compat = JSON.parse(checkpoint.header.metadata!.compat!);
    assert.equal(compat.worldSize, 2);
    assert.equal(compat.batchSize, 3);
    assert.equal((await metrics(path.join(tmp, 'two'))).filter((m) => m.type === 'epoch').length, EPOCHS, 'one epoch line per epoch: rank 0 alone writes metrics');
  });

  test('Ctrl-C seen by one rank stops every rank at the same step with a checkpoint that resumes bitwise; a killed rank fails the run at once; other data is refused', { timeout: 240_000 }, async () => {
    // The uninterrupted run is the previous test's 2-rank run (same options, 2 epochs). This one runs
    // long (epochs may change on resume) and is interrupted early through rank 1 alone.
    const spawnEnv = { CLIP_NATIVE_LAUNCHER: 'spawn', OMP_NUM_THREADS: '1' };
    const interrupted = startCli([...trainArgs('interrupted', 3, '--epochs', '40'), '--nproc', '2'], withReport('interrupted', spawnEnv));
    await waitFor(() => /step 2: loss/.test(interrupted.output()), 120_000, 'the second step');
    const ranks = rankProcesses(interrupted.child.pid!);
    assert.equal(ranks.size, 2, 'the launcher started 2 ranks');
    process.kill(ranks.get(1)!, 'SIGINT');
    const stopped = await interrupted.done;
    assert.equal(stopped.code, 130, stopped.stderr);
    assert.match(stopped.stderr, /interrupted: every rank stopped after batch \d+ of epoch 1; checkpoint written to .*checkpoint-epoch0000-batch0000\d\d\.safetensors/);
    const [r0, r1] = reports(path.join(tmp, 'report-interrupted'));
    assert.equal(r0!.optimizerSteps, r1!.optimizerSteps, 'both ranks stopped after the same step');
    assert.ok(r0!.interrupted && r1!.interrupted);
    assert.equal(r0!.weightsSha256, r1!.weightsSha256);

    // Resume (through torchrun) to the end of epoch 2: the uninterrupted run's weights, bitwise; at
    // the same time, a killed rank and a rank with another training list.
    const other = path.join(tmp, 'other-data');
    await fs.cp(inputs.data, other, { recursive: true });
    await sharp({ create: { width: 33, height: 32, channels: 3, background: { r: 9, g: 9, b: 9 } } }).png().toFile(path.join(other, 'train', 'red', 'extra.png'));
    const mismatchArgs = trainArgs('mismatch', 3, '--epochs', '1').map((a) => (a === inputs.data ? '"$DATA"' : `'${a}'`));
    const mismatchScript = `DATA=${inputs.data}; [ "$RANK" = 1 ] && DATA=${other}; exec '${process.execPath}' '${bin}' ${mismatchArgs.join(' ')}`;

    const killed = startCli([...trainArgs('killed', 3, '--epochs', '40'), '--nproc', '2'], { ...env, ...spawnEnv });
    const [resumed, mismatch] = await Promise.all([
      run('python3', torchrun(2, trainArgs('interrupted', 3, '--epochs', String(EPOCHS), '--resume', 'latest')), withReport('resumed')),
      run('python3', ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', '--no-python', 'sh', '-c', mismatchScript], env),
      (async () => {
        await waitFor(() => /step 2: loss/.test(killed.output()), 120_000, 'the killed run\u2019s second step');
        const pids = rankProcesses(killed.child.pid!);
        const start = performance.now();
        process.kill(pids.get(1)!, 'SIGKILL');
        const result = await killed.done;
        const seconds = (performance.now() - start) / 1000;
        assert.notEqual(result.code, 0, result.stderr);
        assert.match(result.stderr, /rank 1 \(pid \d+\) was stopped by SIGKILL/);
        assert.match(result.stderr, /rank 0 of 2: .*on rank 0 of 2 \(gloo\) failed/);
        assert.match(result.stderr, /the run failed: rank 1 exited first with code 137/);
        assert.ok(seconds < 30, `the run took ${seconds.toFixed(1)} s to fail after the kill (--dist-timeout 60: it must not wait for it)`);
      })(),
    ]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /resumed from .*checkpoint-epoch0000-batch0000\d\d\.safetensors: epoch 1, batch \d+/);
    const after = reports(path.join(tmp, 'report-resumed'));
    const uninterrupted = reports(path.join(tmp, 'report-two'));
    assert.equal(after[0]!.optimizerSteps, uninterrupted[0]!.optimizerSteps);
    assert.equal(after[0]!.weightsSha256, uninterrupted[0]!.weightsSha256, 'the resumed run ends with the uninterrupted run\u2019s weights');
    assert.equal(after[1]!.weightsSha256, uninterrupted[0]!.weightsSha256);

    assert.notEqual(mismatch.code, 0);
    assert.match(mismatch.stderr, /rank 0 of 2: the ranks do not train the same run: the training data on rank 1 differs from rank 0's/);
  });

  test('doctor names the built backends; --nproc under a launcher is refused', { timeout: 60_000 }, async () => {
    const report = JSON.parse(execFileSync(process.execPath, [bin, 'doctor', '--json'], { encoding: 'utf8', env }));
    assert.ok(report.distributed.backends.includes('gloo'));
    if (!report.distributed.backends.includes('nccl')) assert.match(report.distributed.missing.nccl, /NCCL/);
    const nested = await startCli(trainArgs('nested', 3, '--nproc', '2'), { ...env, WORLD_SIZE: '2', RANK: '0', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '1' }).done;
    assert.equal(nested.code, 1);
    assert.match(nested.stderr, /--nproc 2: this process is already rank 0 of 2/);
  });
});

/** startCli for another program (python3 -m torch.distributed.run). */
function startProgram(program: string, args: string[], env: NodeJS.ProcessEnv): { done: Promise<CliResult> } {
  const start = performance.now();
  const child = spawn(program, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
  return {
    done: new Promise<CliResult>((resolve) =>
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal, stdout, stderr, seconds: (performance.now() - start) / 1000 })),
    ),
  };
}
