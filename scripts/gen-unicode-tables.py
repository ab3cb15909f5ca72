#!/usr/bin/env python3
"""Generates src/text/unicode-tables.ts: the Unicode data that pins src/text/tokenizer.ts to the
reference environment of the fixtures (Debian 12: python3 3.11.2 = Unicode 14.0 for str.lower /
str.isspace, python3-regex 2022.10.31 = Unicode 15.0 for \\p{L}, \\p{N}, \\s and IGNORECASE).

    apt-get install -y unicode-data          # Debian's 15.0.0-1: /usr/share/unicode/*.txt
    python3 scripts/gen-unicode-tables.py    # any CPython 3.11 (unicodedata 14.0.0)

Sources:
  * letters / numbers: General_Category L* / N* from /usr/share/unicode/UnicodeData.txt, which must
    be Unicode 15.0.0 (checked against DerivedAge.txt's header). This is what regex 2022.10.31's
    \\p{L} (Lu Ll Lt Lm Lo) and \\p{N} (Nd Nl No) match.
  * lowercasing, Final_Sigma contexts, str.isspace: probed from this interpreter's str methods,
    which must report unicodedata.unidata_version == "14.0.0" (CPython 3.11).
  * If the running interpreter imports regex 2022.10.31 (e.g. Debian's /usr/bin/python3 with the
    python3-regex package), every code point is also checked against the real pattern classes, with
    and without IGNORECASE; the header records whether that check ran.

Writes to stdout unless --out PATH is given.
"""
import argparse
import sys
import unicodedata

UCD_DIR = "/usr/share/unicode"
SIGMA = "\u03a3"


def fail(message):
    sys.exit(f"gen-unicode-tables: {message}")


def ucd_version():
    with open(f"{UCD_DIR}/DerivedAge.txt", encoding="utf-8") as f:
        first = f.readline().strip()
    # "# DerivedAge-15.0.0.txt"
    if not first.startswith("# DerivedAge-") or not first.endswith(".txt"):
        fail(f"cannot read the Unicode version from {UCD_DIR}/DerivedAge.txt: {first!r}")
    return first[len("# DerivedAge-"):-len(".txt")]


def general_categories():
    """code point -> General_Category for every assigned code point (ranges <..., First>/<..., Last> expanded)."""
    cats = {}
    pending_first = None
    with open(f"{UCD_DIR}/UnicodeData.txt", encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split(";")
            cp, name, cat = int(fields[0], 16), fields[1], fields[2]
            if name.endswith(", First>"):
                pending_first = cp
                continue
            if name.endswith(", Last>"):
                for c in range(pending_first, cp + 1):
                    cats[c] = cat
                pending_first = None
                continue
            cats[cp] = cat
    return cats


def code_points():
    for c in range(0x110000):
        if not 0xD800 <= c <= 0xDFFF:
            yield c


def to_ranges(points):
    ranges = []
    for c in sorted(points):
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return ranges


def lower_runs(mapping):
    """{cp: cp'} -> [start, end, stride, delta] runs: for c = start, start+stride, ... <= end, lower(c) = c + delta."""
    runs = []
    for c in sorted(mapping):
        delta = mapping[c] - c
        if runs:
            start, end, stride, d = runs[-1]
            if d == delta and (c - end) in (1, 2) and (start == end or c - end == stride):
                runs[-1] = [start, c, c - end, d]
                continue
        runs.append([c, c, 1, delta])
    return runs


def fmt_numbers(values, per_line=16, indent="  "):
    lines = []
    for i in range(0, len(values), per_line):
        lines.append(indent + ", ".join(str(v) for v in values[i:i + per_line]) + ",")
    return "\n".join(lines)


def flat(ranges):
    return [v for r in ranges for v in r]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    args = parser.parse_args()

    version = ucd_version()
    if version != "15.0.0":
        fail(f"{UCD_DIR} holds Unicode {version}; need 15.0.0 (Debian 12's unicode-data 15.0.0-1)")
    if unicodedata.unidata_version != "14.0.0":
        fail(f"this python's unicodedata is {unicodedata.unidata_version}; need 14.0.0 (CPython 3.11)")

    cats = general_categories()
    letters = [c for c, cat in cats.items() if cat[0] == "L"]
    numbers = [c for c, cat in cats.items() if cat[0] == "N"]

    # Python 3.11 str.lower / str.isspace / Final_Sigma, probed character by character.
    lower_single = {}
    lower_multi = {}
    isspace = []
    case_ignorable = []  # skipped by CPython's handle_capital_sigma
    cased = []  # cased and not case-ignorable: ends the scan and counts as cased
    for c in code_points():
        ch = chr(c)
        low = ch.lower()
        if low != ch:
            if len(low) == 1:
                lower_single[c] = ord(low)
            else:
                lower_multi[c] = [ord(x) for x in low]
        if ch.isspace():
            isspace.append(c)
        is_cased = (ch + SIGMA).lower()[-1] == "\u03c2"
        after_cased_letter = ("a" + ch + SIGMA).lower()[-1] == "\u03c2"
        if is_cased:
            cased.append(c)
        elif after_cased_letter:
            case_ignorable.append(c)
    # The forward half of the rule must agree with the backward probes.
    for c in case_ignorable[:50] + cased[:50]:
        expect = "\u03c2" if c in case_ignorable else "\u03c3"
        if ("a" + SIGMA + chr(c)).lower()[1] != expect:
            fail(f"Final_Sigma forward probe disagrees for U+{c:04X}")

    # The regex module's \s (White_Space) as the pre-tokenizer and whitespace_clean use it.
    import_note = "regex module not importable: classes not cross-checked"
    regex_whitespace = None
    try:
        import regex
        from importlib.metadata import version as dist_version

        regex_version = dist_version("regex")
    except Exception as err:  # noqa: BLE001
        regex_version = None
        import_note = f"regex module not importable ({type(err).__name__}): classes not cross-checked"
    ignorecase_drop = [0x0345]  # see the check below
    if regex_version == "2022.10.31":
        pats = {}
        for key, src in [("L", r"[\p{L}]"), ("N", r"[\p{N}]"), ("O", r"[^\s\p{L}\p{N}]"), ("S", r"\s")]:
            pats[key] = (regex.compile(src), regex.compile(src, regex.IGNORECASE))
        letter_set, number_set = set(letters), set(numbers)
        regex_whitespace = []
        changed_by_ignorecase = {"L": [], "N": [], "O": [], "S": []}
        for c in code_points():
            ch = chr(c)
            plain = {k: bool(p.fullmatch(ch)) for k, (p, _) in pats.items()}
            folded = {k: bool(p.fullmatch(ch)) for k, (_, p) in pats.items()}
            if plain["L"] != (c in letter_set) or plain["N"] != (c in number_set):
                fail(f"regex 2022.10.31 \\p{{L}}/\\p{{N}} disagree with UnicodeData 15.0 at U+{c:04X}")
            if plain["O"] != (not plain["L"] and not plain["N"] and not plain["S"]):
                fail(f"[^\\s\\p{{L}}\\p{{N}}] is not the complement at U+{c:04X}")
            if plain["S"]:
                regex_whitespace.append(c)
            for k in plain:
                if plain[k] != folded[k]:
                    changed_by_ignorecase[k].append(c)
        expected_changes = {"L": [], "N": [], "O": ignorecase_drop, "S": []}
        if changed_by_ignorecase != expected_changes:
            fail(f"IGNORECASE changes the classes differently than expected: {changed_by_ignorecase}")
        import_note = (
            "regex 2022.10.31 imported: \\p{L} / \\p{N} equal UnicodeData 15.0 L* / N* at every code point; "
            "\\s is the set below; IGNORECASE changes only [^\\s\\p{L}\\p{N}], which loses U+0345"
        )
    elif regex_version is not None:
        import_note = f"regex {regex_version} imported, not 2022.10.31: classes not cross-checked"

    white_space = regex_whitespace
    if white_space is None:
        # Unicode White_Space from PropList.txt (15.0), which is what the regex module's \s is.
        white_space = []
        with open(f"{UCD_DIR}/PropList.txt", encoding="utf-8") as f:
            for line in f:
                body = line.split("#")[0].strip()
                if not body:
                    continue
                cps, prop = [x.strip() for x in body.split(";")]
                if prop != "White_Space":
                    continue
                lo, _, hi = cps.partition("..")
                white_space.extend(range(int(lo, 16), int(hi or lo, 16) + 1))

    runs = lower_runs(lower_single)
    multi_lines = ",\n".join(f"  [{c}, [{', '.join(map(str, v))}]]" for c, v in sorted(lower_multi.items()))

    out = f"""// GENERATED by scripts/gen-unicode-tables.py: do not edit by hand; rerun the script instead.
//
// Sources and versions:
//   * /usr/share/unicode/UnicodeData.txt, Unicode {version} (Debian package unicode-data 15.0.0-1):
//     LETTER_RANGES = General_Category Lu Ll Lt Lm Lo, NUMBER_RANGES = Nd Nl No.
//     These are the regex module 2022.10.31's \\p{{L}} and \\p{{N}} (its Unicode 15.0 data).
//   * Python {sys.version.split()[0]}, unicodedata {unicodedata.unidata_version}: str.lower() (LOWER_RUNS,
//     LOWER_MULTI), str.isspace() (PY_ISSPACE), and the Final_Sigma context of str.lower()
//     (CASE_IGNORABLE_RANGES, CASED_RANGES), probed for every code point.
//   * {import_note}.
//
// Range arrays are flat [first, last, first, last, ...] inclusive code point pairs.

/** Python 3.11 / Unicode 14.0 `str.lower()` of one code point, as runs [start, end, stride, delta]: c in start, start+stride, ... ≤ end lowers to c + delta. {len(lower_single)} code points. */
export const LOWER_RUNS: readonly number[] = [
{fmt_numbers(flat(runs), 16)}
];

/** Code points whose Python 3.11 `str.lower()` is more than one code point. */
export const LOWER_MULTI: ReadonlyArray<readonly [number, readonly number[]]> = [
{multi_lines},
];

/** Unicode 14.0 code points that CPython 3.11's Final_Sigma rule skips (Case_Ignorable). */
export const CASE_IGNORABLE_RANGES: readonly number[] = [
{fmt_numbers(flat(to_ranges(case_ignorable)), 16)}
];

/** Unicode 14.0 code points that are Cased and not Case_Ignorable (they end the Final_Sigma scan as "cased"). */
export const CASED_RANGES: readonly number[] = [
{fmt_numbers(flat(to_ranges(cased)), 16)}
];

/** Python 3.11 `str.isspace()` (used by `str.strip()`): {len(isspace)} code points. */
export const PY_ISSPACE: readonly number[] = [{", ".join(str(c) for c in isspace)}];

/** The regex module's `\\s` (Unicode White_Space), used by whitespace_clean and the pre-tokenizer: {len(white_space)} code points. */
export const REGEX_WHITESPACE: readonly number[] = [{", ".join(str(c) for c in white_space)}];

/** Characters that IGNORECASE takes out of the pre-tokenizer's `[^\\s\\p{{L}}\\p{{N}}]` class (regex 2022.10.31). */
export const IGNORECASE_NOT_OTHER: readonly number[] = [{", ".join(str(c) for c in ignorecase_drop)}];

/** Unicode {version} General_Category L* ({len(letters)} code points). */
export const LETTER_RANGES: readonly number[] = [
{fmt_numbers(flat(to_ranges(letters)), 16)}
];

/** Unicode {version} General_Category N* ({len(numbers)} code points). */
export const NUMBER_RANGES: readonly number[] = [
{fmt_numbers(flat(to_ranges(numbers)), 16)}
];
"""
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(out)
    else:
        sys.stdout.write(out)


if __name__ == "__main__":
    main()
