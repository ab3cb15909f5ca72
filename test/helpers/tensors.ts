import assert from 'node:assert/strict';

type Numeric = ArrayLike<number>;

/** torch.allclose semantics: |a - b| ≤ atol + rtol·|b| everywhere; the message names the worst element. */
export function assertAllClose(actual: Numeric, expected: Numeric, { rtol = 1e-4, atol = 1e-5, what = 'tensor' } = {}): void {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} elements, expected ${expected.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const b = expected[i]!;
    const excess = Math.abs(a - b) - (atol + rtol * Math.abs(b));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    assert.fail(`${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (rtol ${rtol}, atol ${atol})`);
  }
}

/** Mean and largest |a - b| over two equally long arrays (the preprocessing goldens' bounds). */
export function absDiffStats(a: Numeric, b: Numeric): { mean: number; max: number } {
  assert.equal(a.length, b.length);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max };
}
