// The byte-level side of ftfy's mojibake repair: its single-byte codecs (encoding text back into the
// bytes it was wrongly decoded from) and the two UTF-8 decoders it reads those bytes with.
// Bytes travel as "binary strings", one char (0–255) per byte, so that ftfy's bytes regexes can run
// on them as ordinary JavaScript regexes.
import { CHARMAP_ENCODINGS, STRICT_WINDOWS_1252 } from './tables.js';

export interface SingleByteCodec {
  readonly name: string;
  /** ftfy's "sloppy" codecs decode every byte (undefined ones as Latin-1) and turn 0x1A into U+FFFD. */
  readonly sloppy: boolean;
  /** Byte → its character. */
  readonly decodeTable: string;
  /** UTF-16 code unit → byte + 1; 0 where the character has no byte. Every table character is in the BMP. */
  readonly encodeTable: Uint16Array;
}

function makeCodec(name: string, decodeTable: string): SingleByteCodec {
  const encodeTable = new Uint16Array(0x10000);
  for (let byte = 0; byte < 256; byte++) encodeTable[decodeTable.charCodeAt(byte)] = byte + 1;
  return { name, sloppy: name.startsWith('sloppy-'), decodeTable, encodeTable };
}

/** ftfy's CHARMAP_ENCODINGS, in the order it tries them. */
export const CODECS: readonly SingleByteCodec[] = CHARMAP_ENCODINGS.map(([name, table]) => makeCodec(name, table));

/**
 * `text.encode(codec)` as a binary string, or null where a character has no byte: the same test
 * as ftfy's `possible_encoding`, whose character class is exactly the codec's 256 characters.
 */
export function encodeSingleByte(text: string, codec: SingleByteCodec): string | null {
  const table = codec.encodeTable;
  const codes = new Array<number>(text.length);
  for (let i = 0; i < text.length; i++) {
    const byte = table[text.charCodeAt(i)]!;
    if (byte === 0) return null;
    codes[i] = byte - 1;
  }
  return binaryString(codes);
}

/** Chars from codes, in chunks: one `fromCharCode` call per code would be slow on long texts. */
function binaryString(codes: readonly number[]): string {
  let out = '';
  for (let i = 0; i < codes.length; i += 8192) out += String.fromCharCode(...codes.slice(i, i + 8192));
  return out;
}

export function isLatin1Encodable(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0xff) return false;
  return true;
}

/** `text.encode('latin-1').decode('windows-1252')` with Python's strict codec: null on an undefined byte. */
export function latin1AsWindows1252(text: string): string | null {
  const codes = new Array<number>(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = STRICT_WINDOWS_1252[text.charCodeAt(i)]!;
    if (code < 0) return null;
    codes[i] = code;
  }
  return binaryString(codes);
}

/** One character of C1 range read as sloppy-windows-1252 (undefined bytes stay as they are). */
const SLOPPY_1252 = CODECS.find((codec) => codec.name === 'sloppy-windows-1252')!.decodeTable;
export function sloppyWindows1252Char(code: number): string {
  return SLOPPY_1252[code]!;
}

function bytesOf(binary: string): Uint8Array {
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// Python's strict UTF-8 and WHATWG's fatal decoder accept exactly the same byte sequences. A BOM is
// a character here, not a signature.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** `bytes.decode('utf-8')`, or null where Python would raise. */
export function decodeUtf8(binary: string): string | null {
  try {
    return strictUtf8.decode(bytesOf(binary));
  } catch {
    return null;
  }
}

/** Java's two-byte NUL, a CESU-8 surrogate pair, or the start of any other encoded surrogate. */
const SPECIAL_SEQUENCE = /\xc0\x80|\xed[\xa0-\xaf][\x80-\xbf]\xed[\xb0-\xbf][\x80-\xbf]|\xc0|\xed[\xa0-\xbf]/g;

/** The astral character a six-byte CESU-8 pair stands for. */
function cesuCharacter(pair: string): string {
  const b = (i: number): number => pair.charCodeAt(i);
  return String.fromCodePoint(((b(1) & 0x0f) << 16) + ((b(2) & 0x3f) << 10) + ((b(4) & 0x0f) << 6) + (b(5) & 0x3f) + 0x10000);
}

/**
 * ftfy's `utf-8-variants` codec: UTF-8 that also accepts Java's C0 80 for U+0000 and CESU-8's
 * surrogate pairs; any other encoded surrogate, or a C0 not followed by 80, is an error (null).
 */
export function decodeUtf8Variants(binary: string): string | null {
  let out = '';
  let position = 0;
  for (const match of binary.matchAll(SPECIAL_SEQUENCE)) {
    const sequence = match[0];
    if (sequence.length === 1 || sequence.length === 2 && sequence.charCodeAt(0) === 0xed) return null;
    const before = decodeUtf8(binary.slice(position, match.index));
    if (before === null) return null;
    out += before + (sequence.length === 2 ? '\0' : cesuCharacter(sequence));
    position = match.index! + sequence.length;
  }
  const rest = decodeUtf8(binary.slice(position));
  return rest === null ? null : out + rest;
}
