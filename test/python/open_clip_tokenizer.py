#!/usr/bin/env python3
"""The reference CLIP tokenizer for differential tests of src/text/tokenizer.ts: open_clip's
SimpleTokenizer (open_clip_torch from pip, its tokenizer.py: openai/CLIP's simple_tokenizer.py with
clip.tokenize's truncation), set to behave as openai/CLIP's, with ftfy stubbed to the identity as the
fixtures were made (shared/fixtures/README.md, section A).

open_clip's tokenizer module is loaded from its file, without the package's __init__ (which imports
torchvision and every model), so that it also runs under an interpreter that has only `regex`: Debian
12's /usr/bin/python3 with python3-regex, the fixtures' Unicode environment. There, torch and numpy are
replaced by the little SimpleTokenizer.__call__ uses (a zero matrix filled row by row); where they are
installed, the real ones are used.

Where open_clip's SimpleTokenizer differs from openai/CLIP's, set back here (both named in `as_openai`):
- special tokens spelt <start_of_text> / <end_of_text> (openai/CLIP: <|startoftext|> / <|endoftext|>,
  same ids), which the pre-tokenizer recognises in the text and decode() writes;
- whitespace_clean splits with str.split() (openai/CLIP: regex's \\s+, which does not count U+001C..U+001F).

Protocol (used by test/helpers/reference-tokenizer.ts): argv[1] is the path of bpe_simple_vocab_16e6.txt.gz;
`--open-clip-dir DIR` names open_clip's package folder when this interpreter cannot find it. stdin holds
one JSON string per line; stdout gets one JSON object per line: {"ids": [...], "tokens77": [...],
"decoded": "...", "newer_unicode": bool}. `ids` is null (and "error" is set) when the reference raises,
e.g. for a lone surrogate that cannot be UTF-8 encoded. `newer_unicode` is true when the cleaned text has a
code point unassigned in this Python's Unicode database (see test/tokenizer-unicode.test.ts).
"""
import argparse
import importlib.util
import json
import os
import sys
import types
import unicodedata

import regex


def _module(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


class _Rows:
    """What SimpleTokenizer.__call__ needs of torch.zeros(n, m): `rows[i, :k] = values` and tolist()."""

    def __init__(self, n, m):
        self.rows = [[0] * m for _ in range(n)]

    def __setitem__(self, index, values):
        row, columns = index
        self.rows[row][columns] = list(values)

    def tolist(self):
        return self.rows


def _stand_ins():
    """Modules tokenizer.py imports: ftfy always stubbed (the fixtures'), torch and numpy only when missing."""
    modules = {'ftfy': _module('ftfy', fix_text=lambda text: text)}
    if importlib.util.find_spec('torch') is None:
        modules['torch'] = _module('torch', zeros=lambda n, m, dtype=None: _Rows(n, m), tensor=list, long='long',
                                   LongTensor=_Rows, Tensor=_Rows)
    if importlib.util.find_spec('numpy') is None:
        modules['numpy'] = _module('numpy')
    return modules


def load_open_clip_tokenizer(package_dir):
    if package_dir is None:
        spec = importlib.util.find_spec('open_clip')  # finds the package without running its __init__
        if spec is None or not spec.submodule_search_locations:
            sys.exit('open_clip_tokenizer.py: open_clip is not installed for this Python (pip install open_clip_torch), '
                     'and no --open-clip-dir was given')
        package_dir = list(spec.submodule_search_locations)[0]
    stand_ins = _stand_ins()
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    try:
        spec = importlib.util.spec_from_file_location('open_clip_tokenizer', os.path.join(package_dir, 'tokenizer.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
    return module


def openai_whitespace_clean(text):
    return regex.sub(r'\s+', ' ', text).strip()


def as_openai(tokenizer, module):
    """open_clip's SimpleTokenizer with openai/CLIP's special-token spelling and whitespace rule (module docstring)."""
    for theirs, openai in (('<start_of_text>', '<|startoftext|>'), ('<end_of_text>', '<|endoftext|>')):
        token_id = tokenizer.encoder.pop(theirs)
        tokenizer.encoder[openai] = token_id
        tokenizer.decoder[token_id] = openai
        del tokenizer.cache[theirs]
        tokenizer.cache[openai] = openai
    tokenizer.pat = regex.compile(tokenizer.pat.pattern.replace('<start_of_text>|<end_of_text>', r'<\|startoftext\|>|<\|endoftext\|>'),
                                  regex.IGNORECASE)
    tokenizer.clean_fn = lambda text: openai_whitespace_clean(module.basic_clean(text)).lower()
    return tokenizer


def record(tokenizer, module, text):
    try:
        ids = tokenizer.encode(text)
        cleaned = openai_whitespace_clean(module.basic_clean(text))
        return {
            'ids': ids,
            'tokens77': tokenizer([text], context_length=77).tolist()[0],
            'decoded': tokenizer.decode(ids),
            'newer_unicode': any(unicodedata.category(c) == 'Cn' for c in cleaned),
        }
    except Exception as err:  # the reference raising is itself a result to compare
        return {'ids': None, 'error': f'{type(err).__name__}: {err}'}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('vocab')
    ap.add_argument('--open-clip-dir')
    args = ap.parse_args()
    module = load_open_clip_tokenizer(args.open_clip_dir)
    tokenizer = as_openai(module.SimpleTokenizer(bpe_path=args.vocab), module)
    for line in sys.stdin:
        if line.strip():
            sys.stdout.write(json.dumps(record(tokenizer, module, json.loads(line))) + '\n')
    sys.stdout.flush()


if __name__ == '__main__':
    main()
