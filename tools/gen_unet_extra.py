#!/usr/bin/env python3
"""More UNet2DModel reference outputs from diffusers, for the config fields tests/fixtures/unet lacks.

Writes tests/fixtures/unet_extra/<name>/model (a diffusers model directory, weights as noted) and
cases/<case>/{sample,timesteps,class_labels?,expected}.npy, plus index.json. Weights are uniform
with std like a real initialisation (conv/linear 1/sqrt(fan_in), norms 1 ± 0.25, biases ±0.1), so
every parameter matters. Also tests/fixtures/unet_extra/cifar10_arch: google/ddpm-cifar10-32's
architecture with deterministic weights that tests/weights_gen.h regenerates in C (the 143 MB of
weights are not committed), and its expected outputs.

usage: python3 tools/gen_unet_extra.py
"""
import json
import os

import numpy as np
import torch
from diffusers import UNet2DModel
from safetensors.torch import save_file

OUT = "tests/fixtures/unet_extra"
TINY = dict(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
            down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
            norm_num_groups=4, attention_head_dim=8)

CONFIGS = {
    "legacy_names": dict(TINY),
    "class_table": dict(TINY, num_class_embeds=7),
    "class_timestep": dict(TINY, class_embed_type="timestep"),
    "scale_shift_resnet": dict(TINY, resnet_time_scale_shift="scale_shift",
                               down_block_types=("ResnetDownsampleBlock2D", "AttnDownBlock2D"),
                               up_block_types=("AttnUpBlock2D", "ResnetUpsampleBlock2D"), act_fn="mish"),
    "attn_resample_resnet": dict(TINY, down_block_types=("AttnDownBlock2D", "AttnDownBlock2D"),
                                 up_block_types=("AttnUpBlock2D", "AttnUpBlock2D"), downsample_type="resnet",
                                 upsample_type="resnet", attn_norm_num_groups=2),
    "fourier": dict(TINY, time_embedding_type="fourier", flip_sin_to_cos=False),
    "positional_options": dict(TINY, flip_sin_to_cos=False, freq_shift=1, time_embedding_dim=40,
                               center_input_sample=True, downsample_padding=0, norm_eps=1e-6, act_fn="gelu"),
    "head_dim_none_no_mid": dict(TINY, attention_head_dim=None, mid_block_type=None),
    "no_mid_attention": dict(TINY, add_attention=False, mid_block_scale_factor=1.4142135623730951, act_fn="relu",
                             layers_per_block=2),
    "odd_channels_nonsquare": dict(TINY, in_channels=1, out_channels=2, block_out_channels=(12, 20),
                                   norm_num_groups=4, attention_head_dim=5, sample_size=(8, 12)),
    "weights_f16": dict(TINY),
    "weights_bf16": dict(TINY),
}


def init_(model, gen):
    for name, p in model.named_parameters():
        with torch.no_grad():
            u = torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1
            if p.ndim >= 2:
                p.copy_(u * (3.0 / p[0].numel()) ** 0.5)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.25 * u)
            else:
                p.copy_(0.1 * u)


def legacy(sd):
    out = {}
    for k, v in sd.items():
        if ".attentions." in k:
            k = k.replace(".to_q.", ".query.").replace(".to_k.", ".key.").replace(".to_v.", ".value.")
            k = k.replace(".to_out.0.", ".proj_attn.")
        out[k] = v.contiguous()
    return out


def cases_for(name, cfg, model, gen, d):
    C = cfg["in_channels"]
    hw = cfg["sample_size"] if isinstance(cfg["sample_size"], tuple) else (cfg["sample_size"],) * 2
    cases = {"b2_t3_t871": torch.tensor([3, 871]), "b2_float": torch.tensor([0.75, 412.5])}
    out = []
    for cname, t in cases.items():
        x = torch.randn(2, C, *hw, generator=gen)
        kw = {}
        if cfg.get("num_class_embeds"):
            kw["class_labels"] = torch.tensor([4, 1])
        elif cfg.get("class_embed_type") == "timestep":
            kw["class_labels"] = torch.tensor([2, 9])
        with torch.no_grad():
            y = model(x, t, **kw).sample
        cd = os.path.join(d, "cases", cname)
        os.makedirs(cd, exist_ok=True)
        np.save(os.path.join(cd, "sample.npy"), x.numpy())
        np.save(os.path.join(cd, "timesteps.npy"), t.numpy())
        if "class_labels" in kw:
            np.save(os.path.join(cd, "class_labels.npy"), kw["class_labels"].numpy())
        np.save(os.path.join(cd, "expected.npy"), y.numpy())
        out.append({"name": cname, "out_absmax": float(y.abs().max())})
    return out


# ---- deterministic weights shared with tests/weights_gen.h ----
M64 = (1 << 64) - 1


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def det_weights(name, shape):
    n = int(np.prod(shape))
    seed = np.uint64(fnv1a64(name))
    i = np.arange(1, n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = seed + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    r = (z >> np.uint64(40)).astype(np.float64) * 2.0 ** -24 * 2 - 1
    norm_w = name.endswith(("norm1.weight", "norm2.weight", "norm.weight", "group_norm.weight", "conv_norm_out.weight"))
    if len(shape) == 1 and norm_w:
        v = 1 + 0.25 * r
    elif len(shape) == 1:
        v = 0.05 * r
    else:
        v = r * np.sqrt(3.0 / (n // shape[0]))
    return v.astype(np.float32).reshape(shape)


def main():
    torch.set_num_threads(1)
    index = {}
    for name, cfg in CONFIGS.items():
        gen = torch.Generator().manual_seed(sum(name.encode()))
        model = UNet2DModel(**cfg).eval()
        init_(model, gen)
        d = os.path.join(OUT, name)
        md = os.path.join(d, "model")
        model.save_pretrained(md, safe_serialization=True)
        sd = model.state_dict()
        st_path = os.path.join(md, "diffusion_pytorch_model.safetensors")
        if name == "legacy_names":
            save_file(legacy(sd), st_path, metadata={"format": "pt"})
        elif name == "weights_f16":
            save_file({k: v.half().contiguous() for k, v in sd.items()}, st_path, metadata={"format": "pt"})
            model = UNet2DModel.from_pretrained(md, torch_dtype=torch.float32).eval()
        elif name == "weights_bf16":
            save_file({k: v.bfloat16().contiguous() for k, v in sd.items()}, st_path, metadata={"format": "pt"})
            model = UNet2DModel.from_pretrained(md, torch_dtype=torch.float32).eval()
        if name == "legacy_names":
            reloaded = UNet2DModel.from_pretrained(md).eval()
            assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), sd.values())), "legacy load"
        index[name] = {"n_params": sum(p.numel() for p in model.parameters()), "cases": cases_for(name, cfg, model, gen, d)}

    cifar = dict(sample_size=32, in_channels=3, out_channels=3, layers_per_block=2,
                 block_out_channels=(128, 256, 256, 256),
                 down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"), attention_head_dim=None)
    model = UNet2DModel(**cifar).eval()
    with torch.no_grad():
        for k, p in model.named_parameters():
            p.copy_(torch.from_numpy(det_weights(k, tuple(p.shape))))
    d = os.path.join(OUT, "cifar10_arch")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(dict(model.config), f, indent=2, default=list)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 32, 32, generator=gen)
    t = torch.tensor([50, 999])
    with torch.no_grad():
        y = model(x, t).sample
    np.save(os.path.join(d, "sample.npy"), x.numpy())
    np.save(os.path.join(d, "timesteps.npy"), t.numpy())
    np.save(os.path.join(d, "expected.npy"), y.numpy())
    checks = {}
    for k in ["conv_in.weight", "down_blocks.1.attentions.0.to_q.bias", "mid_block.resnets.0.norm1.weight"]:
        shape = tuple(dict(model.named_parameters())[k].shape)
        v = det_weights(k, shape).ravel()
        checks[k] = {"shape": list(shape), "first": [float(a) for a in v[:4]], "sum": float(v.astype(np.float64).sum())}
    index["cifar10_arch"] = {"n_params": sum(p.numel() for p in model.parameters()), "weights_check": checks}
    with open(os.path.join(OUT, "index.json"), "w") as f:
        json.dump(index, f, indent=1)


if __name__ == "__main__":
    main()
