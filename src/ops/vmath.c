/* The portable vector-math implementation and the choice among them (see vmath.h). */
#include "ops/ops.h"
#include "ops/vmath.h"

static void exp_scalar(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = dfs_exp1(x[i]);
}

static float exp_sum_scalar(float *x, size_t n, float scale, float shift) {
    float acc[16] = {0};
    for (size_t i = 0; i < n; i++) {
        x[i] = dfs_exp1(fmaf(x[i], scale, -shift));
        acc[i % 16] += x[i];
    }
    return dfs_lanes_sum(acc);
}

static void silu_scalar(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + dfs_exp1(-x[i]));
}

/* One block of at most DFS_SUM_BLOCK values in lanes (vmath.h): Σ x·y when y is given, else
 * Σ (x − c)² when square, else Σ x; the vector versions do the same per lane. */
static float block_sum(const float *x, const float *y, size_t n, float c, int square) {
    float wide[64] = {0}, acc[16];
    const size_t runs = n / 64 * 64;
    size_t i = 0;
    for (; i < runs; i++) dfs_lane_add(wide + i % 64, x, y, i, c, square);
    dfs_fold_lanes(acc, wide);
    for (; i < n; i++) dfs_lane_add(acc + i % 16, x, y, i, c, square);
    return dfs_lanes_sum(acc);
}

static double sum_scalar(const float *x, size_t n) { return dfs_blocks(block_sum, x, NULL, n, 0.0f, 0); }
static double sumsq_scalar(const float *x, size_t n, float c) { return dfs_blocks(block_sum, x, NULL, n, c, 1); }
static double dot_scalar(const float *x, const float *y, size_t n) { return dfs_blocks(block_sum, x, y, n, 0.0f, 0); }

static void silu_grad_scalar(float *dx, const float *dy, const float *x, size_t n, float scale, float shift, int add) {
    for (size_t i = 0; i < n; i++) dx[i] = fmaf(dy[i], dfs_silu_grad1(x[i] * scale + shift), add ? dx[i] : 0.0f);
}

static void affine_scalar(float *y, const float *x, size_t n, float scale, float shift, int silu) {
    for (size_t i = 0; i < n; i++) y[i] = dfs_affine1(x[i], scale, shift, silu);
}

const dfs_vmath_impl dfs_vmath_scalar = {"scalar", exp_scalar, exp_sum_scalar, silu_scalar, sum_scalar, sumsq_scalar,
                                         dot_scalar, silu_grad_scalar, affine_scalar};

int dfs_vmath_available(const dfs_vmath_impl **out, int max) {
    int n = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (n < max && __builtin_cpu_supports("avx512f")) out[n++] = &dfs_vmath_avx512;
    if (n < max && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) out[n++] = &dfs_vmath_avx2;
#endif
    if (n < max) out[n++] = &dfs_vmath_scalar;
    return n;
}

const dfs_vmath_impl *dfs_vmath_best(void) {
    const dfs_vmath_impl *impls[4];
    const int n = dfs_vmath_available(impls, 4);
    for (int i = 0; i < n - 1; i++)
        if (dfs_isa_permits(impls[i]->name)) return impls[i];
    return impls[n - 1];
}
