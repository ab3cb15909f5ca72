/**
 * Runs loads in a child process and judges each one: a load or a JavaScript Error is fine; a crash
 * (the child dies of a signal or exits), a hang (no answer within the per-case timeout: the child is
 * killed) or an RSS above the limit (polled from /proc while the case runs, and the child's own peak
 * after it) is a finding. After a finding the child is replaced and the next case runs in a new one.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

import type { ChildReply, ChildRequest } from './protocol.js';

export type Outcome = 'loaded' | 'error' | 'bad-error' | 'crash' | 'hang' | 'rss';
/** The outcomes that fail a campaign. */
export const FINDINGS: readonly Outcome[] = ['bad-error', 'crash', 'hang', 'rss'];

export interface RunResult {
  outcome: Outcome;
  /** Error's first line; for a crash, the exit code or signal and the end of the child's stderr. */
  message: string;
  ms: number;
  /** Peak RSS seen for this case (child's report or /proc polling), MiB; NaN when unknown. */
  peakMiB: number;
  /** RSS after the case, MiB (NaN after a finding). */
  rssMiB: number;
}

export interface ChildRunnerOptions {
  /** The child's script (fuzz-child.js, or a fake for the harness's own tests). */
  script: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Per case. */
  timeoutMs: number;
  rssLimitBytes: number;
  /** For the child to start and import the loader. */
  startTimeoutMs?: number;
  /** How often /proc/<pid>/status is read while a case runs. */
  pollMs?: number;
  /** A fresh child after this many cases, so a slow leak cannot be blamed on one case. */
  recycleEvery?: number;
  /**
   * A fresh child after a case that leaves its RSS above this, bytes: memory a case took and freed
   * stays resident (the allocator keeps it), and the next case's peak should not include it.
   */
  recycleAboveBytes?: number;
}

const MiB = 1024 * 1024;

/** VmRSS and VmHWM of a process, bytes; undefined where /proc is not there. */
export function procMemory(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

interface Live {
  proc: ChildProcess;
  cases: number;
  stderr: string;
  /** RSS after the first case and after the latest one: growth over a child's life hints at a leak. */
  firstRss?: number;
  lastRss?: number;
  exited: boolean;
}

export class ChildRunner {
  private live: Live | undefined;
  private recycleNext = false;
  private nextId = 0;
  /** Children started, including the first. */
  starts = 0;
  /** Largest RSS growth from a child's first to its last case, MiB, and over how many cases. */
  maxGrowth = { mib: 0, cases: 0 };

  constructor(private readonly options: ChildRunnerOptions) {}

  private start(): Promise<Live> {
    const { script, args = [], env = process.env, startTimeoutMs = 120_000 } = this.options;
    const proc = fork(script, args, { env, execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
    const live: Live = { proc, cases: 0, stderr: '', exited: false };
    this.starts++;
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      live.stderr = (live.stderr + chunk).slice(-4000);
    });
    proc.on('exit', () => {
      live.exited = true;
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`the fuzz child did not start within ${startTimeoutMs} ms: ${live.stderr.trim().split('\n').slice(-3).join(' | ')}`));
      }, startTimeoutMs);
      const onMessage = (m: ChildReply) => {
        if (m.type !== 'ready') return;
        clearTimeout(timer);
        proc.off('exit', onExit);
        proc.off('message', onMessage);
        resolve(live);
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        clearTimeout(timer);
        reject(new Error(`the fuzz child exited while starting (code ${code}, signal ${signal}): ${live.stderr.trim().split('\n').slice(-5).join(' | ')}`));
      };
      proc.on('message', onMessage);
      proc.once('exit', onExit);
    });
  }

  /**
   * A child that cannot start is not a finding about a case: the loader's modules may be mid-rebuild
   * (tsc or the addon). Try again a few times before giving up.
   */
  private async startWithRetries(attempts = 4, pauseMs = 15_000): Promise<Live> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.start();
      } catch (e) {
        if (attempt >= attempts) throw e;
        process.emitWarning(`${(e as Error).message}; trying again in ${pauseMs / 1000} s (${attempt}/${attempts})`);
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    }
  }

  private retire(live: Live): void {
    if (live.firstRss !== undefined && live.lastRss !== undefined) {
      const mib = (live.lastRss - live.firstRss) / MiB;
      if (mib > this.maxGrowth.mib) this.maxGrowth = { mib, cases: live.cases };
    }
    if (this.live === live) this.live = undefined;
  }

  private async kill(live: Live): Promise<void> {
    this.retire(live);
    if (live.exited) return;
    const gone = new Promise<void>((resolve) => live.proc.once('exit', () => resolve()));
    live.proc.kill('SIGKILL');
    await gone;
  }

  /** Loads `file` in the child and judges the outcome. */
  async run(file: string): Promise<RunResult> {
    const { timeoutMs, rssLimitBytes, pollMs = 25, recycleEvery = 0, recycleAboveBytes = Infinity } = this.options;
    if (this.live && (this.live.exited || this.recycleNext || (recycleEvery > 0 && this.live.cases >= recycleEvery))) await this.close();
    this.recycleNext = false;
    const live = (this.live ??= await this.startWithRetries());
    live.cases++;
    const id = this.nextId++;
    const started = performance.now();
    let polledPeak = 0;
    const result = await new Promise<RunResult>((resolve) => {
      let done = false;
      const finish = (r: RunResult) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(poll);
        live.proc.off('message', onMessage);
        live.proc.off('exit', onExit);
        resolve(r);
      };
      const finding = (outcome: Outcome, message: string) => {
        finish({ outcome, message, ms: performance.now() - started, peakMiB: polledPeak / MiB, rssMiB: NaN });
      };
      const onMessage = (m: ChildReply) => {
        if (m.type !== 'result' || m.id !== id) return;
        const peak = Math.max(polledPeak, m.maxRss);
        if (peak > rssLimitBytes) {
          finish({ outcome: 'rss', message: `peak RSS ${(peak / MiB).toFixed(0)} MiB > ${(rssLimitBytes / MiB).toFixed(0)} MiB (then: ${m.outcome} ${m.message})`, ms: m.ms, peakMiB: peak / MiB, rssMiB: m.rss / MiB });
          return;
        }
        if (m.rss > recycleAboveBytes) this.recycleNext = true;
        else {
          live.firstRss ??= m.rss;
          live.lastRss = m.rss;
        }
        finish({ outcome: m.outcome, message: m.message, ms: m.ms, peakMiB: peak / MiB, rssMiB: m.rss / MiB });
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        // Let the stderr pipe drain so the crash report has the child's last words.
        setTimeout(() => finding('crash', `${signal ? `signal ${signal}` : `exit code ${code}`}: ${live.stderr.trim().split('\n').slice(-4).join(' | ').slice(-600)}`), 50);
      };
      const timer = setTimeout(() => {
        live.proc.kill('SIGKILL');
        finding('hang', `no answer within ${timeoutMs} ms; killed`);
      }, timeoutMs);
      const poll = setInterval(() => {
        const mem = live.proc.pid !== undefined ? procMemory(live.proc.pid) : undefined;
        if (!mem) return;
        polledPeak = Math.max(polledPeak, mem.rss || 0, mem.hwm || 0);
        if (polledPeak > rssLimitBytes) {
          live.proc.kill('SIGKILL');
          finding('rss', `RSS ${(polledPeak / MiB).toFixed(0)} MiB > ${(rssLimitBytes / MiB).toFixed(0)} MiB; killed`);
        }
      }, pollMs);
      live.proc.on('message', onMessage);
      live.proc.once('exit', onExit);
      live.stderr = '';
      live.proc.send({ type: 'load', id, file } satisfies ChildRequest);
    });
    if (result.outcome === 'crash' || result.outcome === 'hang' || result.outcome === 'rss') await this.kill(live);
    return result;
  }

  async close(): Promise<void> {
    const live = this.live;
    if (!live) return;
    this.retire(live);
    if (live.exited) return;
    const gone = new Promise<void>((resolve) => live.proc.once('exit', () => resolve()));
    live.proc.send({ type: 'exit' } satisfies ChildRequest);
    const timer = setTimeout(() => live.proc.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }
}
