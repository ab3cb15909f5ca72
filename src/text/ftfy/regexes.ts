// ftfy's regexes, compiled once. Text patterns use the `u` flag (their classes name code points);
// bytes patterns run without it over binary strings.
import { BADNESS_CHARS, REGEX_SOURCES } from './tables.js';

const text = (source: string, flags = ''): RegExp => new RegExp(source, 'u' + flags);
const bytes = (source: string, flags = ''): RegExp => new RegExp(source, flags);

/** ftfy's `badness.BADNESS_RE`, tried at one position at a time. */
const BADNESS_AT = text(REGEX_SOURCES.BADNESS, 'y');
/** Runs of characters that look like UTF-8 decoded as a single-byte encoding. */
export const UTF8_DETECTOR = text(REGEX_SOURCES.UTF8_DETECTOR);
export const UTF8_DETECTOR_ALL = text(REGEX_SOURCES.UTF8_DETECTOR, 'g');
/** UTF-8 byte sequences in which a space probably stands for a lost 0xA0. */
export const ALTERED_UTF8 = bytes(REGEX_SOURCES.ALTERED_UTF8);
export const ALTERED_UTF8_ALL = bytes(REGEX_SOURCES.ALTERED_UTF8, 'g');
/** "à " in mojibake whose 0xA0 became a space, except before words where "a " is Portuguese. */
export const A_GRAVE_WORD_ALL = bytes(REGEX_SOURCES.A_GRAVE_WORD, 'g');
/** UTF-8 sequences with a byte replaced by '?' or by 0x1A (U+FFFD encoded sloppily). */
export const LOSSY_UTF8_ALL = bytes(REGEX_SOURCES.LOSSY_UTF8, 'g');
export const ANSI_ESCAPE_ALL = text(REGEX_SOURCES.ANSI_ESCAPE, 'g');
export const HTML_ENTITY_ALL = text(REGEX_SOURCES.HTML_ENTITY, 'g');
export const SINGLE_QUOTE_ALL = text(REGEX_SOURCES.SINGLE_QUOTE, 'g');
export const DOUBLE_QUOTE_ALL = text(REGEX_SOURCES.DOUBLE_QUOTE, 'g');
export const C1_CONTROL = text(REGEX_SOURCES.C1_CONTROL);
export const C1_CONTROL_ALL = text(REGEX_SOURCES.C1_CONTROL, 'g');

/** A bitmap over the BMP of flat inclusive code point ranges (all in the BMP). */
export function bmpBitmap(ranges: readonly number[]): Uint8Array {
  const bitmap = new Uint8Array(0x10000);
  for (let i = 0; i < ranges.length; i += 2) bitmap.fill(1, ranges[i]!, ranges[i + 1]! + 1);
  return bitmap;
}

const BADNESS_CHAR = bmpBitmap(BADNESS_CHARS);

/**
 * ftfy's `is_bad`: whether BADNESS_RE matches anywhere. Every match holds one of BADNESS_CHARS
 * within its first three characters, so the regex is only tried at the two places before each
 * of them and at it: searching the whole text with 40 alternatives at every position is the
 * slow part of fixing a caption.
 */
export function isBad(text: string): boolean {
  let tried = -1;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80 || BADNESS_CHAR[code] === 0) continue;
    for (let start = Math.max(tried + 1, i - 2); start <= i; start++) {
      BADNESS_AT.lastIndex = start;
      if (BADNESS_AT.test(text)) return true;
    }
    tried = i;
  }
  return false;
}
