#!/usr/bin/env python3
"""Write crafted weight files that a safe loader must refuse, for test/security/weights-untrusted.test.ts.

    make_hostile_archives.py OUT_DIR CANARY [--prove]

Every file is made here without running its payload. CANARY is a file the payloads target: the
TorchScript ones overwrite its first bytes through torch.from_file when torch.jit.load runs their
__setstate__; the pickle ones would create CANARY + '.pwned'. With --prove, this script also loads a
copy of the file-writing archive with torch.jit.load against a copy of the canary, to show the
payload is real (the test reports it). Prints a JSON object: file name -> what it is.
"""
import io
import json
import os
import shutil
import struct
import sys
import tempfile
import zipfile
from typing import Tuple

import torch


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.arange(4, dtype=torch.float32))

    def forward(self, x):
        return x * self.w


class WritesOnLoad(torch.nn.Module):
    """__setstate__ maps `path` shared and fills it: what torch.jit.load runs, not us."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.w = torch.nn.Parameter(torch.zeros(4))

    def forward(self, x):
        return x * self.w

    @torch.jit.export
    def __getstate__(self) -> Tuple[str, torch.Tensor, bool]:
        return (self.path, self.w, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[str, torch.Tensor, bool]) -> None:
        self.path = state[0]
        self.training = state[2]
        t = torch.from_file(self.path, shared=True, size=8, dtype=torch.uint8)
        # Used in the result, so the compiler keeps the write.
        self.w = state[1] + t.fill_(80)[:4].float() * 0


class LoopsOnLoad(torch.nn.Module):
    """__setstate__ never returns."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(4))

    def forward(self, x):
        return x * self.w

    @torch.jit.export
    def __getstate__(self) -> Tuple[torch.Tensor, bool]:
        return (self.w, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[torch.Tensor, bool]) -> None:
        self.w = state[0]
        self.training = state[1]
        n = 1
        while n > 0:
            n = n + 1 if n < 1000000 else 1


def records(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def write_zip(path, entries, compress=None):
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as z:
        for name, data in entries:
            z.writestr(zipfile.ZipInfo(name), data, compress_type=(compress or {}).get(name, zipfile.ZIP_STORED))


def replace(entries, suffix, data):
    return [(n, data if n.endswith(suffix) else d) for n, d in entries]


# Hand-written pickle opcodes (protocol 2), so the crafted structures need no Python objects.
def op_global(module, name):
    return b'c' + module.encode() + b'\n' + name.encode() + b'\n'


def op_str(s):
    b = s.encode()
    return b'X' + struct.pack('<I', len(b)) + b


def op_int(v):
    return b'J' + struct.pack('<i', v)


def tensor_op(key, numel, size, stride):
    persid = b'(' + op_str('storage') + op_global('torch', 'FloatStorage') + op_str(key) + op_str('cpu') + op_int(numel) + b't' + b'Q'
    shape = b'(' + b''.join(op_int(s) for s in size) + b't'
    strides = b'(' + b''.join(op_int(s) for s in stride) + b't'
    return (op_global('torch._utils', '_rebuild_tensor_v2') + b'(' + persid + op_int(0) + shape + strides + b'\x89' +
            op_global('collections', 'OrderedDict') + b')R' + b't' + b'R')


def module_pickle(attrs):
    body = b''.join(op_str(k) + v for k, v in attrs)
    return b'\x80\x02' + op_global('__torch__.m', 'Tiny') + b')\x81' + b'}(' + body + b'u' + b'b.'


def main():
    out, canary = sys.argv[1], sys.argv[2]
    prove = '--prove' in sys.argv
    os.makedirs(out, exist_ok=True)
    made = {}
    pwned = canary + '.pwned'

    torch.jit.save(torch.jit.script(WritesOnLoad(canary)), os.path.join(out, 'setstate_writes.pt'))
    made['setstate_writes.pt'] = 'TorchScript module whose __setstate__ overwrites the canary through torch.from_file'
    torch.jit.save(torch.jit.script(LoopsOnLoad()), os.path.join(out, 'setstate_loops.pt'))
    made['setstate_loops.pt'] = 'TorchScript module whose __setstate__ loops forever'

    legit = os.path.join(out, 'tiny_module.pt')
    torch.jit.save(torch.jit.script(Tiny()), legit)
    made['tiny_module.pt'] = 'a harmless scripted module (not a CLIP): the reader must get past data.pkl'
    base = records(legit)

    evil_call = b'\x80\x02' + op_global('posix', 'system') + b'(' + op_str('touch ' + pwned) + b'tR.'
    write_zip(os.path.join(out, 'outside_torch.pt'), replace(base, '/data.pkl', evil_call))
    made['outside_torch.pt'] = 'TorchScript archive whose data.pkl calls posix.system (a class outside __torch__)'

    past = module_pickle([('w', tensor_op('0', 4, [1000], [1])), ('training', b'\x89')])
    write_zip(os.path.join(out, 'past_storage.pt'), replace(base, '/data.pkl', past))
    made['past_storage.pt'] = 'TorchScript archive with a tensor of 1000 elements on a storage of 4'

    torch.save({'w': torch.zeros(4)}, os.path.join(out, 'plain.pt'))
    plain = records(os.path.join(out, 'plain.pt'))
    depth = 1_000_000
    deep = b'\x80\x02' + b']' * depth + b'a' * (depth - 1) + b'.'
    write_zip(os.path.join(out, 'deep_nesting.pt'), replace(plain, '/data.pkl', deep))
    made['deep_nesting.pt'] = f'torch.save zip whose data.pkl is a list nested {depth} levels deep ({len(deep)} bytes)'

    # Each level is a list of ten references to the level below: 10**30 elements once copied.
    laughs = b'\x80\x02]q\x000'
    for level in range(1, 31):
        laughs += b'(' + (b'h' + bytes([level - 1])) * 10 + b'lq' + bytes([level]) + b'0'
    laughs += b'h\x1e.'
    write_zip(os.path.join(out, 'billion_laughs.pt'), replace(plain, '/data.pkl', laughs))
    made['billion_laughs.pt'] = f'torch.save zip whose data.pkl refers to its memo ({len(laughs)} bytes, 10^30 elements expanded)'

    big = 1 << 30
    bomb = [(n, d) for n, d in plain if not n.endswith('/data/0')]
    bomb_pkl = module_free_state(big // 4)
    bomb = replace(bomb, '/data.pkl', bomb_pkl) + [(next(n for n, _ in plain if n.endswith('/data/0')), bytes(big))]
    write_zip(os.path.join(out, 'zip_bomb.pt'), bomb, compress={bomb[-1][0]: zipfile.ZIP_DEFLATED})
    made['zip_bomb.pt'] = f'torch.save zip whose data/0 inflates to {big} bytes from {os.path.getsize(os.path.join(out, "zip_bomb.pt"))}'

    liar = os.path.join(out, 'zip_liar.pt')
    write_zip(liar, replace(plain, '/data/0', bytes(64 << 20)), compress={n: zipfile.ZIP_DEFLATED for n, _ in plain if n.endswith('/data/0')})
    lie_about_size(liar, '/data/0', 16)
    made['zip_liar.pt'] = 'torch.save zip whose data/0 declares 16 bytes and inflates to 64 MiB'

    if prove:
        made['proof'] = prove_payload(os.path.join(out, 'setstate_writes.pt'), canary)
    print(json.dumps(made))
    return 0


def module_free_state(numel):
    """data.pkl of torch.save({'w': tensor of numel floats on storage '0'})."""
    return (b'\x80\x02' + op_global('collections', 'OrderedDict') + b')R' + b'(' + op_str('w') +
            tensor_op('0', numel, [numel], [1]) + b'u.')


def lie_about_size(path, suffix, claimed):
    """Rewrites the uncompressed size of one entry in its local header and central directory."""
    data = bytearray(open(path, 'rb').read())
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(suffix))
    struct.pack_into('<I', data, info.header_offset + 22, claimed)
    name = info.filename.encode()
    at = 0
    while True:
        at = data.find(b'PK\x01\x02', at)
        if at < 0:
            raise SystemExit('central directory entry not found')
        n = struct.unpack_from('<H', data, at + 28)[0]
        if bytes(data[at + 46:at + 46 + n]) == name:
            struct.pack_into('<I', data, at + 24, claimed)
            break
        at += 4
    open(path, 'wb').write(bytes(data))


def prove_payload(archive, canary):
    """torch.jit.load on copies: does the archive's own code change the canary's copy?"""
    with tempfile.TemporaryDirectory() as tmp:
        canary_copy = os.path.join(tmp, 'canary')
        shutil.copy(canary, canary_copy)
        before = open(canary_copy, 'rb').read()
        with zipfile.ZipFile(archive) as z:
            entries = [(i.filename, z.read(i.filename)) for i in z.infolist()]
        # The path is a pickled string attribute: point the copy's payload at the canary's copy.
        patched = os.path.join(tmp, 'a.pt')
        write_zip(patched, [(n, retarget(d, canary, canary_copy) if n.endswith('data.pkl') else d) for n, d in entries])
        torch.jit.load(patched)
        return 'torch.jit.load changed the canary copy' if open(canary_copy, 'rb').read() != before else 'torch.jit.load left the canary copy alone'


def retarget(pkl, old, new):
    """Replaces the BINUNICODE string `old` (length prefix included) with `new`."""
    o, n = old.encode(), new.encode()
    return pkl.replace(b'X' + struct.pack('<I', len(o)) + o, b'X' + struct.pack('<I', len(n)) + n)


if __name__ == '__main__':
    sys.exit(main())
