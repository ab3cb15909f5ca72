#!/usr/bin/env python3
"""Check that a .safetensors file written by our writer reads identically in Python.

    safetensors_check.py WRITTEN.safetensors REFERENCE(.safetensors|.pt) [--strict-layout]

Reads WRITTEN with the official `safetensors` package when installed (else json + torch), and
REFERENCE with the same reader (or torch.load for .pt). Exit 0 when names, dtypes, shapes and bytes
match. --strict-layout also checks the layout our writer promises: tensors ordered by (itemsize
descending, name), contiguous from offset 0 without gaps, and 8 + header length a multiple of 8.
Prints one line of JSON; exit 1 on a mismatch, 2 when a file cannot be read.
"""
import argparse
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
from weights_ref import bitwise_equal, find_state_dict, read_safetensors  # noqa: E402

ITEMSIZE = {'F64': 8, 'I64': 8, 'F32': 4, 'I32': 4, 'F16': 2, 'BF16': 2, 'I16': 2, 'I8': 1, 'U8': 1, 'BOOL': 1}


def layout_problems(path):
    with open(path, 'rb') as f:
        (n,) = struct.unpack('<Q', f.read(8))
        header = json.loads(f.read(n))
    problems = [] if (8 + n) % 8 == 0 else ['header not padded to 8 bytes']
    header.pop('__metadata__', None)
    entries = sorted(header.items(), key=lambda kv: kv[1]['data_offsets'][0])
    if [k for k, _ in entries] != [k for k, _ in sorted(header.items(), key=lambda kv: (-ITEMSIZE[kv[1]['dtype']], kv[0]))]:
        problems.append('tensors not ordered by (itemsize descending, name)')
    offset = 0
    for k, e in entries:
        if e['data_offsets'][0] != offset:
            problems.append(f'gap or overlap before "{k}"')
        offset = e['data_offsets'][1]
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('written')
    ap.add_argument('reference')
    ap.add_argument('--strict-layout', action='store_true')
    args = ap.parse_args()
    try:
        got, meta, reader = read_safetensors(args.written)
        if args.reference.endswith('.safetensors'):
            ref, ref_meta, _ = read_safetensors(args.reference)
            ref = dict(ref)
        else:
            ref, ref_meta = dict(find_state_dict(torch.load(args.reference))), None
    except Exception as e:  # noqa: BLE001
        print(json.dumps({'ok': False, 'error': f'{type(e).__name__}: {e}'[:2000]}))
        return 2
    got = dict(got)
    problems = []
    if set(got) != set(ref):
        problems.append(f'keys differ: only written {sorted(set(got) - set(ref))[:5]}, only reference {sorted(set(ref) - set(got))[:5]}')
    problems += [f'"{k}" differs' for k in got if k in ref and not bitwise_equal(got[k], ref[k])]
    if ref_meta is not None and meta != ref_meta:
        problems.append('metadata differs')
    if args.strict_layout:
        problems += layout_problems(args.written)
    print(json.dumps({'ok': not problems, 'tensors': len(got), 'reader': reader, 'problems': problems[:20]}))
    return 0 if not problems else 1


if __name__ == '__main__':
    sys.exit(main())
