#!/usr/bin/env python3
"""PNG test images written by Pillow, with the pixels Pillow decodes them to, for tests/test_png.c.

usage: python3 tools/gen_png_fixtures.py   (writes tests/fixtures/png/)
"""
import os

import numpy as np
from PIL import Image

OUT = "tests/fixtures/png"


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
    a[:6, :8] = 200  # flat areas so the encoder uses several filter types
    imgs = {
        "rgb": Image.fromarray(a),
        "grey": Image.fromarray(a[:, :, 0]),
        "rgba": Image.fromarray(np.dstack([a, a[:, :, :1]])),
        "grey_alpha": Image.fromarray(np.dstack([a[:, :, 0], a[:, :, 1]]), mode="LA"),
        "palette": Image.fromarray(a).convert("P", palette=Image.ADAPTIVE, colors=16),
        "bilevel": Image.fromarray((a[:, :, 0] > 128).astype(np.uint8) * 255).convert("1"),
    }
    for name, im in imgs.items():
        im.save(os.path.join(OUT, name + ".png"), optimize=(name == "rgb"))
        ref = np.array(Image.open(os.path.join(OUT, name + ".png")).convert("L" if im.mode in ("L", "LA", "1") else "RGB"))
        np.save(os.path.join(OUT, name + ".npy"), ref)


if __name__ == "__main__":
    main()
