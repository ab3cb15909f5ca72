// What the training loop asks of the ranks between native steps, in one place: who writes (rank 0),
// barriers that carry a failure (so a rank that cannot go on makes the others stop with its message,
// not wait for a timeout), agreement at step boundaries (stop on an interrupt seen by any rank; equal
// batch sizes), the start-up check that every rank trains the same data with the same settings, and
// sums of counts. With one process every call is free and does nothing.
//
// Collectives are ordered: every rank calls these methods in the same order. Rank-0-only work (writing
// files, the progress bar) calls none of them.
import { createHash } from 'node:crypto';

import type { ProcessGroup } from './group.js';

/** Characters of a failure's message that reach the other ranks (they name the rank and print it). */
const MESSAGE_CHARS = 160;

/** A rank stopped: this rank stops too, saying which and why. */
export class RankFailedError extends Error {
  constructor(
    message: string,
    readonly ranks: number[],
  ) {
    super(message);
    this.name = 'RankFailedError';
  }
}

/** A sha-256 digest (or any hex) as numbers a collective carries exactly: 48 bits each. */
export function digestNumbers(hex: string, count = 4): number[] {
  return Array.from({ length: count }, (_, i) => Number.parseInt(hex.slice(i * 12, i * 12 + 12).padEnd(12, '0'), 16));
}

/** sha-256 of a JSON value (keys in the order given), as digestNumbers. */
export function fingerprint(value: unknown): number[] {
  return digestNumbers(createHash('sha256').update(JSON.stringify(value)).digest('hex'));
}

/** Ranks whose row differs from rank 0's. */
export function ranksDiffering(rows: number[][]): number[] {
  const first = JSON.stringify(rows[0]);
  return rows.flatMap((row, rank) => (JSON.stringify(row) === first ? [] : [rank]));
}

function encodeMessage(message: string): number[] {
  const codes = Array.from(message.slice(0, MESSAGE_CHARS), (c) => c.charCodeAt(0));
  return [...codes, ...new Array<number>(MESSAGE_CHARS - codes.length).fill(0)];
}

function decodeMessage(codes: number[]): string {
  const end = codes.indexOf(0);
  const text = String.fromCharCode(...(end < 0 ? codes : codes.slice(0, end)));
  return text.length >= MESSAGE_CHARS ? `${text}…` : text;
}

export class RunGroup {
  constructor(readonly group: ProcessGroup | undefined) {}

  get rank(): number {
    return this.group?.rank ?? 0;
  }

  get worldSize(): number {
    return this.group?.worldSize ?? 1;
  }

  /** Rank 0 (or the one process): the rank that writes files and talks to the user. */
  get isMain(): boolean {
    return this.rank === 0;
  }

  get distributed(): boolean {
    return this.worldSize > 1;
  }

  /** "rank 1 of 4: " where there are several, else ''. */
  get prefix(): string {
    return this.distributed ? `rank ${this.rank} of ${this.worldSize}: ` : '';
  }

  /**
   * Runs `work` (on rank 0 only with `mainOnly`), then waits for every rank to get here: a barrier that
   * carries failure. When `work` throws on any rank, every rank throws: that rank its own error, the
   * others a RankFailedError naming it with the start of its message.
   */
  async together<T>(what: string, work: () => Promise<T> | T, { mainOnly = false } = {}): Promise<T | undefined> {
    let value: T | undefined;
    let error: unknown;
    if (!mainOnly || this.isMain) {
      try {
        value = await work();
      } catch (err) {
        error = err;
      }
    }
    if (!this.distributed) {
      if (error !== undefined) throw error;
      return value;
    }
    const message = error === undefined ? '' : error instanceof Error ? error.message : String(error);
    const rows = await this.group!.gather([error === undefined ? 0 : 1, ...encodeMessage(message)]);
    if (error !== undefined) throw error;
    const failed = rows.flatMap((row, rank) => (row[0] === 1 ? [rank] : []));
    if (failed.length > 0) {
      const first = failed[0]!;
      const others = failed.length > 1 ? ` (and rank${failed.length > 2 ? 's' : ''} ${failed.slice(1).join(', ')})` : '';
      throw new RankFailedError(`rank ${first}${others} failed ${what}: ${decodeMessage(rows[first]!.slice(1))}`, failed);
    }
    return value;
  }

  /**
   * Start-up: every rank must train the same data with the same settings (a different list, split or
   * option would make the ranks' collectives disagree, or train on something else silently). Each
   * check is a name and a fingerprint (see `fingerprint`); a rank whose fingerprint differs from rank
   * 0's is refused, on every rank, naming it.
   */
  async checkSame(checks: Array<{ name: string; value: number[]; hint: string }>): Promise<void> {
    if (!this.distributed) return;
    const mine = checks.flatMap((c) => c.value);
    const rows = await this.group!.gather(mine);
    const problems: string[] = [];
    let at = 0;
    for (const check of checks) {
      const part = rows.map((row) => row.slice(at, at + check.value.length));
      at += check.value.length;
      const differing = ranksDiffering(part);
      if (differing.length > 0) problems.push(`${check.name} on rank${differing.length > 1 ? 's' : ''} ${differing.join(', ')} differs from rank 0's (${check.hint})`);
    }
    if (problems.length > 0) {
      throw new RankFailedError(`the ranks do not train the same run: ${problems.join('; ')}. Every rank must see the same files and options.`, ranksDiffering(rows));
    }
  }

  /**
   * Before each batch: whether to stop here (any rank's `stop`) and the batch size all ranks use (the
   * smallest; 0 when any rank has none left). One small all-reduce.
   */
  async agreeStep(stop: boolean, size: number): Promise<{ stop: boolean; size: number }> {
    if (!this.distributed) return { stop, size };
    const [anyStop, negSize] = await this.group!.max([stop ? 1 : 0, -size]);
    return { stop: anyStop! > 0, size: -negSize! };
  }

  /** Whether any rank asks to stop. */
  async anyStop(stop: boolean): Promise<boolean> {
    if (!this.distributed) return stop;
    return (await this.group!.max([stop ? 1 : 0]))[0]! > 0;
  }

  /** Element-wise sums over the ranks. */
  async sum(values: number[]): Promise<number[]> {
    if (!this.distributed) return values;
    return this.group!.sum(values);
  }

  /** Every rank's values (the same count on each), one array per rank. */
  async gather(values: number[]): Promise<number[][]> {
    if (!this.distributed) return [values];
    return this.group!.gather(values);
  }
}
