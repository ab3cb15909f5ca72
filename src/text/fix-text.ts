// `fixText`: ftfy 6.3.1's `fix_text` with its default configuration (TextFixerConfig()), written
// from ftfy's documented behaviour; its data (codecs, character classes, regexes) is generated from
// ftfy by scripts/gen-ftfy-tables.py into ./ftfy/tables.ts. Checked against ftfy itself by
// test/fix-text.test.ts.
import { inRanges } from './code-point-ranges.js';
import { fixEncoding } from './ftfy/fix-encoding.js';
import {
  fixCharacterWidth,
  fixC1Controls,
  fixLatinLigatures,
  fixLineBreaks,
  fixSurrogates,
  removeControlChars,
  removeTerminalEscapes,
  uncurlQuotes,
  unescapeHtml,
} from './ftfy/fixes.js';
import { bmpBitmap } from './ftfy/regexes.js';
import { CONTROL_CHARS, LIGATURES, UNASSIGNED_RANGES, WIDTH_MAP } from './ftfy/tables.js';

/** ftfy's `max_decode_length`: a line longer than this many code points is fixed in pieces. */
export const MAX_DECODE_LENGTH = 1_000_000;

/**
 * A character some step may act on: anything but printable ASCII other than '&', tab, line feed
 * and form feed. Text without one (most captions and prompts) is returned as it is.
 */
const NEEDS_WORK = /[^\t\n\f\x20-\x25\x27-\x7e]/;

/**
 * Characters that Unicode 14.0 (Python 3.11's `unicodedata`, which ftfy's NFC uses) leaves
 * unassigned. Python treats them as starters that combine with nothing; this Node's newer ICU may
 * give some of them combining classes or compositions, so NFC runs only between them.
 */
export const UNASSIGNED_IN_UNICODE_14 = new RegExp(
  '[' + Array.from({ length: UNASSIGNED_RANGES.length / 2 }, (_, i) => `\\u{${UNASSIGNED_RANGES[2 * i]!.toString(16)}}-\\u{${UNASSIGNED_RANGES[2 * i + 1]!.toString(16)}}`).join('') + ']',
  'u',
);
const UNASSIGNED_ALL = new RegExp(UNASSIGNED_IN_UNICODE_14.source, 'gu');
const NON_ASCII = /[^\x00-\x7f]/;
const UNASSIGNED_BMP = bmpBitmap(UNASSIGNED_RANGES.filter((_, i) => UNASSIGNED_RANGES[i - (i % 2)]! < 0x10000).map((cp) => Math.min(cp, 0xffff)));

/** Whether the text holds a code point Unicode 14.0 leaves unassigned (a bitmap scan: this runs on every non-ASCII text). */
function hasUnassigned(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x378) continue;
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if ((low & 0xfc00) === 0xdc00) {
        if (inRanges(UNASSIGNED_RANGES, (code - 0xd800) * 0x400 + (low - 0xdc00) + 0x10000)) return true;
        i++;
        continue;
      }
    }
    if (UNASSIGNED_BMP[code] === 1) return true;
  }
  return false;
}

/** NFC with Unicode 14.0's repertoire, as Python 3.11's `unicodedata.normalize('NFC', text)`. */
export function pythonNfc(text: string): string {
  if (!NON_ASCII.test(text)) return text;
  if (!hasUnassigned(text)) return text.normalize('NFC');
  let out = '';
  let start = 0;
  for (const match of text.matchAll(UNASSIGNED_ALL)) {
    out += text.slice(start, match.index).normalize('NFC') + match[0];
    start = match.index! + match[0].length;
  }
  return out + text.slice(start).normalize('NFC');
}

/** The fixers ftfy applies after `fix_encoding`, in its order, up to NFC. */
const CHARACTER_FIXES: readonly ((text: string) => string)[] = [
  fixC1Controls,
  fixLatinLigatures,
  fixCharacterWidth,
  uncurlQuotes,
  fixLineBreaks,
  fixSurrogates,
  removeTerminalEscapes,
  removeControlChars,
];

/** Every character one of CHARACTER_FIXES acts on (all in the BMP): text without them skips them all. */
const ACTIVE = bmpBitmap([
  0x0d, 0x0d, 0x1b, 0x1b, 0x80, 0x9f, 0x2028, 0x2029, 0x2bc, 0x2bc, 0x2018, 0x201f,
  ...CONTROL_CHARS,
  ...[...LIGATURES.keys(), ...WIDTH_MAP.keys()].flatMap((cp) => [cp, cp]),
]);

/** Whether the text holds a character ACTIVE names, or a lone surrogate (a pair is a character). */
function anyActive(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (ACTIVE[code] === 1) return true;
    if ((code & 0xf800) !== 0xd800) continue;
    if (code >= 0xdc00 || i + 1 === text.length || (text.charCodeAt(i + 1) & 0xfc00) !== 0xdc00) return true;
    i++;
  }
  return false;
}

/** ftfy's `fix_text_segment`: every fix, repeated until the text stops changing. */
function fixSegment(segment: string, unescape: boolean): string {
  let text = segment;
  for (;;) {
    const before = text;
    if (unescape) text = unescapeHtml(text);
    text = fixEncoding(text);
    if (anyActive(text)) for (const fix of CHARACTER_FIXES) text = fix(text);
    text = pythonNfc(text);
    if (text === before) return text;
  }
}

/** Where the segment starting at `start` ends: after its line feed, or `MAX_DECODE_LENGTH` code points on. */
function segmentEnd(text: string, start: number): number {
  const newline = text.indexOf('\n', start);
  const end = newline < 0 ? text.length : newline + 1;
  if (end - start <= MAX_DECODE_LENGTH) return end;
  let position = start;
  for (let counted = 0; counted < MAX_DECODE_LENGTH; counted++) {
    const code = text.charCodeAt(position);
    const pair = code >= 0xd800 && code <= 0xdbff && position + 1 < end && (text.charCodeAt(position + 1) & 0xfc00) === 0xdc00;
    position += pair ? 2 : 1;
    if (position >= end) return end;
  }
  return position;
}

/**
 * ftfy 6.3.1's `fix_text(text)`: mojibake, HTML entities (unless the text holds a '<': from the
 * first line that does, entities are left alone), terminal escapes, ligatures, character widths,
 * curly quotes, line breaks, surrogates, control characters, NFC, line by line.
 */
export function fixText(text: string): string {
  if (typeof text !== 'string') throw new TypeError(`fixText expects a string, got ${typeof text}`);
  if (!NEEDS_WORK.test(text)) return text;
  let unescape = true;
  let out = '';
  for (let start = 0; start < text.length; ) {
    const end = segmentEnd(text, start);
    const segment = text.slice(start, end);
    if (unescape && segment.includes('<')) unescape = false;
    out += NEEDS_WORK.test(segment) ? fixSegment(segment, unescape) : segment;
    start = end;
  }
  return out;
}
