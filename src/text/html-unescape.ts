import { HTML5_NAMED_REFERENCES, INVALID_CHARREF_REPLACEMENTS, INVALID_CODEPOINTS } from './html-entities.js';

/**
 * Python's `html._charref`. The `u` flag makes `{1,32}` count code points, as Python does;
 * `[0-9]` stays ASCII-only like Python's.
 */
const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

const MAX_CODE_POINT = 0x10ffff;

/** Parses digits without losing precision: `&#99999999999999999999;` must still count as "too large". */
function parseReferenceNumber(digits: string, radix: 10 | 16): number {
  const significant = digits.replace(/^0+/, '');
  // More than 7 significant digits (either radix) is past U+10FFFF; Infinity keeps the comparisons right.
  if (significant.length > 7) return Number.POSITIVE_INFINITY;
  return significant === '' ? 0 : Number.parseInt(significant, radix);
}

function replaceNumericReference(body: string): string {
  const hex = body[1] === 'x' || body[1] === 'X';
  const digits = body.slice(hex ? 2 : 1).replace(/;$/, '');
  const num = parseReferenceNumber(digits, hex ? 16 : 10);
  const remapped = INVALID_CHARREF_REPLACEMENTS.get(num);
  if (remapped !== undefined) return remapped;
  if ((num >= 0xd800 && num <= 0xdfff) || num > MAX_CODE_POINT) return '\ufffd';
  if (INVALID_CODEPOINTS.has(num)) return '';
  return String.fromCodePoint(num);
}

function replaceNamedReference(body: string): string {
  const whole = HTML5_NAMED_REFERENCES.get(body);
  if (whole !== undefined) return whole;
  // HTML5 lets some legacy names stand without ';' (`&ampx` → `&x`): the longest known prefix wins.
  // Entity names are ASCII, so code-unit prefixes find the same matches as Python's code-point ones.
  for (let length = body.length - 1; length > 1; length--) {
    const prefix = HTML5_NAMED_REFERENCES.get(body.slice(0, length));
    if (prefix !== undefined) return prefix + body.slice(length);
  }
  return '&' + body;
}

/** A port of CPython's `html.unescape` (3.11): same reference syntax, tables and replacements. */
export function htmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(CHARREF, (_match, body: string) =>
    body[0] === '#' ? replaceNumericReference(body) : replaceNamedReference(body),
  );
}
