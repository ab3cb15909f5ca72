#!/usr/bin/env python3
"""Python peer of bench/preprocess.ts: openai/CLIP's _transform(224) with Pillow + numpy.

torchvision could not be used here: the only wheel available (0.28.0, for torch 2.13.0) is the
CUDA build and fails to load its ops next to torch 2.13.0+cpu. This is the transform written out
as the fixtures README describes it (Resize with Image.BICUBIC to torchvision's size, CenterCrop with
Python round, convert('RGB'), /255, Normalize), which is what torchvision runs for PIL images.

Reads a list of image paths (one per line), produces float32 batches [B,3,R,R], prints one JSON
line: {"images": n, "seconds": s, "cpu_seconds": c, "workers": w}: c is the CPU time of this
process and its pool's (user + system), what a per-core comparison divides by.
"""
import argparse
import json
import resource
import time
from multiprocessing import Pool

import numpy as np
from PIL import Image

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def clip_transform(path, resolution=224):
    im = Image.open(path)
    w, h = im.size
    if w <= h:
        size = (resolution, int(resolution * h / w))
    else:
        size = (int(resolution * w / h), resolution)
    im = im.resize(size, Image.BICUBIC)
    left = int(round((size[0] - resolution) / 2.0))
    top = int(round((size[1] - resolution) / 2.0))
    im = im.crop((left, top, left + resolution, top + resolution)).convert("RGB")
    x = np.asarray(im, dtype=np.float32) / np.float32(255)
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def cpu_seconds():
    """User + system time of this process and of its children that have ended (the pool's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--list", required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--resolution", type=int, default=224)
    args = parser.parse_args()
    with open(args.list) as f:
        paths = [line.strip() for line in f if line.strip()]

    start = time.perf_counter()
    cpu_start = cpu_seconds()
    batches = 0
    if args.workers > 1:
        with Pool(args.workers) as pool:
            # imap keeps order, like a DataLoader; chunks amortise the pickling.
            tensors = pool.imap(clip_transform, paths, chunksize=8)
            batch = []
            for t in tensors:
                batch.append(t)
                if len(batch) == args.batch_size:
                    np.stack(batch)
                    batches += 1
                    batch = []
            if batch:
                np.stack(batch)
                batches += 1
    else:
        for i in range(0, len(paths), args.batch_size):
            np.stack([clip_transform(p, args.resolution) for p in paths[i : i + args.batch_size]])
            batches += 1
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu_start
    print(json.dumps({"images": len(paths), "seconds": seconds, "cpu_seconds": cpu, "workers": args.workers, "batches": batches}))


if __name__ == "__main__":
    main()
