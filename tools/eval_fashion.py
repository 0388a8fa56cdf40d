#!/usr/bin/env python3
"""Measures a class-conditional Fashion-MNIST model trained by diffuse (models/fashion-mnist):

1. diffusers loads it: UNet2DModel.from_pretrained and DDPMPipeline.from_pretrained on the
   directory as diffuse wrote it, and the network's output on a fixed input matches
   `diffuse unet` on the same input (max abs difference reported).
2. A small CNN classifier trained here on the Fashion-MNIST training set (test accuracy reported,
   cached in build/eval/ so later runs reuse it).
3. `diffuse sample` generates --per-class samples for each class (DPM-Solver++ 2M, --steps,
   --guidance-scale); the classifier labels them: the fraction labelled as the class asked for.
4. Fréchet distance in the classifier's penultimate-layer features between the samples and the
   test set, against the distance between as many real training images and the test set.

Prints a summary and writes it as JSON (--json-out). Needs torch, diffusers and numpy
(/work/venv/bin/python here); diffuse itself needs none of them.

usage: python3 tools/eval_fashion.py [--model models/fashion-mnist] [--diffuse build/diffuse]
                                    [--guidance-scale 2] [--steps 20] [--per-class 100]
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def load_idx(prefix):
    with gzip.open(f"{DATA}/{prefix}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(f"{DATA}/{prefix}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return x.astype(np.float32) / 127.5 - 1.0, y  # [-1, 1], as diffuse trains and samples


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 32, 3, padding=1), nn.Conv2d(32, 32, 3, padding=1)
        self.c3, self.c4 = nn.Conv2d(32, 64, 3, padding=1), nn.Conv2d(64, 64, 3, padding=1)
        self.fc, self.out = nn.Linear(64 * 7 * 7, 128), nn.Linear(128, 10)
        self.drop = nn.Dropout(0.3)

    def features(self, x):  # the penultimate layer: 128 values per image
        x = F.max_pool2d(F.relu(self.c2(F.relu(self.c1(x)))), 2)
        x = F.max_pool2d(F.relu(self.c4(F.relu(self.c3(x)))), 2)
        return F.relu(self.fc(x.flatten(1)))

    def forward(self, x):
        return self.out(self.drop(self.features(x)))


def batched(fn, x, bs=500):
    with torch.inference_mode():
        return torch.cat([fn(torch.from_numpy(x[i:i + bs])) for i in range(0, len(x), bs)]).numpy()


def get_classifier(cache, train, test):
    clf = Classifier()
    if os.path.exists(cache):
        clf.load_state_dict(torch.load(cache))
    else:
        torch.manual_seed(0)
        opt = torch.optim.Adam(clf.parameters(), 1e-3)
        xs, ys = torch.from_numpy(train[0]), torch.from_numpy(train[1])
        for epoch in range(5):
            clf.train()
            perm = torch.randperm(len(xs))
            for i in range(0, len(xs), 128):
                idx = perm[i:i + 128]
                loss = F.cross_entropy(clf(xs[idx]), ys[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            print(f"classifier epoch {epoch + 1}: last batch loss {loss.item():.3f}", file=sys.stderr)
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        torch.save(clf.state_dict(), cache)
    clf.eval()
    acc = float((batched(clf, test[0]).argmax(1) == test[1]).mean())
    return clf, acc


def frechet(a, b):
    """Fréchet distance between Gaussians fitted to feature sets a and b (rows are samples)."""
    ma, mb = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # trace of sqrt(ca·cb) from the eigenvalues of sqrt(ca)·cb·sqrt(ca), which is symmetric
    w, v = np.linalg.eigh(ca)
    sa = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(sa @ cb @ sa)
    return float(((ma - mb) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * np.sqrt(np.clip(ev, 0, None)).sum())


def check_diffusers(model, diffuse, tmp):
    from diffusers import DDPMPipeline, UNet2DModel
    unet = UNet2DModel.from_pretrained(os.path.join(model, "unet"), torch_dtype=torch.float32).eval()
    pipe = DDPMPipeline.from_pretrained(model)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 1, 28, 28, generator=g)
    t = torch.tensor([0, 250, 600, 999])
    y = torch.tensor([0, 3, 9, 10])  # 10: the "no class" row
    with torch.inference_mode():
        ref = unet(x, t, class_labels=y).sample.numpy()
    paths = {k: os.path.join(tmp, k + ".npy") for k in ("x", "t", "y", "out")}
    np.save(paths["x"], x.numpy())
    np.save(paths["t"], t.numpy().astype(np.int64))
    np.save(paths["y"], y.numpy().astype(np.int64))
    subprocess.run([diffuse, "unet", "-m", model, "--input", paths["x"], "--timesteps", paths["t"], "--class-labels",
                    paths["y"], "--output", paths["out"], "--threads", "2"], check=True)
    out = np.load(paths["out"])
    return {"diffusers_version": __import__("diffusers").__version__, "torch_version": torch.__version__,
            "pipeline_class": type(pipe).__name__, "scheduler_class": type(pipe.scheduler).__name__,
            "unet_parameters": sum(p.numel() for p in unet.parameters()),
            "unet_max_abs_diff": float(np.abs(out - ref).max()), "unet_max_abs_ref": float(np.abs(ref).max())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/fashion-mnist")
    ap.add_argument("--diffuse", default="build/diffuse")
    ap.add_argument("--guidance-scale", type=float, default=2.0)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--classifier-cache", default="build/eval/fashion_classifier.pt")
    ap.add_argument("--json-out", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    res = {"model": a.model, "scheduler": "dpmpp-2m", "steps": a.steps, "guidance_scale": a.guidance_scale,
           "per_class": a.per_class}
    with tempfile.TemporaryDirectory() as tmp:
        res["diffusers_load"] = check_diffusers(a.model, a.diffuse, tmp)
        print("diffusers:", json.dumps(res["diffusers_load"]), file=sys.stderr)
        train, test = load_idx("train"), load_idx("t10k")
        clf, res["classifier_test_accuracy"] = get_classifier(a.classifier_cache, train, test)
        print(f"classifier test accuracy {res['classifier_test_accuracy']:.4f}", file=sys.stderr)
        samples, asked = [], []
        t0 = time.time()
        for k in range(10):
            path = os.path.join(tmp, f"class{k}.npy")
            subprocess.run([a.diffuse, "sample", "-m", a.model, "--class", str(k), "-n", str(a.per_class),
                            "--scheduler", "dpmpp-2m", "--steps", str(a.steps), "--guidance-scale",
                            str(a.guidance_scale), "--seed", str(1000 + k), "--output-npy", path, "-q",
                            "--threads", str(a.threads)], check=True)
            samples.append(np.clip(np.load(path), -1, 1))
            asked += [k] * a.per_class
        res["sampling_seconds"] = round(time.time() - t0, 1)
    samples, asked = np.concatenate(samples), np.array(asked)
    pred = batched(clf, samples).argmax(1)
    res["label_accuracy"] = float((pred == asked).mean())
    res["label_accuracy_per_class"] = {CLASSES[k]: float((pred[asked == k] == k).mean()) for k in range(10)}
    f_test = batched(clf.features, test[0])
    f_gen = batched(clf.features, samples)
    rng = np.random.default_rng(0)
    f_real = batched(clf.features, train[0][rng.choice(len(train[0]), len(samples), replace=False)])
    res["frechet_samples_vs_test"] = frechet(f_gen, f_test)
    res["frechet_train_vs_test"] = frechet(f_real, f_test)
    res["frechet_ratio"] = res["frechet_samples_vs_test"] / res["frechet_train_vs_test"]
    print(json.dumps(res, indent=2))
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
