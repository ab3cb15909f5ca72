#!/usr/bin/env python3
"""The Python side of test/fix-text.test.ts and bench/tokenizer.ts: ftfy and open_clip on a batch.

    python3 ftfy_peer.py fix        # stdin: one JSON string per line; stdout: ftfy.fix_text of each
    python3 ftfy_peer.py open_clip  # stdout: open_clip's tokenizer ids (real ftfy) of each, or
                                    # {"error": "..."} where it raises
    python3 ftfy_peer.py is_bad     # stdout: ftfy.badness.is_bad of each
    python3 ftfy_peer.py version    # ftfy's version

One process per batch, so that the comparison costs one interpreter start.
"""
import json
import os
import sys


def read_texts():
    # Only '\n' separates lines: JSON leaves U+2028, U+0085 and friends raw, and splitlines() would cut there.
    return [json.loads(line) for line in sys.stdin.buffer.read().decode('utf-8').split('\n') if line]


def fix(texts):
    import ftfy
    return [ftfy.fix_text(text) for text in texts]


def open_clip_ids(texts):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import open_clip_env
    open_clip_env.prepare()
    from open_clip.tokenizer import _tokenizer
    out = []
    for text in texts:
        try:
            out.append(_tokenizer.encode(text))
        except Exception as err:  # the comparison wants the reference's refusals too
            out.append({'error': f'{type(err).__name__}: {err}'})
    return out


def main():
    mode = sys.argv[1]
    if mode == 'version':
        import ftfy
        print(ftfy.__version__)
        return
    texts = read_texts()
    if mode == 'is_bad':
        from ftfy.badness import is_bad
        results = [is_bad(text) for text in texts]
    else:
        results = fix(texts) if mode == 'fix' else open_clip_ids(texts)
    sys.stdout.write(''.join(json.dumps(r) + '\n' for r in results))


if __name__ == '__main__':
    main()
