/**
 * A small seeded PRNG (splitmix64) so that data order is a pure function of (seed, epoch):
 * a resumed run, another machine or another Node version sees exactly the same batches.
 * Math.random cannot be seeded, hence this.
 */

const MASK64 = (1n << 64n) - 1n;

function splitmix64Step(state: bigint): [next: bigint, output: bigint] {
  const next = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = next;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return [next, z ^ (z >> 31n)];
}

/** Mix any number of integer keys (seed, epoch, ...) into one 64-bit state; order matters. */
function mixKeys(keys: readonly number[]): bigint {
  let state = 0x243f6a8885a308d3n; // digits of pi: an arbitrary non-zero start
  for (const key of keys) {
    if (!Number.isSafeInteger(key)) throw new RangeError(`PRNG key must be a safe integer, got ${key}`);
    state = splitmix64Step((state ^ (BigInt.asUintN(64, BigInt(key)))) & MASK64)[1];
  }
  return state;
}

export interface Rng {
  /** Uniform float in [0, 1) with 53 random bits. */
  next(): number;
  /** Uniform integer in [0, n), without modulo bias. */
  nextInt(n: number): number;
}

/** A generator keyed on all of `keys`, e.g. `createRng(seed, epoch)`. */
export function createRng(...keys: number[]): Rng {
  let state = mixKeys(keys);
  // BigInt arithmetic is slow-ish; 53-bit draws are plenty for shuffles of millions of items.
  const next = (): number => {
    const [s, out] = splitmix64Step(state);
    state = s;
    return Number(out >> 11n) / 2 ** 53;
  };
  const nextInt = (n: number): number => {
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`nextInt needs a positive integer, got ${n}`);
    // Rejection sampling keeps every value exactly equally likely.
    const limit = Math.floor(2 ** 53 / n) * n;
    for (;;) {
      const x = Math.floor(next() * 2 ** 53);
      if (x < limit) return x % n;
    }
  };
  return { next, nextInt };
}

/** Fisher–Yates shuffle in place, driven by `rng`. */
export function shuffleInPlace<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const tmp = items[i]!;
    items[i] = items[j]!;
    items[j] = tmp;
  }
  return items;
}

/** A permutation of 0..n-1 that depends only on the keys. */
export function seededPermutation(n: number, ...keys: number[]): Int32Array {
  const order = Array.from({ length: n }, (_, i) => i);
  shuffleInPlace(order, createRng(...keys));
  return Int32Array.from(order);
}
