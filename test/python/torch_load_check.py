#!/usr/bin/env python3
"""Cross-check a .pt file against a .safetensors file with Python torch.

    torch_load_check.py FILE.pt FILE.safetensors [--ordered] [--prefix P] [--expect-type T]

Loads FILE.pt with torch.load under its default (weights_only=True since torch 2.6), so a file
written by write_torch_pickle must pass the same allow-list Python users get. The state dict is
the loaded dict itself or the one under state_dict / model / network / module. Exit 0 when it
holds exactly the safetensors tensors (names, dtypes, shapes, bytes); with --ordered also in the
same order (the safetensors header order, or the order listed in --order-file). --prefix keeps
only safetensors keys starting with P and strips it (tiny_vit.visual.state_dict.pt vs
tiny_vit.safetensors uses --prefix visual.). --expect-type OrderedDict|dict checks the Python type.
--trusted loads with weights_only=False (only for files the test suite made itself, e.g. protocol 4).
A 'module.' prefix on every key is stripped, as read_weights does.
Prints one line of JSON describing the result; exit 1 on any mismatch, 2 on a load error.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
from weights_ref import bitwise_equal, find_state_dict, read_safetensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('pt')
    ap.add_argument('safetensors')
    ap.add_argument('--ordered', action='store_true')
    ap.add_argument('--order-file')
    ap.add_argument('--prefix', default='')
    ap.add_argument('--expect-type', choices=['OrderedDict', 'dict'])
    ap.add_argument('--trusted', action='store_true', help='weights_only=False, for files this suite made itself')
    args = ap.parse_args()
    try:
        loaded = torch.load(args.pt, weights_only=not args.trusted)
    except Exception as e:  # noqa: BLE001 - report whatever torch.load refused
        print(json.dumps({'ok': False, 'error': f'torch.load failed: {type(e).__name__}: {e}'[:2000]}))
        return 2
    problems = []
    if args.expect_type and type(loaded).__name__ != args.expect_type:
        problems.append(f'loaded a {type(loaded).__name__}, expected {args.expect_type}')
    sd = find_state_dict(loaded)
    if not isinstance(sd, dict):
        print(json.dumps({'ok': False, 'error': f'loaded a {type(sd).__name__}, not a dict'}))
        return 1
    ref, _, reader = read_safetensors(args.safetensors)
    ref = [(k[len(args.prefix):], t) for k, t in ref if k.startswith(args.prefix)]
    ref_map = dict(ref)
    if set(sd) != set(ref_map):
        problems.append(f'keys differ: only in pt {sorted(set(sd) - set(ref_map))[:5]}, '
                        f'only in safetensors {sorted(set(ref_map) - set(sd))[:5]}')
    for k, v in sd.items():
        if k in ref_map and not bitwise_equal(v, ref_map[k]):
            problems.append(f'"{k}" differs')
    if args.ordered:
        want = [line.strip() for line in open(args.order_file)] if args.order_file else [k for k, _ in ref]
        if list(sd) != [k for k in want if k]:
            problems.append('key order differs')
    print(json.dumps({'ok': not problems, 'tensors': len(sd), 'type': type(loaded).__name__,
                      'safetensors_reader': reader, 'problems': problems[:20]}))
    return 0 if not problems else 1


if __name__ == '__main__':
    sys.exit(main())
