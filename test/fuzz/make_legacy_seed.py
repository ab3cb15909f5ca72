#!/usr/bin/env python3
"""Write the fuzzer's legacy (pre-1.6, non-zip) torch.save seed, the same bytes on every run.

    make_legacy_seed.py SOURCE.pt OUT.pt

SOURCE is loaded with weights_only=True and saved with _use_new_zipfile_serialization=False. The
legacy writer names storages by their memory addresses, so two runs differ; the keys are renamed
"0", "1", ... by first use (pickles hold no offsets, so a string may change length) and the
storages written in that order.
"""
import io
import pickle
import pickletools
import struct
import sys

import torch


def pickle_ops(data: bytes, start: int):
    """(opcode name, arg, start, end) of the pickle at `start`, through its STOP."""
    stream = io.BytesIO(data)
    stream.seek(start)
    ops = [(op.name, arg, pos) for op, arg, pos in pickletools.genops(stream)]
    end = stream.tell()
    return [(name, arg, pos, ops[i + 1][2] if i + 1 < len(ops) else end) for i, (name, arg, pos) in enumerate(ops)], end


def main() -> None:
    source, out = sys.argv[1], sys.argv[2]
    state = torch.load(source, weights_only=True)
    buf = io.BytesIO()
    torch.save(state, buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    # magic number, protocol version, sys info, the object, the storage keys; then the storages,
    # each an int64 element count and its bytes, in the (address-sorted) order of the keys.
    segments, pos = [], 0
    for _ in range(5):
        ops, end = pickle_ops(data, pos)
        segments.append(ops)
        pos = end
    keys = pickle.loads(data[segments[4][0][2]:pos])
    # Each storage's key is its address, which is still alive here: name them by first use instead.
    element_size, rename = {}, {}
    for tensor in state.values():
        key = str(tensor.untyped_storage()._cdata)
        element_size[key] = tensor.element_size()
        rename.setdefault(key, str(len(rename)))
    if sorted(rename) != sorted(keys):
        raise SystemExit("the legacy stream's storage keys are not the state dict's storages")
    blocks, at = {}, pos
    for key in keys:
        (count,) = struct.unpack("<q", data[at:at + 8])
        size = 8 + count * element_size[key]
        blocks[key], at = data[at:at + size], at + size
    if at != len(data):
        raise SystemExit(f"{len(data) - at} bytes after the storages")
    order = sorted(keys, key=lambda k: int(rename[k]))
    result = bytearray()
    for ops in segments[:4]:
        for name, arg, start, end in ops:
            if name in ("BINUNICODE", "SHORT_BINUNICODE") and arg in rename:
                new = rename[arg].encode()
                result += b"X" + struct.pack("<I", len(new)) + new
            else:
                result += data[start:end]
    result += pickle.dumps([rename[k] for k in order], protocol=2)
    for key in order:
        result += blocks[key]
    with open(out, "wb") as f:
        f.write(result)
    # What torch makes of it must be the state dict itself.
    again = torch.load(out, weights_only=True)
    if list(again) != list(state) or not all(torch.equal(again[k], state[k]) for k in state):
        raise SystemExit("the renamed legacy file does not load back as the state dict")


if __name__ == "__main__":
    main()
