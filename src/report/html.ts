// The training report: one self-contained HTML page (inline CSS and SVG, no external URL) with the
// loss and learning-rate curves, accuracy per epoch, per-class accuracy and a confusion heatmap.
import path from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { escapeXml, formatNumber } from './escape.js';
import { RETRIEVAL_WORST_FILE } from '../train/run-files.js';
import { readRun, type EpochRecord, type EvalRecord, type RunData, type StepRecord } from './read-run.js';
import { barChart, confusionHeatmap, lineChart, PALETTE, type Series } from './svg-charts.js';
import { readWorstExamples, renderWorstExamples, type WorstExamples } from './worst-examples.js';

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure.chart { margin: 0; border: 1px solid #ddd; padding: 8px; background: #fff; }
figcaption { font-weight: 600; margin-bottom: 4px; }
p.nodata { color: #888; width: 540px; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; }
img.thumb { width: 96px; height: auto; image-rendering: pixelated; }
.problems { color: #a40; }
`;

// Proof for tests and a hint for readers: a browser that laid the charts out marks the page with
// how many charts have visible geometry (chromium --dump-dom shows it).
const CHECK_SCRIPT = `
addEventListener('load', () => {
  let drawn = 0;
  for (const svg of document.querySelectorAll('svg[data-chart]')) {
    const marks = svg.querySelectorAll('path.series, rect.bar, rect.cell');
    const visible = [...marks].some((m) => { const b = m.getBBox(); return b.width > 0 || b.height > 0; });
    if (visible) drawn++;
  }
  document.documentElement.dataset.chartsRendered = String(drawn);
});
`;

/**
 * x positions for step records: the logged `step` when it only increases over the run (a global
 * counter), else the record's ordinal, so per-epoch step counters do not fold the curve back.
 */
function stepAxis(steps: StepRecord[]): { xs: number[]; label: string } {
  const increasing = steps.every((s, i) => i === 0 || s.step > steps[i - 1]!.step);
  return increasing ? { xs: steps.map((s) => s.step), label: 'step' } : { xs: steps.map((_, i) => i + 1), label: 'step (logged order)' };
}

function splitsOf(evals: EvalRecord[]): string[] {
  return [...new Set(evals.map((e) => e.split ?? 'eval'))];
}

function latestEval(evals: EvalRecord[]): EvalRecord | undefined {
  return [...evals].reverse().find((e) => e.perClass || e.confusion);
}

function configTable(config: Record<string, unknown> | undefined): string {
  if (!config) return '<p class="nodata">config.json not found</p>';
  const rows = Object.entries(config).map(([k, v]) => `<tr><th>${escapeXml(k)}</th><td>${escapeXml(typeof v === 'string' ? v : JSON.stringify(v))}</td></tr>`);
  return `<table class="config">${rows.join('')}</table>`;
}

function describeEval(e: EvalRecord): string {
  const pct = (v: number) => `${(v * 100).toFixed(2)}%`;
  if (e.retrieval) {
    const { imageToText: i2t, textToImage: t2i, loss } = e.retrieval;
    return `R@1 image→text ${pct(i2t.r1)}, text→image ${pct(t2i.r1)}; R@5 ${pct(i2t.r5)}, ${pct(t2i.r5)}; validation loss ${formatNumber(loss)}`;
  }
  return `top-1 ${pct(e.top1)}${e.top5 !== undefined ? `, top-5 ${pct(e.top5)}` : ''}`;
}

function summaryTable(run: RunData): string {
  const rows: string[] = [];
  const first = run.evals[0];
  const last = run.evals.at(-1);
  if (first) rows.push(`<tr><th>first eval (epoch ${first.epoch})</th><td>${escapeXml(describeEval(first))}</td></tr>`);
  if (last && last !== first) rows.push(`<tr><th>last eval (epoch ${last.epoch})</th><td>${escapeXml(describeEval(last))}</td></tr>`);
  const lastEpoch = run.epochs.at(-1);
  if (lastEpoch) rows.push(`<tr><th>epochs</th><td>${run.epochs.length}, last loss ${formatNumber(lastEpoch.loss)}</td></tr>`);
  rows.push(`<tr><th>steps logged</th><td>${run.steps.length}</td></tr>`);
  return `<table class="summary">${rows.join('')}</table>`;
}

/** Recall per epoch of one direction, and the validation loss, for a caption run's evaluations. */
function retrievalCharts(evals: EvalRecord[]): string {
  const withRetrieval = evals.filter((e) => e.retrieval);
  if (withRetrieval.length === 0) return '';
  const recall = (direction: 'imageToText' | 'textToImage'): Series[] =>
    (['r1', 'r5', 'r10'] as const).map((k, i) => ({
      name: `R@${k.slice(1)}`,
      points: withRetrieval.map((e): [number, number] => [e.epoch, e.retrieval![direction][k]]),
      color: PALETTE[i]!,
      markers: true,
    }));
  const loss: Series[] = [{ name: 'validation loss', points: withRetrieval.map((e): [number, number] => [e.epoch, e.retrieval!.loss]), color: PALETTE[1]!, markers: true }];
  return `<h2>Retrieval</h2>
<div class="charts">
${lineChart({ id: 'recall-i2t', title: 'Image → text recall per epoch (epoch 0 = before training)', xLabel: 'epoch', yLabel: 'recall', series: recall('imageToText'), yRange: [0, 1] })}
${lineChart({ id: 'recall-t2i', title: 'Text → image recall per epoch', xLabel: 'epoch', yLabel: 'recall', series: recall('textToImage'), yRange: [0, 1] })}
${lineChart({ id: 'val-loss', title: 'Validation contrastive loss per epoch', xLabel: 'epoch', yLabel: 'loss', series: loss })}
</div>`;
}

export function renderReport(run: RunData, worst?: WorstExamples): string {
  const { xs, label } = stepAxis(run.steps);
  const lossSeries: Series[] = [{ name: 'step loss', points: run.steps.map((s, i) => [xs[i]!, s.loss]), color: PALETTE[0]! }];
  // Epoch means sit at the epoch's last optimizer step (or its last logged step), so both series
  // share an axis; a run that logged no steps still shows its epoch curve.
  const epochX = (e: EpochRecord): number | undefined => {
    if (label === 'step' && e.steps !== undefined) return e.steps;
    const lastIndex = run.steps.findLastIndex((s) => s.epoch === e.epoch);
    return lastIndex >= 0 ? xs[lastIndex] : undefined;
  };
  const epochPoints = run.epochs.flatMap((e): Array<[number, number]> => {
    const x = epochX(e);
    return x !== undefined ? [[x, e.loss]] : [];
  });
  const lrPoints: Array<[number, number]> =
    run.steps.length > 0
      ? run.steps.map((s, i) => [xs[i]!, s.lr])
      : run.epochs.flatMap((e): Array<[number, number]> => (e.lr !== undefined && epochX(e) !== undefined ? [[epochX(e)!, e.lr]] : []));
  if (epochPoints.length > 0) lossSeries.push({ name: 'epoch mean loss', points: epochPoints, color: PALETTE[1]!, markers: true });

  const labelEvals = run.evals.filter((e) => !e.retrieval);
  const accuracySeries: Series[] = splitsOf(labelEvals).flatMap((split, i) => {
    const evals = labelEvals.filter((e) => (e.split ?? 'eval') === split);
    const series: Series[] = [{ name: `${split} top-1`, points: evals.map((e) => [e.epoch, e.top1]), color: PALETTE[(2 * i) % PALETTE.length]!, markers: true }];
    const top5 = evals.filter((e) => e.top5 !== undefined);
    if (top5.length > 0) series.push({ name: `${split} top-5`, points: top5.map((e) => [e.epoch, e.top5!]), color: PALETTE[(2 * i + 1) % PALETTE.length]!, markers: true });
    return series;
  });

  const latest = latestEval(run.evals);
  const baseline = run.evals.find((e) => e.perClass && e !== latest && (e.split ?? 'eval') === (latest?.split ?? 'eval'));
  const classes = latest?.classes ?? Object.keys(latest?.perClass ?? {});
  const perClassSeries = [baseline, latest]
    .filter((e): e is EvalRecord => e?.perClass !== undefined)
    .map((e, i) => ({ name: `epoch ${e.epoch}`, values: classes.map((c) => e.perClass![c]?.accuracy ?? 0), color: PALETTE[i === 0 && baseline ? 3 : 0]! }));

  const title = `Training report: ${path.basename(path.resolve(run.dir))}`;
  const problems = run.problems.length
    ? `<h2>Problems reading the run</h2><ul class="problems">${run.problems.map((p) => `<li>${escapeXml(p)}</li>`).join('')}</ul>`
    : '';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title><style>${STYLE}</style></head>
<body>
<h1>${escapeXml(title)}</h1>
${summaryTable(run)}
<h2>Training</h2>
<div class="charts">
${lineChart({ id: 'loss', title: 'Loss', xLabel: label, yLabel: 'loss', series: lossSeries })}
${lineChart({ id: 'lr', title: 'Learning rate', xLabel: label, yLabel: 'learning rate', series: [{ name: 'lr', points: lrPoints, color: PALETTE[2]! }] })}
</div>
${retrievalCharts(run.evals)}
${worst ? renderWorstExamples(worst) : ''}
${labelEvals.length === 0 && run.evals.length > 0 ? '' : `<h2>Evaluation</h2>
<div class="charts">
${lineChart({ id: 'accuracy', title: 'Zero-shot accuracy per epoch (epoch 0 = before training)', xLabel: 'epoch', yLabel: 'accuracy', series: accuracySeries, yRange: [0, 1] })}
${barChart({ id: 'per-class', title: latest ? `Per-class accuracy (${latest.split ?? 'eval'})` : 'Per-class accuracy', categories: classes, series: perClassSeries })}
${confusionHeatmap({ id: 'confusion', title: latest ? `Confusion matrix, epoch ${latest.epoch} (${latest.split ?? 'eval'})` : 'Confusion matrix', classes, matrix: latest?.confusion ?? [] })}
</div>`}
${problems}
<h2>Configuration</h2>
${configTable(run.config)}
<script>${CHECK_SCRIPT}</script>
</body></html>
`;
}

/**
 * Reads `<runDir>/metrics.jsonl`, `config.json` and (caption runs) `retrieval-worst.json`, writes the
 * page (default `<runDir>/report.html`).
 */
export async function writeReport(runDir: string, out = path.join(runDir, 'report.html')): Promise<{ out: string; run: RunData }> {
  const run = await readRun(runDir);
  const worst = await readWorstExamples(path.join(runDir, RETRIEVAL_WORST_FILE));
  if (worst && 'problem' in worst) run.problems.push(worst.problem);
  await writeFileAtomic(out, renderReport(run, worst && !('problem' in worst) ? worst : undefined));
  return { out, run };
}
