/* Vectorised e^x and what is built on it (softmax rows, SiLU), with one algorithm for every
 * instruction set: the argument is split as x = n·ln2 + r (|r| <= ln2/2, n rounded to nearest by
 * the 1.5·2²³ trick), e^r is Cephes' degree-7 polynomial evaluated with fused multiply-adds, and
 * 2ⁿ is built from its exponent bits. Every step is an IEEE operation with one rounding (fma,
 * add, multiply, divide), so the AVX-512, AVX2 and portable versions give the same bits, and sums
 * are kept in 16 lanes reduced in one fixed tree, so exp_sum's total is the same on each too.
 * sum, sumsq and dot (GroupNorm's statistics and gradients) add blocks of DFS_SUM_BLOCK values in
 * float lanes, then the blocks' totals in double: as exact as the double loops they replace for
 * any group size, and again the same bits on every version. Within a block, whole runs of 64
 * values go round 64 lanes (four independent chains of vector adds, not one), folded into 16 as
 * (l + l+16) + (l+32 + l+48); the rest of the block goes round those 16.
 * Accuracy: within 2 ulp of e^x for x in [−87.3, 88.3]; outside, x is clamped to that range
 * (e^x of about 1e-38 for very negative x instead of 0); NaN stays NaN. */
#ifndef DFS_OPS_VMATH_H
#define DFS_OPS_VMATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define DFS_EXP_LO (-87.33654f) /* ln of the smallest normal float: n >= -126 */
#define DFS_EXP_HI 88.37626f    /* n <= 127 and e^r·2ⁿ stays finite */
#define DFS_EXP_LOG2E 1.44269504088896341f
#define DFS_EXP_MAGIC 12582912.0f /* 1.5·2²³: adding it rounds to an integer */
#define DFS_EXP_LN2_HI 0.693359375f
#define DFS_EXP_LN2_LO (-2.12194440e-4f)
#define DFS_EXP_P0 1.9875691500e-4f
#define DFS_EXP_P1 1.3981999507e-3f
#define DFS_EXP_P2 8.3334519073e-3f
#define DFS_EXP_P3 4.1665795894e-2f
#define DFS_EXP_P4 1.6666665459e-1f
#define DFS_EXP_P5 5.0000001201e-1f

/* The algorithm above for one value: the vector versions do exactly this per lane. */
static inline float dfs_exp1(float x) {
    x = DFS_EXP_LO > x ? DFS_EXP_LO : x; /* written so that NaN passes, as the vector max does */
    x = DFS_EXP_HI < x ? DFS_EXP_HI : x;
    const float t = fmaf(x, DFS_EXP_LOG2E, DFS_EXP_MAGIC), n = t - DFS_EXP_MAGIC;
    float r = fmaf(n, -DFS_EXP_LN2_HI, x);
    r = fmaf(n, -DFS_EXP_LN2_LO, r);
    float y = fmaf(DFS_EXP_P0, r, DFS_EXP_P1);
    y = fmaf(y, r, DFS_EXP_P2);
    y = fmaf(y, r, DFS_EXP_P3);
    y = fmaf(y, r, DFS_EXP_P4);
    y = fmaf(y, r, DFS_EXP_P5);
    y = fmaf(y, r * r, r) + 1.0f;
    uint32_t ti, mi; /* unsigned: for NaN the difference is garbage, and must not overflow */
    memcpy(&ti, &t, sizeof ti);
    const float magic = DFS_EXP_MAGIC;
    memcpy(&mi, &magic, sizeof mi);
    const uint32_t bits = (ti - mi + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

#define DFS_SUM_BLOCK 1024 /* values per float block of sum and sumsq */

/* silu'(x) = s·(1 + x·(1 − s)) with s = 1 / (1 + e^−x), from dfs_exp1's e^−x. */
static inline float dfs_silu_grad1(float x) {
    const float s = 1.0f / (1.0f + dfs_exp1(-x));
    return s * (1.0f + x * (1.0f - s));
}

/* y = x·scale + shift, then SiLU when silu is set: affine's formula for one value. */
static inline float dfs_affine1(float x, float scale, float shift, int silu) {
    const float v = x * scale + shift;
    return silu ? v / (1.0f + dfs_exp1(-v)) : v;
}

/* What value i of a block adds to its lane in sum (y NULL, !square), sumsq (square) and dot (y). */
static inline void dfs_lane_add(float *lane, const float *x, const float *y, size_t i, float c, int square) {
    const float d = x[i] - c;
    *lane = y ? fmaf(x[i], y[i], *lane) : square ? fmaf(d, d, *lane) : *lane + x[i];
}

/* The 64 lanes of a block's runs of 64 folded into 16. */
static inline void dfs_fold_lanes(float acc[16], const float wide[64]) {
    for (int l = 0; l < 16; l++) acc[l] = (wide[l] + wide[16 + l]) + (wide[32 + l] + wide[48 + l]);
}

/* sum, sumsq and dot over whole arrays: blocks of DFS_SUM_BLOCK summed by an implementation's
 * block function, the blocks' totals added in double. */
typedef float (*dfs_block_fn)(const float *x, const float *y, size_t n, float c, int square);
static inline double dfs_blocks(dfs_block_fn block, const float *x, const float *y, size_t n, float c, int square) {
    double total = 0.0;
    for (size_t b = 0; b < n; b += DFS_SUM_BLOCK)
        total += block(x + b, y ? y + b : NULL, n - b < DFS_SUM_BLOCK ? n - b : DFS_SUM_BLOCK, c, square);
    return total;
}

/* The 16 lane sums of exp_sum, sum, sumsq and dot, added in the tree every implementation uses. */
static inline float dfs_lanes_sum(float acc[16]) {
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) acc[l] += acc[l + w];
    return acc[0];
}

typedef struct dfs_vmath_impl {
    const char *name;                                            /* "avx512", "avx2", "scalar" */
    void (*exp)(float *y, const float *x, size_t n);             /* y = e^x */
    float (*exp_sum)(float *x, size_t n, float scale, float shift); /* x = e^(x·scale − shift); returns Σ */
    void (*silu)(float *x, size_t n);                            /* x = x / (1 + e^−x) */
    double (*sum)(const float *x, size_t n);                     /* Σ x */
    double (*sumsq)(const float *x, size_t n, float c);          /* Σ (x − c)² */
    double (*dot)(const float *x, const float *y, size_t n);     /* Σ x·y */
    /* dx = dy·silu'(v) with v = x·scale + shift (as affine computes it), added to dx when add is
     * set (a fused multiply-add; else onto zero, the same bits as adding to zeros); dx may be dy */
    void (*silu_grad)(float *dx, const float *dy, const float *x, size_t n, float scale, float shift, int add);
    /* y = x·scale + shift (a product, then a sum), then SiLU when silu is set; y may be x */
    void (*affine)(float *y, const float *x, size_t n, float scale, float shift, int silu);
} dfs_vmath_impl;

/* The fastest implementation this CPU runs, chosen once from cpuid. */
const dfs_vmath_impl *dfs_vmath_best(void);
/* All implementations this CPU can run (for tests); returns the count. */
int dfs_vmath_available(const dfs_vmath_impl **out, int max);

extern const dfs_vmath_impl dfs_vmath_scalar;
#if defined(__x86_64__) || defined(__i386__)
extern const dfs_vmath_impl dfs_vmath_avx2;
extern const dfs_vmath_impl dfs_vmath_avx512;
#endif

#endif
