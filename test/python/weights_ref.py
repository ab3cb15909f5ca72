"""Shared helpers for the weight-file cross-checks (imported by the *_check.py scripts).

Reads safetensors with the official `safetensors` package when it is installed, else with a
small json + torch.frombuffer reader, so the checks need only torch.
"""
import json
import struct

import torch

SAFETENSORS_DTYPES = {
    'F64': torch.float64, 'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16,
    'I64': torch.int64, 'I32': torch.int32, 'I16': torch.int16, 'I8': torch.int8,
    'U8': torch.uint8, 'BOOL': torch.bool,
}


def header_names(path):
    """Tensor names in the order the JSON header lists them."""
    with open(path, 'rb') as f:
        (n,) = struct.unpack('<Q', f.read(8))
        return [k for k in json.loads(f.read(n)) if k != '__metadata__']


def read_safetensors(path, prefer_official=True):
    """Returns (list of (name, tensor) in header order, metadata dict, reader name)."""
    if prefer_official:
        try:
            from safetensors import safe_open
        except ImportError:
            pass
        else:
            with safe_open(path, framework='pt') as f:
                # f.keys() is sorted by name; keep the header's order instead.
                return [(k, f.get_tensor(k)) for k in header_names(path)], dict(f.metadata() or {}), 'safetensors'
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    metadata = header.pop('__metadata__', None) or {}
    out = []
    for name, e in header.items():
        b, end = e['data_offsets']
        raw = bytearray(data[8 + n + b:8 + n + end])
        t = torch.frombuffer(raw, dtype=SAFETENSORS_DTYPES[e['dtype']]) if raw else torch.empty(0, dtype=SAFETENSORS_DTYPES[e['dtype']])
        out.append((name, t.reshape(e['shape'])))
    return out, metadata, 'json+torch'


def bitwise_equal(a, b):
    if not (torch.is_tensor(a) and torch.is_tensor(b)):
        return False
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.numel() == 0:
        return True
    # Compare bytes, not values: NaN payloads and -0.0 must survive a round trip too.
    ac, bc = a.detach().cpu().contiguous().reshape(-1), b.detach().cpu().contiguous().reshape(-1)
    return ac.view(torch.uint8).equal(bc.view(torch.uint8))


def find_state_dict(obj, keys=('state_dict', 'model', 'network', 'module')):
    """The same choice read_weights makes: the dict itself or the one under a usual key,
    with a 'module.' prefix (DataParallel / DDP) stripped when every key has it."""
    if isinstance(obj, dict):
        for k in keys:
            v = obj.get(k)
            if isinstance(v, dict) and v and all(torch.is_tensor(x) for x in v.values()):
                obj = v
                break
        if obj and all(isinstance(k, str) and k.startswith('module.') for k in obj):
            obj = type(obj)((k[len('module.'):], v) for k, v in obj.items())
    return obj


def write_safetensors(path, tensors, metadata=None):
    """A plain writer (header in the given order, no alignment promises) for reference files."""
    names = {v: k for k, v in SAFETENSORS_DTYPES.items()}
    header, blobs, offset = {}, [], 0
    if metadata:
        header['__metadata__'] = dict(metadata)
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b''
        header[name] = {'dtype': names[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hb = json.dumps(header, separators=(',', ':')).encode()
    hb += b' ' * ((8 - (8 + len(hb)) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hb)) + hb + b''.join(blobs))
