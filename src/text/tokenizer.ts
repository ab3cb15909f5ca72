import { promises as fs } from 'node:fs';
import path from 'node:path';

import { BytePairEncoder, BYTE_TO_CHAR, CHAR_TO_BYTE, END_OF_TEXT, END_OF_WORD, parseBpeVocabulary, START_OF_TEXT } from './bpe.js';
import type { BpeVocabulary } from './bpe.js';
import { inRanges } from './code-point-ranges.js';
import { fixText } from './fix-text.js';
import { htmlUnescape } from './html-unescape.js';
import { resolveVocabularyPath, type LoadTokenizerOptions } from './vocabulary.js';
import {
  CASE_IGNORABLE_RANGES,
  CASED_RANGES,
  IGNORECASE_NOT_OTHER,
  LETTER_RANGES,
  LOWER_MULTI,
  LOWER_RUNS,
  NUMBER_RANGES,
  PY_ISSPACE as PY_ISSPACE_CODE_POINTS,
  REGEX_WHITESPACE,
} from './unicode-tables.js';

/*
 * The CLIP tokenizer, exact to openai/CLIP `clip/simple_tokenizer.py` + `clip.tokenize` as shipped:
 * `basic_clean` runs ftfy 6.3.1's `fix_text` first (./fix-text.ts), unless `fixText: false` (the
 * fixtures' "reference minus ftfy"). Every regex below spells out its character sets because
 * JavaScript's `\s` and `/i` differ from Python's `str`/`regex` module ones.
 */

export const START_OF_TEXT_ID = 49406;
export const END_OF_TEXT_ID = 49407;
export const VOCAB_SIZE = 49408;
export const DEFAULT_CONTEXT_LENGTH = 77;

// ---------------------------------------------------------------------------------------------
// Cleaning: basic_clean (html.unescape twice, str.strip), whitespace_clean, str.lower.
//
// All Unicode data comes from ./unicode-tables.ts, generated for the reference's versions (Python
// 3.11 = Unicode 14.0 for str.lower/str.isspace, regex 2022.10.31 = Unicode 15.0 for \p{L}, \p{N},
// \s), not from this Node's ICU, whose newer Unicode cases and classifies more characters.

/** Python's `str.isspace()` set, which `str.strip()` uses: Unicode White_Space plus U+001C–001F. */
const PY_ISSPACE = new Set(PY_ISSPACE_CODE_POINTS);

/** Python's `str.strip()` with no argument (a loop, not a regex: `\s+$` is quadratic on long runs). */
export function pythonStrip(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && PY_ISSPACE.has(text.charCodeAt(start))) start++;
  while (end > start && PY_ISSPACE.has(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

/** Flat inclusive [first, last, ...] pairs of a sorted code point list. */
function rangesOf(codePoints: readonly number[]): number[] {
  const ranges: number[] = [];
  for (const cp of codePoints) {
    if (ranges.length > 0 && ranges[ranges.length - 1] === cp - 1) ranges[ranges.length - 1] = cp;
    else ranges.push(cp, cp);
  }
  return ranges;
}

/**
 * A code point as it stands inside a `u`- or `v`-flag character class: ASCII other than letters
 * and digits is escaped (class syntax, `v`-mode punctuators, controls); the rest is literal.
 */
function classChar(cp: number): string {
  if (cp < 0x80 && !/[0-9A-Za-z]/.test(String.fromCharCode(cp))) return `\\u{${cp.toString(16)}}`;
  return String.fromCodePoint(cp);
}

/**
 * The body of a `u`-flag character class matching flat inclusive ranges. Literal characters keep
 * the source short: V8 stops optimizing regexps whose source is over 20 KB, and `\\u{...}` escapes
 * of the letter class alone would be 13 KB.
 */
function classBody(ranges: readonly number[]): string {
  let body = '';
  for (let i = 0; i < ranges.length; i += 2) {
    const first = ranges[i]!;
    const last = ranges[i + 1]!;
    body += classChar(first);
    if (last !== first) body += '-' + classChar(last);
  }
  return body;
}

/** The regex module's `\s` (Unicode White_Space): unlike JS `\s`, it has U+0085 and lacks U+FEFF. */
const WHITESPACE_CLASS = classBody(rangesOf(REGEX_WHITESPACE));
const PY_REGEX_WHITESPACE_RUNS = new RegExp(`[${WHITESPACE_CLASS}]+`, 'gu');

/** Python 3.11's `str.lower()` of single code points (Unicode 14.0); absent = unchanged. */
const PY_LOWER = new Map<number, string>();
for (let i = 0; i < LOWER_RUNS.length; i += 4) {
  const [start, end, stride, delta] = [LOWER_RUNS[i]!, LOWER_RUNS[i + 1]!, LOWER_RUNS[i + 2]!, LOWER_RUNS[i + 3]!];
  for (let cp = start; cp <= end; cp += stride) PY_LOWER.set(cp, String.fromCodePoint(cp + delta));
}
for (const [cp, lowered] of LOWER_MULTI) PY_LOWER.set(cp, String.fromCodePoint(...lowered));
const CAPITAL_SIGMA = 0x3a3;
const PY_LOWER_KEYS = [...PY_LOWER.keys()].sort((a, b) => a - b);
const PY_LOWER_CANDIDATES = new RegExp(`[${classBody(rangesOf(PY_LOWER_KEYS))}]`, 'gu');
const NON_ASCII = /[^\x00-\x7f]/;

/**
 * Characters for which this Node's own `toLowerCase` is not Python's: those it lowercases that
 * Python 3.11 leaves alone (letters cased after Unicode 14.0), those both lowercase differently,
 * and Σ (Final_Sigma uses the case properties of the neighbours, which differ between versions).
 * Text without any of them can use `toLowerCase`. Worked out when the module loads, from the
 * running Node's own data, so it holds for any ICU version; null (always use the table) where the
 * `v` flag is missing.
 */
const NODE_LOWER_DIFFERS: RegExp | null = (() => {
  const differ = PY_LOWER_KEYS.filter((cp) => String.fromCodePoint(cp).toLowerCase() !== PY_LOWER.get(cp));
  const special = rangesOf([...new Set([...differ, CAPITAL_SIGMA])].sort((a, b) => a - b));
  try {
    return new RegExp(`[[\\p{Changes_When_Lowercased}--[${classBody(rangesOf(PY_LOWER_KEYS))}]]${classBody(special)}]`, 'v');
  } catch {
    return null;
  }
})();

/**
 * CPython 3.11's `handle_capital_sigma`: Σ at `index` lowers to final ς when it follows a cased
 * letter and precedes none, skipping Case_Ignorable characters on both sides (Unicode 14.0 data).
 */
function isFinalSigma(text: string, index: number): boolean {
  let j = index;
  let before = -1;
  while (j > 0) {
    let code = text.charCodeAt(--j);
    if (code >= 0xdc00 && code <= 0xdfff && j > 0) {
      const high = text.charCodeAt(j - 1);
      if (high >= 0xd800 && high <= 0xdbff) {
        code = (high - 0xd800) * 0x400 + (code - 0xdc00) + 0x10000;
        j--;
      }
    }
    if (!inRanges(CASE_IGNORABLE_RANGES, code)) {
      before = code;
      break;
    }
  }
  if (before < 0 || !inRanges(CASED_RANGES, before)) return false;
  for (let k = index + 1; k < text.length; ) {
    const cp = text.codePointAt(k)!;
    if (!inRanges(CASE_IGNORABLE_RANGES, cp)) return !inRanges(CASED_RANGES, cp);
    k += cp > 0xffff ? 2 : 1;
  }
  return true;
}

function lowerMatch(match: string, offset: number, whole: string): string {
  const cp = match.codePointAt(0)!;
  if (cp === CAPITAL_SIGMA) return isFinalSigma(whole, offset) ? '\u03c2' : '\u03c3';
  return PY_LOWER.get(cp)!;
}

/**
 * Python 3.11's `str.lower()` (Unicode 14.0, full lowercasing with the Final_Sigma rule, so `İ`
 * becomes `i̇`), from the generated table. JS `toLowerCase` is used only where it gives the same:
 * pure-ASCII text, and text with no character of `NODE_LOWER_DIFFERS`.
 */
export function pythonLower(text: string): string {
  if (!NON_ASCII.test(text)) return text.toLowerCase();
  if (NODE_LOWER_DIFFERS !== null && !NODE_LOWER_DIFFERS.test(text)) return text.toLowerCase();
  return text.replace(PY_LOWER_CANDIDATES, lowerMatch);
}

/**
 * The reference pre-tokenizer, compiled with IGNORECASE, rewritten without `/i` and with the
 * regex module's Unicode 15.0 letter and number classes (not JS's `\p{L}`/`\p{N}`, whose newer
 * Unicode counts later-assigned characters as letters: the reference puts them in the "other"
 * class). The text is already lowercased, so IGNORECASE only adds `ſ` (U+017F, which folds to `s`)
 * to the literals, and takes U+0345 (which folds to `ι`) out of the "other" class, so that U+0345
 * matches no branch and is dropped (checked per code point against regex 2022.10.31 by the
 * generator).
 */
const LETTER_CLASS = classBody(LETTER_RANGES);
const NUMBER_CLASS = classBody(NUMBER_RANGES);
const PRE_TOKENIZER = new RegExp(
  `<\\|[s\u017f]tartoftext\\|>|<\\|endoftext\\|>|'[s\u017f]|'t|'re|'ve|'m|'ll|'d|[${LETTER_CLASS}]+|[${NUMBER_CLASS}]|` +
    `[^${WHITESPACE_CLASS}${LETTER_CLASS}${NUMBER_CLASS}${classBody(rangesOf(IGNORECASE_NOT_OTHER))}]+`,
  'gu',
);

const LONE_SURROGATE = /\p{Cs}/u;

/**
 * `whitespace_clean(basic_clean(text)).lower()`; `basic_clean` applies ftfy's `fix_text` first when
 * `fix` is true (the tokenizer's default), and not at all when false (ftfy stubbed, as the fixtures).
 */
export function cleanText(text: string, fix = false): string {
  const basic = pythonStrip(htmlUnescape(htmlUnescape(fix ? fixText(text) : text)));
  return pythonLower(pythonStrip(basic.replace(PY_REGEX_WHITESPACE_RUNS, ' ')));
}

/** The pre-tokenizer's pieces of already-cleaned text. */
export function preTokenize(cleaned: string): string[] {
  return cleaned.match(PRE_TOKENIZER) ?? [];
}

function isPrintableAscii(piece: string): boolean {
  for (let i = 0; i < piece.length; i++) {
    const code = piece.charCodeAt(i);
    if (code < 0x21 || code > 0x7e) return false;
  }
  return true;
}

const utf8 = new TextEncoder();

/** UTF-8 bytes, each as its `bytes_to_unicode` character. Printable ASCII maps to itself. */
function byteEncode(piece: string): string {
  if (isPrintableAscii(piece)) return piece;
  let out = '';
  for (const byte of utf8.encode(piece)) out += BYTE_TO_CHAR[byte];
  return out;
}

function abbreviate(text: string, max = 60): string {
  const chars = Array.from(text);
  return JSON.stringify(chars.length <= max ? text : chars.slice(0, max - 1).join('') + '…');
}

// ---------------------------------------------------------------------------------------------

export interface TokenizerOptions {
  /**
   * Clean text with ftfy 6.3.1's `fix_text` before BPE, as openai/CLIP and open_clip do (mojibake,
   * curly quotes, ligatures, fullwidth forms, control characters, NFC). Default true; false gives
   * the tokens of the reference with ftfy stubbed out.
   */
  fixText?: boolean;
}

export interface TokenizeOptions {
  /** Positions per row, start and end tokens included. Default 77. */
  contextLength?: number;
  /** Cut texts that are too long (keeping an end token last) instead of throwing. Default false. */
  truncate?: boolean;
}

/** Row-major `[n, contextLength]` int32 token ids, zero-padded, like `clip.tokenize`'s tensor. */
export interface TokenBatch {
  data: Int32Array;
  shape: [number, number];
}

export class ClipTokenizer {
  private readonly bpe: BytePairEncoder;
  private readonly utf8Decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
  /** Whether `encode` runs ftfy's `fix_text` first (see `TokenizerOptions.fixText`). */
  readonly fixText: boolean;

  constructor(
    private readonly vocabulary: BpeVocabulary,
    options: TokenizerOptions = {},
  ) {
    this.fixText = options.fixText ?? true;
    if (vocabulary.decoder.length !== VOCAB_SIZE) {
      throw new Error(`CLIP needs a ${VOCAB_SIZE}-token vocabulary; this one has ${vocabulary.decoder.length}`);
    }
    this.bpe = new BytePairEncoder(vocabulary.ranks);
  }

  get vocabSize(): number {
    return this.vocabulary.decoder.length;
  }

  /** `SimpleTokenizer.encode`: ids without start and end tokens. */
  encode(text: string): number[] {
    if (typeof text !== 'string') throw new TypeError(`encode expects a string, got ${typeof text}`);
    // ftfy turns lone surrogates into U+FFFD; without it they reach the UTF-8 encoder.
    if (!this.fixText && LONE_SURROGATE.test(text)) {
      // Python's str.encode('utf-8') raises on these; silently encoding U+FFFD would hide the problem.
      throw new Error(`Cannot tokenize ${abbreviate(text)}: it contains a lone UTF-16 surrogate, which is not encodable as UTF-8`);
    }
    const ids: number[] = [];
    for (const piece of preTokenize(cleanText(text, this.fixText))) {
      for (const subword of this.bpe.encode(byteEncode(piece))) {
        ids.push(this.vocabulary.encoder.get(subword)!);
      }
    }
    return ids;
  }

  /** `SimpleTokenizer.decode`: `</w>` becomes a space; invalid UTF-8 becomes U+FFFD as in Python's errors="replace". */
  decode(ids: ArrayLike<number>): string {
    let byteChars = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const token = Number.isInteger(id) ? this.vocabulary.decoder[id] : undefined;
      if (token === undefined) throw new RangeError(`decode: ${id} is not a token id (0–${this.vocabSize - 1})`);
      byteChars += token;
    }
    const bytes = new Uint8Array(byteChars.length);
    for (let i = 0; i < byteChars.length; i++) bytes[i] = CHAR_TO_BYTE[byteChars.charCodeAt(i)]!;
    // WHATWG's decoder replaces each maximal invalid subsequence with one U+FFFD, as Python does.
    return this.utf8Decoder.decode(bytes).replaceAll(END_OF_WORD, ' ');
  }

  /** `clip.tokenize`: `[sot] + ids + [eot]` per text, zero-padded to `contextLength`. */
  tokenize(texts: string | readonly string[], options: TokenizeOptions = {}): TokenBatch {
    const { contextLength = DEFAULT_CONTEXT_LENGTH, truncate = false } = options;
    if (!Number.isInteger(contextLength) || contextLength < 2) {
      throw new RangeError(`contextLength must be an integer ≥ 2, got ${contextLength}`);
    }
    const list = typeof texts === 'string' ? [texts] : texts;
    const data = new Int32Array(list.length * contextLength);
    list.forEach((text, row) => {
      const ids = this.encode(text);
      const length = ids.length + 2;
      if (length > contextLength && !truncate) {
        throw new Error(
          `Input ${abbreviate(text)} is too long for context length ${contextLength}: it has ${length} tokens ` +
            `(${ids.length} + start and end). Shorten it or pass { truncate: true }.`,
        );
      }
      const offset = row * contextLength;
      data[offset] = START_OF_TEXT_ID;
      const kept = Math.min(ids.length, contextLength - 2);
      for (let i = 0; i < kept; i++) data[offset + 1 + i] = ids[i]!;
      if (length > contextLength) {
        // Reference: tokens[:contextLength] then tokens[-1] = eot, i.e. ids up to position contextLength-2 survive.
        data[offset + contextLength - 1] = END_OF_TEXT_ID;
      } else {
        data[offset + 1 + kept] = END_OF_TEXT_ID;
      }
    });
    return { data, shape: [list.length, contextLength] };
  }
}

export { resolveVocabularyPath, VOCAB_ENV, VOCAB_FILE_NAME, VOCAB_SHA256, VOCAB_URL, type LoadTokenizerOptions } from './vocabulary.js';

const parsed = new Map<string, Promise<BpeVocabulary>>();
const loaded = new Map<string, Promise<ClipTokenizer>>();

function vocabularyFromFile(file: string): Promise<BpeVocabulary> {
  let pending = parsed.get(file);
  if (pending === undefined) {
    pending = fs.readFile(file).then((bytes) => parseBpeVocabulary(bytes, file));
    parsed.set(file, pending);
    // A failed parse must not poison the cache: the file may be fixed and retried.
    pending.catch(() => parsed.delete(file));
  }
  return pending;
}

/**
 * A tokenizer for a vocabulary file: one parse per resolved path for the life of the process, and
 * one tokenizer per path and `fixText` setting (so a cached tokenizer never cleans differently).
 */
export function tokenizerFromFile(file: string, options: TokenizerOptions = {}): Promise<ClipTokenizer> {
  const resolved = path.resolve(file);
  const fix = options.fixText ?? true;
  const key = `${fix ? 'fix' : 'raw'}:${resolved}`;
  let pending = loaded.get(key);
  if (pending === undefined) {
    pending = vocabularyFromFile(resolved).then((vocabulary) => new ClipTokenizer(vocabulary, { fixText: fix }));
    loaded.set(key, pending);
    pending.catch(() => loaded.delete(key));
  }
  return pending;
}

/** The CLIP tokenizer, with its vocabulary found (or downloaded) as `resolveVocabularyPath` says. */
export async function loadTokenizer(options: LoadTokenizerOptions & TokenizerOptions = {}): Promise<ClipTokenizer> {
  return tokenizerFromFile(await resolveVocabularyPath(options), options);
}

export { START_OF_TEXT, END_OF_TEXT };
