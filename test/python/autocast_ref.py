#!/usr/bin/env python3
"""How far openai/CLIP's own model moves under bf16 autocast: on the CPU for test/model-api.test.ts,
on CUDA for bench/gpu.sh (issue 4's bound, set beside the reference's own drift there).

    autocast_ref.py MODELS_DIR [--device cpu|cuda] [NAME ...]      (default names: tiny_vit tiny_rn)

For each NAME, loads MODELS_DIR/NAME.safetensors into clip_reference_model.CLIP (config from the
metadata), and runs the golden batch in eval mode in fp32 and under
torch.autocast(device, dtype=torch.bfloat16). Prints one line of JSON:
{NAME: {"max_abs_diff": max |bf16 - fp32| over logits_per_image, "max_abs": max |fp32 logit|,
"relative": their ratio, "torch": version}}.
"""
import json
import os
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

import clip_reference_model as ref  # noqa: E402
from weights_ref import read_safetensors  # noqa: E402


def main():
    models = sys.argv[1]
    rest = sys.argv[2:]
    device = 'cpu'
    if rest[:1] == ['--device']:
        device, rest = rest[1], rest[2:]
    names = rest or ['tiny_vit', 'tiny_rn']
    out = {}
    for name in names:
        weights, meta, _ = read_safetensors(os.path.join(models, f'{name}.safetensors'))
        model = ref.clip_from_config(json.loads(meta['config']))
        model.load_state_dict(OrderedDict(weights), strict=True)
        model.eval().to(device)
        gold = dict(read_safetensors(os.path.join(models, f'{name}.golden.safetensors'))[0])
        images, tokens = gold['images'].to(device), gold['text_tokens'].to(device)
        with torch.no_grad():
            fp32, _ = model(images, tokens)
            with torch.autocast(device, dtype=torch.bfloat16):
                bf16, _ = model(images, tokens)
        diff = float((bf16.float() - fp32).abs().max())
        top = float(fp32.abs().max())
        out[name] = {'max_abs_diff': diff, 'max_abs': top, 'relative': diff / top, 'device': device, 'torch': torch.__version__}
    print(json.dumps(out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
