#!/usr/bin/env python3
"""Three steps of open_clip's own training step on a random-init open_clip model (test/family-parity.test.ts).

    open_clip_train3.py OUTDIR

The model: an open_clip ViT with exact GELU and heads != width / 64 in both towers, MLP widths != 4 x,
mean/std (0.5, 0.5, 0.5), saved to OUTDIR/oc_train/ as open_clip.push_to_hf_hub.save_for_hf lays a
folder out (open_clip_config.json, open_clip_pytorch_model.bin) before training.

The step is open_clip_train's (train.py, train_one_epoch with accum_freq 1, no grad clipping):
optimizer.zero_grad(); model_out = model(images, texts); losses = ClipLoss()(**model_out,
output_dict=True); sum(losses.values()).backward(); optimizer.step(); logit_scale.clamp_(0, ln 100),
fp32, model.train(), at a constant learning rate. The optimizer is main.py's: torch.optim.AdamW over
two groups, weight decay 0 for the parameters its `exclude` lambda picks (read from the installed
open_clip_train/main.py, so that this follows the library), `wd` for the rest.

One run, 'open_clip', with main.py's rule (the rule this project's AdamW follows too).

Writes OUTDIR/train3.safetensors: for b in 0..2 batch{b}.images (fp32, normalised by open_clip's
preprocess), batch{b}.text_tokens (int64); for each run R: R.losses [3], R.<param> (every parameter
after the 3 steps, fp32), R.after.logits_per_image (eval-mode forward of batch 0 after training).
Metadata: hyper (lr, betas, eps, wd), exclude_rule (its source text), R.decayed (names decayed), config.
Prints one line of JSON: {"folder", "weights", "hyper", "exclude_rule", "exclude_rule_source", "runs",
"decayed": {run: [...]}, "config", "versions"}.
"""
import json
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import open_clip_env  # noqa: E402

STANDINS = open_clip_env.prepare()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from family_parity import clip_config_from_open_clip, pil_images, pixels_for  # noqa: E402

HYPER = {'lr': 1e-3, 'betas': [0.9, 0.98], 'eps': 1e-6, 'wd': 0.2}
MODEL_CFG = {
    'embed_dim': 32,
    'quick_gelu': False,
    'vision_cfg': {'image_size': 32, 'layers': 2, 'width': 64, 'head_width': 16, 'patch_size': 8, 'mlp_ratio': 3.0},
    'text_cfg': {'context_length': 77, 'vocab_size': 49408, 'width': 48, 'heads': 3, 'layers': 2, 'mlp_ratio': 2.0},
}
PREPROCESS = {'mean': [0.5, 0.5, 0.5], 'std': [0.5, 0.5, 0.5]}
BATCHES = [
    ['a red square', 'a blue circle', 'two dogs on grass', 'a city at night', 'handwritten digits'],
    ['a bowl of soup', 'the moon over water', 'a bicycle', 'a crowded market', 'an old map'],
    ['a cat asleep', 'snow on a roof', 'a violin', 'a page of text', 'a green field'],
]
DOCUMENTED_RULE = 'lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or \'logit_scale\' in n'


def open_clip_exclude_rule():
    """main.py's `exclude` lambda as the installed open_clip_train writes it (its source and the function)."""
    source, origin = None, 'documented (open_clip_train/main.py not found)'
    try:
        import importlib.util
        spec = importlib.util.find_spec('open_clip_train')
        if spec and spec.submodule_search_locations:
            path = os.path.join(list(spec.submodule_search_locations)[0], 'main.py')
            with open(path, encoding='utf-8') as f:
                found = re.search(r'^\s*exclude\s*=\s*(lambda n, p:[^\n]+)$', f.read(), re.M)
            if found:
                source, origin = found.group(1).strip(), path
    except Exception as e:  # noqa: BLE001 -- fall back loudly
        origin = f'documented (reading open_clip_train/main.py failed: {e})'
    if source is None:
        print(f'open_clip_train3: WARNING: using the documented exclude rule: {origin}', file=sys.stderr)
        source = DOCUMENTED_RULE
    return source, eval(source), origin  # noqa: S307 -- the library's own one-line rule


def main():
    outdir = sys.argv[1]
    torch.set_num_threads(1)
    import open_clip
    from open_clip.push_to_hf_hub import save_config_for_hf
    from pathlib import Path

    folder = os.path.join(outdir, 'oc_train')
    os.makedirs(folder)
    with open(os.path.join(folder, 'open_clip_config.json'), 'w') as f:
        json.dump({'model_cfg': MODEL_CFG, 'preprocess_cfg': PREPROCESS}, f)
    torch.manual_seed(31)
    # output_dict as open_clip_train/main.py creates its model (train.py unpacks the dict into the loss).
    model = open_clip.create_model('local-dir:' + folder, output_dict=True)
    torch.save(model.state_dict(), os.path.join(folder, 'open_clip_pytorch_model.bin'))
    save_config_for_hf(model, Path(folder) / 'open_clip_config.json', model_config=MODEL_CFG)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    config = clip_config_from_open_clip(model, MODEL_CFG, PREPROCESS)

    _, _, preprocess = open_clip.create_model_and_transforms('local-dir:' + folder)
    size = MODEL_CFG['vision_cfg']['image_size']
    batches = []
    for b, texts in enumerate(BATCHES):
        pixels = pixels_for(100 + b, len(texts), size)
        images = torch.stack([preprocess(im) for im in pil_images(pixels)])
        batches.append((images, open_clip.tokenize(texts).to(torch.int64)))

    rule_source, exclude, rule_origin = open_clip_exclude_rule()
    rules = {'open_clip': exclude}
    out = {}
    for b, (images, toks) in enumerate(batches):
        out[f'batch{b}.images'] = images.contiguous()
        out[f'batch{b}.text_tokens'] = toks.contiguous()
    decayed = {}
    for run, rule in rules.items():
        model.load_state_dict(start)
        model.train()
        named = list(model.named_parameters())
        no_decay = [p for n, p in named if rule(n, p) and p.requires_grad]
        rest = [p for n, p in named if not rule(n, p) and p.requires_grad]
        decayed[run] = [n for n, p in named if not rule(n, p) and p.requires_grad]
        optimizer = torch.optim.AdamW([{'params': no_decay, 'weight_decay': 0.0}, {'params': rest, 'weight_decay': HYPER['wd']}],
                                      lr=HYPER['lr'], betas=tuple(HYPER['betas']), eps=HYPER['eps'])
        loss_fn = open_clip.ClipLoss()
        losses = []
        for images, toks in batches:
            optimizer.zero_grad()
            model_out = model(images, toks)
            terms = loss_fn(**model_out, output_dict=True)
            total = sum(terms.values())
            total.backward()
            optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            losses.append(float(total.detach()))
        out[f'{run}.losses'] = torch.tensor(losses, dtype=torch.float32)
        for n, p in model.named_parameters():
            out[f'{run}.{n}'] = p.detach().float().contiguous().clone()
        model.eval()
        with torch.no_grad():
            images, toks = batches[0]
            model_out = model(images, toks)
            out[f'{run}.after.logits_per_image'] = (model_out['logit_scale'] * model_out['image_features'] @ model_out['text_features'].T).contiguous()

    metadata = {'hyper': json.dumps(HYPER), 'exclude_rule': rule_source, 'config': json.dumps(config),
                **{f'{run}.decayed': json.dumps(names) for run, names in decayed.items()}}
    save_file(out, os.path.join(outdir, 'train3.safetensors'), metadata=metadata)
    import open_clip as oc
    print(json.dumps({'folder': folder, 'weights': ['open_clip_pytorch_model.bin'], 'hyper': HYPER, 'exclude_rule': rule_source,
                      'exclude_rule_source': rule_origin, 'runs': list(rules), 'decayed': decayed, 'config': config,
                      'parameters': [n for n, _ in model.named_parameters()], 'standins': STANDINS,
                      'versions': {'torch': torch.__version__, 'open_clip': oc.__version__, 'numpy': np.__version__}}))


if __name__ == '__main__':
    main()
