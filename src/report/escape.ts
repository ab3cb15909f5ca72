/** Text and attribute values inside HTML or SVG: class names and config values come from users. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Numbers for display: short, and exponent form for the tiny learning rates. */
export function formatNumber(v: number): string {
  if (v === 0) return '0';
  const abs = Math.abs(v);
  if (abs < 1e-3 || abs >= 1e6) return v.toExponential(2).replace(/\.?0+e/, 'e');
  return Number(v.toPrecision(4)).toString();
}
