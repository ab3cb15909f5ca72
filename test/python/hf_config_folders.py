#!/usr/bin/env python3
"""Tiny random-init transformers CLIPModel folders for the configuration-source tests
(test/model-families-config.test.ts).

    hf_config_folders.py OUTDIR

Writes, with save_pretrained as transformers' users do:

- OUTDIR/gelu_sharded/: GELU, text heads 4 (width 32: not width / 64), vision heads 2 (width 64),
  MLP widths 48 / 96 (not 4 x width), sharded (model.safetensors.index.json), with a
  preprocessor_config.json of mean/std (0.5, 0.5, 0.5) at 32 px; and gelu_sharded.ref.safetensors
  with `images`, `text_tokens` and transformers' `logits_per_image` on them (eval, fp32).
- OUTDIR/quick_single/: QuickGELU, one model.safetensors, text width 64 with heads 2 and MLP width 80,
  vision heads 4, no preprocessor_config.json.
- OUTDIR/bin/: the gelu_sharded model as pytorch_model.bin (torch.save of the state dict, as
  transformers wrote it before safetensors), config.json beside it.
- OUTDIR/bin_sharded/: the same in two .bin shards with pytorch_model.bin.index.json.

Prints one line of JSON: {"versions": {...}}.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import open_clip_env  # noqa: E402

open_clip_env.prepare()

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel  # noqa: E402


def model(seed, text, vision, projection):
    torch.manual_seed(seed)
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection)
    m = CLIPModel(config).eval()
    # Random-init LayerNorms are (1, 0) and the logit scale a constant: perturb them so a wrong
    # reading of any of them shows.
    with torch.no_grad():
        for name, p in m.named_parameters():
            if 'layer_norm' in name or 'layrnorm' in name:
                p.add_(torch.randn_like(p) * 0.1)
    return m


def main():
    out = sys.argv[1]
    text = dict(hidden_size=32, intermediate_size=48, num_attention_heads=4, num_hidden_layers=2, hidden_act='gelu')
    vision = dict(hidden_size=64, intermediate_size=96, num_attention_heads=2, num_hidden_layers=2, image_size=32,
                  patch_size=8, hidden_act='gelu')
    gelu = model(0, text, vision, 16)
    folder = os.path.join(out, 'gelu_sharded')
    gelu.save_pretrained(folder, max_shard_size='200KB')
    CLIPImageProcessor(size={'shortest_edge': 32}, crop_size={'height': 32, 'width': 32}, image_mean=[0.5, 0.5, 0.5],
                       image_std=[0.5, 0.5, 0.5]).save_pretrained(folder)

    g = torch.Generator().manual_seed(1)
    images = torch.randn(3, 3, 32, 32, generator=g)
    tokens = torch.randint(1, 49000, (3, 77), generator=g)
    tokens[:, 0] = 49406
    for i, end in enumerate([5, 17, 76]):
        tokens[i, end] = 49407
        tokens[i, end + 1:] = 0
    with torch.no_grad():
        logits = gelu(input_ids=tokens, pixel_values=images).logits_per_image
    save_file({'images': images.contiguous(), 'text_tokens': tokens.to(torch.int64).contiguous(),
               'logits_per_image': logits.contiguous()}, os.path.join(out, 'gelu_sharded.ref.safetensors'))

    quick = model(2, dict(text, hidden_size=64, num_attention_heads=2, intermediate_size=80, hidden_act='quick_gelu'),
                  dict(vision, num_attention_heads=4, intermediate_size=256, hidden_act='quick_gelu'), 16)
    quick.save_pretrained(os.path.join(out, 'quick_single'))

    state = {k: v.contiguous() for k, v in gelu.state_dict().items()}
    for name in ('bin', 'bin_sharded'):
        os.makedirs(os.path.join(out, name), exist_ok=True)
        gelu.config.save_pretrained(os.path.join(out, name))
    torch.save(state, os.path.join(out, 'bin', 'pytorch_model.bin'))
    names = sorted(state)
    halves = [names[: len(names) // 2], names[len(names) // 2:]]
    weight_map = {}
    for i, part in enumerate(halves):
        shard = f'pytorch_model-{i + 1:05d}-of-00002.bin'
        torch.save({k: state[k] for k in part}, os.path.join(out, 'bin_sharded', shard))
        weight_map.update({k: shard for k in part})
    with open(os.path.join(out, 'bin_sharded', 'pytorch_model.bin.index.json'), 'w') as f:
        json.dump({'metadata': {'total_size': 0}, 'weight_map': weight_map}, f, indent=2)
    print(json.dumps({'versions': {'torch': torch.__version__, 'transformers': transformers.__version__}}))


if __name__ == '__main__':
    main()
