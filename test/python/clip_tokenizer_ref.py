#!/usr/bin/env python3
"""Reference CLIP tokenizer for differential tests of src/text/tokenizer.ts.

This is openai/CLIP's clip/simple_tokenizer.py and clip.tokenize (MIT, see
shared/fixtures/LICENSE-openai-clip.txt), rewritten without torch. ftfy.fix_text is
stubbed to the identity, exactly as the fixtures were generated (see shared/fixtures/README.md,
section A). Requires the `regex` module: the reference's \\s and \\p{L} come from it, not from `re`.

Protocol (used by test/tokenizer.test.ts): argv[1] is the path of bpe_simple_vocab_16e6.txt.gz;
stdin holds one JSON string per line; stdout gets one JSON object per line:
{"ids": [...], "tokens77": [...], "decoded": "...", "newer_unicode": bool}. `ids` is null (and "error"
is set) when the reference raises, e.g. for a lone surrogate that cannot be UTF-8 encoded.
`newer_unicode` is true when the cleaned text has a code point unassigned in this Python's Unicode
database (14.0 for CPython 3.11). src/text/tokenizer.ts pins its Unicode data to the fixtures'
environment (str.lower: Unicode 14.0; regex 2022.10.31: Unicode 15.0), so such texts match exactly
when this script runs under that environment (Debian 12's /usr/bin/python3 + python3-regex); with a
newer `regex` module its \p{L}/\p{N} follow newer Unicode and can differ on those code points
(test/tokenizer-unicode.test.ts picks the interpreter and says which it used).
"""
import gzip
import html
import json
import sys
import unicodedata
from functools import lru_cache

import regex as re


def fix_text(text):
    # ftfy stubbed: the fixtures are "reference minus ftfy".
    return text


@lru_cache()
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    cs = [chr(n) for n in cs]
    return dict(zip(bs, cs))


def get_pairs(word):
    pairs = set()
    prev_char = word[0]
    for char in word[1:]:
        pairs.add((prev_char, char))
        prev_char = char
    return pairs


def basic_clean(text):
    text = fix_text(text)
    text = html.unescape(html.unescape(text))
    return text.strip()


def whitespace_clean(text):
    text = re.sub(r'\s+', ' ', text)
    text = text.strip()
    return text


class SimpleTokenizer(object):
    def __init__(self, bpe_path):
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        merges = gzip.open(bpe_path).read().decode("utf-8").split('\n')
        merges = merges[1:49152 - 256 - 2 + 1]
        merges = [tuple(merge.split()) for merge in merges]
        vocab = list(bytes_to_unicode().values())
        vocab = vocab + [v + '</w>' for v in vocab]
        for merge in merges:
            vocab.append(''.join(merge))
        vocab.extend(['<|startoftext|>', '<|endoftext|>'])
        self.encoder = dict(zip(vocab, range(len(vocab))))
        self.decoder = {v: k for k, v in self.encoder.items()}
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {'<|startoftext|>': '<|startoftext|>', '<|endoftext|>': '<|endoftext|>'}
        self.pat = re.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", re.IGNORECASE)

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + '</w>',)
        pairs = get_pairs(word)

        if not pairs:
            return token + '</w>'

        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float('inf')))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break

                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            new_word = tuple(new_word)
            word = new_word
            if len(word) == 1:
                break
            else:
                pairs = get_pairs(word)
        word = ' '.join(word)
        self.cache[token] = word
        return word

    def encode(self, text):
        bpe_tokens = []
        text = whitespace_clean(basic_clean(text)).lower()
        for token in re.findall(self.pat, text):
            token = ''.join(self.byte_encoder[b] for b in token.encode('utf-8'))
            bpe_tokens.extend(self.encoder[bpe_token] for bpe_token in self.bpe(token).split(' '))
        return bpe_tokens

    def decode(self, tokens):
        text = ''.join([self.decoder[token] for token in tokens])
        text = bytearray([self.byte_decoder[c] for c in text]).decode('utf-8', errors="replace").replace('</w>', ' ')
        return text


def tokenize_one(tokenizer, text, context_length=77):
    """clip.tokenize([text], context_length, truncate=True)[0] as a list."""
    sot = tokenizer.encoder["<|startoftext|>"]
    eot = tokenizer.encoder["<|endoftext|>"]
    tokens = [sot] + tokenizer.encode(text) + [eot]
    if len(tokens) > context_length:
        tokens = tokens[:context_length]
        tokens[-1] = eot
    return tokens + [0] * (context_length - len(tokens))


def main():
    tokenizer = SimpleTokenizer(sys.argv[1])
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        text = json.loads(line)
        try:
            ids = tokenizer.encode(text)
            cleaned = whitespace_clean(basic_clean(text))
            record = {
                "ids": ids,
                "tokens77": tokenize_one(tokenizer, text),
                "decoded": tokenizer.decode(ids),
                "newer_unicode": any(unicodedata.category(c) == "Cn" for c in cleaned),
            }
        except Exception as err:  # the reference raising is itself a result to compare
            record = {"ids": None, "error": f"{type(err).__name__}: {err}"}
        out.write(json.dumps(record) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
