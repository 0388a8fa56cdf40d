#!/usr/bin/env python3
"""How far Winograd convolutions move a UNet's output from the exact one.

Builds the Cook–Toom matrices Aᵀ, G, Bᵀ of F(m×m, 3×3) for a set of interpolation points (plus
the point at infinity), checks them on a random 1-D case, then runs a diffusers UNet2DModel in
float32 with its 3×3 stride-1 convolutions replaced by a float32 Winograd simulation (input and
output transforms and the channel sums in float32, the weight transform in float64 rounded once),
and prints max |out − exact| / max |exact| against the same model in float64: for torch's own
float32 convolutions, F(2×2, 3×3) everywhere, F(4×4, 3×3) everywhere with several point sets,
and F(4×4, 3×3) only for images of at most 8×8 and of at most 32×32 (what the engine takes since
the eighth session). docs/performance.md quotes its results.

usage: python3 tools/winograd_accuracy.py MODEL_DIR [BATCH]   (a directory with config.json and
       diffusion_pytorch_model.safetensors, e.g. models/fashion-mnist/unet or bench/models/cifar10;
       needs torch and diffusers: /work/venv/bin/python here)
"""
import sys
from fractions import Fraction

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import UNet2DModel


def cook_toom(m, pts):
    """Aᵀ (m × n), G (n × 3), Bᵀ (n × n) of F(m, 3) for the n − 1 finite points pts and ∞, from
    y_k = Σ_j g_j d_{k+j} = Σ_i Aᵀ[k, i] (G g)_i (Bᵀ d)_i, solved for Bᵀ."""
    n = m + 2
    pts = [Fraction(p) for p in pts]
    assert len(pts) == n - 1
    at, g = np.zeros((m, n)), np.zeros((n, 3))
    for i, p in enumerate(pts):
        f = 1
        for q in pts[:i] + pts[i + 1:]:
            f *= p - q
        at[:, i] = [float(p ** k) for k in range(m)]
        g[i] = [float(p ** j / f) for j in range(3)]
    at[m - 1, n - 1] = g[n - 1, 2] = 1
    rows, rhs = [], []
    for k in range(m):
        for j in range(3):
            for l in range(n):
                row = np.zeros((n, n))
                row[:, l] = at[k] * g[:, j]
                rows.append(row.ravel())
                rhs.append(1.0 if l == k + j else 0.0)
    bt = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0].reshape(n, n)
    bt[np.abs(bt) < 1e-12] = 0
    rng = np.random.default_rng(0)
    gg, d = rng.standard_normal(3), rng.standard_normal(n)
    y = at @ ((g @ gg) * (bt @ d))
    assert np.abs(y - np.correlate(d, gg, "valid")).max() < 1e-12
    return at, g, bt


def winograd_conv(x, w, b, m, pts):
    """3×3 convolution, stride 1, padding 1, by F(m×m, 3×3) in float32."""
    at, g, bt = cook_toom(m, pts)
    n = m + 2
    B, C, H, W = x.shape
    th, tw = -(-H // m), -(-W // m)
    tiles = F.pad(x, (1, tw * m + 1 - W, 1, th * m + 1 - H)).unfold(2, n, m).unfold(3, n, m)
    bt32, at32 = torch.tensor(bt, dtype=torch.float32), torch.tensor(at, dtype=torch.float32)
    v = torch.einsum("ij,bcyxjk,lk->bcyxil", bt32, tiles, bt32)
    u = torch.einsum("ij,ocjk,lk->ocil", torch.tensor(g), w.double(), torch.tensor(g)).float()
    y = torch.einsum("ij,boyxjk,lk->boyxil", at32, torch.einsum("ocil,bcyxil->boyxil", u, v), at32)
    y = y.permute(0, 1, 2, 4, 3, 5).reshape(B, w.shape[0], th * m, tw * m)[:, :, :H, :W]
    return y if b is None else y + b.view(1, -1, 1, 1)


MODE = None  # (largest image side or None for all, m, points) while a patched pass runs
_conv = torch.nn.Conv2d._conv_forward


def _patched(self, x, w, b):
    if MODE is None or x.dtype != torch.float32 or self.kernel_size != (3, 3) or self.stride != (1, 1) \
            or self.padding != (1, 1) or (MODE[0] is not None and max(x.shape[-2:]) > MODE[0]):
        return _conv(self, x, w, b)
    return winograd_conv(x, w, b, MODE[1], MODE[2])


def main():
    global MODE
    path, batch = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 4
    torch.nn.Conv2d._conv_forward = _patched
    unet = UNet2DModel.from_pretrained(path).eval()
    exact = UNet2DModel.from_pretrained(path).double().eval()
    cfg = unet.config
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, cfg.in_channels, cfg.sample_size, cfg.sample_size, generator=gen)
    t = torch.tensor([10, 500, 999, 250] * batch)[:batch]
    kw = {"class_labels": torch.arange(batch) % cfg.num_class_embeds} if cfg.num_class_embeds else {}
    with torch.no_grad():
        ref = exact(x.double(), t, **kw).sample
        scale = ref.abs().max().item()

        def error(mode):
            global MODE
            MODE = mode
            out = unet(x, t, **kw).sample.double()
            MODE = None
            return (out - ref).abs().max().item() / scale

        print(f"{path}, batch {batch}: max |out - exact| / max |exact| (max |exact| = {scale:.3f})")
        print(f"  torch float32 convolutions        {error(None):.3g}")
        print(f"  F(2x2, 3x3) everywhere             {error((None, 2, [0, 1, -1])):.3g}")
        for pts in ([0, 1, -1, 2, -2], [0, 1, -1, 0.5, -0.5], [0, -1, 1, 0.5, -2]):
            print(f"  F(4x4, 3x3) everywhere, {str(pts):18s} {error((None, 4, pts)):.3g}")
        for side in (8, 32):
            print(f"  F(4x4, 3x3) up to {side}x{side} images {error((side, 4, [0, -1, 1, 0.5, -2])):.3g}")


if __name__ == "__main__":
    main()
