#!/usr/bin/env python3
"""Load clip-native's exported folders with the libraries they are for, and run them.

    export_check.py JOB.json OUT_DIR

JOB.json: {"hf": [ENTRY...], "open_clip": [ENTRY...]}, each ENTRY
    {"name", "dir", "inputs": safetensors with `images` F32 [n,3,R,R] and `tokens` (ids as F32) [n,77],
     "images": [image paths], "texts": [str], "tokenizer_texts": [str]}   (the last three: hf only)

hf:        CLIPModel.from_pretrained(dir) (loading info must be clean), its logits, embeddings and
           features on the inputs; CLIPProcessor.from_pretrained(dir): the tokenizer's ids of
           tokenizer_texts, the image processor's pixel values of `images` with the default backend
           and with backend="pil", and processor(text=texts, images=images) -> CLIPModel logits.
open_clip: create_model_and_transforms('local-dir:' + dir) and, for a model_cfg registered with
           add_model_config, create_model_and_transforms(name, pretrained=<weights file>); logits and
           features on the inputs (eval mode, then train mode for the image features); the
           local-dir preprocess's pixel values of `images`.

Tensors go to OUT_DIR/<library>.<name>.safetensors; one line of JSON on stdout says what was done,
with {"skip": reason} for a library that cannot be imported. Exit 0 unless the job itself is broken.
"""
import json
import os
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:  # torchvision's C++ operators may not load beside this torch; transformers' and open_clip's imports need them
    import open_clip_env
    STANDINS = open_clip_env.prepare()
except ImportError:
    STANDINS = None

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

torch.set_num_threads(1)


def features(out):
    # transformers 4 returns a tensor, 5 a model output with pooler_output.
    return out if torch.is_tensor(out) else out.pooler_output


def inputs_of(entry):
    t = load_file(entry['inputs'])
    return t['images'].float(), t['tokens'].round().long()


def open_images(paths):
    from PIL import Image
    return [Image.open(p) for p in paths]


def run_hf(entry, out_dir):
    from transformers import AutoImageProcessor, CLIPModel, CLIPProcessor
    report = {}
    tensors = {}
    model, info = CLIPModel.from_pretrained(entry['dir'], output_loading_info=True)
    model.eval()
    report['loading_info'] = {k: sorted(map(str, v)) for k, v in info.items()}
    vc, tc = model.config.vision_config, model.config.text_config
    report['config'] = {
        'vision': {k: getattr(vc, k) for k in ('hidden_size', 'intermediate_size', 'num_attention_heads', 'num_hidden_layers', 'hidden_act', 'image_size', 'patch_size')},
        'text': {k: getattr(tc, k) for k in ('hidden_size', 'intermediate_size', 'num_attention_heads', 'num_hidden_layers', 'hidden_act', 'max_position_embeddings', 'vocab_size')},
        'projection_dim': model.config.projection_dim,
    }
    images, tokens = inputs_of(entry)
    with torch.no_grad():
        out = model(input_ids=tokens, pixel_values=images)
        tensors['logits_per_image'] = out.logits_per_image
        tensors['logits_per_text'] = out.logits_per_text
        tensors['image_features'] = features(model.get_image_features(pixel_values=images))
        tensors['text_features'] = features(model.get_text_features(input_ids=tokens))

    processor = CLIPProcessor.from_pretrained(entry['dir'])
    report['tokenizer_class'] = type(processor.tokenizer).__name__
    report['image_processor_class'] = type(processor.image_processor).__name__
    report['tokenizer_ids'] = processor.tokenizer(entry.get('tokenizer_texts', []), add_special_tokens=False)['input_ids'] if entry.get('tokenizer_texts') else []
    pil = open_images(entry.get('images', []))
    if pil:
        tensors['pixels.default'] = processor.image_processor(images=pil, return_tensors='pt')['pixel_values']
        try:
            pil_processor = AutoImageProcessor.from_pretrained(entry['dir'], backend='pil')
            report['pil_image_processor_class'] = type(pil_processor).__name__
            tensors['pixels.pil'] = pil_processor(images=pil, return_tensors='pt')['pixel_values']
        except Exception as e:  # an older transformers without backends: one (PIL) processor
            report['pil_image_processor_error'] = f'{type(e).__name__}: {e}'[:500]
        if entry.get('texts'):
            enc = processor(text=entry['texts'], images=pil, return_tensors='pt', padding=True)
            with torch.no_grad():
                e2e = model(input_ids=enc['input_ids'], attention_mask=enc['attention_mask'], pixel_values=enc['pixel_values'])
            tensors['e2e.logits_per_image'] = e2e.logits_per_image
            report['e2e_input_ids'] = enc['input_ids'].tolist()
            if 'pixels.pil' in tensors:  # the same with the PIL image processor: Pillow's resize
                enc = CLIPProcessor(image_processor=pil_processor, tokenizer=processor.tokenizer)(text=entry['texts'], images=pil, return_tensors='pt', padding=True)
                with torch.no_grad():
                    e2e = model(input_ids=enc['input_ids'], attention_mask=enc['attention_mask'], pixel_values=enc['pixel_values'])
                tensors['e2e_pil.logits_per_image'] = e2e.logits_per_image
    save_file({k: v.detach().contiguous().float() for k, v in tensors.items()}, os.path.join(out_dir, f"hf.{entry['name']}.safetensors"))
    return report


def open_clip_outputs(model, images, tokens, prefix, tensors):
    model.eval()
    with torch.no_grad():
        img = model.encode_image(images)
        txt = model.encode_text(tokens)
        n_img = img / img.norm(dim=-1, keepdim=True)
        n_txt = txt / txt.norm(dim=-1, keepdim=True)
        logits = model.logit_scale.exp() * n_img @ n_txt.t()
    tensors[prefix + 'image_features'] = img
    tensors[prefix + 'text_features'] = txt
    tensors[prefix + 'logits_per_image'] = logits
    model.train()  # BatchNorm on batch statistics: the ResNet tower's image features depend on the image
    with torch.no_grad():
        tensors[prefix + 'train.image_features'] = model.encode_image(images)
    model.eval()


def run_open_clip(entry, out_dir):
    import open_clip
    report = {'open_clip': open_clip.__version__}
    tensors = {}
    images, tokens = inputs_of(entry)

    model, _, preprocess = open_clip.create_model_and_transforms('local-dir:' + entry['dir'])
    report['local_dir'] = {'class': type(model).__name__, 'preprocess': repr(preprocess)[:1000]}
    open_clip_outputs(model, images, tokens, 'local_dir.', tensors)
    pil = open_images(entry.get('images', []))
    if pil:
        tensors['pixels.local_dir'] = torch.stack([preprocess(im) for im in pil])

    with open(os.path.join(entry['dir'], 'open_clip_config.json'), encoding='utf-8') as f:
        model_cfg = json.load(f)['model_cfg']
    weights = [n for n in ('open_clip_model.safetensors', 'open_clip_pytorch_model.bin') if os.path.exists(os.path.join(entry['dir'], n))]
    with tempfile.TemporaryDirectory() as tmp:
        name = 'clip-native-export-' + entry['name']
        cfg_file = os.path.join(tmp, name + '.json')
        with open(cfg_file, 'w', encoding='utf-8') as f:
            json.dump(model_cfg, f)
        open_clip.add_model_config(cfg_file)
        model, _, _ = open_clip.create_model_and_transforms(name, pretrained=os.path.join(entry['dir'], weights[0]))
        report['registered'] = {'name': name, 'weights': weights[0], 'class': type(model).__name__}
        open_clip_outputs(model, images, tokens, 'registered.', tensors)
    save_file({k: v.detach().contiguous().float() for k, v in tensors.items()}, os.path.join(out_dir, f"open_clip.{entry['name']}.safetensors"))
    return report


def main():
    with open(sys.argv[1], encoding='utf-8') as f:
        job = json.load(f)
    out_dir = sys.argv[2]
    result = {'torch': torch.__version__, 'torchvision_standins': STANDINS}
    for library, runner, module in (('hf', run_hf, 'transformers'), ('open_clip', run_open_clip, 'open_clip')):
        entries = job.get(library, [])
        if not entries:
            continue
        try:
            imported = __import__(module)
            result[library + '_version'] = getattr(imported, '__version__', '?')
        except Exception as e:  # noqa: BLE001 -- any import failure is a reason to skip, said loudly
            result[library] = {'skip': f'{module} cannot be imported: {type(e).__name__}: {e}'[:1000]}
            continue
        result[library] = {}
        for entry in entries:
            try:
                result[library][entry['name']] = runner(entry, out_dir)
            except Exception as e:  # noqa: BLE001 -- reported per entry, the test fails on it
                result[library][entry['name']] = {'error': f'{type(e).__name__}: {e}', 'traceback': traceback.format_exc()[-3000:]}
    print(json.dumps(result))


if __name__ == '__main__':
    main()
