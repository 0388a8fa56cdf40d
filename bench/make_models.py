#!/usr/bin/env python3
"""Writes randomly initialised diffusers model directories for benchmarks (not committed: the
CIFAR-10 architecture alone is 143 MB of float32 weights).

usage: python3 bench/make_models.py [OUT_DIR]   (default bench/models)
  OUT_DIR/cifar10/   google/ddpm-cifar10-32's architecture: 35.7M parameters, 32x32x3
  OUT_DIR/fashion/   the 28x28 class-conditional architecture of the bundled Fashion-MNIST model
"""
import json
import os
import sys

import torch
from diffusers import UNet2DModel

CIFAR10 = dict(sample_size=32, in_channels=3, out_channels=3, layers_per_block=2,
               block_out_channels=(128, 256, 256, 256),
               down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
               up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
               norm_num_groups=32, attention_head_dim=None)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "bench/models"
    here = os.path.dirname(os.path.abspath(__file__))
    torch.manual_seed(0)
    models = {"cifar10": CIFAR10}
    fashion_cfg = os.path.join(here, "..", "models", "fashion-mnist", "unet", "config.json")
    if os.path.exists(fashion_cfg):
        with open(fashion_cfg) as f:
            cfg = {k: v for k, v in json.load(f).items() if not k.startswith("_")}
        models["fashion"] = cfg
    for name, cfg in models.items():
        d = os.path.join(out, name)
        if os.path.exists(os.path.join(d, "diffusion_pytorch_model.safetensors")):
            continue
        m = UNet2DModel(**cfg)
        m.save_pretrained(d, safe_serialization=True)
        print(f"{d}: {sum(p.numel() for p in m.parameters())} parameters")


if __name__ == "__main__":
    main()
