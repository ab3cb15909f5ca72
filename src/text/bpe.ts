import { gunzipSync } from 'node:zlib';

/**
 * Byte-level BPE as in openai/CLIP `simple_tokenizer.py`: the vocabulary, the merge ranks and the
 * merge loop. Text cleaning and pre-tokenization live in tokenizer.ts.
 */

/** CLIP uses only the first 49152-256-2 merges of the file (the header line is skipped). */
export const MERGE_COUNT = 49152 - 256 - 2;
export const END_OF_WORD = '</w>';
export const START_OF_TEXT = '<|startoftext|>';
export const END_OF_TEXT = '<|endoftext|>';

/**
 * GPT-2's `bytes_to_unicode`: every byte gets a printable, non-whitespace character, so BPE can work
 * on strings. The order matters: it fixes the ids 0–255 of the vocabulary.
 */
function buildByteCharacters(): { inVocabOrder: string[]; byByte: string[] } {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const bytesInOrder = [...printable];
  const inVocabOrder = printable.map((b) => String.fromCharCode(b));
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    if (!printable.includes(b)) {
      bytesInOrder.push(b);
      inVocabOrder.push(String.fromCharCode(256 + shifted++));
    }
  }
  const byByte: string[] = new Array<string>(256);
  bytesInOrder.forEach((b, i) => (byByte[b] = inVocabOrder[i]!));
  return { inVocabOrder, byByte };
}

const BYTE_CHARACTERS = buildByteCharacters();
/** Vocabulary ids 0–255, in the reference's order. */
const BYTE_CHARS_IN_VOCAB_ORDER: readonly string[] = BYTE_CHARACTERS.inVocabOrder;
/** byte → its character. */
export const BYTE_TO_CHAR: readonly string[] = BYTE_CHARACTERS.byByte;
/** character code → byte (-1 where the character is not a byte character). */
export const CHAR_TO_BYTE: Int16Array = (() => {
  const table = new Int16Array(0x200).fill(-1);
  BYTE_TO_CHAR.forEach((ch, b) => (table[ch.charCodeAt(0)] = b));
  return table;
})();

/** The parsed vocabulary: token string ↔ id, and merge ranks keyed by `first + ' ' + second`. */
export interface BpeVocabulary {
  readonly encoder: ReadonlyMap<string, number>;
  readonly decoder: ReadonlyArray<string | undefined>;
  readonly ranks: ReadonlyMap<string, number>;
}

/** Python's `str.split()` with no argument: runs of whitespace, no empty fields. */
function splitOnWhitespace(line: string): string[] {
  return line.split(/\s+/u).filter((part) => part !== '');
}

/** Parses the gzip'd merges file exactly as `SimpleTokenizer.__init__` does. */
export function parseBpeVocabulary(gzipped: Uint8Array, source = 'the vocabulary'): BpeVocabulary {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(gunzipSync(gzipped));
  } catch (err) {
    throw new Error(`${source} is not a gzip'd UTF-8 BPE merges file (bpe_simple_vocab_16e6.txt.gz): ${(err as Error).message}`);
  }
  const lines = text.split('\n');
  if (lines.length < MERGE_COUNT + 1) {
    throw new Error(`${source} has ${lines.length - 1} merge lines; CLIP needs ${MERGE_COUNT} (is it bpe_simple_vocab_16e6.txt.gz?)`);
  }
  const merges = lines.slice(1, MERGE_COUNT + 1).map(splitOnWhitespace);

  const vocab = [...BYTE_CHARS_IN_VOCAB_ORDER, ...BYTE_CHARS_IN_VOCAB_ORDER.map((ch) => ch + END_OF_WORD)];
  for (const merge of merges) vocab.push(merge.join(''));
  vocab.push(START_OF_TEXT, END_OF_TEXT);

  // Later duplicates win, as with Python's dict(zip(...)).
  const encoder = new Map<string, number>();
  vocab.forEach((token, id) => encoder.set(token, id));
  const decoder: (string | undefined)[] = new Array(vocab.length);
  for (const [token, id] of encoder) decoder[id] = token;
  const ranks = new Map<string, number>();
  merges.forEach((merge, rank) => {
    if (merge.length !== 2) throw new Error(`${source}: merge line ${rank + 2} is not a pair: ${JSON.stringify(merge.join(' '))}`);
    ranks.set(merge[0] + ' ' + merge[1], rank);
  });
  return { encoder, decoder, ranks };
}

/**
 * `SimpleTokenizer.bpe`: repeatedly merge the adjacent pair with the lowest rank. The special
 * tokens come pre-seeded in the cache, which is why they never get the `</w>` suffix.
 */
export class BytePairEncoder {
  private readonly cache = new Map<string, string[]>();
  private static readonly CACHE_LIMIT = 200_000;

  constructor(private readonly ranks: ReadonlyMap<string, number>) {
    this.seedCache();
  }

  private seedCache(): void {
    this.cache.set(START_OF_TEXT, [START_OF_TEXT]);
    this.cache.set(END_OF_TEXT, [END_OF_TEXT]);
  }

  /** `token` is already byte-encoded; returns its sub-word strings. */
  encode(token: string): string[] {
    const cached = this.cache.get(token);
    if (cached !== undefined) return cached;
    const merged = this.merge(token);
    // Unbounded in Python; bounded here so a long-running process cannot grow without limit.
    if (this.cache.size >= BytePairEncoder.CACHE_LIMIT) {
      this.cache.clear();
      this.seedCache();
    }
    this.cache.set(token, merged);
    return merged;
  }

  private merge(token: string): string[] {
    // Byte characters are all in the BMP, so code units are characters here.
    let word: string[] = token.split('');
    word[word.length - 1] += END_OF_WORD;
    if (word.length < 2) return word;

    for (;;) {
      let bestRank = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i < word.length - 1; i++) {
        const rank = this.ranks.get(word[i] + ' ' + word[i + 1]);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          first = word[i]!;
          second = word[i + 1]!;
        }
      }
      if (bestRank === Infinity) break;

      const next: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (word[i] === first && i < word.length - 1 && word[i + 1] === second) {
          next.push(first + second);
          i += 2;
        } else {
          next.push(word[i]!);
          i += 1;
        }
      }
      word = next;
      if (word.length === 1) break;
    }
    return word;
  }
}
