#!/usr/bin/env python3
"""Reference digests of torch.randn streams for tests/test_rng.c.

For each (seed, size): torch.manual_seed(seed), then torch.randn(size) repeatedly until at least
10^6 numbers are drawn; the first 10^6 float32 values are digested with 64-bit FNV-1a over their
little-endian bytes, and the first 8 values are kept verbatim.

usage: python3 tools/gen_rng_ref.py > tests/fixtures/rng/randn.json
"""
import json
import sys

import numpy as np
import torch

SEEDS = [0, 1, 42, 2024, 2**31 + 5, 2**63 + 12345]
SIZES = [1, 15, 16, 17, 1000, 3 * 32 * 32 * 4]
TOTAL = 10**6


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    arr = np.frombuffer(data, dtype=np.uint8)
    # vectorised FNV is not possible (sequential); do it in chunks with python ints
    for b in arr.tolist():
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    cases = []
    for seed in SEEDS:
        for n in SIZES:
            torch.manual_seed(seed)
            chunks, got = [], 0
            while got < TOTAL:
                chunks.append(torch.randn(n).numpy())
                got += n
            v = np.concatenate(chunks)[:TOTAL].astype("<f4")
            cases.append({"seed": str(seed), "size": n, "count": TOTAL, "fnv1a64": format(fnv1a64(v.tobytes()), "016x"),
                          "first": [float(x) for x in v[:8]]})
            print(seed, n, file=sys.stderr)
    json.dump({"torch_version": torch.__version__, "cases": cases}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
