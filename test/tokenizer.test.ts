import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { htmlUnescape } from '../src/text/html-unescape.js';
import { HTML5_NAMED_REFERENCES } from '../src/text/html-entities.js';
import {
  ClipTokenizer,
  END_OF_TEXT_ID,
  loadTokenizer,
  resolveVocabularyPath,
  START_OF_TEXT_ID,
  tokenizerFromFile,
  VOCAB_FILE_NAME,
  VOCAB_SHA256,
  VOCAB_SIZE,
} from '../src/text/tokenizer.js';
import { BUNDLED_VOCAB } from '../src/text/vocabulary.js';
import { downloadVerified } from '../src/util/download.js';
import { createRng } from '../src/util/prng.js';
import type { Rng } from '../src/util/prng.js';
import { fixture, repoRoot } from './helpers/fixtures.js';
import { runReferenceTokenizer } from './helpers/reference-tokenizer.js';

interface TokenizerCase {
  text: string;
  ids: number[];
  tokens77: number[];
  decoded: string;
}

const vocabPath = fixture(VOCAB_FILE_NAME);
const cases: TokenizerCase[] = readFileSync(fixture('tokenizer_cases.jsonl'), 'utf8')
  .split('\n')
  .filter((line) => line !== '')
  .map((line) => JSON.parse(line) as TokenizerCase);

let tokenizer: ClipTokenizer;
before(async () => {
  tokenizer = await tokenizerFromFile(vocabPath, { fixText: false });
});

/** Compares every case and reports all mismatches at once, so one run shows the whole picture. */
function assertAllMatch(label: string, check: (c: TokenizerCase) => [actual: unknown, expected: unknown]): void {
  const failures: string[] = [];
  cases.forEach((c, index) => {
    const [actual, expected] = check(c);
    try {
      assert.deepEqual(actual, expected);
    } catch {
      failures.push(`#${index} ${JSON.stringify(c.text).slice(0, 80)}: got ${JSON.stringify(actual)}, want ${JSON.stringify(expected)}`);
    }
  });
  assert.equal(failures.length, 0, `${label}: ${failures.length}/${cases.length} fixture cases differ:\n${failures.slice(0, 10).join('\n')}`);
}

describe('parity with openai/CLIP on tokenizer_cases.jsonl', () => {
  test('the fixture file is the 300-case public set', () => {
    assert.equal(cases.length, 300);
  });

  test('encode gives the reference ids', () => {
    assertAllMatch('encode', (c) => [tokenizer.encode(c.text), c.ids]);
  });

  test('tokenize (truncate) gives the reference 77-token rows', () => {
    const batch = tokenizer.tokenize(cases.map((c) => c.text), { truncate: true });
    assert.deepEqual(batch.shape, [cases.length, 77]);
    let row = 0;
    assertAllMatch('tokenize', (c) => [Array.from(batch.data.subarray(row * 77, ++row * 77)), c.tokens77]);
  });

  test('decode gives the reference text', () => {
    assertAllMatch('decode', (c) => [tokenizer.decode(c.ids), c.decoded]);
  });
});

describe('reference subtleties (expected values from openai/CLIP with ftfy stubbed)', () => {
  const expectations: Array<[name: string, text: string, ids: number[]]> = [
    ['U+001C is stripped at the ends only (str.strip)', '\x1ca', [320]],
    ['U+001C inside is kept and is not regex whitespace', 'a\x1cb', [320, 472, 321]],
    ['html.unescape runs twice', '&amp;lt;b&amp;gt;', [283, 321, 285]],
    ['U+0345 matches no pre-tokenizer branch under IGNORECASE', 'a\u0345b', [320, 321]],
    ['İ lowercases to i + U+0307', 'İstanbul', [328, 16384, 11231]],
    ['final sigma lowercases to ς', 'ΟΔΟΣ ΟΔΟΣ.', [138, 123, 138, 112, 138, 123, 139, 480, 138, 123, 138, 112, 138, 123, 139, 480, 269]],
    ['a literal end token in any case is the special id', 'a<|ENDOFTEXT|>b', [320, END_OF_TEXT_ID, 321]],
    ['ſ matches s under IGNORECASE but the result is not the special token', '<|ſtartoftext|>', [27, 91, 129, 123, 2002, 6659, 18169, 91, 285]],
    ['U+FEFF is not whitespace for the reference', 'a\ufeffb', [320, 171, 119, 379, 321]],
    ['U+0085 is whitespace for the reference', 'a\x85b', [320, 321]],
    ['contractions are matched after lowercasing', "it'S", [585, 568]],
    ['entities without semicolon, C1 remapping, out-of-range and dropped code points',
      '&ampx &notit; &#128; &#x110000; &#0; &#65 &#1;', [261, 343, 126, 361, 585, 282, 6309, 39802, 39802, 320]],
  ];
  for (const [name, text, ids] of expectations) {
    test(name, () => assert.deepEqual(tokenizer.encode(text), ids));
  }

  test('decode keeps the special tokens without a trailing space', () => {
    assert.equal(tokenizer.decode([320, END_OF_TEXT_ID, 321]), 'a <|endoftext|>b ');
  });

  test('decode replaces invalid UTF-8 like Python errors="replace" and keeps a leading BOM', () => {
    // ids 0..255 are single bytes: 0xEF 0xBB 0xBF is a BOM, which TextDecoder would strip by default.
    const bom = [0xef, 0xbb, 0xbf].map(byteId);
    assert.equal(tokenizer.decode([...bom, 320]), '\ufeffa ');
    // 0xE0 0x80 is not a valid prefix: two replacement characters, as CPython gives.
    assert.equal(tokenizer.decode([byteId(0xe0), byteId(0x80)]), '\ufffd\ufffd');
    // 0xE2 0x82 is a truncated valid prefix: one replacement character.
    assert.equal(tokenizer.decode([byteId(0xe2), byteId(0x82)]), '\ufffd');
  });

  test('decode rejects ids outside the vocabulary', () => {
    assert.throws(() => tokenizer.decode([VOCAB_SIZE]), /49408 is not a token id/);
    assert.throws(() => tokenizer.decode([1.5]), /not a token id/);
  });

  test('a lone surrogate is rejected as the reference (UnicodeEncodeError) does', () => {
    assert.throws(() => tokenizer.encode('a\ud800b'), /lone UTF-16 surrogate/);
  });
});

/** The vocabulary id of a single byte: ids 0–255 are the bytes in bytes_to_unicode order. */
function byteId(byte: number): number {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const order = [...printable, ...Array.from({ length: 256 }, (_, b) => b).filter((b) => !printable.includes(b))];
  return order.indexOf(byte);
}

describe('tokenize', () => {
  test('pads with zeros and brackets with start/end tokens', () => {
    const { data, shape } = tokenizer.tokenize(['a photo of a cat', ''], { contextLength: 10 });
    assert.deepEqual(shape, [2, 10]);
    assert.deepEqual(Array.from(data), [START_OF_TEXT_ID, 320, 1125, 539, 320, 2368, END_OF_TEXT_ID, 0, 0, 0, START_OF_TEXT_ID, END_OF_TEXT_ID, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.ok(data instanceof Int32Array);
  });

  test('a text of exactly contextLength tokens fits; one more throws, naming the text and its count', () => {
    const fits = 'a photo of a cat'; // 5 ids + 2
    assert.deepEqual(Array.from(tokenizer.tokenize([fits], { contextLength: 7 }).data).at(-1), END_OF_TEXT_ID);
    assert.throws(
      () => tokenizer.tokenize(['ok', fits], { contextLength: 6 }),
      (err: Error) => err.message.includes('"a photo of a cat"') && err.message.includes('7 tokens') && err.message.includes('truncate'),
    );
  });

  test('a very long text is abbreviated in the error', () => {
    const long = 'word '.repeat(200);
    assert.throws(() => tokenizer.tokenize([long]), (err: Error) => err.message.includes('…') && err.message.length < 300);
  });

  test('truncate keeps the first ids and ends with the end token', () => {
    const { data } = tokenizer.tokenize(['a photo of a cat'], { contextLength: 5, truncate: true });
    assert.deepEqual(Array.from(data), [START_OF_TEXT_ID, 320, 1125, 539, END_OF_TEXT_ID]);
  });
});

describe('html.unescape port (expected values from CPython 3.11)', () => {
  const expectations: Array<[string, string]> = [
    ['&ampx', '&x'], ['&notit;', '\u00acit;'], ['&notin', '\u00acin'], ['&#128;', '\u20ac'], ['&#x110000;', '\ufffd'],
    ['&#0;', '\ufffd'], ['&#65', 'A'], ['&#1;', ''], ['&#xD800;', '\ufffd'], ['&#99999999999999999999;', '\ufffd'],
    ['&lt&gt', '<>'], ['&amp;amp;', '&amp;'], ['&#x80', '\u20ac'], ['&AMP', '&'], ['&;', '&;'], ['&&lt;', '&<'],
    ['&ltx;', '<x;'], ['&\u{1F600};', '&\u{1F600};'], ['&#13;', '\r'], ['&#xfffe;', ''], ['&#x00041;', 'A'],
  ];
  for (const [input, expected] of expectations) {
    test(JSON.stringify(input), () => assert.equal(htmlUnescape(input), expected));
  }
  test('the HTML5 table is complete', () => {
    assert.equal(HTML5_NAMED_REFERENCES.size, 2231);
  });
});

describe('finding the vocabulary', () => {
  const saved: Record<string, string | undefined> = {};
  const envNames = ['CLIP_NATIVE_VOCAB', 'CLIP_NATIVE_OFFLINE', 'HF_HUB_OFFLINE', 'CLIP_NATIVE_CACHE', 'XDG_CACHE_HOME'];
  let scratch: string;
  before(() => {
    for (const name of envNames) {
      saved[name] = process.env[name];
      delete process.env[name];
    }
    scratch = mkdtempSync(path.join(os.tmpdir(), 'clip-vocab-'));
  });
  after(() => {
    for (const name of envNames) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
    rmSync(scratch, { recursive: true, force: true });
  });
  const noDownload = async (): Promise<void> => {
    throw new Error('no download expected');
  };
  // The real verified downloader, pointed at a local server that serves `body` (or fails to connect).
  const servedBy = (body: Buffer | 'unreachable', asked: string[] = []): typeof downloadVerified => async (url, target, sha256, onProgress) => {
    asked.push(url);
    if (body === 'unreachable') return downloadVerified('http://127.0.0.1:9/vocab.gz', target, sha256, onProgress);
    const server = createServer((_, res) => res.end(body));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      return await downloadVerified(`http://127.0.0.1:${(server.address() as AddressInfo).port}/vocab.gz`, target, sha256, onProgress);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  };

  test('options.vocab wins, then $CLIP_NATIVE_VOCAB, then the package\'s copy, then the cache directory', async () => {
    const cache = path.join(scratch, 'order');
    process.env.CLIP_NATIVE_VOCAB = vocabPath;
    try {
      assert.equal(await resolveVocabularyPath({ vocab: '/elsewhere/x.gz', cacheDir: cache }, noDownload).catch((e: Error) => e.message),
        'CLIP vocabulary not found: options.vocab points to /elsewhere/x.gz, which is not a file');
      assert.equal(await resolveVocabularyPath({ cacheDir: cache }, noDownload), vocabPath);
    } finally {
      delete process.env.CLIP_NATIVE_VOCAB;
    }
    const cached = path.join(cache, VOCAB_FILE_NAME);
    await import('node:fs/promises').then((fs) => fs.mkdir(cache, { recursive: true }));
    writeFileSync(cached, readFileSync(vocabPath));
    assert.equal(await resolveVocabularyPath({ cacheDir: cache }, noDownload), BUNDLED_VOCAB, 'the shipped copy before the cache');
    assert.equal(await resolveVocabularyPath({ cacheDir: cache }, noDownload, null), cached);
  });

  test('the package ships the vocabulary, byte for byte openai/CLIP\'s, so tokenizing needs no network', async () => {
    assert.equal(BUNDLED_VOCAB, path.join(repoRoot, 'assets', VOCAB_FILE_NAME));
    assert.deepEqual(readFileSync(BUNDLED_VOCAB), readFileSync(vocabPath));
    process.env.CLIP_NATIVE_OFFLINE = '1';
    try {
      const tokenizer = await loadTokenizer({ cacheDir: path.join(scratch, 'never-created') });
      assert.deepEqual(tokenizer.encode('a photo of a cat'), (await tokenizerFromFile(vocabPath)).encode('a photo of a cat'));
      assert.equal(existsSync(path.join(scratch, 'never-created')), false, 'nothing cached or downloaded');
    } finally {
      delete process.env.CLIP_NATIVE_OFFLINE;
    }
  });

  test('a changed copy in the package is refused, naming it and its expected SHA-256', async () => {
    const shipped = path.join(scratch, 'shipped', VOCAB_FILE_NAME);
    mkdirSync(path.dirname(shipped), { recursive: true });
    writeFileSync(shipped, 'not the vocabulary');
    await assert.rejects(
      resolveVocabularyPath({ cacheDir: path.join(scratch, 'shipped-cache') }, noDownload, shipped),
      (err: Error) => err.message.includes(shipped) && err.message.includes(VOCAB_SHA256) && err.message.includes('CLIP_NATIVE_VOCAB='),
    );
  });

  test('a download is checked against the pinned SHA-256 and written to the cache', async () => {
    const cache = path.join(scratch, 'download');
    const asked: string[] = [];
    const file = await resolveVocabularyPath({ cacheDir: cache }, servedBy(readFileSync(vocabPath), asked), null);
    assert.deepEqual(asked, ['https://github.com/openai/CLIP/raw/main/clip/bpe_simple_vocab_16e6.txt.gz']);
    assert.equal(file, path.join(cache, VOCAB_FILE_NAME));
    assert.deepEqual(readFileSync(file), readFileSync(vocabPath));
  });

  test('a download with the wrong content is refused and nothing is cached', async () => {
    const cache = path.join(scratch, 'tampered');
    await assert.rejects(
      resolveVocabularyPath({ cacheDir: cache }, servedBy(Buffer.from('not the vocabulary')), null),
      (err: Error) => /SHA-256 is [0-9a-f]{64}, expected 924691ac/.test(err.message) && err.message.includes(path.join(cache, VOCAB_FILE_NAME)),
    );
    assert.equal(existsSync(path.join(cache, VOCAB_FILE_NAME)), false);
    assert.deepEqual(readdirSync(cache), [], 'no temporary file left behind');
  });

  test('a failed download says where to put the file', async () => {
    const cache = path.join(scratch, 'unreachable');
    await assert.rejects(
      resolveVocabularyPath({ cacheDir: cache }, servedBy('unreachable'), null),
      (err: Error) =>
        err.message.includes('fetch failed') && err.message.includes(path.join(cache, VOCAB_FILE_NAME)) && err.message.includes('CLIP_NATIVE_VOCAB'),
    );
  });

  test('offline, nothing is downloaded and the error says where to put the file', async () => {
    process.env.CLIP_NATIVE_OFFLINE = '1';
    try {
      const cache = path.join(scratch, 'offline');
      await assert.rejects(
        resolveVocabularyPath({ cacheDir: cache }, noDownload, null),
        (err: Error) => err.message.includes('offline') && err.message.includes(path.join(cache, VOCAB_FILE_NAME)) && err.message.includes('CLIP_NATIVE_VOCAB='),
      );
    } finally {
      delete process.env.CLIP_NATIVE_OFFLINE;
    }
  });

  test('the real downloader fails cleanly without network (or succeeds with it)', async (t) => {
    const cache = path.join(scratch, 'network');
    try {
      const file = await resolveVocabularyPath({ cacheDir: cache }, undefined, null);
      t.diagnostic(`network available: downloaded to ${file}`);
      assert.deepEqual(readFileSync(file), readFileSync(vocabPath));
    } catch (err) {
      assert.match((err as Error).message, /downloading https:\/\/github\.com\/openai\/CLIP.* failed: .*Put openai\/CLIP's clip\/bpe_simple_vocab_16e6\.txt\.gz/s);
    }
  });

  test('loadTokenizer parses a vocabulary once per path', async () => {
    const first = await loadTokenizer({ vocab: vocabPath });
    const second = await loadTokenizer({ vocab: path.relative(process.cwd(), vocabPath) });
    assert.equal(first, second);
    assert.equal(first.vocabSize, VOCAB_SIZE);
  });

  test('a file that is not the vocabulary is rejected with its path', async () => {
    const bogus = path.join(scratch, 'bogus.txt.gz');
    writeFileSync(bogus, 'plain text');
    await assert.rejects(loadTokenizer({ vocab: bogus }), (err: Error) => err.message.includes(bogus) && err.message.includes('gzip'));
  });
});

// ---------------------------------------------------------------------------------------------
// Differential check against the Python reference on seeded random strings.


function pythonWithRegex(): string | null {
  const probe = spawnSync('python3', ['-c', 'import regex'], { encoding: 'utf8' });
  if (probe.error) return `python3 is not runnable (${probe.error.message})`;
  if (probe.status !== 0) return `python3 cannot import the 'regex' module (pip install regex): ${probe.stderr.trim().split('\n').at(-1)}`;
  return null;
}

function randomText(rng: Rng): string {
  const pick = <T>(items: readonly T[]): T => items[rng.nextInt(items.length)]!;
  const whitespace = ['\t', '\n', '\v', '\f', '\r', ' ', '\x1c', '\x1f', '\x85', '\xa0', '\u1680', '\u2000', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff', '\u200b', '\u200d'];
  const words = ['photo', 'Cat', 'DOG', 'ΣΟΦΟΣ', 'σοφός', 'İstanbul', 'straße', 'ﬁsh', 'ǅ', 'ᾼ', 'ſtop', '<|startoftext|>', '<|EndOfText|>', "'S", "'t", "'RE", "'ve", "'M", "'ll", "'D", "don't", '٣٤', '½', 'Ⅻ', '東京', 'Москва', 'שָׁלוֹם\u200f', 'مرحبا', '👍🏽', '👨‍👩‍👧', '🇯🇵', '1️⃣', 'e\u0301', 'α\u0345', 'ΑΣ\u0345', 'aΣb'];
  const entityNames = [...HTML5_NAMED_REFERENCES.keys()];
  // Code points from long-assigned blocks, so Unicode-version differences stay out of the comparison.
  const soupRanges: Array<[number, number]> = [[0x20, 0x24f], [0x370, 0x52f], [0x2000, 0x2bff], [0x3000, 0x9fff], [0xac00, 0xd7a3], [0xf900, 0xffef], [0x1f300, 0x1faff], [0x20000, 0x2a6df]];
  const soupCodePoint = (): number => {
    const [lo, hi] = pick(soupRanges);
    return lo + rng.nextInt(hi - lo + 1);
  };
  const parts: string[] = [];
  const count = rng.nextInt(12);
  for (let i = 0; i < count; i++) {
    const r = rng.next();
    if (r < 0.2) {
      let soup = '';
      for (let n = 1 + rng.nextInt(8); n > 0; n--) soup += String.fromCodePoint(soupCodePoint());
      parts.push(soup);
    } else if (r < 0.35) parts.push(pick(whitespace).repeat(1 + rng.nextInt(3)));
    else if (r < 0.55) {
      const kind = rng.nextInt(4);
      if (kind === 0) parts.push('&' + pick(entityNames) + pick(['', 'x', ';', ' ']));
      else if (kind === 1) parts.push('&#' + pick(['0', '1', '13', '65', '128', '159', '55296', '1114112', '99999999999', String(soupCodePoint())]) + pick(['', ';']));
      else if (kind === 2) parts.push('&#' + pick(['x', 'X']) + soupCodePoint().toString(16) + pick(['', ';']));
      else parts.push('&amp;' + pick(entityNames).replace(/;$/, '') + ';');
    } else if (r < 0.8) {
      parts.push(Array.from(pick(words), (ch) => (rng.next() < 0.5 ? ch.toUpperCase() : ch)).join(''));
    } else if (r < 0.9) parts.push(String(rng.nextInt(1_000_000)));
    else parts.push(pick(['.', ',', '!!', '?', '--', "'", '"', '(', '<', '|', '>', '&', '#', ';']));
    if (rng.next() < 0.5) parts.push(pick([' ', ' ', '', pick(whitespace)]));
  }
  const text = parts.join('');
  return rng.next() < 0.05 ? text.repeat(5 + rng.nextInt(20)) : text;
}

test('differential check against the Python reference on 400 seeded random strings', async (t) => {
  const missing = pythonWithRegex();
  if (missing !== null) {
    t.skip(`SKIPPED: no Python reference to compare with: ${missing}`);
    return;
  }
  const rng = createRng(20240521, 77);
  const texts = Array.from({ length: 400 }, () => randomText(rng));
  const outputs = runReferenceTokenizer('python3', vocabPath, texts);

  const failures: string[] = [];
  let compared = 0;
  texts.forEach((text, i) => {
    const expected = outputs[i]!;
    if (expected.newer_unicode) return;
    compared++;
    const actual = {
      ids: tokenizer.encode(text),
      tokens77: Array.from(tokenizer.tokenize([text], { truncate: true }).data),
      decoded: '',
    };
    actual.decoded = tokenizer.decode(actual.ids);
    try {
      assert.deepEqual(actual, { ids: expected.ids, tokens77: expected.tokens77, decoded: expected.decoded });
    } catch {
      failures.push(`${JSON.stringify(text).slice(0, 120)}\n  got  ${JSON.stringify(actual.ids)}\n  want ${JSON.stringify(expected.ids)}`);
    }
  });
  t.diagnostic(`${compared} compared, ${texts.length - compared} left out (code points newer than Python's Unicode database)`);
  assert.ok(compared >= 300, `only ${compared} strings were comparable`);
  assert.equal(failures.length, 0, `${failures.length} differ from the reference:\n${failures.slice(0, 5).join('\n')}`);
});
