// Classification metrics from scores: top-1/top-k hits, per-class accuracy, confusion matrix.
import { rankRow, type Matrix } from './matrix.js';

export interface ClassAccuracy {
  accuracy: number;
  n: number;
}

export interface ClassificationMetrics {
  top1: number;
  /** Top-5 accuracy; with fewer than 5 classes, top-k with k = the number of classes (so 1). */
  top5: number;
  /** The k used for `top5`: min(5, classes). */
  topK: number;
  n: number;
  classes: string[];
  perClass: Record<string, ClassAccuracy>;
  /** confusion[true][predicted] = count. */
  confusion: number[][];
}

export class MetricsAccumulator {
  private readonly confusion: number[][];
  private hitsTopK = 0;
  private n = 0;
  readonly topK: number;

  constructor(readonly classes: readonly string[]) {
    this.topK = Math.min(5, classes.length);
    this.confusion = classes.map(() => new Array<number>(classes.length).fill(0));
  }

  /** One batch: scores [n, classes] (any monotone score: cosine or logits) and true class indices. */
  add(scores: Matrix, labels: ArrayLike<number>): void {
    const [rows, cols] = scores.shape;
    if (cols !== this.classes.length) throw new Error(`metrics: scores have ${cols} columns for ${this.classes.length} classes`);
    if (labels.length !== rows) throw new Error(`metrics: ${rows} score rows but ${labels.length} labels`);
    for (let r = 0; r < rows; r++) {
      const label = labels[r]!;
      if (!Number.isInteger(label) || label < 0 || label >= cols) throw new Error(`metrics: label index ${label} outside 0..${cols - 1}`);
      const ranking = rankRow(scores, r);
      this.confusion[label]![ranking[0]!]!++;
      if (ranking.slice(0, this.topK).includes(label)) this.hitsTopK++;
      this.n++;
    }
  }

  result(): ClassificationMetrics {
    const correct = this.confusion.reduce((sum, row, i) => sum + row[i]!, 0);
    // Entries, not assignments: a class folder named __proto__ is a class like any other.
    const perClass: Record<string, ClassAccuracy> = Object.fromEntries(
      this.classes.map((name, i) => {
        const row = this.confusion[i]!;
        const n = row.reduce((a, b) => a + b, 0);
        return [name, { accuracy: n > 0 ? row[i]! / n : 0, n }];
      }),
    );
    return {
      top1: this.n > 0 ? correct / this.n : 0,
      top5: this.n > 0 ? this.hitsTopK / this.n : 0,
      topK: this.topK,
      n: this.n,
      classes: [...this.classes],
      perClass,
      confusion: this.confusion.map((row) => [...row]),
    };
  }
}
