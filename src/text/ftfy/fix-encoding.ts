// ftfy's `fix_encoding`: undo mojibake (UTF-8 read as a single-byte encoding) one layer at a time.
import {
  CODECS,
  decodeUtf8,
  decodeUtf8Variants,
  encodeSingleByte,
  isLatin1Encodable,
  latin1AsWindows1252,
  type SingleByteCodec,
} from './codecs.js';
import { fixC1Controls } from './fixes.js';
import { A_GRAVE_WORD_ALL, ALTERED_UTF8, ALTERED_UTF8_ALL, C1_CONTROL, isBad, LOSSY_UTF8_ALL, UTF8_DETECTOR, UTF8_DETECTOR_ALL } from './regexes.js';

const NON_ASCII = /[^\x00-\x7f]/;

/**
 * `restore_byte_a0`: a space inside what would be a UTF-8 sequence was probably a no-break space
 * (0xA0) that some step turned into a space, as was a space after 0xC3 ("à ").
 */
function restoreByteA0(bytes: string): string {
  return bytes
    .replace(A_GRAVE_WORD_ALL, '\xc3\xa0 ')
    .replace(ALTERED_UTF8_ALL, (sequence) => sequence.replaceAll(' ', '\xa0'));
}

/** `replace_lossy_sequences`: UTF-8 sequences with a byte lost to '?' or U+FFFD become one U+FFFD. */
function replaceLossySequences(bytes: string): string {
  return bytes.replace(LOSSY_UTF8_ALL, '\xef\xbf\xbd');
}

/** The text the codec's bytes decode to as UTF-8, after the byte-level repairs; null where they are not UTF-8. */
function decodeThrough(codec: SingleByteCodec, bytes: string): string | null {
  let repaired = bytes;
  if (codec.name !== 'macroman' && ALTERED_UTF8.test(repaired)) repaired = restoreByteA0(repaired);
  if (codec.sloppy) repaired = replaceLossySequences(repaired);
  const variant = repaired.includes('\xed') || repaired.includes('\xc0');
  return variant ? decodeUtf8Variants(repaired) : decodeUtf8(repaired);
}

/** `decode_inconsistent_utf8`: fix each run that looks like UTF-8 mojibake on its own. */
function decodeInconsistentUtf8(text: string): string {
  return text.replace(UTF8_DETECTOR_ALL, (run) => (run.length < text.length && isBad(run) ? fixEncoding(run) : run));
}

/** One step of repair; the text unchanged when no step applies. */
function fixEncodingOnce(text: string): string {
  if (!NON_ASCII.test(text) || !isBad(text)) return text;
  for (const codec of CODECS) {
    const bytes = encodeSingleByte(text, codec);
    if (bytes === null) continue;
    const decoded = decodeThrough(codec, bytes);
    if (decoded !== null) return decoded;
  }
  if (UTF8_DETECTOR.test(text)) {
    const fixed = decodeInconsistentUtf8(text);
    if (fixed !== text) return fixed;
  }
  // ftfy compares its list of possible codecs with "windows-1252", a name that list never holds
  // (it holds "sloppy-windows-1252"), so Latin-1 text is always tried as strict Windows-1252.
  if (isLatin1Encodable(text)) {
    const fixed = latin1AsWindows1252(text);
    if (fixed !== null && fixed !== text) return fixed;
  }
  if (C1_CONTROL.test(text)) return fixC1Controls(text);
  return text;
}

/** ftfy's `fix_encoding` with its defaults: repeated until the text stops changing. */
export function fixEncoding(text: string): string {
  for (;;) {
    const fixed = fixEncodingOnce(text);
    if (fixed === text) return text;
    text = fixed;
  }
}
