#!/usr/bin/env python3
"""Write a torch.save-style zip whose data.pkl calls a forbidden global, for rejection tests.

    make_forbidden_pickle.py OUT.pt [--global os.system|builtins.eval|builtins.exec] [--marker PATH]

The pickle (protocol 2) is {'payload': <global>(<harmless shell command or expression>)}, inside a
zip taken from a real torch.save (archive/data.pkl, data/0, byteorder, version, ...).
A safe loader must refuse it and name the global (protocol 2 spells them 'posix system' on
Linux and '__builtin__ eval' / '__builtin__ exec'); if it ever ran, the command creates --marker (default: OUT.pt + '.pwned'), which a test can
check is absent. Nothing is executed by this script itself.
"""
import argparse
import io
import os
import pickle
import sys
import zipfile

import torch


class _Call:
    """Pickles as a call of `func(*args)` without ever calling it here."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--global', dest='glob', default='os.system', choices=['os.system', 'builtins.eval', 'builtins.exec'])
    ap.add_argument('--marker')
    args = ap.parse_args()
    marker = args.marker or args.out + '.pwned'
    if args.glob == 'os.system':
        payload = _Call(os.system, (f'touch {marker}',))
    else:
        import builtins
        func = getattr(builtins, args.glob.split('.')[1])
        payload = _Call(func, (f"open({marker!r}, 'w').close()",))
    # A genuine torch.save archive with data.pkl swapped for the payload.
    buf = io.BytesIO()
    torch.save({'weight': torch.ones(2)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(args.out, 'w', zipfile.ZIP_STORED) as z:
        for info in src.infolist():
            name = 'archive/' + info.filename.split('/', 1)[1]
            data = src.read(info.filename)
            if name == 'archive/data.pkl':
                data = pickle.dumps({'payload': payload}, protocol=2)
            z.writestr(name, data)
    print(args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
