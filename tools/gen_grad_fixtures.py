#!/usr/bin/env python3
"""Reference gradients of UNet2DModel computed by PyTorch, for tests/test_unet_grad.c.

For each small model: L = sum(upstream * unet(sample, t, class_labels)); writes the output, dL/d
sample and dL/d every parameter (grads.safetensors, float32, diffusers' names), computed in
float64 so the reference itself carries no float32 rounding.

usage: python3 tools/gen_grad_fixtures.py [OUT_DIR]   (default tests/fixtures/grad)
"""
import os
import sys

import numpy as np
import torch
from diffusers import UNet2DModel
from safetensors.torch import save_file

CONFIGS = {
    "cond": dict(sample_size=8, in_channels=2, out_channels=2, layers_per_block=1, block_out_channels=(16, 32),
                 down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                 norm_num_groups=4, attention_head_dim=8, num_class_embeds=5),
    "shift": dict(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(8, 16),
                  down_block_types=("ResnetDownsampleBlock2D", "AttnDownBlock2D"),
                  up_block_types=("AttnUpBlock2D", "ResnetUpsampleBlock2D"), norm_num_groups=4,
                  attention_head_dim=None, resnet_time_scale_shift="scale_shift", act_fn="mish",
                  center_input_sample=True, mid_block_scale_factor=1.4142135623730951, downsample_padding=0),
}


def init_(model, gen):
    # every parameter matters: weights ~ 1/sqrt(fan_in), norms 1 ± 0.25, biases small
    for name, p in model.named_parameters():
        with torch.no_grad():
            if p.ndim >= 2:
                fan_in = p[0].numel()
                p.copy_((torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1) * (3.0 / fan_in) ** 0.5)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.25 * (torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1))
            else:
                p.copy_(0.1 * (torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1))


def main():
    out_root = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/grad"
    torch.set_num_threads(1)
    for name, cfg in CONFIGS.items():
        gen = torch.Generator().manual_seed(1234)
        model = UNet2DModel(**cfg).double()
        init_(model, gen)
        model32 = UNet2DModel(**cfg)
        model32.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
        d = os.path.join(out_root, name)
        model32.save_pretrained(os.path.join(d, "model"), safe_serialization=True)
        params32 = dict(model32.named_parameters())
        for k, p in model.named_parameters():  # the float64 model uses the float32-rounded weights
            with torch.no_grad():
                p.copy_(params32[k].double())
        B, C, S = 2, cfg["in_channels"], cfg["sample_size"]
        x = torch.randn(B, C, S, S, generator=gen, dtype=torch.float64).float().double().requires_grad_(True)
        t = torch.tensor([17, 903], dtype=torch.long)
        kwargs = {}
        if cfg.get("num_class_embeds"):
            kwargs["class_labels"] = torch.tensor([3, 1], dtype=torch.long)
        up = torch.randn(B, cfg["out_channels"], S, S, generator=gen, dtype=torch.float64).float().double()
        out = model(x, t, **kwargs).sample
        (out * up).sum().backward()
        np.save(os.path.join(d, "sample.npy"), x.detach().float().numpy())
        np.save(os.path.join(d, "timesteps.npy"), t.numpy())
        if "class_labels" in kwargs:
            np.save(os.path.join(d, "class_labels.npy"), kwargs["class_labels"].numpy())
        np.save(os.path.join(d, "upstream.npy"), up.float().numpy())
        np.save(os.path.join(d, "expected.npy"), out.detach().float().numpy())
        np.save(os.path.join(d, "grad_sample.npy"), x.grad.float().numpy())
        grads = {k: p.grad.float().contiguous() for k, p in model.named_parameters() if p.grad is not None}
        save_file(grads, os.path.join(d, "grads.safetensors"))
        print(name, sum(p.numel() for p in model.parameters()), "parameters")


if __name__ == "__main__":
    main()
