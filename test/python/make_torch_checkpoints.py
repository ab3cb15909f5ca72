#!/usr/bin/env python3
"""Write the torch.save variants a loader meets in the wild, each with a safetensors reference.

    make_torch_checkpoints.py OUTDIR

For every NAME.pt it writes NAME.ref.safetensors holding the flat state dict a loader should
extract (read_weights' choice: the dict itself or the one under state_dict/model/network/module,
'module.' stripped, views materialised). Files:
  views.pt          tensors that are views of one storage (offset, transposed, sliced)
  dtypes_p2.pt      F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL, a 0-dim and an empty tensor
  dtypes_p4.pt      the same with pickle protocol 4 (FRAME, MEMOIZE, SHORT_BINUNICODE); note that
                    Python's own torch.load(weights_only=True) refuses FRAME, our reader accepts it
  params.pt         nn.Parameter values (_rebuild_parameter)
  ddp.pt            a DataParallel state dict: every key starts with 'module.'
  checkpoint.pt     the blog's {epoch, network, optimizer, scheduler} plus loss/note scalars
and files that must be refused (no reference): legacy.pt (pre-1.6 non-zip format),
oob_view.pt (a view reaching past its storage), short_storage.pt (a storage record too short),
truncated.pt (half of views.pt).
"""
import io
import os
import sys
import zipfile
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
from weights_ref import write_safetensors  # noqa: E402


def save_with_ref(out, name, obj, ref, **kw):
    torch.save(obj, os.path.join(out, name + '.pt'), **kw)
    write_safetensors(os.path.join(out, name + '.ref.safetensors'), ref)


def patched_archive(path, obj, edit):
    buf = io.BytesIO()
    torch.save(obj, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as z:
        for info in src.infolist():
            z.writestr(info.filename, edit(info.filename, src.read(info.filename)))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    views = {'base': base, 'row': base[1], 'col': base[:, 2], 't': base.t(), 'slice': base[1:3, 2:5]}
    save_with_ref(out, 'views', views, {k: v.contiguous() for k, v in views.items()})

    d = OrderedDict()
    for dt in [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32,
               torch.int16, torch.int8, torch.uint8, torch.bool]:
        d[str(dt).replace('torch.', '')] = (torch.randn(3, 5) * 100).to(dt)
    d['scalar'] = torch.tensor(2.5)
    d['empty'] = torch.zeros(0, 4)
    save_with_ref(out, 'dtypes_p2', d, d)
    save_with_ref(out, 'dtypes_p4', d, d, pickle_protocol=4)

    lin = torch.nn.Linear(3, 2)
    sd = lin.state_dict()
    save_with_ref(out, 'params', OrderedDict((k, torch.nn.Parameter(v)) for k, v in sd.items()), sd)
    save_with_ref(out, 'ddp', torch.nn.DataParallel(lin).state_dict(), sd)

    opt = torch.optim.Adam(lin.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.001)
    lin(torch.randn(4, 3)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    sched.step()
    ck = {'epoch': 3, 'network': lin.state_dict(), 'optimizer': opt.state_dict(), 'scheduler': sched.state_dict(),
          'loss': 0.25, 'note': 'h\u00e9llo'}
    save_with_ref(out, 'checkpoint', ck, lin.state_dict())

    torch.save({'x': torch.ones(3)}, os.path.join(out, 'legacy.pt'), _use_new_zipfile_serialization=False)
    patched_archive(os.path.join(out, 'oob_view.pt'), {'x': torch.zeros(10)[2:]},
                    lambda n, b: b.replace(b'K\x08\x85', b'K\x09\x85') if n.endswith('data.pkl') else b)
    patched_archive(os.path.join(out, 'short_storage.pt'), {'x': torch.zeros(10)},
                    lambda n, b: b[:8] if n.endswith('data/0') else b)
    with open(os.path.join(out, 'views.pt'), 'rb') as f:
        data = f.read()
    with open(os.path.join(out, 'truncated.pt'), 'wb') as f:
        f.write(data[:len(data) // 2])
    print(out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
