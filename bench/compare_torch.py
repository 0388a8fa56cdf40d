#!/usr/bin/env python3
"""Side-by-side timing: diffuse vs PyTorch + diffusers on the same model directory, the same
batch, resolution and thread count, alternating rounds in one run. Prints the medians and the
speed ratio (PyTorch time / diffuse time; above 1 means diffuse is faster).

Forward passes by default. With --train, training steps on one fixed batch: x_t from the DDPM
schedule, the network, MSE against the noise, backward, gradient clipping at norm 1, AdamW and
an EMA of the weights (diffusers' EMAModel) on the torch side; `diffuse bench --train`, which
does the same, on the other.

The peer gets its best settings: torch.inference_mode, OPENBLAS_NUM_THREADS=1 beside torch's own
threads, and glibc's malloc told to keep large buffers (set in the environment before torch
loads; this script re-executes itself once to do that).

usage: python3 bench/compare_torch.py MODEL_DIR [--batch B] [--threads N] [--rounds R] [--size HxW] [--train]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

PEER_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=10, help="forward passes per round and side")
    ap.add_argument("--size", default=None)
    ap.add_argument("--diffuse", default="build/diffuse")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--train", action="store_true", help="time training steps instead of forward passes")
    a = ap.parse_args()
    if any(os.environ.get(k) != v for k, v in PEER_ENV.items()):
        os.environ.update(PEER_ENV)
        os.environ.pop("OPENBLAS_CORETYPE", None)
        os.execv(sys.executable, [sys.executable] + sys.argv)

    import torch
    from diffusers import UNet2DModel

    torch.set_num_threads(a.threads)
    pipeline = os.path.exists(os.path.join(a.model, "model_index.json"))
    model = UNet2DModel.from_pretrained(a.model, subfolder="unet" if pipeline else None).eval()
    cfg = model.config
    ss = cfg.sample_size if cfg.sample_size is not None else 32
    h, w = (ss, ss) if isinstance(ss, int) else tuple(ss)
    if a.size:
        h, w = (int(v) for v in a.size.split("x")) if "x" in a.size else (int(a.size), int(a.size))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(a.batch, cfg.in_channels, h, w, generator=g)
    t = torch.arange(500, 500 + a.batch)
    kwargs = {}
    if model.class_embedding is not None:
        kwargs["class_labels"] = torch.zeros(a.batch, dtype=torch.long)

    if a.train:
        torch_round, diffuse_round = train_rounds(a, model, x, t, kwargs)
    else:
        torch_round, diffuse_round = forward_rounds(a, model, x, t, kwargs, h, w)
    torch_round()  # warm-up: oneDNN primitive creation
    tt, dd = [], []
    for _ in range(a.rounds):
        tt.append(statistics.median(torch_round()))
        dd.append(diffuse_round())
    tm, dm = statistics.median(tt), statistics.median(dd)
    what = "train_step" if a.train else "forward"
    res = {"model": a.model, "what": what, "batch": a.batch, "threads": a.threads, "size": f"{h}x{w}",
           "torch_ms_median": tm * 1e3, "diffuse_ms_median": dm * 1e3, "speedup": tm / dm,
           "torch_images_per_s": a.batch / tm, "diffuse_images_per_s": a.batch / dm,
           "torch_version": torch.__version__}
    if a.json:
        print(json.dumps(res))
    else:
        print(f"{a.model} {what} batch {a.batch} {h}x{w} threads {a.threads}: torch {tm*1e3:.2f} ms, "
              f"diffuse {dm*1e3:.2f} ms, diffuse is {tm/dm:.2f}x torch's speed")


def forward_rounds(a, model, x, t, kwargs, h, w):
    import torch

    def torch_round():
        times = []
        with torch.inference_mode():
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                model(x, t, **kwargs)
                times.append(time.perf_counter() - t0)
        return times

    def diffuse_round():
        cmd = [a.diffuse, "bench", "-m", a.model, "--batch", str(a.batch), "--threads", str(a.threads),
               "--repeat", str(a.repeat), "--size", f"{h}x{w}", "--json"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        return json.loads(out)["forward_ms_median"] / 1e3

    return torch_round, diffuse_round


def train_rounds(a, model, x0, t, kwargs):
    """Training steps with diffuse train's defaults: AdamW (lr 1e-4, betas 0.95/0.999, weight decay
    1e-6, eps 1e-8), clipping at norm 1, EMA (inv_gamma 1, power 3/4, max 0.9999)."""
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler
    from diffusers.training_utils import EMAModel

    model.train()
    sched = DDPMScheduler(num_train_timesteps=1000)
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(x0.shape, generator=g)
    ts = torch.tensor([(b * 997 + 500) % 1000 for b in range(len(x0))])
    xt = sched.add_noise(x0, noise, ts)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8)
    ema = EMAModel(model.parameters(), decay=0.9999, use_ema_warmup=True, inv_gamma=1.0, power=0.75)

    def torch_round():
        times = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            loss = F.mse_loss(model(xt, ts, **kwargs).sample, noise)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad()
            ema.step(model.parameters())
            times.append(time.perf_counter() - t0)
        return times

    def diffuse_round():
        cmd = [a.diffuse, "bench", "-m", a.model, "--train", "--batch", str(a.batch), "--threads", str(a.threads),
               "--repeat", str(a.repeat), "--json"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        return json.loads(out)["train_step_ms_median"] / 1e3

    return torch_round, diffuse_round


if __name__ == "__main__":
    main()
