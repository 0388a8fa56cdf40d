#!/usr/bin/env python3
"""One training step in PyTorch + diffusers, for tests/test_train_step.c: the class-conditional model
of tests/fixtures/grad/cond, a batch of 2, DDPMScheduler's add_noise, MSE on ε, gradient clipping at
norm 1 and one torch.optim.AdamW step (lr 1e-3, betas (0.95, 0.999), weight decay 1e-2, eps 1e-3).
Adam divides by |g| + eps, which amplifies float32 gradient rounding (a few 1e-7 of the largest
gradient) by up to lr/eps; with the usual eps of 1e-8 the first step is lr·sign(g), and elements whose
true gradient is zero would compare rounding noise. eps 1e-3 keeps the comparison well conditioned.
Writes tests/fixtures/train_step/: x0.npy, noise.npy, timesteps.npy, labels.npy, loss.npy
(loss, total grad norm before clipping) and params_after.safetensors.

usage: python3 tools/gen_train_step.py
"""
import os

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel
from safetensors.torch import save_file

OUT = "tests/fixtures/train_step"


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    model = UNet2DModel.from_pretrained("tests/fixtures/grad/cond/model").train()
    sched = DDPMScheduler()
    g = torch.Generator().manual_seed(11)
    x0 = torch.rand(2, 2, 8, 8, generator=g) * 2 - 1
    noise = torch.randn(2, 2, 8, 8, generator=g)
    t = torch.tensor([17, 903])
    labels = torch.tensor([3, 1])
    noisy = sched.add_noise(x0, noise, t)
    out = model(noisy, t, class_labels=labels).sample
    loss = F.mse_loss(out.float(), noise.float())
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.95, 0.999), weight_decay=1e-2, eps=1e-3)
    opt.step()
    np.save(os.path.join(OUT, "x0.npy"), x0.numpy())
    np.save(os.path.join(OUT, "noise.npy"), noise.numpy())
    np.save(os.path.join(OUT, "timesteps.npy"), t.numpy())
    np.save(os.path.join(OUT, "labels.npy"), labels.numpy())
    np.save(os.path.join(OUT, "loss.npy"), np.array([loss.item(), norm.item()], dtype=np.float64))
    save_file({k: v.detach().contiguous() for k, v in model.named_parameters()},
              os.path.join(OUT, "params_after.safetensors"))
    print("loss", loss.item(), "grad norm", norm.item())


if __name__ == "__main__":
    main()
