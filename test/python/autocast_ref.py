#!/usr/bin/env python3
"""How far openai/CLIP's own model moves under bf16 autocast: on the CPU for test/model-api.test.ts,
on CUDA for bench/gpu.sh (issue 4's bound, set beside the reference's own drift there).

    autocast_ref.py MODELS_DIR [--device cpu|cuda] [NAME ...]      (default names: tiny_vit tiny_rn)

For each NAME, loads MODELS_DIR/NAME.safetensors into the reference CLIP (clip_reference.py: open_clip's
CLIP with QuickGELU; config from the metadata), and runs the golden batch in eval mode in fp32 and under
torch.autocast(device, dtype=torch.bfloat16). Prints one line of JSON:
{NAME: {"max_abs_diff": max |bf16 - fp32| over logits_per_image, "max_abs": max |fp32 logit|,
"relative": their ratio, "variants": [that ratio for each of the 32 variants of the batch],
"mean_relative": their mean, "max_abs_variants": [each variant's max |fp32 logit|], "torch": version}}.

A single batch's largest logit error is a noisy measure (16 logits here), so the golden batch is run
in 32 variants (variant 0 is the batch itself): variant v transposes the images' height and width if
v & 4, then flips the rows if v & 2 and the columns if v & 1, then rolls the rows down by 7 (v >> 3)
(cyclically), and moves each prompt token between the start and the end token to (t + 131 v) mod
(E - 1), E the batch's largest id (the end token), so that the texts differ too
(test/helpers/tensors.ts, batchVariant, builds the same batches).
"""
import json
import os
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

import clip_reference as ref  # noqa: E402
from weights_ref import read_safetensors  # noqa: E402


VARIANTS = 32


def turned(images, v):
    if v & 4:
        images = images.transpose(2, 3)
    if v & 2:
        images = images.flip(2)
    if v & 1:
        images = images.flip(3)
    images = torch.roll(images, shifts=(7 * (v >> 3)) % images.shape[2], dims=2)
    return images.contiguous()


def shifted_tokens(tokens, v):
    out = tokens.clone()
    top = int(tokens.max())
    ends = tokens.argmax(-1).tolist()
    for i, end in enumerate(ends):
        for j in range(1, end):
            out[i, j] = (int(tokens[i, j]) + 131 * v) % (top - 1)
    return out


def drift(model, images, tokens, device):
    """(max |bf16 - fp32| over the logits, max |fp32 logit|)."""
    with torch.no_grad():
        fp32, _ = ref.logits(model, images, tokens)
        with torch.autocast(device, dtype=torch.bfloat16):
            bf16, _ = ref.logits(model, images, tokens)
    return float((bf16.float() - fp32).abs().max()), float(fp32.abs().max())


def main():
    models = sys.argv[1]
    rest = sys.argv[2:]
    device = 'cpu'
    if rest[:1] == ['--device']:
        device, rest = rest[1], rest[2:]
    names = rest or ['tiny_vit', 'tiny_rn']
    # fp32 as clip-native runs it (native/binding/binding.cc): PyTorch's cuDNN would otherwise convolve
    # in TF32 (a 10-bit mantissa), and the drift would be measured from a baseline off by ~1e-3.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    out = {}
    for name in names:
        weights, meta, _ = read_safetensors(os.path.join(models, f'{name}.safetensors'))
        model = ref.clip_from_config(json.loads(meta['config']))
        model.load_state_dict(OrderedDict(weights), strict=True)
        model.eval().to(device)
        gold = dict(read_safetensors(os.path.join(models, f'{name}.golden.safetensors'))[0])
        # Tokens may come as float32 (bench/gpu-parity.ts writes them so): exact ids all the same.
        images, tokens = gold['images'].to(device), gold['text_tokens'].to(device).long()
        drifts = [drift(model, turned(images, v), shifted_tokens(tokens, v), device) for v in range(VARIANTS)]
        diff, top = drifts[0]
        variants = [d / t for d, t in drifts]
        out[name] = {'max_abs_diff': diff, 'max_abs': top, 'relative': diff / top, 'variants': variants,
                     'mean_relative': sum(variants) / len(variants), 'max_abs_variants': [t for _, t in drifts],
                     'device': device, 'torch': torch.__version__}
    print(json.dumps(out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
