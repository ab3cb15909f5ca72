"""The side-by-side peer for bench/train-step.ts: Hugging Face CLIPModel with its default (ViT-B/32)
config, SDPA attention, bf16 autocast and fused Adam, random weights, a synthetic batch on the GPU.
Prints one JSON line like train-step.js --json. Run on the GPU machine: python3 bench/hf_peer.py --batch 256"""
import argparse
import json
import time

import torch
from transformers import CLIPConfig, CLIPModel

parser = argparse.ArgumentParser()
parser.add_argument("--batch", type=int, default=256)
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--warmup", type=int, default=5)
args = parser.parse_args()

start = time.perf_counter()
device = "cuda"
model = CLIPModel(CLIPConfig()).to(device).train()
model.config._attn_implementation = "sdpa"
opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.1, fused=True)
images = torch.randn(args.batch, 3, 224, 224, device=device)
tokens = torch.randint(1000, 40000, (args.batch, 77), device=device)
targets = torch.arange(args.batch, device=device)


def step():
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(input_ids=tokens, pixel_values=images)
        loss = (torch.nn.functional.cross_entropy(out.logits_per_image.float(), targets)
                + torch.nn.functional.cross_entropy(out.logits_per_text.float(), targets)) / 2
    loss.backward()
    opt.step()
    return loss


step()
torch.cuda.synchronize()
first = time.perf_counter() - start
for _ in range(args.warmup - 1):
    step()
torch.cuda.synchronize()
torch.cuda.reset_peak_memory_stats()  # the peak of the timed steps, as train-step.js reports it
t0 = time.perf_counter()
for _ in range(args.steps):
    loss = step()
torch.cuda.synchronize()
seconds = time.perf_counter() - t0
ips = args.batch * args.steps / seconds
print(json.dumps({"peer": "hf-CLIPModel-sdpa-bf16-fusedAdam", "model": "ViT-B/32", "batch": args.batch,
                  "imagesPerSecond": round(ips, 1), "msPerStep": round(seconds / args.steps * 1000, 2),
                  "tflops": round(44.2 * ips / 1000, 1), "firstStepSeconds": round(first, 2),
                  "peakGiB": round(torch.cuda.max_memory_allocated() / 2**30, 2), "loss": float(loss)}))
