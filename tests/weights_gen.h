/* Deterministic test weights, the same recipe as tools/gen_unet_extra.py's det_weights: for a
 * tensor NAME, seed = FNV-1a-64(NAME); element i (C order) is SplitMix64 step i + 1 of that seed,
 * its top 24 bits as u in [0, 1), r = 2u − 1; GroupNorm weights 1 + 0.25r, other 1-D tensors 0.05r,
 * others r·sqrt(3/fan_in); computed in double and rounded to float. */
#ifndef DFS_TESTS_WEIGHTS_GEN_H
#define DFS_TESTS_WEIGHTS_GEN_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline int test_ends_with(const char *s, const char *tail) {
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcmp(s + a - b, tail) == 0;
}

static inline void test_weights_fill(const char *name, int ndim, const int64_t *shape, float *out) {
    uint64_t seed = 0xCBF29CE484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) seed = (seed ^ *p) * 0x100000001B3ull;
    size_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (size_t)shape[d];
    const int norm_w = test_ends_with(name, "norm1.weight") || test_ends_with(name, "norm2.weight") ||
                       test_ends_with(name, "norm.weight") || test_ends_with(name, "group_norm.weight") ||
                       test_ends_with(name, "conv_norm_out.weight");
    const double scale = ndim >= 2 ? sqrt(3.0 / (double)(n / (size_t)shape[0])) : 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t z = seed + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        const double r = (double)(z >> 40) * (1.0 / 16777216.0) * 2 - 1;
        out[i] = (float)(ndim == 1 ? (norm_w ? 1 + 0.25 * r : 0.05 * r) : r * scale);
    }
}

#endif
