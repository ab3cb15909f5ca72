// Scores from NaN or infinite model outputs are no scores: a NaN ranks like any number in a sort, so
// an evaluation over them would print an accuracy. Every output an evaluation uses is checked instead.
import type { Matrix } from './matrix.js';

/** A model output (features, logits, scores) that holds NaN or ±Inf. */
export class NonFiniteOutputError extends Error {
  constructor(
    /** Rows (images, texts) with a non-finite value. */
    readonly rows: number,
    readonly kinds: ReadonlyArray<'NaN' | 'Inf'>,
    message: string,
  ) {
    super(message);
    this.name = 'NonFiniteOutputError';
  }
}

export interface NonFiniteRows {
  /** Indices of the rows holding a NaN or ±Inf. */
  rows: number[];
  kinds: Array<'NaN' | 'Inf'>;
}

export function nonFiniteRows(m: Matrix): NonFiniteRows {
  const [rows, cols] = m.shape;
  const bad: number[] = [];
  let nan = false;
  let inf = false;
  for (let r = 0; r < rows; r++) {
    let rowBad = false;
    for (let c = r * cols, end = c + cols; c < end; c++) {
      const v = m.data[c]!;
      if (Number.isFinite(v)) continue;
      rowBad = true;
      if (Number.isNaN(v)) nan = true;
      else inf = true;
    }
    if (rowBad) bad.push(r);
  }
  return { rows: bad, kinds: [...(nan ? ['NaN' as const] : []), ...(inf ? ['Inf' as const] : [])] };
}

export interface FiniteCheck {
  /** What the rows are, plural: 'images', 'class prompts', 'texts'. */
  rows: string;
  /** Which output: "image features", "logits". */
  output: string;
  /** Names of the rows, for the first few in the message. */
  names?: readonly string[];
  /** Added to the message: where the rows came from. */
  context?: string;
}

/**
 * Throws NonFiniteOutputError when `m` holds a NaN or ±Inf, saying which output, for how many rows
 * (the first few named) and what to suspect.
 */
export function assertFinite(m: Matrix, check: FiniteCheck): void {
  const found = nonFiniteRows(m);
  if (found.rows.length === 0) return;
  const named = check.names ? found.rows.slice(0, 3).map((r) => check.names![r]!) : [];
  const examples = named.length ? `, e.g. ${named.map((n) => JSON.stringify(n)).join(', ')}${found.rows.length > named.length ? ', …' : ''}` : '';
  throw new NonFiniteOutputError(
    found.rows.length,
    found.kinds,
    `the model's ${check.output} are not finite (${found.kinds.join(', ')}) for ${found.rows.length} of ${m.shape[0]} ${check.rows}` +
      `${check.context ? ` ${check.context}` : ''}${examples}: the weights may hold NaN/Inf or values that overflow ` +
      '(fp16 overflows first: try --precision fp32); no scores were computed from them',
  );
}
