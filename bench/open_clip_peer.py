"""The side-by-side peer for bench/train-step.ts on large models (issue 23): open_clip's own model and
training step, as its training script runs it: random weights, bf16 autocast, fused AdamW (weight decay
0.1), ClipLoss, all 77 text positions, a synthetic batch already on the GPU, optionally with
model.set_grad_checkpointing() (open_clip's --grad-checkpointing) and torch.compile. Prints one JSON
line like train-step.js --json; a batch that does not fit prints {"error": "out of memory", ...}.
--batch auto: the largest power of two that fits, found with real steps (as train-step.js --batch auto).
Run on the GPU machine: python3 bench/open_clip_peer.py --model ViT-L-14 --batch 64 [--grad-checkpointing] [--compile]
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "test", "python"))
import open_clip_env  # noqa: E402

open_clip_env.prepare()
import open_clip  # noqa: E402
import torch  # noqa: E402
from open_clip.loss import ClipLoss  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="ViT-B-16")
parser.add_argument("--batch", default="64")
parser.add_argument("--steps", type=int, default=10)
parser.add_argument("--warmup", type=int, default=3)
parser.add_argument("--grad-checkpointing", action="store_true")
parser.add_argument("--compile", action="store_true")
args = parser.parse_args()

device = "cuda"
model = open_clip.create_model(args.model, pretrained=None, device=device).train()
if args.grad_checkpointing:
    model.set_grad_checkpointing(True)
step_model = torch.compile(model) if args.compile else model
resolution = model.visual.image_size[0] if isinstance(model.visual.image_size, tuple) else model.visual.image_size
decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "bn" not in n and "ln" not in n and "logit_scale" not in n]
no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "bn" not in n and "ln" not in n and "logit_scale" not in n)]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-5, fused=True)
loss_fn = ClipLoss()


def batch_of(n):
    images = torch.randn(n, 3, resolution, resolution, device=device)
    tokens = torch.randint(1000, 40000, (n, 77), device=device)
    tokens[:, -1] = 49407
    return images, tokens


def step(images, tokens):
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        image_features, text_features, logit_scale = step_model(images, tokens)
        loss = loss_fn(image_features, text_features, logit_scale)
    loss.backward()
    opt.step()
    return loss


def fits(n):
    try:
        step(*batch_of(n))
        torch.cuda.synchronize()
        return True
    except torch.OutOfMemoryError:
        opt.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()
        return False


def largest_batch():
    best, n = 0, 1
    while n <= 4096 and fits(n):
        best, n = n, n * 2
    return best


row = {"peer": "open_clip", "model": args.model, "precision": "bf16", "textLength": 77, "gradCheckpointing": args.grad_checkpointing,
       "compile": args.compile, "torch": torch.__version__, "open_clip": open_clip.__version__, "gpu": torch.cuda.get_device_name(0)}
batch = largest_batch() if args.batch == "auto" else int(args.batch)
row.update(batch=batch, batchAuto=args.batch == "auto")
try:
    images, tokens = batch_of(batch)
    for _ in range(args.warmup):
        step(images, tokens)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step(images, tokens)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    row.update(imagesPerSecond=round(batch * args.steps / seconds, 1), msPerStep=round(seconds / args.steps * 1000, 2), loss=loss.item(),
               peakGiB=round(torch.cuda.max_memory_allocated() / 2**30, 2), peakReservedGiB=round(torch.cuda.max_memory_reserved() / 2**30, 2))
except torch.OutOfMemoryError:
    row.update(error="out of memory")
print(json.dumps(row))
