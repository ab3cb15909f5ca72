// ftfy's character-level fixers (everything but the encoding detection), each a no-op on text
// without the characters it acts on, which a cheap test finds first.
import { HTML5_NAMED_REFERENCES } from '../html-entities.js';
import { htmlUnescape } from '../html-unescape.js';
import { sloppyWindows1252Char } from './codecs.js';
import { ANSI_ESCAPE_ALL, C1_CONTROL_ALL, DOUBLE_QUOTE_ALL, HTML_ENTITY_ALL, SINGLE_QUOTE_ALL } from './regexes.js';
import { CONTROL_CHARS, LIGATURES, UPPER_ENTITIES, WIDTH_MAP } from './tables.js';

/**
 * One `&name;` or `&#number;` as ftfy reads it: html5 names with their ';', the upper-case names
 * ftfy adds, and numeric references only when `html.unescape` turns them into a character.
 */
function unescapeEntity(entity: string): string {
  if (entity.endsWith(';')) {
    const named = HTML5_NAMED_REFERENCES.get(entity.slice(1)) ?? UPPER_ENTITIES.get(entity);
    if (named !== undefined) return named;
  }
  if (!entity.startsWith('&#')) return entity;
  const unescaped = htmlUnescape(entity);
  return unescaped.includes(';') ? entity : unescaped;
}

export function unescapeHtml(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(HTML_ENTITY_ALL, unescapeEntity);
}

export function removeTerminalEscapes(text: string): string {
  return text.includes('\x1b') ? text.replace(ANSI_ESCAPE_ALL, '') : text;
}

/** A `str.translate` of single code units (all the maps' keys are in the BMP). */
function translate(text: string, map: ReadonlyMap<number, string>, first: number, last: number): string {
  let out = '';
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < first || code > last) continue;
    const replacement = map.get(code);
    if (replacement === undefined) continue;
    out += text.slice(start, i) + replacement;
    start = i + 1;
  }
  return start === 0 ? text : out + text.slice(start);
}

const keyRange = (map: ReadonlyMap<number, unknown>): [number, number] => [Math.min(...map.keys()), Math.max(...map.keys())];
const [LIGATURE_FIRST, LIGATURE_LAST] = keyRange(LIGATURES);
const [WIDTH_FIRST, WIDTH_LAST] = keyRange(WIDTH_MAP);

export function fixLatinLigatures(text: string): string {
  return translate(text, LIGATURES, LIGATURE_FIRST, LIGATURE_LAST);
}

export function fixCharacterWidth(text: string): string {
  return translate(text, WIDTH_MAP, WIDTH_FIRST, WIDTH_LAST);
}

export function uncurlQuotes(text: string): string {
  return text.replace(DOUBLE_QUOTE_ALL, '"').replace(SINGLE_QUOTE_ALL, "'");
}

const LINE_BREAK = /\r\n?|[\u2028\u2029\u0085]/g;

export function fixLineBreaks(text: string): string {
  return text.replace(LINE_BREAK, '\n');
}

/**
 * A JavaScript string holds paired surrogates as the character they encode already (what ftfy's
 * pair joining produces); what is left to fix are the lone ones, which become U+FFFD.
 */
const LONE_SURROGATE_ALL = /\p{Cs}/gu;

export function fixSurrogates(text: string): string {
  return text.replace(LONE_SURROGATE_ALL, '\ufffd');
}

const CONTROL_CHAR_ALL = new RegExp(
  '[' + CONTROL_CHARS.map((cp, i) => (i % 2 === 0 ? `\\u{${cp.toString(16)}}` : `-\\u{${cp.toString(16)}}`)).join('') + ']',
  'gu',
);

export function removeControlChars(text: string): string {
  return text.replace(CONTROL_CHAR_ALL, '');
}

/** C1 controls read as the Windows-1252 characters they usually were. */
export function fixC1Controls(text: string): string {
  return text.replace(C1_CONTROL_ALL, (c) => sloppyWindows1252Char(c.charCodeAt(0)));
}
