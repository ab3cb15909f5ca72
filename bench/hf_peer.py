"""The side-by-side peer for bench/train-step.ts: Hugging Face CLIPModel with its default (ViT-B/32)
config, SDPA attention, bf16 autocast and fused Adam, random weights, a synthetic batch already on the GPU.
Prompts as train-step.js makes them (start token, 11 tokens, end token, zeros), over --text-length
positions: 77 (default) as the Python reference runs them, 16 as clip-native runs these prompts by default
(cut after the end token). TFLOP/s counts the positions run, as bench/flops.ts does.
Prints one JSON line like train-step.js --json. Run on the GPU machine: python3 bench/hf_peer.py --batch 256 [--text-length 16]"""
import argparse
import json
import time

import torch
from transformers import CLIPConfig, CLIPModel

parser = argparse.ArgumentParser()
parser.add_argument("--batch", type=int, default=256)
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--warmup", type=int, default=5)
parser.add_argument("--text-length", type=int, default=77)
args = parser.parse_args()

start = time.perf_counter()
device = "cuda"
model = CLIPModel(CLIPConfig()).to(device).train()
model.config._attn_implementation = "sdpa"
opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.1, fused=True)
images = torch.randn(args.batch, 3, 224, 224, device=device)
config = model.config
if not 13 <= args.text_length <= config.text_config.max_position_embeddings:
    raise SystemExit(f"--text-length must be 13 to {config.text_config.max_position_embeddings}")
tokens = torch.zeros(args.batch, args.text_length, dtype=torch.long, device=device)
tokens[:, 0] = 49406
tokens[:, 1:12] = torch.randint(1000, 40000, (args.batch, 11), device=device)
tokens[:, 12] = 49407


def gflop_per_pair(text_positions, batch):
    """bench/flops.ts for this config: products 3x (the patch embedding 2x), attention 3.5x, as PyTorch's
    FLOP counter counts a step; 44.2 GFLOP per pair at 77 positions, as h100-reference.md gives."""
    v, t = config.vision_config, config.text_config
    patches = (v.image_size // v.patch_size) ** 2
    def tower(width, layers, mlp, n):
        return layers * 2 * n * width * (4 * width + 2 * mlp), layers * 4 * n * n * width
    vp, va = tower(v.hidden_size, v.num_hidden_layers, v.intermediate_size, patches + 1)
    tp, ta = tower(t.hidden_size, t.num_hidden_layers, t.intermediate_size, text_positions)
    embed = config.projection_dim
    first = 2 * 3 * v.patch_size ** 2 * v.hidden_size * patches
    products = vp + tp + 2 * v.hidden_size * embed + 2 * t.hidden_size * embed
    return (2 * first + 3 * products + 3.5 * (va + ta) + 6 * batch * embed) / 1e9


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
gflop = gflop_per_pair(args.text_length, args.batch)
print(json.dumps({"peer": "hf-CLIPModel-sdpa-bf16-fusedAdam", "model": "ViT-B/32", "batch": args.batch, "precision": "bf16",
                  "textLength": args.text_length, "batchFrom": "device",
                  "imagesPerSecond": round(ips, 1), "msPerStep": round(seconds / args.steps * 1000, 2),
                  "tflops": round(gflop * ips / 1000, 1), "gflopPerPair": round(gflop, 1), "firstStepSeconds": round(first, 2),
                  "peakGiB": round(torch.cuda.max_memory_allocated() / 2**30, 2), "loss": float(loss)}))
