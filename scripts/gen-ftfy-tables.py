#!/usr/bin/env python3
"""Writes src/text/ftfy/tables.ts: the data that src/text/fix-text.ts needs to reproduce ftfy 6.3.1.

    python3 scripts/gen-ftfy-tables.py            # needs `pip install ftfy==6.3.1`

Everything is asked of the installed ftfy and of this Python (3.11, Unicode 14.0), never typed by
hand: the single-byte codecs' decoding tables, the HTML entity table ftfy adds upper-case names to,
the width and ligature maps, and ftfy's detection regexes rewritten as JavaScript regex sources.

A Python regex becomes a JavaScript one as follows: VERBOSE whitespace and comments go; every
character class is replaced by the exact set of code points Python's `re` matches with it (probed
one code point at a time, so `\\s`, `\\w` and `\\d` keep Python's Unicode 14 meaning, not
JavaScript's); `.` becomes `[^\\n]`. Bytes patterns are written over the code points 0-255, as
fix-text.ts matches them against "binary strings" (one char per byte).
"""
from __future__ import annotations

import html
import os
import re
import sys
import unicodedata

import ftfy
from ftfy import badness, chardata, fixes

assert ftfy.__version__ == '6.3.1', f'written for ftfy 6.3.1, found {ftfy.__version__}'

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src', 'text', 'ftfy', 'tables.ts')
MAX_CP = 0x110000


def ranges_of(points: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for cp in sorted(points):
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def js_char(cp: int, as_bytes: bool) -> str:
    if as_bytes:
        return f'\\x{cp:02x}'
    if 0x30 <= cp <= 0x39 or 0x41 <= cp <= 0x5a or 0x61 <= cp <= 0x7a:
        return chr(cp)
    return f'\\u{{{cp:x}}}'


def js_class(points: list[int], negated: bool, as_bytes: bool) -> str:
    body = ''
    for first, last in ranges_of(points):
        body += js_char(first, as_bytes)
        if last != first:
            body += '-' + js_char(last, as_bytes)
    return '[' + ('^' if negated else '') + body + ']'


def members(class_source: str, as_bytes: bool) -> list[int]:
    """Every code point (or byte) that Python's `re` matches with this class."""
    if as_bytes:
        pattern = re.compile(class_source.encode('latin-1'))
        return [b for b in range(256) if pattern.fullmatch(bytes([b]))]
    pattern = re.compile(class_source)
    # A class of literal BMP characters can only match in the BMP; \\s, \\w and \\d are probed everywhere.
    astral = any(ord(ch) > 0xFFFF for ch in class_source) or re.search(r'\\[swdSWD]', class_source)
    limit = MAX_CP if astral else 0x10000
    return [cp for cp in range(limit) if pattern.fullmatch(chr(cp))]


def class_end(pattern: str, start: int) -> int:
    """Index just past the `]` closing the class opened at `start`."""
    i = start + 1
    if pattern[i] == '^':
        i += 1
    if pattern[i] == ']':
        i += 1
    while pattern[i] != ']':
        i += 2 if pattern[i] == '\\' else 1
    return i + 1


def translate(pattern: str | bytes, verbose: bool, literals: set[int] | None = None) -> str:
    """The JavaScript source; `literals` collects the non-ASCII code points of its positive classes and literal characters."""
    as_bytes = isinstance(pattern, bytes)
    literals = set() if literals is None else literals
    text = pattern.decode('latin-1') if as_bytes else pattern
    out = ''
    i = 0
    while i < len(text):
        c = text[i]
        if c == '[':
            end = class_end(text, i)
            source = text[i:end]
            negated = source.startswith('[^')
            positive = '[' + source[2:] if negated else source
            points = members(positive, as_bytes)
            if not negated:
                literals.update(cp for cp in points if cp >= 0x80)
            out += js_class(points, negated, as_bytes)
            i = end
        elif c == '\\':
            escape = text[i:i + 2]
            if escape[1] in 'swd':
                out += js_class(members(escape, as_bytes), False, as_bytes)
            elif escape[1] == 'x':
                out += js_char(int(text[i + 2:i + 4], 16), as_bytes)
                i += 2
            elif escape[1] in '[]().?*+|{}^$\\':
                out += escape
            else:
                raise ValueError(f'untranslated escape {escape!r}')
            i += 2
        elif verbose and c in ' \t\n\r\f\v':
            i += 1
        elif verbose and c == '#':
            i = text.index('\n', i)
        elif c == '.':
            out += '[^\\n]'
            i += 1
        elif c in '()|?*+^$' or (c == '{' and re.match(r'\{\d+(,\d*)?\}', text[i:])):
            if c == '{':
                close = text.index('}', i)
                out += text[i:close + 1]
                i = close + 1
            else:
                marker = next((m for m in ('(?<!', '(?!', '(?:') if text.startswith(m, i)), None)
                if marker is not None:
                    out += marker
                    i += len(marker)
                    continue
                out += c
                i += 1
        else:
            if ord(c) >= 0x80:
                literals.add(ord(c))
            out += js_char(ord(c), as_bytes)
            i += 1
    return out


def badness_characters() -> list[int]:
    """
    The non-ASCII characters BADNESS_RE names. Each of its alternatives names one of them within
    its first three characters (its ASCII-capable openings are `[a-z]\\s?`, `[a-zA-Z]`, `\\s`, `^`),
    so fix-text.ts only tries the regex at those places.
    """
    found: set[int] = set()
    translate(badness.BADNESS_RE.pattern, True, found)
    return sorted(found)


def check_flags(compiled: re.Pattern, allowed: int) -> None:
    extra = compiled.flags & ~allowed & ~re.UNICODE
    assert extra == 0, f'{compiled.pattern!r} has flags {compiled.flags}'


def regexes() -> dict[str, str]:
    found = {
        'BADNESS': (badness.BADNESS_RE, True),
        'UTF8_DETECTOR': (chardata.UTF8_DETECTOR_RE, True),
        'ALTERED_UTF8': (chardata.ALTERED_UTF8_RE, False),
        'LOSSY_UTF8': (chardata.LOSSY_UTF8_RE, False),
        'A_GRAVE_WORD': (fixes.A_GRAVE_WORD_RE, False),
        'ANSI_ESCAPE': (fixes.ANSI_RE, False),
        'HTML_ENTITY': (chardata.HTML_ENTITY_RE, False),
        'SINGLE_QUOTE': (chardata.SINGLE_QUOTE_RE, False),
        'DOUBLE_QUOTE': (chardata.DOUBLE_QUOTE_RE, False),
        'C1_CONTROL': (chardata.C1_CONTROL_RE, False),
    }
    out = {}
    for name, (compiled, verbose) in found.items():
        check_flags(compiled, re.VERBOSE if verbose else 0)
        out[name] = translate(compiled.pattern, verbose)
    return out


def decoding_table(encoding: str) -> str:
    table = bytes(range(256)).decode(encoding)
    assert len(table) == 256 and len(set(table)) == 256, f'{encoding} must be a bijection on 256 bytes'
    assert table.encode(encoding) == bytes(range(256)), f'{encoding} must encode back byte for byte'
    for b in range(0x80):
        if b != 0x1A:
            assert table[b] == chr(b), f'{encoding} must keep ASCII'
    return table


def strict_cp1252() -> list[int | None]:
    """windows-1252 as Python's strict codec decodes it: None where a byte is undefined."""
    out: list[int | None] = []
    for b in range(256):
        try:
            out.append(ord(bytes([b]).decode('windows-1252')))
        except UnicodeDecodeError:
            out.append(None)
    return out


def upper_entities() -> dict[str, str]:
    """The upper-case entity names ftfy adds to html5's (`&EACUTE;` → `É`), as its table holds them."""
    added = {entity: char for entity, char in chardata.HTML_ENTITIES.items() if entity[1:] not in html.entities.html5}
    # Every other entry of ftfy's table must be html5's own name with ';', which fix-text.ts takes
    # from html-entities.ts.
    for entity, char in chardata.HTML_ENTITIES.items():
        if entity not in added:
            assert html.entities.html5[entity[1:]] == char and entity.endswith(';')
    assert sum(1 for n in html.entities.html5 if n.endswith(';')) + len(added) == len(chardata.HTML_ENTITIES)
    return added


def unassigned_ranges() -> list[list[int]]:
    return ranges_of([cp for cp in range(MAX_CP) if unicodedata.category(chr(cp)) == 'Cn'])


def ts_string(s: str) -> str:
    out = '"'
    for ch in s:
        cp = ord(ch)
        if ch == '"' or ch == '\\':
            out += '\\' + ch
        elif 0x20 <= cp < 0x7f:
            out += ch
        elif cp <= 0xffff:
            out += f'\\u{cp:04x}'
        else:
            out += f'\\u{{{cp:x}}}'
    return out + '"'


def flat(ranges: list[list[int]]) -> str:
    numbers = [str(v) for pair in ranges for v in pair]
    lines = []
    for i in range(0, len(numbers), 16):
        lines.append('  ' + ', '.join(numbers[i:i + 16]) + ',')
    return '[\n' + '\n'.join(lines) + '\n]'


def main() -> None:
    assert list(chardata.CHARMAP_ENCODINGS)[0] == 'latin-1'
    parts = [
        '// GENERATED by scripts/gen-ftfy-tables.py from ftfy 6.3.1 (MIT licence, Copyright (c) 2023 Robyn Speer;',
        '// https://github.com/rspeer/python-ftfy) and Python ' + sys.version.split()[0] + f' (unicodedata {unicodedata.unidata_version}).',
        '// Do not edit by hand: rerun the script. ftfy is MIT-licensed; its data is reproduced under that licence.',
        '',
        '/** ftfy\'s single-byte encodings, in the order it tries them, each with its 256-character decoding table. */',
        'export const CHARMAP_ENCODINGS: readonly (readonly [string, string])[] = [',
    ]
    for encoding in chardata.CHARMAP_ENCODINGS:
        parts.append(f'  [{ts_string(encoding)}, {ts_string(decoding_table(encoding))}],')
    parts.append('];')
    parts.append('')
    parts.append("/** Python's strict windows-1252 decoding, byte → code point; -1 where the byte is undefined (a decode error). */")
    parts.append('export const STRICT_WINDOWS_1252: readonly number[] = [' + ', '.join(str(-1 if v is None else v) for v in strict_cp1252()) + '];')
    parts.append('')
    parts.append('/** ftfy\'s regexes as JavaScript sources (see the generator for the translation). Bytes patterns run over binary strings. */')
    parts.append('export const REGEX_SOURCES = {')
    for name, source in regexes().items():
        parts.append(f'  {name}: {ts_string(source)},')
    parts.append('} as const;')
    parts.append('')
    parts.append('/** The non-ASCII characters the BADNESS regex names (flat inclusive ranges); text without them is not bad. */')
    parts.append('export const BADNESS_CHARS: readonly number[] = ' + flat(ranges_of(badness_characters())) + ';')
    parts.append('')
    parts.append("/** Upper-case entity names ftfy adds beside html5's (`&EACUTE;`), with their values. */")
    parts.append('export const UPPER_ENTITIES: ReadonlyMap<string, string> = new Map([')
    for entity, char in sorted(upper_entities().items()):
        parts.append(f'  [{ts_string(entity)}, {ts_string(char)}],')
    parts.append(']);')
    parts.append('')
    parts.append("/** `fix_latin_ligatures`: ligature → its letters. */")
    parts.append('export const LIGATURES: ReadonlyMap<number, string> = new Map([')
    for cp, s in sorted(chardata.LIGATURES.items()):
        parts.append(f'  [0x{cp:x}, {ts_string(s)}],')
    parts.append(']);')
    parts.append('')
    parts.append('/** `fix_character_width`: fullwidth / halfwidth form → its NFKC form (Unicode 14). */')
    parts.append('export const WIDTH_MAP: ReadonlyMap<number, string> = new Map([')
    for cp, s in sorted(chardata.WIDTH_MAP.items()):
        parts.append(f'  [0x{cp:x}, {ts_string(s)}],')
    parts.append(']);')
    parts.append('')
    parts.append('/** `remove_control_chars`: the code points it deletes. */')
    parts.append('export const CONTROL_CHARS: readonly number[] = ' + flat(ranges_of(sorted(chardata.CONTROL_CHARS))) + ';')
    parts.append('')
    parts.append('/** Code points unassigned (General_Category Cn) in Unicode ' + unicodedata.unidata_version + ", the data of Python's NFC; flat inclusive ranges. */")
    parts.append('export const UNASSIGNED_RANGES: readonly number[] = ' + flat(unassigned_ranges()) + ';')
    parts.append('')
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w', encoding='utf-8') as f:
        f.write('\n'.join(parts))
    print(f'wrote {os.path.relpath(OUT)}')


if __name__ == '__main__':
    main()
