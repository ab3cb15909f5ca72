#!/usr/bin/env python3
"""Random-init CLIP models of other families, saved as their libraries' users save them, with reference
outputs from the libraries themselves (test/family-parity.test.ts).

    family_parity.py OUTDIR

For each case (open_clip ViT/ResNet, GELU/QuickGELU, heads != width / 64, MLP widths != 4 x width,
mean/std other than OpenAI's; transformers CLIPModel with the same variety, saved plain, sharded,
as pytorch_model.bin and in fp16):

- OUTDIR/<case>/ is the saved folder: open_clip's layout (open_clip_config.json with model_cfg and
  preprocess_cfg, and open_clip_model.safetensors or open_clip_pytorch_model.bin, as
  open_clip.push_to_hf_hub.save_for_hf writes them), or transformers' save_pretrained (config.json,
  model.safetensors or its shards and index, preprocessor_config.json from CLIPImageProcessor).
- The reference is computed from the saved folder read back by the library (open_clip.create_model
  ('local-dir:...') / CLIPModel.from_pretrained, in fp32 and eval mode), on fixed inputs: uint8 pixels
  put through the library's own preprocessing (so `images` are normalised with the folder's mean/std),
  and tokens from open_clip.tokenize.
- OUTDIR/<case>.ref.safetensors holds pixels (uint8 [n, R, R, 3]), images (fp32 [n, 3, R, R]),
  text_tokens (int64 [n, 77]), image_features, text_features (unnormalised), logits_per_image,
  logits_per_text.

Prints one line of JSON: {"cases": [{name, library, folder, weights, dtype, config, notes}],
"versions": {...}, "standins": [...]}; `config` is the expected ClipConfig in this project's terms
(test/../src/model/config.ts), derived from what the library built.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import open_clip_env  # noqa: E402

STANDINS = open_clip_env.prepare()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

TEXTS = ['a photo of a cat', 'a diagram of two towers', 'an empty room with a window', 'fp32 logits, please']
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
OTHER_MEAN = (0.5, 0.5, 0.5)
OTHER_STD = (0.5, 0.5, 0.5)


def pixels_for(seed, n, size):
    g = np.random.default_rng(seed)
    return g.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def pil_images(pixels):
    from PIL import Image
    return [Image.fromarray(p, 'RGB') for p in pixels]


def tokens():
    import open_clip
    return open_clip.tokenize(TEXTS).to(torch.int64)


def write_reference(path, pixels, images, toks, image_features, text_features, logits_per_image, logits_per_text, metadata):
    tensors = {
        'pixels': torch.from_numpy(np.ascontiguousarray(pixels)),
        'images': images.float().contiguous(),
        'text_tokens': toks.contiguous(),
        'image_features': image_features.float().contiguous(),
        'text_features': text_features.float().contiguous(),
        'logits_per_image': logits_per_image.float().contiguous(),
        'logits_per_text': logits_per_text.float().contiguous(),
    }
    save_file(tensors, path, metadata={k: json.dumps(v) for k, v in metadata.items()})


# ----------------------------------------------------------------------------------------------------
# open_clip

def open_clip_cfg(embed_dim, vision, text, quick_gelu):
    return {'embed_dim': embed_dim, 'quick_gelu': quick_gelu, 'vision_cfg': vision, 'text_cfg': text}


OPEN_CLIP_CASES = [
    # name, seed, model_cfg, preprocess mean/std, weights file, dtype
    ('oc_vit_gelu', 11, open_clip_cfg(
        32,
        {'image_size': 64, 'layers': 2, 'width': 96, 'head_width': 24, 'patch_size': 16, 'mlp_ratio': 2.5},
        {'context_length': 77, 'vocab_size': 49408, 'width': 48, 'heads': 3, 'layers': 2},
        False), (OTHER_MEAN, OTHER_STD), 'open_clip_pytorch_model.bin', 'fp32', {'resize_mode': 'squash'}),
    ('oc_vit_quickgelu', 12, open_clip_cfg(
        32,
        {'image_size': 32, 'layers': 2, 'width': 64, 'head_width': 16, 'patch_size': 8},
        {'context_length': 77, 'vocab_size': 49408, 'width': 64, 'heads': 4, 'layers': 2, 'mlp_ratio': 3.0},
        True), (OPENAI_MEAN, OPENAI_STD), 'open_clip_model.safetensors', 'fp32'),
    ('oc_rn_gelu_fp16', 13, open_clip_cfg(
        32,
        {'image_size': 64, 'layers': [1, 1, 1, 1], 'width': 16, 'head_width': 16},
        {'context_length': 77, 'vocab_size': 49408, 'width': 48, 'heads': 4, 'layers': 2},
        False), (OTHER_MEAN, OTHER_STD), 'open_clip_model.safetensors', 'fp16'),
    ('oc_rn_quickgelu', 14, open_clip_cfg(
        48,
        {'image_size': 32, 'layers': [1, 1, 1, 1], 'width': 32, 'head_width': 64},
        {'context_length': 77, 'vocab_size': 49408, 'width': 64, 'heads': 2, 'layers': 2},
        True), ((0.45, 0.5, 0.55), (0.2, 0.25, 0.3)), 'open_clip_pytorch_model.bin', 'fp32'),
    ('oc_vit_p14_fp16_bin', 15, open_clip_cfg(
        24,
        {'image_size': 56, 'layers': 3, 'width': 80, 'head_width': 20, 'patch_size': 14},
        {'context_length': 77, 'vocab_size': 49408, 'width': 40, 'heads': 5, 'layers': 3},
        True), ((0.3, 0.4, 0.5), (0.2, 0.2, 0.25)), 'open_clip_pytorch_model.bin', 'fp16'),
    ('oc_rn_deeper', 16, open_clip_cfg(
        40,
        {'image_size': 64, 'layers': [2, 1, 2, 1], 'width': 24, 'head_width': 48},
        {'context_length': 77, 'vocab_size': 49408, 'width': 32, 'heads': 4, 'layers': 1, 'mlp_ratio': 2.0},
        False), (OPENAI_MEAN, OPENAI_STD), 'open_clip_model.safetensors', 'fp32'),
]


def clip_config_from_open_clip(model, model_cfg, preprocess):
    """The project's ClipConfig for an open_clip CLIP, read off the built modules."""
    v, t = model_cfg['vision_cfg'], model_cfg['text_cfg']
    resnet = isinstance(v['layers'], (list, tuple))
    visual = model.visual
    if resnet:
        heads = visual.attnpool.num_heads
        vision_mlp = None
    else:
        block = visual.transformer.resblocks[0]
        heads = block.attn.num_heads
        vision_mlp = block.mlp.c_fc.out_features
    text_block = model.transformer.resblocks[0]
    act = type(text_block.mlp.gelu).__name__
    config = {
        'embed_dim': model_cfg['embed_dim'],
        'image_resolution': v['image_size'],
        'vision_layers': list(v['layers']) if resnet else v['layers'],
        'vision_width': v['width'],
        'vision_patch_size': None if resnet else v['patch_size'],
        'context_length': t['context_length'],
        'vocab_size': t['vocab_size'],
        'transformer_width': t['width'],
        'transformer_heads': text_block.attn.num_heads,
        'transformer_layers': t['layers'],
        'activation': {'QuickGELU': 'quick_gelu', 'GELU': 'gelu'}[act],
        'vision_heads': heads,
        'transformer_mlp_width': text_block.mlp.c_fc.out_features,
        'image_mean': list(preprocess['mean']),
        'image_std': list(preprocess['std']),
    }
    if preprocess.get('resize_mode', 'shortest') != 'shortest':
        config['image_resize_mode'] = preprocess['resize_mode']
    if vision_mlp is not None:
        config['vision_mlp_width'] = vision_mlp
    return config


def open_clip_case(outdir, name, seed, model_cfg, mean_std, weights_name, dtype, extra_preprocess=None):
    import open_clip
    from open_clip.push_to_hf_hub import save_config_for_hf
    folder = os.path.join(outdir, name)
    os.makedirs(folder)
    mean, std = mean_std
    # As a user of a custom architecture does: a local-dir config, create_model, train..., save_for_hf's layout.
    with open(os.path.join(folder, 'open_clip_config.json'), 'w') as f:
        json.dump({'model_cfg': model_cfg, 'preprocess_cfg': {'mean': list(mean), 'std': list(std), **(extra_preprocess or {})}}, f)
    torch.manual_seed(seed)
    model = open_clip.create_model('local-dir:' + folder)
    assert tuple(model.visual.image_mean) == tuple(mean), (model.visual.image_mean, mean)
    state = model.state_dict()
    if dtype == 'fp16':
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    path = os.path.join(folder, weights_name)
    if weights_name.endswith('.safetensors'):
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    else:
        torch.save(state, path)
    save_config_for_hf(model, __import__('pathlib').Path(folder) / 'open_clip_config.json', model_config=model_cfg)
    del model

    # The reference: the folder read back by open_clip, fp32, eval mode, its own preprocessing.
    model, _, preprocess = open_clip.create_model_and_transforms('local-dir:' + folder)
    model.eval()
    assert next(model.parameters()).dtype == torch.float32
    size = model_cfg['vision_cfg']['image_size']
    pixels = pixels_for(seed, len(TEXTS), size)
    images = torch.stack([preprocess(im) for im in pil_images(pixels)])
    toks = tokens()
    with torch.no_grad():
        image_features = model.encode_image(images)
        text_features = model.encode_text(toks)
        out = model(images, toks)
        scale = out['logit_scale'] if isinstance(out, dict) else out[2]
        imf = out['image_features'] if isinstance(out, dict) else out[0]
        txf = out['text_features'] if isinstance(out, dict) else out[1]
        logits_per_image = scale * imf @ txf.T
    preprocess_cfg = {'mean': list(model.visual.image_mean), 'std': list(model.visual.image_std),
                      'resize_mode': getattr(model.visual, 'preprocess_cfg', {}).get('resize_mode', 'shortest')}
    config = clip_config_from_open_clip(model, model_cfg, preprocess_cfg)
    # The library's preprocessing of an R x R image is (x / 255 - mean) / std: say how far from it.
    formula = (torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    write_reference(os.path.join(outdir, f'{name}.ref.safetensors'), pixels, images, toks, image_features, text_features,
                    logits_per_image, logits_per_image.T, {'config': config})
    return {'name': name, 'library': 'open_clip', 'folder': folder, 'weights': [weights_name], 'dtype': dtype, 'config': config,
            'preprocess_vs_formula': float((images - formula).abs().max()),
            'notes': f"open_clip {'ResNet' if isinstance(model_cfg['vision_cfg']['layers'], list) else 'ViT'}, "
                     f"{config['activation']}, vision heads {config['vision_heads']}, text heads {config['transformer_heads']}, "
                     f"{dtype} {weights_name}"}


# ----------------------------------------------------------------------------------------------------
# transformers

HF_CASES = [
    # name, seed, text (hidden, heads, intermediate, act), vision (hidden, heads, intermediate, patch, image),
    # projection, mean/std, save mode
    ('hf_gelu', 21, (48, 3, 96, 'gelu'), (96, 4, 200, 16, 64), 32, (OTHER_MEAN, OTHER_STD), 'safetensors'),
    ('hf_quickgelu_sharded', 22, (64, 2, 128, 'quick_gelu'), (64, 2, 160, 8, 32), 24, (OPENAI_MEAN, OPENAI_STD), 'sharded'),
    ('hf_gelu_bin', 23, (64, 4, 256, 'gelu'), (48, 3, 96, 8, 32), 32, ((0.4, 0.45, 0.5), (0.3, 0.3, 0.3)), 'bin'),
    ('hf_quickgelu_bin_sharded', 25, (32, 2, 80, 'quick_gelu'), (80, 5, 160, 16, 32), 16, (OTHER_MEAN, OTHER_STD), 'bin_sharded'),
    ('hf_quickgelu_fp16', 24, (48, 4, 192, 'quick_gelu'), (64, 8, 128, 16, 48), 32, (OPENAI_MEAN, OPENAI_STD), 'fp16'),
]


def hf_case(outdir, name, seed, text, vision, projection, mean_std, mode):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel
    folder = os.path.join(outdir, name)
    os.makedirs(folder)
    t_hidden, t_heads, t_inter, t_act = text
    v_hidden, v_heads, v_inter, patch, image = vision
    config = CLIPConfig(
        text_config={'hidden_size': t_hidden, 'num_attention_heads': t_heads, 'intermediate_size': t_inter, 'hidden_act': t_act,
                     'num_hidden_layers': 2, 'vocab_size': 49408, 'max_position_embeddings': 77},
        vision_config={'hidden_size': v_hidden, 'num_attention_heads': v_heads, 'intermediate_size': v_inter, 'hidden_act': t_act,
                       'num_hidden_layers': 2, 'patch_size': patch, 'image_size': image},
        projection_dim=projection)
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    mean, std = mean_std
    processor = CLIPImageProcessor(image_mean=list(mean), image_std=list(std), size={'shortest_edge': image},
                                   crop_size={'height': image, 'width': image})
    processor.save_pretrained(folder)
    if mode == 'safetensors':
        model.save_pretrained(folder)
        weights = ['model.safetensors']
    elif mode == 'sharded':
        model.save_pretrained(folder, max_shard_size='1MB')
        with open(os.path.join(folder, 'model.safetensors.index.json')) as f:
            weights = sorted(set(json.load(f)['weight_map'].values()))
        assert len(weights) > 1, weights
    elif mode == 'bin':
        # What transformers < 5 wrote with safe_serialization=False (and what many hub folders hold).
        model.config.save_pretrained(folder)
        torch.save(model.state_dict(), os.path.join(folder, 'pytorch_model.bin'))
        weights = ['pytorch_model.bin']
    elif mode == 'bin_sharded':
        # transformers < 5's sharded .bin layout (save_pretrained(safe_serialization=False, max_shard_size=...)):
        # pytorch_model-0000i-of-0000n.bin state dicts and pytorch_model.bin.index.json's weight_map.
        model.config.save_pretrained(folder)
        state = model.state_dict()
        names = list(state)
        parts = [names[:len(names) // 2], names[len(names) // 2:]]
        weights, weight_map = [], {}
        for i, part in enumerate(parts):
            shard = f'pytorch_model-{i + 1:05d}-of-{len(parts):05d}.bin'
            torch.save({k: state[k] for k in part}, os.path.join(folder, shard))
            weights.append(shard)
            weight_map.update({k: shard for k in part})
        total = sum(v.numel() * v.element_size() for v in state.values())
        with open(os.path.join(folder, 'pytorch_model.bin.index.json'), 'w') as f:
            json.dump({'metadata': {'total_size': total}, 'weight_map': weight_map}, f, indent=2)
    elif mode == 'fp16':
        model.to(torch.float16).save_pretrained(folder)
        weights = ['model.safetensors']
    else:
        raise ValueError(mode)
    del model

    model = CLIPModel.from_pretrained(folder, dtype=torch.float32).eval()
    assert next(model.parameters()).dtype == torch.float32
    processor = CLIPImageProcessor.from_pretrained(folder)
    pixels = pixels_for(seed, len(TEXTS), image)
    images = processor(images=pil_images(pixels), return_tensors='pt')['pixel_values'].float()
    toks = tokens()
    with torch.no_grad():
        image_features = model.get_image_features(pixel_values=images)
        text_features = model.get_text_features(input_ids=toks)
        if not torch.is_tensor(image_features):  # transformers 5 returns outputs with pooler_output
            image_features = image_features.pooler_output
            text_features = text_features.pooler_output
        out = model(input_ids=toks, pixel_values=images)
    # The features are the projected, unnormalised ones (what CLIPModel normalises into image_embeds).
    for features, embeds in ((image_features, out.image_embeds), (text_features, out.text_embeds)):
        assert torch.allclose(torch.nn.functional.normalize(features, dim=-1), embeds, atol=1e-6), 'unexpected get_*_features output'
    clip_config = {
        'embed_dim': projection,
        'image_resolution': image,
        'vision_layers': 2,
        'vision_width': v_hidden,
        'vision_patch_size': patch,
        'context_length': 77,
        'vocab_size': 49408,
        'transformer_width': t_hidden,
        'transformer_heads': t_heads,
        'transformer_layers': 2,
        'activation': t_act,
        'vision_heads': v_heads,
        'vision_mlp_width': v_inter,
        'transformer_mlp_width': t_inter,
        'image_mean': list(processor.image_mean),
        'image_std': list(processor.image_std),
    }
    formula = (torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    write_reference(os.path.join(outdir, f'{name}.ref.safetensors'), pixels, images, toks, image_features, text_features,
                    out.logits_per_image, out.logits_per_text, {'config': clip_config})
    return {'name': name, 'library': 'transformers', 'folder': folder, 'weights': weights, 'dtype': 'fp16' if mode == 'fp16' else 'fp32',
            'config': clip_config, 'preprocess_vs_formula': float((images - formula).abs().max()),
            'notes': f'transformers CLIPModel, {t_act}, vision heads {v_heads}, text heads {t_heads}, '
                     f'MLP {v_inter}/{t_inter}, saved {mode} ({len(weights)} file{"s" if len(weights) > 1 else ""})'}


def main():
    outdir = sys.argv[1]
    torch.set_num_threads(1)
    import open_clip
    import transformers
    cases = []
    for case in OPEN_CLIP_CASES:
        cases.append(open_clip_case(outdir, *case))
    for case in HF_CASES:
        cases.append(hf_case(outdir, *case))
    print(json.dumps({'cases': cases, 'standins': STANDINS,
                      'versions': {'torch': torch.__version__, 'open_clip': open_clip.__version__, 'transformers': transformers.__version__}}))


if __name__ == '__main__':
    main()
