// `clip-native train --nproc N`: N ranks on this machine, started the way torchrun starts them.
// Through torchrun itself (python3 -m torch.distributed.run --standalone) where python3 has torch;
// otherwise with our own spawn and torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT; no agent store: rank 0 hosts it). Either way the
// launcher forwards SIGINT/SIGTERM/SIGHUP to the ranks once each (each in its own process group, so a
// terminal's Ctrl-C reaches them only through it), and exits with their status: 0 when all succeed,
// else a failed rank's code, after naming it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import os from 'node:os';

export type Launcher = 'torchrun' | 'spawn';

export interface LaunchLocalOptions {
  nproc: number;
  /** The command each rank runs: program and arguments (e.g. node, [bin.cjs, 'train', …]). */
  command: [string, ...string[]];
  /** 'auto' (default): torchrun when python3 has torch, else our own spawn. CLIP_NATIVE_LAUNCHER overrides. */
  launcher?: Launcher | 'auto';
  env?: NodeJS.ProcessEnv;
  /** Where the launcher's own lines go (default stderr). */
  say?: (line: string) => void;
  /** Seconds a failed rank's peers get to stop on their own before SIGTERM, then SIGKILL after as long again. Default 10. */
  graceSeconds?: number;
  python?: string;
}

/** Whether `python` can run torch.distributed.run (torchrun). */
export function hasTorchrun(python = 'python3'): boolean {
  const probe = spawnSync(python, ['-c', 'import torch.distributed.run'], { stdio: 'ignore', timeout: 60_000 });
  return probe.status === 0;
}

/** A TCP port free on 127.0.0.1 now (the rendezvous store's: rank 0 binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The environment of rank `rank` of an own launch (torchrun's variables, the store hosted by rank 0). */
export function rankEnv(base: NodeJS.ProcessEnv, rank: number, nproc: number, masterPort: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...base,
    RANK: String(rank),
    LOCAL_RANK: String(rank),
    WORLD_SIZE: String(nproc),
    LOCAL_WORLD_SIZE: String(nproc),
    GROUP_RANK: '0',
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: String(masterPort),
  };
  delete env.TORCHELASTIC_USE_AGENT_STORE;
  // As torchrun does (the same numbers either way): one thread per rank unless OMP_NUM_THREADS says otherwise.
  if (env.OMP_NUM_THREADS === undefined && nproc > 1) env.OMP_NUM_THREADS = '1';
  return env;
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was stopped by ${signal}` : `exited with code ${code}`;
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (signal) return 128 + (os.constants.signals[signal] ?? 0);
  return code ?? 1;
}

/** Starts the ranks and resolves to the exit code the launcher should exit with. */
export async function launchLocal(options: LaunchLocalOptions): Promise<number> {
  const { nproc, command } = options;
  if (!Number.isInteger(nproc) || nproc < 1) throw new Error(`--nproc must be a positive integer, got ${nproc}`);
  const say = options.say ?? ((line: string) => process.stderr.write(`${line}\n`));
  const base = options.env ?? process.env;
  const python = options.python ?? 'python3';
  const wanted = (base.CLIP_NATIVE_LAUNCHER as Launcher | 'auto' | undefined) ?? options.launcher ?? 'auto';
  if (!['auto', 'torchrun', 'spawn'].includes(wanted)) throw new Error(`CLIP_NATIVE_LAUNCHER must be torchrun, spawn or auto, got ${wanted}`);
  const launcher: Launcher = wanted === 'auto' ? (hasTorchrun(python) ? 'torchrun' : 'spawn') : wanted;
  const grace = (options.graceSeconds ?? 10) * 1000;

  const children: Array<{ rank: number | 'torchrun'; child: ChildProcess }> = [];
  if (launcher === 'torchrun') {
    const args = ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', String(nproc), '--no-python', ...command];
    say(`clip-native: starting ${nproc} ranks through torchrun (${python} -m torch.distributed.run --standalone --nproc_per_node ${nproc})`);
    children.push({ rank: 'torchrun', child: spawn(python, args, { env: base, stdio: ['ignore', 'inherit', 'inherit'], detached: true }) });
  } else {
    const port = await freePort();
    const threads = base.OMP_NUM_THREADS === undefined ? '; OMP_NUM_THREADS=1 per rank as torchrun sets it (set it to give each rank more)' : '';
    say(`clip-native: starting ${nproc} ranks (MASTER_ADDR=127.0.0.1 MASTER_PORT=${port}; rank 0 hosts the rendezvous store${threads})`);
    for (let rank = 0; rank < nproc; rank++) {
      const [program, ...args] = command;
      children.push({ rank, child: spawn(program, args, { env: rankEnv(base, rank, nproc, port), stdio: ['ignore', 'inherit', 'inherit'], detached: true }) });
    }
  }

  const live = new Set(children.map((c) => c.child));
  const signalAll = (signal: NodeJS.Signals) => {
    for (const child of live) {
      try {
        child.kill(signal);
      } catch {
        // Gone already.
      }
    }
  };
  let interrupted: NodeJS.Signals | undefined;
  const forward = (signal: NodeJS.Signals) => {
    interrupted ??= signal;
    signalAll(signal);
  };
  for (const signal of FORWARDED) process.on(signal, forward);
  // Should the launcher itself end, it takes the ranks with it.
  const onExit = () => signalAll('SIGKILL');
  process.on('exit', onExit);

  let firstFailure: { rank: number | 'torchrun'; code: number } | undefined;
  const timers: NodeJS.Timeout[] = [];
  try {
    await Promise.all(
      children.map(
        ({ rank, child }) =>
          new Promise<void>((resolve) => {
            child.once('error', (err) => {
              say(`clip-native: could not start ${rank === 'torchrun' ? 'torchrun' : `rank ${rank}`}: ${err.message}`);
              firstFailure ??= { rank, code: 1 };
              live.delete(child);
              resolve();
            });
            child.once('exit', (code, signal) => {
              live.delete(child);
              const status = exitCodeOf(code, signal);
              if (status !== 0 && status !== 130 && rank !== 'torchrun') {
                say(`clip-native: rank ${rank} (pid ${child.pid}) ${describeExit(code, signal)}${firstFailure ? '' : `; stopping the other ranks`}`);
                if (!firstFailure) {
                  // The others fail at their next collective on their own; a rank that does not is stopped.
                  timers.push(setTimeout(() => signalAll('SIGTERM'), grace).unref());
                  timers.push(setTimeout(() => signalAll('SIGKILL'), 2 * grace).unref());
                }
              }
              if (status !== 0) firstFailure ??= { rank, code: status };
              resolve();
            });
          }),
      ),
    );
  } finally {
    for (const timer of timers) clearTimeout(timer);
    for (const signal of FORWARDED) process.off(signal, forward);
    process.off('exit', onExit);
  }
  if (!firstFailure) return 0;
  if (firstFailure.rank === 'torchrun' && interrupted) {
    // torchrun forwards the signal to the ranks, waits for them, then exits 1 with a traceback.
    say(`clip-native: ${interrupted}: torchrun stopped the ranks (each says above whether it wrote its checkpoint)`);
    return 130;
  }
  if (firstFailure.rank === 'torchrun') say(`clip-native: torchrun failed with code ${firstFailure.code} (its summary above names the rank)`);
  else if (firstFailure.code !== 130) say(`clip-native: the run failed: rank ${firstFailure.rank} exited first with code ${firstFailure.code}`);
  return firstFailure.code;
}
