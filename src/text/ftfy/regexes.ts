// ftfy's regexes, compiled once. Text patterns use the `u` flag (their classes name code points);
// bytes patterns run without it over binary strings.
import { REGEX_SOURCES } from './tables.js';

const text = (source: string, flags = ''): RegExp => new RegExp(source, 'u' + flags);
const bytes = (source: string, flags = ''): RegExp => new RegExp(source, flags);

/** ftfy's `badness.BADNESS_RE`: one match means the text looks like mojibake. */
export const BADNESS = text(REGEX_SOURCES.BADNESS);
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

export function isBad(text: string): boolean {
  return BADNESS.test(text);
}
