// Inline SVG charts drawn as strings: no script or external resource is needed to see them, so the
// report stays one self-contained file that any browser (or an e-mail client) shows.
import { escapeXml, formatNumber } from './escape.js';

export interface Series {
  name: string;
  points: Array<[number, number]>;
  color: string;
  /** Draw a dot per point (sparse series such as one value per epoch). */
  markers?: boolean;
}

export interface LineChartSpec {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Fix the y range (e.g. [0, 1] for accuracies). */
  yRange?: [number, number];
}

const W = 560;
const H = 300;
const M = { left: 76, right: 16, top: 32, bottom: 48 };

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw * (1 - 1e-9))!; // tolerance: 3e-5 / 3 is a hair above 1e-5
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function extent(values: number[], fallback: [number, number]): [number, number] {
  if (values.length === 0) return fallback;
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) {
    const pad = Math.abs(lo) * 0.1 || 1;
    lo -= pad;
    hi += pad;
  }
  return [lo, hi];
}

function frame(id: string, title: string, body: string, kind: string): string {
  return (
    `<figure class="chart" id="${escapeXml(id)}"><figcaption>${escapeXml(title)}</figcaption>` +
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" data-chart="${kind}" role="img" aria-label="${escapeXml(title)}">${body}</svg></figure>`
  );
}

function emptyChart(id: string, title: string, why: string): string {
  return `<figure class="chart empty" id="${escapeXml(id)}"><figcaption>${escapeXml(title)}</figcaption><p class="nodata">${escapeXml(why)}</p></figure>`;
}

export function lineChart(spec: LineChartSpec): string {
  const all = spec.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (all.length === 0) return emptyChart(spec.id, spec.title, 'no data recorded');
  const [x0, x1] = extent(all.map((p) => p[0]), [0, 1]);
  const [y0, y1] = spec.yRange ?? extent(all.map((p) => p[1]), [0, 1]);
  const sx = (x: number) => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
  const sy = (y: number) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const parts: string[] = [];
  for (const t of niceTicks(y0, y1)) {
    parts.push(`<line class="grid" x1="${M.left}" x2="${W - M.right}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${M.left - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end" font-size="11">${formatNumber(t)}</text>`);
  }
  for (const t of niceTicks(x0, x1)) {
    parts.push(`<text x="${sx(t).toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle" font-size="11">${formatNumber(t)}</text>`);
  }
  parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="#333"/>`);
  parts.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="#333"/>`);
  parts.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 10}" text-anchor="middle" font-size="12">${escapeXml(spec.xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escapeXml(spec.yLabel)}</text>`);
  spec.series.forEach((s) => {
    const points = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (points.length === 0) return;
    const d = points.map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join('');
    parts.push(`<path class="series" data-series="${escapeXml(s.name)}" data-points="${points.length}" d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5"/>`);
    if (s.markers || points.length === 1) {
      for (const [x, y] of points) parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${s.color}"><title>${escapeXml(s.name)}: ${formatNumber(y)}</title></circle>`);
    }
  });
  const legend = spec.series
    .filter((s) => s.points.length > 0)
    .map((s, i) => `<g transform="translate(${M.left + 8 + i * 150} ${M.top - 14})"><rect width="12" height="4" y="-4" fill="${s.color}"/><text x="16" font-size="11">${escapeXml(s.name)}</text></g>`)
    .join('');
  return frame(spec.id, spec.title, parts.join('') + legend, 'line');
}

export interface BarChartSpec {
  id: string;
  title: string;
  categories: string[];
  /** One group member per series; values in [0, 1]. */
  series: Array<{ name: string; values: number[]; color: string }>;
}

/** Horizontal grouped bars (class names can be long, so they go on the left). */
export function barChart(spec: BarChartSpec): string {
  if (spec.categories.length === 0 || spec.series.length === 0) return emptyChart(spec.id, spec.title, 'no data recorded');
  const rowHeight = Math.max(14, 8 * spec.series.length + 6);
  const left = 150;
  const width = W;
  const height = M.top + spec.categories.length * rowHeight + 28;
  const barWidth = (v: number) => Math.max(0, Math.min(1, v)) * (width - left - 60);
  const parts: string[] = [];
  spec.categories.forEach((category, c) => {
    const y = M.top + c * rowHeight;
    parts.push(`<text x="${left - 6}" y="${y + rowHeight / 2 + 4}" text-anchor="end" font-size="11">${escapeXml(category)}</text>`);
    spec.series.forEach((s, k) => {
      const v = s.values[c] ?? 0;
      const by = y + 3 + k * ((rowHeight - 6) / spec.series.length);
      const bh = (rowHeight - 6) / spec.series.length - 1;
      parts.push(`<rect class="bar" x="${left}" y="${by.toFixed(1)}" width="${barWidth(v).toFixed(1)}" height="${bh.toFixed(1)}" fill="${s.color}"><title>${escapeXml(`${category} (${s.name}): ${(v * 100).toFixed(1)}%`)}</title></rect>`);
      parts.push(`<text x="${(left + barWidth(v) + 4).toFixed(1)}" y="${(by + bh - 1).toFixed(1)}" font-size="10">${(v * 100).toFixed(1)}%</text>`);
    });
  });
  const legend = spec.series.map((s, i) => `<g transform="translate(${left + i * 150} ${M.top - 14})"><rect width="12" height="8" y="-8" fill="${s.color}"/><text x="16" font-size="11">${escapeXml(s.name)}</text></g>`).join('');
  return (
    `<figure class="chart" id="${escapeXml(spec.id)}"><figcaption>${escapeXml(spec.title)}</figcaption>` +
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" data-chart="bar" role="img" aria-label="${escapeXml(spec.title)}">${parts.join('')}${legend}</svg></figure>`
  );
}

export interface HeatmapSpec {
  id: string;
  title: string;
  classes: string[];
  /** matrix[true][predicted] = count. */
  matrix: number[][];
}

/** Confusion-matrix heatmap, each row shaded by its own total so small classes stay readable. */
export function confusionHeatmap(spec: HeatmapSpec): string {
  const n = spec.classes.length;
  if (n === 0 || spec.matrix.length !== n) return emptyChart(spec.id, spec.title, 'no confusion matrix recorded');
  const cell = Math.max(18, Math.min(40, Math.floor(400 / n)));
  const left = 150;
  // Column labels are rotated 60°: their height is about 0.87 × their length at ~6.5 px per character.
  const longest = Math.max(...spec.classes.map((c) => c.length));
  const top = Math.min(200, Math.round(longest * 6.5 * 0.87) + 24);
  const size = Math.max(left + n * cell + 40, 420);
  const height = top + n * cell + 40;
  const parts: string[] = [];
  spec.matrix.forEach((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    parts.push(`<text x="${left - 6}" y="${top + t * cell + cell / 2 + 4}" text-anchor="end" font-size="11">${escapeXml(spec.classes[t]!)}</text>`);
    row.forEach((count, p) => {
      const share = total > 0 ? count / total : 0;
      const shade = Math.round(255 - share * 200);
      const fill = t === p ? `rgb(${shade},${Math.round(255 - share * 110)},${shade})` : `rgb(255,${shade},${shade})`;
      parts.push(
        `<rect class="cell" x="${left + p * cell}" y="${top + t * cell}" width="${cell}" height="${cell}" fill="${fill}" stroke="#fff">` +
          `<title>${escapeXml(`true ${spec.classes[t]} → predicted ${spec.classes[p]}: ${count}`)}</title></rect>`,
      );
      if (cell >= 22 && count > 0) parts.push(`<text x="${left + p * cell + cell / 2}" y="${top + t * cell + cell / 2 + 4}" text-anchor="middle" font-size="10">${count}</text>`);
    });
  });
  spec.classes.forEach((name, p) => {
    const x = left + p * cell + cell / 2;
    parts.push(`<text transform="translate(${x + 4} ${top - 6}) rotate(-60)" font-size="11">${escapeXml(name)}</text>`);
  });
  parts.push(`<text x="${left}" y="${height - 12}" font-size="12">rows: true class · columns: predicted</text>`);
  return (
    `<figure class="chart" id="${escapeXml(spec.id)}"><figcaption>${escapeXml(spec.title)}</figcaption>` +
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${size} ${height}" width="${size}" height="${height}" data-chart="heatmap" role="img" aria-label="${escapeXml(spec.title)}">${parts.join('')}</svg></figure>`
  );
}
