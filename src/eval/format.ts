// Plain-text tables of evaluation and prediction results for the terminal.
import type { ImagePrediction } from './classify.js';
import type { RankMetrics, RetrievalEvaluation } from './retrieval.js';
import type { EvaluateResult } from './zero-shot.js';

const pct = (v: number) => `${(v * 100).toFixed(2)}%`;

function table(rows: string[][], alignRight: (col: number) => boolean = (c) => c > 0): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (alignRight(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd()).join('\n');
}

export function formatEvaluation(result: EvaluateResult): string {
  const lines: string[] = [];
  const k = result.topK === 5 ? 'top-5' : `top-${result.topK} (${result.classes.length} classes)`;
  lines.push(`images: ${result.n}${result.skipped ? ` (${result.skipped} unreadable, left out)` : ''}   templates: ${result.templates.length}`);
  lines.push(`top-1: ${pct(result.top1)}   ${k}: ${pct(result.top5)}`);
  lines.push('');
  lines.push(table([['class', 'accuracy', 'n'], ...result.classes.map((c) => [c, pct(result.perClass[c]!.accuracy), String(result.perClass[c]!.n)])], (c) => c > 0));
  lines.push('');
  lines.push('confusion matrix (rows: true class, columns: predicted, numbered as above)');
  const header = ['', ...result.classes.map((_, i) => String(i))];
  const rows = result.confusion.map((row, i) => [`${i} ${result.classes[i]}`, ...row.map(String)]);
  lines.push(table([header, ...rows]));
  return lines.join('\n');
}

const ranks = (m: RankMetrics) => [pct(m.r1), pct(m.r5), pct(m.r10), m.meanRank.toFixed(1), String(m.medianRank)];

export function formatRetrieval(result: RetrievalEvaluation): string {
  const { imageToText, textToImage, loss } = result.retrieval;
  return [
    `images: ${result.images}${result.skipped ? ` (${result.skipped} unreadable, left out with their captions)` : ''}   captions: ${result.texts}`,
    table([
      ['', 'R@1', 'R@5', 'R@10', 'mean rank', 'median rank'],
      ['image→text', ...ranks(imageToText)],
      ['text→image', ...ranks(textToImage)],
    ]),
    `validation loss: ${loss.toFixed(4)}`,
  ].join('\n');
}

export function formatPredictions(predictions: ImagePrediction[]): string {
  return predictions
    .map((p) => `${p.image}\n${table(p.ranking.map((r, i) => [`  ${i + 1}.`, r.label, pct(r.probability), r.logit.toFixed(2)]), (c) => c >= 2)}`)
    .join('\n\n');
}
