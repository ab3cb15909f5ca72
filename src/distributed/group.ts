// Data-parallel process groups on PyTorch's c10d (Gloo on CPUs, NCCL on CUDA), under torchrun's
// launch contract: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT and, from torchrun's agent,
// TORCHELASTIC_USE_AGENT_STORE (the agent hosts the rendezvous store; every rank is its client).
import { createNativeGroup, distributedBackends, type NativeGroup } from '../native.js';

export interface LaunchEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  masterAddr: string;
  masterPort: number;
  /** torchrun's agent hosts the store: no rank starts one. */
  agentStore: boolean;
}

const DEFAULT_TIMEOUT_MS = 300_000;

function envInt(env: NodeJS.ProcessEnv, key: string, min: number): number | undefined {
  const text = env[key];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new Error(`environment: ${key}=${JSON.stringify(text)} must be an integer ≥ ${min}`);
  return value;
}

/** The launch a launcher (torchrun, Slurm + torchrun, our own --nproc) describes, or undefined for one process. */
export function launchFromEnv(env: NodeJS.ProcessEnv = process.env): LaunchEnv | undefined {
  const worldSize = envInt(env, 'WORLD_SIZE', 1);
  if (worldSize === undefined) return undefined;
  const rank = envInt(env, 'RANK', 0);
  if (rank === undefined) throw new Error('environment: WORLD_SIZE is set but RANK is not (launch with torchrun or clip-native train --nproc)');
  if (rank >= worldSize) throw new Error(`environment: RANK=${rank} is not below WORLD_SIZE=${worldSize}`);
  const masterPort = envInt(env, 'MASTER_PORT', 1);
  if (worldSize > 1 && (!env.MASTER_ADDR || masterPort === undefined)) throw new Error('environment: MASTER_ADDR and MASTER_PORT must be set for WORLD_SIZE > 1');
  return {
    rank,
    worldSize,
    localRank: envInt(env, 'LOCAL_RANK', 0) ?? 0,
    masterAddr: env.MASTER_ADDR ?? '127.0.0.1',
    masterPort: masterPort ?? 29500,
    agentStore: /^(1|true)$/i.test(env.TORCHELASTIC_USE_AGENT_STORE ?? ''),
  };
}

export interface GroupOptions {
  /** Default: nccl on CUDA devices, gloo on the CPU. */
  backend?: 'gloo' | 'nccl';
  /** Every wait (joining, each collective) ends with an error after this long. Default 5 minutes. */
  timeoutMs?: number;
}

/** A joined process group. Every method is a collective: all ranks call it, in the same order. */
export class ProcessGroup {
  private constructor(readonly native: NativeGroup, readonly launch: LaunchEnv) {}

  static async join(launch: LaunchEnv, device: string, options: GroupOptions = {}): Promise<ProcessGroup> {
    const backend = options.backend ?? (device.startsWith('cuda') ? 'nccl' : 'gloo');
    const missing = distributedBackends().missing(backend);
    if (missing) throw new Error(`WORLD_SIZE=${launch.worldSize} needs a ${backend} process group, but ${missing}`);
    const native = await createNativeGroup({
      backend,
      rank: launch.rank,
      worldSize: launch.worldSize,
      masterAddr: launch.masterAddr,
      masterPort: launch.masterPort,
      hostStore: !launch.agentStore && launch.rank === 0,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      device: backend === 'nccl' ? device : 'cpu',
    });
    return new ProcessGroup(native, launch);
  }

  get rank(): number {
    return this.launch.rank;
  }

  get worldSize(): number {
    return this.launch.worldSize;
  }

  get isMain(): boolean {
    return this.launch.rank === 0;
  }

  async sum(values: number[]): Promise<number[]> {
    return Array.from(await this.native.allReduce(Float64Array.from(values), 'sum'));
  }

  async max(values: number[]): Promise<number[]> {
    return Array.from(await this.native.allReduce(Float64Array.from(values), 'max'));
  }

  /** Each rank's values (the same count on every rank), one array per rank. */
  async gather(values: number[]): Promise<number[][]> {
    const all = Array.from(await this.native.allGather(Float64Array.from(values)));
    return Array.from({ length: this.worldSize }, (_, r) => all.slice(r * values.length, (r + 1) * values.length));
  }

  barrier(): Promise<void> {
    return this.native.barrier();
  }
}
