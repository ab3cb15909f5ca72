// Inputs for the differential tests of src/text/fix-text.ts against ftfy: generated strings that
// exercise each of ftfy's steps, and real text found on this machine. Nothing runs on import.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';

import { CHARMAP_ENCODINGS } from '../../src/text/ftfy/tables.js';
import { HTML5_NAMED_REFERENCES } from '../../src/text/html-entities.js';
import type { Rng } from '../../src/util/prng.js';
import { repoRoot } from './fixtures.js';

/** Real words and sentences in many scripts, the raw material of mojibake. */
export const SAMPLES = [
  'café', 'naïve', 'Zürich', 'señor', 'Łódź', 'Smørrebrød', 'crème brûlée', 'voilà le travail', 'à la carte',
  'Ελληνικά', 'σοφός', 'Москва', 'Привет, мир', 'Українська', 'Đặng Thị', 'Türkçe ğüşıöç', 'Eesti keel õäöü',
  'Čeština ěščřžýáíé', 'Polski ąęłńśźż', 'Latviešu āēīū', 'Română șț', 'Ísland þð', 'straße', '東京', '日本語のテキスト',
  '中文字符', '한국어', 'עברית', 'العربية', 'हिन्दी', 'ไทย', '✔ done', '€100', '“quoted”', '‘single’', 'don’t',
  '—dash–', '…', '•', '™', '©', '½', '°C', '±5', '×', '👍', '😀 emoji', '🇯🇵', 'e\u0301', 'ﬁne', 'ﬂow', '\u00a0nbsp',
  'It’s a “test” — isn’t it?', 'Ñandú', 'Ærø', 'Œuvre', 'Ÿ', 'ŠŽšž', 'Ąą', 'ÂÃÄ', 'ðñòó', 'ĞğİıŞş', 'ΆΈΉΊ', 'ЁЂЃ',
];

const ENCODINGS = CHARMAP_ENCODINGS.map(([name]) => name);
const TABLES = new Map(CHARMAP_ENCODINGS.map(([name, table]) => [name, table]));
const utf8 = new TextEncoder();

/** Bytes read as a single-byte encoding (the tables are Python's own codecs). */
export function decodeAs(bytes: Uint8Array, encoding: string): string {
  const table = TABLES.get(encoding)!;
  let out = '';
  for (const byte of bytes) out += table[byte];
  return out;
}

/** Text encoded in `encoding` (null where it cannot be). */
function encodeAs(text: string, encoding: string): Uint8Array | null {
  if (encoding === 'utf-8') return utf8.encode(text);
  const table = TABLES.get(encoding)!;
  const bytes: number[] = [];
  for (const ch of text) {
    const byte = table.indexOf(ch);
    if (byte < 0) return null;
    bytes.push(byte);
  }
  return Uint8Array.from(bytes);
}

/** CESU-8: UTF-8 with astral characters as two encoded surrogates; U+0000 as Java's C0 80 when asked. */
function cesu8(text: string, javaNull: boolean): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (javaNull && unit === 0) out.push(0xc0, 0x80);
    else if (unit >= 0xd800 && unit <= 0xdfff) out.push(0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f));
    else out.push(...utf8.encode(text[i]!));
  }
  return Uint8Array.from(out);
}

const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.nextInt(items.length)]!;

function sampleText(rng: Rng, words = 1 + rng.nextInt(5)): string {
  return Array.from({ length: words }, () => pick(rng, SAMPLES)).join(pick(rng, [' ', ' ', ', ', '. ', '\n']));
}

/** One mojibake kind: UTF-8 (or another codec) read as another codec, then damaged the ways ftfy repairs. */
function mojibake(rng: Rng): string {
  const text = sampleText(rng);
  const from = rng.next() < 0.75 ? 'utf-8' : pick(rng, ENCODINGS);
  const to = pick(rng, ENCODINGS);
  const bytes = rng.next() < 0.1 ? cesu8(text + pick(rng, ['😀', '\0', '👍x']), rng.next() < 0.5) : encodeAs(text, from);
  if (bytes === null) return text;
  let bad = decodeAs(bytes, to);
  if (rng.next() < 0.3) bad = decodeAs(utf8.encode(bad), pick(rng, ENCODINGS)); // twice
  const damage = rng.nextInt(6);
  if (damage === 0) bad = bad.replaceAll('\u00a0', ' ');
  else if (damage === 1) bad = Array.from(bad, (ch) => (ch > '\u007f' && rng.next() < 0.15 ? pick(rng, ['?', '\ufffd']) : ch)).join('');
  const mixed = rng.next() < 0.3;
  return mixed ? `${sampleText(rng, 2)} ${bad} ${sampleText(rng, 1)}` : bad;
}

const ENTITY_NAMES = [...HTML5_NAMED_REFERENCES.keys()];

function entity(rng: Rng): string {
  const kind = rng.nextInt(6);
  if (kind === 0) return '&' + pick(rng, ENTITY_NAMES);
  if (kind === 1) return '&' + pick(rng, ENTITY_NAMES).toUpperCase();
  if (kind === 2) return '&#' + pick(rng, ['0', '1', '9', '65', '128', '150', '159', '8217', '55296', '1114112', '99999999999', String(rng.nextInt(0x30000))]) + pick(rng, [';', ';', '']);
  if (kind === 3) return '&#x' + rng.nextInt(0x30000).toString(16) + pick(rng, [';', '']);
  if (kind === 4) return '&amp;' + pick(rng, ENTITY_NAMES);
  return pick(rng, ['&', '&;', '&#;', '&#x;', '&abcdefghijklmnopqrstuvwxyz;', '&hellip', '&lt;b&gt;']);
}

const QUOTES = ['\u2018', '\u2019', '\u201a', '\u201b', '\u02bc', '\u201c', '\u201d', '\u201e', '\u201f', '"', "'", '«', '»'];
const LIGATURE_CHARS = ['Ĳ', 'ĳ', 'ŉ', 'Ǳ', 'ǲ', 'ǳ', 'Ǆ', 'ǅ', 'ǆ', 'Ǉ', 'ǈ', 'ǉ', 'Ǌ', 'ǋ', 'ǌ', 'ﬀ', 'ﬁ', 'ﬂ', 'ﬃ', 'ﬄ', 'ﬅ', 'ﬆ', '﬇', 'æ'];
const BREAKS = ['\r\n', '\r', '\n', '\u2028', '\u2029', '\u0085', '\r\r\n', '\f', '\v'];
const ESCAPES = ['\x1b[0m', '\x1b[1;31m', '\x1b[38;5;208m', '\x1b[2J', '\x1b[K', '\x1b[١٢m', '\x1b[', '\x1b]0;title\x07', '\x1b[12'];

/** A code point anywhere, surrogates included, skewed towards the ranges ftfy acts on. */
function anyCodePoint(rng: Rng): string {
  const ranges: [number, number][] = [[0, 0x7f], [0x80, 0x2ff], [0x300, 0x36f], [0x370, 0x4ff], [0x2000, 0x206f], [0xd800, 0xdfff], [0xfb00, 0xfb06], [0xfe00, 0xffff], [0x3000, 0x30ff], [0x1f300, 0x1faff], [0, 0x10ffff]];
  const [lo, hi] = pick(rng, ranges);
  return String.fromCodePoint(lo + rng.nextInt(hi - lo + 1));
}

/** A fragment exercising one of ftfy's steps (`kind` 0–13, see STEP_KINDS); 13 is plain text. */
export function fragment(rng: Rng, kind: number): string {
  switch (kind) {
    case 0: return mojibake(rng);
    case 1: return entity(rng);
    case 2: return pick(rng, QUOTES);
    case 3: return String.fromCodePoint(0xff01 + rng.nextInt(0xef)) + pick(rng, ['', '\u3000']);
    case 4: return pick(rng, LIGATURE_CHARS);
    case 5: return String.fromCharCode(rng.nextInt(0x20)) + pick(rng, ['\x7f', '\ufeff', '\u206a', '\ufff9', '\u200b', '']);
    case 6: return String.fromCharCode(0x80 + rng.nextInt(0x20));
    case 7: return pick(rng, BREAKS);
    case 8: return pick(rng, ESCAPES);
    case 9: return String.fromCharCode(0xd800 + rng.nextInt(0x800));
    case 10: return pick(rng, ['a', 'e', 'o', 'A', 'ᄀ', 'ᅡ', 'α']) + String.fromCodePoint(0x300 + rng.nextInt(0x70), 0x300 + rng.nextInt(0x70));
    case 11: return anyCodePoint(rng);
    case 12: return pick(rng, ['<', '<b>', '</i>', '>']);
    default: return sampleText(rng);
  }
}

/** The steps `fragment` exercises, by kind. */
export const STEP_KINDS = ['mojibake', 'entities', 'quotes', 'widths', 'ligatures', 'controls', 'C1 controls', 'line breaks', 'terminal escapes', 'surrogates', 'combining marks', 'any code point', 'HTML tags', 'plain text'];

/** A string of one step's fragments between plain words. */
export function stepCase(rng: Rng, kind: number): string {
  const parts: string[] = [];
  for (let n = 1 + rng.nextInt(5); n > 0; n--) {
    if (rng.next() < 0.5) parts.push(sampleText(rng, 1));
    parts.push(fragment(rng, kind));
  }
  return parts.join(pick(rng, ['', ' ']));
}

/** `count` strings mixing fragments of the steps in `kinds` (all of them by default) with ordinary text. */
export function generatedCases(rng: Rng, count: number, kinds = 14): string[] {
  return Array.from({ length: count }, () => {
    const parts: string[] = [];
    for (let n = 1 + rng.nextInt(6); n > 0; n--) parts.push(fragment(rng, rng.nextInt(kinds)));
    return parts.join(pick(rng, ['', ' ', ' ', '\n']));
  });
}

/** Only mojibake: every codec pair, damaged and mixed, `count` of them. */
export function mojibakeCases(rng: Rng, count: number): string[] {
  return Array.from({ length: count }, () => mojibake(rng));
}

/**
 * Long texts: past ftfy's 1,000,000-code-point segment length with and without line breaks (the
 * cut falling inside mojibake and inside a surrogate pair), and many lines where a '<' turns entity
 * decoding off for the rest.
 */
export function longCases(): string[] {
  const bad = decodeAs(utf8.encode('café — “naïve” 😀'), 'sloppy-windows-1252');
  const nearCut = 'x'.repeat(999_990) + bad + 'y'.repeat(100);
  const astralCut = '😀'.repeat(500_010) + bad;
  const lines = Array.from({ length: 2000 }, (_, i) => (i === 1200 ? '<p>&amp; tag line\n' : `line ${i} &amp; ${bad}\n`)).join('');
  return [nearCut, astralCut, lines];
}

/** Readable text files: common licences, package copyrights, man pages, Python's multilingual test data. */
function corpusFiles(): string[] {
  const files: string[] = [];
  const add = (file: string): void => {
    try {
      if (statSync(file).isFile()) files.push(file);
    } catch {
      // unreadable: not part of the corpus
    }
  };
  const isDir = (dir: string): boolean => existsSync(dir) && statSync(dir).isDirectory();
  const list = (dir: string): string[] => (isDir(dir) ? readdirSync(dir).map((name) => path.join(dir, name)) : []);
  list('/usr/share/common-licenses').forEach(add);
  list('/usr/share/doc').forEach((dir) => add(path.join(dir, 'copyright')));
  for (const lang of list('/usr/share/man')) for (const section of list(lang)) list(section).slice(0, 40).forEach(add);
  const pythonTest = spawnSync('python3', ['-c', 'import test, os; print(os.path.dirname(test.__file__))'], { encoding: 'utf8' });
  if (pythonTest.status === 0) {
    const dir = pythonTest.stdout.trim();
    list(path.join(dir, 'cjkencodings')).forEach(add);
    list(path.join(dir, 'tokenizedata')).forEach(add);
    list(path.join(dir, 'encoded_modules')).forEach(add);
  }
  return files.sort();
}

/** Each file as text (gzip undone; bytes that are not UTF-8 read as Latin-1, itself a source of mojibake). */
function readText(file: string): string {
  let bytes: Uint8Array = readFileSync(file);
  if (file.endsWith('.gz')) bytes = gunzipSync(bytes);
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return decodeAs(bytes, 'latin-1');
  }
}

/**
 * The corpus, up to `maxChars` characters: each file's paragraphs, and small files whole too (ftfy
 * then splits them into lines itself). Files are taken in a fixed interleaved order, so a cap still
 * samples every kind of source.
 */
export function corpusCases(maxChars: number): { texts: string[]; files: number } {
  const all = corpusFiles();
  const stride = 7;
  const order = Array.from({ length: stride }, (_, k) => all.filter((_, i) => i % stride === k)).flat();
  const texts: string[] = [];
  let total = 0;
  let files = 0;
  for (const file of order) {
    if (total >= maxChars) break;
    const text = readText(file);
    files++;
    if (text.length < 65_536) texts.push(text);
    for (const paragraph of text.split(/\n\s*\n/)) if (paragraph.trim() !== '') texts.push(paragraph);
    total += text.length * (text.length < 65_536 ? 2 : 1);
  }
  return { texts, files };
}

/** The ftfy/open_clip peer on a batch of texts (test/python/ftfy_peer.py), or why it cannot run. */
export function runPeer(mode: 'fix' | 'open_clip' | 'is_bad', texts: readonly string[]): unknown[] {
  const run = spawnSync('python3', [path.join(repoRoot, 'test', 'python', 'ftfy_peer.py'), mode], {
    input: texts.map((text) => JSON.stringify(text)).join('\n') + '\n',
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  if (run.status !== 0) throw new Error(`ftfy_peer.py ${mode} failed: ${run.stderr.slice(-2000)}`);
  const outputs = run.stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as unknown);
  if (outputs.length !== texts.length) throw new Error(`ftfy_peer.py ${mode} answered ${outputs.length} of ${texts.length} texts`);
  return outputs;
}

/** Why the ftfy comparison cannot run here (null when python3 has ftfy 6.3.1). */
export function ftfyMissing(): string | null {
  const run = spawnSync('python3', [path.join(repoRoot, 'test', 'python', 'ftfy_peer.py'), 'version'], { encoding: 'utf8' });
  if (run.error) return `python3 is not runnable (${run.error.message})`;
  if (run.status !== 0) return `python3 cannot import ftfy (pip install ftfy==6.3.1): ${run.stderr.trim().split('\n').at(-1)}`;
  const version = run.stdout.trim();
  return version === '6.3.1' ? null : `python3 has ftfy ${version}; fixText reproduces 6.3.1`;
}
