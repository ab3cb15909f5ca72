#!/usr/bin/env python3
"""Retrieval metrics computed independently of clip-native, for test/retrieval*.test.ts.

    retrieval_reference.py IMAGES.npy TEXTS.npy CASE.json

IMAGES.npy [n, d] and TEXTS.npy [m, d] are features (normalised here again, as embed writes them
normalised already, unless "normalize" is false: integer features whose scores are exact, to check
the rule for ties); CASE.json holds {"text_image": [m ints], "scale": float, "batch": int}: text t
shows image text_image[t]. Instead of "scale", "weights" may name a safetensors file whose
logit_scale (a float32 scalar or [1]) gives scale = exp(logit_scale), read with numpy from the file.

Prints one line of JSON:
- "numpy": the COCO-style metrics with numpy alone: logits = images @ texts.T; each image row ranks
  all texts with a stable descending argsort and takes its best-ranked caption's position; each text
  row ranks all images and takes its image's position. R@k = mean(pos < k), mean rank = mean + 1,
  median rank = floor(median) + 1 (open_clip's get_clip_metrics), plus the positions themselves and
  the batched contrastive loss (captions of one image each other's positives).
- "open_clip": open_clip_train.train.get_clip_metrics itself, when every image has exactly one
  caption and text t shows image t (its own assumption), else null; "open_clip_skip" says why not.
"""
import json
import sys

import numpy as np


def positions(logits, targets):
    order = np.argsort(-logits, axis=1, kind='stable')
    rank_of = np.empty_like(order)
    rows = np.arange(logits.shape[0])[:, None]
    rank_of[rows, order] = np.arange(logits.shape[1])[None, :]
    return np.array([min(rank_of[r, t] for t in targets[r]) for r in range(logits.shape[0])])


def summary(pos):
    return {
        'r1': float(np.mean(pos < 1)),
        'r5': float(np.mean(pos < 5)),
        'r10': float(np.mean(pos < 10)),
        'meanRank': float(pos.mean() + 1),
        'medianRank': float(np.floor(np.median(pos)) + 1),
    }


def batched_loss(images, texts, text_image, scale, batch):
    total = 0.0
    m = len(text_image)
    for start in range(0, m, batch):
        idx = np.arange(start, min(start + batch, m))
        logits = scale * images[text_image[idx]].astype(np.float64) @ texts[idx].astype(np.float64).T
        same = (text_image[idx][:, None] == text_image[idx][None, :]).astype(np.float64)
        targets = same / same.sum(1, keepdims=True)

        def ce(x):
            x = x - x.max(1, keepdims=True)
            logp = x - np.log(np.exp(x).sum(1, keepdims=True))
            return float(-(targets * logp).sum(1).mean())

        total += len(idx) * (ce(logits) + ce(logits.T)) / 2
    return total / m


def logit_scale_of(file):
    with open(file, 'rb') as f:
        size = int.from_bytes(f.read(8), 'little')
        header = json.loads(f.read(size))
        entry = header['logit_scale']
        assert entry['dtype'] == 'F32', entry
        start, end = entry['data_offsets']
        f.seek(8 + size + start)
        return float(np.exp(np.frombuffer(f.read(end - start), dtype='<f4')[0]))


def open_clip_metrics(images, texts, scale):
    try:
        import open_clip_env

        open_clip_env.prepare()
        import torch
        from open_clip_train.train import get_clip_metrics
    except Exception as err:  # the test says why it could not compare
        return None, f'open_clip_train cannot be imported: {err}'
    got = get_clip_metrics(torch.from_numpy(images), torch.from_numpy(texts), scale)
    out = {}
    for name, key in (('image_to_text', 'imageToText'), ('text_to_image', 'textToImage')):
        out[key] = {
            'r1': float(got[f'{name}_R@1']),
            'r5': float(got[f'{name}_R@5']),
            'r10': float(got[f'{name}_R@10']),
            'meanRank': float(got[f'{name}_mean_rank']),
            'medianRank': float(got[f'{name}_median_rank']),
        }
    return out, None


def main():
    images = np.load(sys.argv[1]).astype(np.float32)
    texts = np.load(sys.argv[2]).astype(np.float32)
    with open(sys.argv[3]) as f:
        case = json.load(f)
    if case.get('normalize', True):
        images /= np.linalg.norm(images, axis=1, keepdims=True)
        texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    text_image = np.array(case['text_image'], dtype=np.int64)
    if 'weights' in case:
        case['scale'] = logit_scale_of(case['weights'])
    captions = [[] for _ in range(images.shape[0])]
    for t, i in enumerate(text_image):
        captions[i].append(t)
    logits = images @ texts.T
    i2t = positions(logits, captions)
    t2i = positions(logits.T, [[i] for i in text_image])
    result = {
        'numpy': {
            'imageToText': summary(i2t),
            'textToImage': summary(t2i),
            'loss': batched_loss(images, texts, text_image, case['scale'], case['batch']),
            'positions': {'imageToText': i2t.tolist(), 'textToImage': t2i.tolist()},
        },
        'open_clip': None,
        'open_clip_skip': None,
    }
    if len(text_image) == images.shape[0] and np.array_equal(text_image, np.arange(len(text_image))):
        result['open_clip'], result['open_clip_skip'] = open_clip_metrics(images, texts, case['scale'])
    else:
        result['open_clip_skip'] = 'several captions per image: not get_clip_metrics\' case'
    print(json.dumps(result))


if __name__ == '__main__':
    main()
