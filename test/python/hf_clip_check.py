#!/usr/bin/env python3
"""Check OpenAI -> Hugging Face renamed weights by running them in transformers' own CLIPModel.

    hf_clip_check.py HF.safetensors GOLDEN.safetensors [--config JSON] [--atol 1e-5]

HF.safetensors holds CLIPModel-named weights (what openai_to_hf produced). The OpenAI CLIP
config (embed_dim, vision_width, ...) comes from --config or from HF.safetensors'
__metadata__["config"] (the fixtures carry it there). The model runs the golden batch
(`images`, `text_tokens`) in eval mode and must reproduce the golden `logits_per_image`,
`logits_per_text` and the normalised `image_features` / `text_features` within atol (the
attention kernels differ, so not bitwise). ViT only. Exit 0 on success, 1 on a mismatch,
2 when transformers is missing or the weights do not load strictly. Prints one line of JSON.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import open_clip_env  # noqa: E402  (before transformers, which imports torchvision where it is installed)

open_clip_env.prepare()
import torch  # noqa: E402
from weights_ref import read_safetensors  # noqa: E402


def hf_config(c):
    from transformers import CLIPConfig
    text = dict(hidden_size=c['transformer_width'], num_hidden_layers=c['transformer_layers'],
                num_attention_heads=c['transformer_heads'], intermediate_size=4 * c['transformer_width'],
                vocab_size=c['vocab_size'], max_position_embeddings=c['context_length'],
                hidden_act='quick_gelu', layer_norm_eps=1e-5, bos_token_id=49406, eos_token_id=49407)
    vision = dict(hidden_size=c['vision_width'], num_hidden_layers=c['vision_layers'],
                  num_attention_heads=c['vision_width'] // 64, intermediate_size=4 * c['vision_width'],
                  image_size=c['image_resolution'], patch_size=c['vision_patch_size'],
                  hidden_act='quick_gelu', layer_norm_eps=1e-5)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=c['embed_dim'])


def features(out):
    # transformers 4 returns a tensor, 5 a model output with pooler_output.
    return out if torch.is_tensor(out) else out.pooler_output


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('hf')
    ap.add_argument('golden')
    ap.add_argument('--config')
    ap.add_argument('--atol', type=float, default=1e-5)
    args = ap.parse_args()
    try:
        from transformers import CLIPModel
    except ImportError as e:
        print(json.dumps({'ok': False, 'error': f'transformers not installed: {e}'}))
        return 2
    weights, meta, _ = read_safetensors(args.hf)
    config = json.loads(args.config or meta['config'])
    model = CLIPModel(hf_config(config)).eval()
    try:
        model.load_state_dict(dict(weights), strict=True)
    except RuntimeError as e:
        print(json.dumps({'ok': False, 'error': f'load_state_dict: {e}'[:2000]}))
        return 2
    golden = dict(read_safetensors(args.golden)[0])
    with torch.no_grad():
        out = model(input_ids=golden['text_tokens'], pixel_values=golden['images'])
        img = features(model.get_image_features(pixel_values=golden['images']))
        txt = features(model.get_text_features(input_ids=golden['text_tokens']))
    norm = lambda t: t / t.norm(dim=-1, keepdim=True)  # noqa: E731
    pairs = {
        'image_features': (img, golden['image_features']),
        'text_features': (txt, golden['text_features']),
        'logits_per_image': (out.logits_per_image, golden['logits_per_image']),
        'logits_per_text': (out.logits_per_text, golden['logits_per_text']),
        'image_embeds_normalised': (out.image_embeds, norm(golden['image_features'])),
    }
    diffs = {k: float((a - b).abs().max()) for k, (a, b) in pairs.items()}
    ok = all(d <= args.atol for d in diffs.values())
    print(json.dumps({'ok': ok, 'max_abs_diff': diffs, 'atol': args.atol}))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
