#!/usr/bin/env python3
"""The reference CLIP model for the model tests: open_clip's `CLIP` with QuickGELU, from the
open_clip_torch package (pip). It is openai/CLIP's architecture with openai/CLIP's state-dict names
(open_clip loads OpenAI's released weights into it unchanged); this module only builds it from the
configuration clip-native's files carry and runs it the way the tests compare.

Where open_clip and openai/CLIP's model.py differ, and what this module does about it:
- `forward` returns (normalised image features, normalised text features, logit_scale.exp()) instead
  of the two logit matrices: `logits` multiplies them out, as model.py's forward does.
- A residual block registers ln_1, attn, ln_2, mlp (openai/CLIP: attn, ln_1, mlp, ln_2), so
  state_dict() lists each block's entries in another order; `openai_order` gives model.py's order
  (checked against OpenAI-written data: shared/fixtures/models/tiny_vit.visual.state_dict.pt).

CLI (one line of JSON on stdout):

    clip_reference.py describe [--config NAME=JSON ...] [--witness NAME=FILE]
        {"counts": {name: parameter count} for the nine released architectures (open_clip's own
         model configurations, built on the meta device: no memory, no init cost), "keys": {name:
         [[key, shape, dtype], ...]} for each --config (state_dict() entries in openai/CLIP's
         order), "counts_given": {name: count} for each --config}

    clip_reference.py describe ... --witness NAME=FILE
        also "witness": {"file": FILE, "matches": bool}: whether NAME's `visual.` entries, in the order
        given above, are the order of FILE, a torch.save'd OrderedDict of a visual tower's state dict
        that openai/CLIP's model.py wrote.

Imported by autocast_ref.py and formats_ref.py for clip_from_config, run_forward, convert_weights,
fp16_round and openai_state_dict.
"""
import argparse
import json
import os
import re
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import open_clip_env  # noqa: E402

open_clip_env.prepare()
import open_clip  # noqa: E402
import torch  # noqa: E402
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg, convert_weights_to_lp  # noqa: E402

# clip.available_models() order, and open_clip's name for each architecture's configuration.
RELEASED = OrderedDict([
    ('RN50', 'RN50'), ('RN101', 'RN101'), ('RN50x4', 'RN50x4'), ('RN50x16', 'RN50x16'), ('RN50x64', 'RN50x64'),
    ('ViT-B/32', 'ViT-B-32'), ('ViT-B/16', 'ViT-B-16'), ('ViT-L/14', 'ViT-L-14'), ('ViT-L/14@336px', 'ViT-L-14-336'),
])


def _on(device, build):
    if device is None:
        return build()
    with torch.device(device):
        return build()


def clip_from_config(config, device=None):
    """The model for a configuration in the form clip-native's files carry (openai/CLIP's build_model arguments)."""
    layers = config['vision_layers']
    vision = CLIPVisionCfg(layers=tuple(layers) if isinstance(layers, list) else layers, width=config['vision_width'],
                           patch_size=config['vision_patch_size'], image_size=config['image_resolution'])
    text = CLIPTextCfg(context_length=config['context_length'], vocab_size=config['vocab_size'], width=config['transformer_width'],
                       heads=config['transformer_heads'], layers=config['transformer_layers'])
    return _on(device, lambda: CLIP(config['embed_dim'], vision_cfg=vision, text_cfg=text, quick_gelu=True))


def released_model(name, device=None):
    """One of the nine released architectures from open_clip's own configuration of it."""
    cfg = open_clip.get_model_config(RELEASED[name])
    return _on(device, lambda: CLIP(cfg['embed_dim'], vision_cfg=CLIPVisionCfg(**cfg['vision_cfg']),
                                    text_cfg=CLIPTextCfg(**cfg['text_cfg']), quick_gelu=True))


def logits(model, images, tokens):
    """(logits_per_image, logits_per_text) as openai/CLIP's forward returns them."""
    image_features, text_features, scale = model(images, tokens)
    per_image = scale * image_features @ text_features.t()
    return per_image, per_image.t()


_BLOCK_ORDER = {'attn': 0, 'ln_1': 1, 'mlp': 2, 'ln_2': 3}
_BLOCK_KEY = re.compile(r'^(.*\.resblocks\.\d+\.)(attn|ln_1|mlp|ln_2)\.')


def openai_order(keys):
    """`keys` (open_clip's state_dict() order) in openai/CLIP's: within each residual block attn, ln_1, mlp, ln_2."""
    def rank(item):
        index, key = item
        match = _BLOCK_KEY.match(key)
        if not match:
            return (index,)
        first = min(i for i, k in enumerate(keys) if k.startswith(match.group(1)))
        return (first, _BLOCK_ORDER[match.group(2)], index)
    return [key for _, key in sorted(enumerate(keys), key=rank)]


def openai_state_dict(model):
    state = model.state_dict()
    return OrderedDict((k, state[k]) for k in openai_order(list(state)))


def convert_weights(model):
    """fp16 where openai/CLIP's convert_weights makes it: convolutions, linear layers, attention, projections."""
    convert_weights_to_lp(model, torch.float16)
    return model


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def fp16_round(model):
    """convert_weights, then back to fp32: the values an fp16 archive holds, computed in fp32."""
    convert_weights(model)
    return model.float()


@torch.no_grad()
def run_forward(model, images, tokens, train=False):
    model.train(train)
    image_features = model.encode_image(images)
    text_features = model.encode_text(tokens)
    logits_per_image, logits_per_text = logits(model, images, tokens)
    return OrderedDict(image_features=image_features.float(), text_features=text_features.float(),
                       logits_per_image=logits_per_image.float(), logits_per_text=logits_per_text.float())


def describe(configs):
    out = {'counts': {}, 'keys': {}, 'counts_given': {}}
    for name in RELEASED:
        out['counts'][name] = parameter_count(released_model(name, 'meta'))
    for name, config in configs.items():
        model = clip_from_config(config, 'meta')
        out['counts_given'][name] = parameter_count(model)
        out['keys'][name] = [[k, list(v.shape), str(v.dtype).replace('torch.', '')] for k, v in openai_state_dict(model).items()]
    return out


def witness(configs, spec):
    """Whether openai_order agrees with a visual state dict openai/CLIP wrote (see the module's docstring)."""
    name, _, file = spec.partition('=')
    ours = [k[len('visual.'):] for k in openai_order(list(clip_from_config(configs[name], 'meta').state_dict())) if k.startswith('visual.')]
    return {'file': file, 'matches': ours == list(torch.load(file))}


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest='cmd', required=True)
    d = sub.add_parser('describe')
    d.add_argument('--config', action='append', default=[], help='NAME=JSON')
    d.add_argument('--witness', help='NAME=FILE')
    args = ap.parse_args()
    configs = {}
    for item in args.config:
        name, _, text = item.partition('=')
        configs[name] = json.loads(text)
    out = describe(configs)
    if args.witness:
        out['witness'] = witness(configs, args.witness)
    print(json.dumps(out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
