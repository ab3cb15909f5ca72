#!/usr/bin/env python3
"""Python side of test/model-formats.test.ts: one run checks the files our model wrote and makes the
files Python writes for our loader, each with its reference outputs.

    formats_ref.py WORKDIR MODELS_DIR

MODELS_DIR is shared/fixtures/models. WORKDIR holds ours_tiny_vit.pt and ours_tiny_rn.pt (written
by ClipModel.save(.., {format: 'pt'})) and receives the files below. Prints one line of JSON:

  "ours_pt": {name: {"loaded_type", "strict_load", "max_abs_diff": {...}, "ok"}}
      torch.load(path) with the default arguments (and again with weights_only=True explicitly),
      load_state_dict(strict=True) into the reference CLIP (clip_reference.py: open_clip's), then the
      golden forward: eval mode for tiny_vit, train mode (batch statistics) for tiny_rn, compared
      at rtol 1e-4 / atol 1e-5.
  "made": what was written, and notes (torchscript_fp16: how the fp16 archive was traced).

Files written (all from tiny_vit.safetensors unless named otherwise):
  plain.pt              torch.save(model.state_dict())
  wrapped.pt            {"state_dict": DataParallel(model).state_dict() ("module." keys), "epoch": 7}
  blog.pt               {"epoch", "network", "optimizer", "scheduler"}: network is the state dict
                        after convert_weights (conv/linear/attn/projections fp16), optimizer and
                        scheduler are a real Adam / StepLR state_dict after one step
  openai_style.pt       torch.jit.trace of the fp16 (convert_weights) model with int64 0-dim
                        buffers input_resolution / context_length / vocab_size, as OpenAI's archives
  fp16_rounded.safetensors   the fp32 values of the fp16-rounded weights (the state dict)
  fp16_expected.safetensors  eval forward of those weights in fp32 on the golden batch
  half.safetensors / bf16.safetensors   every float weight in F16 / BF16, config in the metadata,
                        written with the `safetensors` package when importable
  half_ref.safetensors / bf16_ref.safetensors   the same values as fp32
  half_expected.safetensors / bf16_expected.safetensors   eval forward of those fp32 values
  no_data_pkl.pt        a torch.save zip with archive/data.pkl left out
  forbidden_system.pt / forbidden_eval.pt   make_forbidden_pickle.py's payloads (never executed here)
"""
import contextlib
import io
import json
import os
import sys
import zipfile
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
from torch import nn  # noqa: E402

import clip_reference as ref  # noqa: E402
from weights_ref import read_safetensors, write_safetensors  # noqa: E402


def golden(models, name):
    return dict(read_safetensors(os.path.join(models, f'{name}.golden.safetensors'))[0])


def fixture_model(models, name):
    weights, meta, _ = read_safetensors(os.path.join(models, f'{name}.safetensors'))
    config = json.loads(meta['config'])
    model = ref.clip_from_config(config)
    model.load_state_dict(OrderedDict(weights), strict=True)
    return model, config


def compare(outputs, gold, prefix):
    diffs, ok = {}, True
    for k, v in outputs.items():
        g = gold[prefix + k]
        diffs[k] = float((v - g).abs().max())
        ok = ok and bool(torch.allclose(v, g, rtol=1e-4, atol=1e-5))
    return diffs, ok


def check_ours(work, models, name):
    path = os.path.join(work, f'ours_{name}.pt')
    result = {}
    try:
        loaded = torch.load(path)  # the default: weights_only=True since torch 2.6
        torch.load(path, weights_only=True)
    except Exception as e:  # noqa: BLE001
        return {'ok': False, 'error': f'torch.load: {type(e).__name__}: {e}'[:1500]}
    result['loaded_type'] = type(loaded).__name__
    result['torch'] = torch.__version__
    _, config = fixture_model(models, name)
    model = ref.clip_from_config(config)
    try:
        model.load_state_dict(loaded, strict=True)
        result['strict_load'] = True
    except Exception as e:  # noqa: BLE001
        return {**result, 'ok': False, 'strict_load': False, 'error': f'load_state_dict: {e}'[:1500]}
    result['keys_in_order'] = list(loaded) == list(ref.openai_state_dict(model))
    train = name == 'tiny_rn'
    outputs = ref.run_forward(model, golden(models, name)['images'], golden(models, name)['text_tokens'], train=train)
    result['mode'] = 'train' if train else 'eval'
    result['max_abs_diff'], result['ok'] = compare(outputs, golden(models, name), 'train.' if train else '')
    return result


def as_openai_model(model):
    """open_clip keeps the text tower's causal mask as a (non-persistent) buffer, which a TorchScript archive
    stores as a tensor; openai/CLIP's model holds it as a plain attribute, which tracing folds into the graph."""
    mask = model.attn_mask
    delattr(model, 'attn_mask')
    model.attn_mask = mask
    return model


def make_files(work, models):
    notes = {}
    model, config = fixture_model(models, 'tiny_vit')
    gold = golden(models, 'tiny_vit')
    sd = model.state_dict()

    torch.save(sd, os.path.join(work, 'plain.pt'))
    torch.save({'state_dict': nn.DataParallel(model).state_dict(), 'epoch': 7}, os.path.join(work, 'wrapped.pt'))

    # A real optimizer / scheduler state after one step (fp32 master copy), as the blog's trainer keeps.
    train_copy, _ = fixture_model(models, 'tiny_vit')
    opt = torch.optim.Adam(train_copy.parameters(), lr=5e-5, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    lpi, lpt = ref.logits(train_copy, gold['images'], gold['text_tokens'])
    target = torch.arange(4)
    ((nn.functional.cross_entropy(lpi, target) + nn.functional.cross_entropy(lpt, target)) / 2).backward()
    opt.step()
    sched.step()

    half_model, _ = fixture_model(models, 'tiny_vit')
    ref.convert_weights(half_model)
    network = half_model.state_dict()
    notes['blog_fp16_keys'] = sum(1 for v in network.values() if v.dtype == torch.float16)
    notes['blog_fp32_keys'] = sum(1 for v in network.values() if v.dtype == torch.float32)
    torch.save({'epoch': 3, 'network': network, 'optimizer': opt.state_dict(), 'scheduler': sched.state_dict()},
               os.path.join(work, 'blog.pt'))

    rounded = ref.fp16_round(fixture_model(models, 'tiny_vit')[0])
    write_safetensors(os.path.join(work, 'fp16_rounded.safetensors'), rounded.state_dict())
    write_safetensors(os.path.join(work, 'fp16_expected.safetensors'),
                      ref.run_forward(rounded, gold['images'], gold['text_tokens'], train=False))

    # OpenAI-style TorchScript: fp16 weights, the three int entries as 0-dim int64 buffers.
    ts_model = as_openai_model(fixture_model(models, 'tiny_vit')[0])
    ref.convert_weights(ts_model)
    for key, value in (('input_resolution', config['image_resolution']), ('context_length', config['context_length']),
                       ('vocab_size', config['vocab_size'])):
        if key in ts_model.__dict__:
            delattr(ts_model, key)  # CLIP keeps context_length / vocab_size as plain ints
        ts_model.register_buffer(key, torch.tensor(value))
    ts_model.eval()
    try:
        # check_trace=False: the checker re-runs the fp16 CPU forward and trips on last-bit differences.
        with torch.no_grad():
            # fp16 images: openai/CLIP's encode_image casts them to the weights' type, open_clip's does not.
            traced = torch.jit.trace(ts_model, (gold['images'].half(), gold['text_tokens']), check_trace=False)
        notes['torchscript_fp16'] = 'traced in fp16 on the CPU'
    except Exception as e:  # noqa: BLE001 - some CPU builds lack fp16 kernels: trace in fp32, then halve
        notes['torchscript_fp16'] = f'fp16 trace failed ({type(e).__name__}), traced in fp32 and halved the parameters'
        fp32_model = as_openai_model(fixture_model(models, 'tiny_vit')[0])
        for key in ('input_resolution', 'context_length', 'vocab_size'):
            if key in fp32_model.__dict__:
                delattr(fp32_model, key)
            fp32_model.register_buffer(key, getattr(ts_model, key))
        with torch.no_grad():
            traced = torch.jit.trace(fp32_model.eval(), (gold['images'], gold['text_tokens']))
            halves = {k for k, v in ts_model.state_dict().items() if v.dtype == torch.float16}
            for k, p in traced.named_parameters():
                if k in halves:
                    p.data = p.data.half()
    path = os.path.join(work, 'openai_style.pt')
    torch.jit.save(traced, path)
    back = torch.jit.load(path).state_dict()
    notes['torchscript_keys'] = list(back)[:3] + ['…'] + [k for k in back if k in ('input_resolution', 'context_length', 'vocab_size')]
    notes['torchscript_dtypes'] = sorted({str(v.dtype) for v in back.values()})

    # fp16 / bf16 safetensors of every float weight.
    try:
        from safetensors.torch import save_file
        writer = 'safetensors ' + __import__('safetensors').__version__
    except ImportError:
        save_file, writer = None, 'test/python/weights_ref.write_safetensors'
    notes['safetensors_writer'] = writer
    for label, dtype in (('half', torch.float16), ('bf16', torch.bfloat16)):
        low = OrderedDict((k, v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items())
        meta = {'config': json.dumps(config), 'format': 'pt'}
        out = os.path.join(work, f'{label}.safetensors')
        if save_file:
            save_file({k: v.contiguous() for k, v in low.items()}, out, metadata=meta)
        else:
            write_safetensors(out, low, meta)
        rounded_sd = OrderedDict((k, v.float() if v.is_floating_point() else v) for k, v in low.items())
        write_safetensors(os.path.join(work, f'{label}_ref.safetensors'), rounded_sd)
        rounded_model = ref.clip_from_config(config)
        rounded_model.load_state_dict(rounded_sd, strict=True)
        write_safetensors(os.path.join(work, f'{label}_expected.safetensors'),
                          ref.run_forward(rounded_model, gold['images'], gold['text_tokens'], train=False))

    # A torch.save zip without its pickle.
    buf = io.BytesIO()
    torch.save(sd, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(os.path.join(work, 'no_data_pkl.pt'), 'w', zipfile.ZIP_STORED) as z:
        for info in src.infolist():
            if not info.filename.endswith('/data.pkl'):
                z.writestr(info.filename, src.read(info.filename))

    import make_forbidden_pickle
    for label, glob in (('system', 'os.system'), ('eval', 'builtins.eval')):
        out = os.path.join(work, f'forbidden_{label}.pt')
        argv = sys.argv
        sys.argv = ['make_forbidden_pickle.py', out, '--global', glob, '--marker', out + '.pwned']
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                make_forbidden_pickle.main()
        finally:
            sys.argv = argv
    return notes


def main():
    work, models = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    out = {'ours_pt': {name: check_ours(work, models, name) for name in ('tiny_vit', 'tiny_rn')}}
    out['made'] = make_files(work, models)
    print(json.dumps(out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
