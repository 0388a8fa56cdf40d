/* AVX2 version of vmath.h's algorithm, 8 lanes a vector; exp_sum keeps its 16 lane sums in two
 * vectors, as the other versions do. GroupNorm's affine and SiLU gradient compute a last partial
 * vector from a masked load and store its live lanes (lanes.h: no masked stores); the other
 * tails go through dfs_exp1, which computes the same bits.
 * Only called when cpuid reports AVX2 and FMA. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ops/vmath.h"
#include "ops/x86/lanes.h"

#define TARGET __attribute__((target("avx2,fma")))

/* x[j] = e^x[j] for k vectors, each step of the algorithm on all k before the next, so that the
 * out-of-order window holds k chains at once (the polynomial is one long chain a vector). */
TARGET static inline __attribute__((always_inline)) void exp_k(__m256 *x, int k) {
    const __m256 magic = _mm256_set1_ps(DFS_EXP_MAGIC);
    const float p[] = {DFS_EXP_P1, DFS_EXP_P2, DFS_EXP_P3, DFS_EXP_P4, DFS_EXP_P5};
    __m256 t[4], r[4], y[4];
#pragma GCC unroll 4
    for (int j = 0; j < k; j++) {
        x[j] = _mm256_min_ps(_mm256_set1_ps(DFS_EXP_HI), _mm256_max_ps(_mm256_set1_ps(DFS_EXP_LO), x[j]));
        t[j] = _mm256_fmadd_ps(x[j], _mm256_set1_ps(DFS_EXP_LOG2E), magic);
    }
#pragma GCC unroll 4
    for (int j = 0; j < k; j++) {
        const __m256 n = _mm256_sub_ps(t[j], magic);
        r[j] = _mm256_fmadd_ps(n, _mm256_set1_ps(-DFS_EXP_LN2_LO), _mm256_fmadd_ps(n, _mm256_set1_ps(-DFS_EXP_LN2_HI), x[j]));
        y[j] = _mm256_set1_ps(DFS_EXP_P0);
    }
#pragma GCC unroll 5
    for (int q = 0; q < 5; q++)
#pragma GCC unroll 4
        for (int j = 0; j < k; j++) y[j] = _mm256_fmadd_ps(y[j], r[j], _mm256_set1_ps(p[q]));
#pragma GCC unroll 4
    for (int j = 0; j < k; j++) {
        y[j] = _mm256_add_ps(_mm256_fmadd_ps(y[j], _mm256_mul_ps(r[j], r[j]), r[j]), _mm256_set1_ps(1.0f));
        const __m256i e = _mm256_sub_epi32(_mm256_castps_si256(t[j]), _mm256_castps_si256(magic));
        x[j] = _mm256_mul_ps(y[j], _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23)));
    }
}

TARGET static inline __m256 exp8(__m256 x) {
    exp_k(&x, 1);
    return x;
}

TARGET static void exp_avx2(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = dfs_exp1(x[i]);
}

/* k (2 or 4) vectors at x = e^(x·scale − shift), their exponentials interleaved, added to lo
 * (even vectors) and hi (odd ones): lanes 0–7 and 8–15 of exp_sum's 16 lane sums. */
TARGET static inline __attribute__((always_inline)) void exp_sum_step(float *x, int k, __m256 vs, __m256 vm, __m256 *lo,
                                                                      __m256 *hi) {
    __m256 e[4];
#pragma GCC unroll 4
    for (int j = 0; j < k; j++) e[j] = _mm256_fmadd_ps(_mm256_loadu_ps(x + 8 * j), vs, vm);
    exp_k(e, k);
#pragma GCC unroll 2
    for (int j = 0; j < k; j += 2) {
        _mm256_storeu_ps(x + 8 * j, e[j]);
        _mm256_storeu_ps(x + 8 * j + 8, e[j + 1]);
        *lo = _mm256_add_ps(*lo, e[j]);
        *hi = _mm256_add_ps(*hi, e[j + 1]);
    }
}

TARGET static float exp_sum_avx2(float *x, size_t n, float scale, float shift) {
    const __m256 vs = _mm256_set1_ps(scale), vm = _mm256_set1_ps(-shift);
    __m256 lo = _mm256_setzero_ps(), hi = lo; /* lanes 0–7 and 8–15 */
    size_t i = 0;
    for (; i + 32 <= n; i += 32) exp_sum_step(x + i, 4, vs, vm, &lo, &hi);
    if (i + 16 <= n) exp_sum_step(x + i, 2, vs, vm, &lo, &hi), i += 16;
    float lanes[16];
    _mm256_storeu_ps(lanes, lo);
    _mm256_storeu_ps(lanes + 8, hi);
    for (; i < n; i++) {
        x[i] = dfs_exp1(fmaf(x[i], scale, -shift));
        lanes[i % 16] += x[i];
    }
    return dfs_lanes_sum(lanes);
}

TARGET static void silu_avx2(float *x, size_t n) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) { /* four vectors at a time, their exponentials interleaved */
        __m256 v[4], e[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) v[j] = _mm256_loadu_ps(x + i + 8 * j), e[j] = _mm256_sub_ps(_mm256_setzero_ps(), v[j]);
        exp_k(e, 4);
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) _mm256_storeu_ps(x + i + 8 * j, _mm256_div_ps(v[j], _mm256_add_ps(_mm256_set1_ps(1.0f), e[j])));
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(x + i, _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), exp8(_mm256_sub_ps(_mm256_setzero_ps(), v)))));
    }
    for (; i < n; i++) x[i] = x[i] / (1.0f + dfs_exp1(-x[i]));
}

/* acc plus what the 8 values at x add to their lanes (dfs_lane_add, 8 at a time). */
TARGET static inline __attribute__((always_inline)) __m256 lane_step(__m256 acc, const float *x, const float *y, __m256 vc,
                                                                     int square) {
    const __m256 v = _mm256_loadu_ps(x);
    if (y) return _mm256_fmadd_ps(v, _mm256_loadu_ps(y), acc);
    if (square) {
        const __m256 d = _mm256_sub_ps(v, vc);
        return _mm256_fmadd_ps(d, d, acc);
    }
    return _mm256_add_ps(acc, v);
}

/* One block of at most DFS_SUM_BLOCK values in lanes (vmath.h): Σ x·y when y is given, else
 * Σ (x − c)² when square, else Σ x. Lanes 8·k .. 8·k + 7 in a[k]. Inlined into one function per
 * kind of sum, so that the loops keep a in registers. */
TARGET static inline __attribute__((always_inline)) float lane_sums(const float *x, const float *y, size_t n, float c,
                                                                    int square) {
    const __m256 vc = _mm256_set1_ps(c);
    __m256 a[8];
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) a[k] = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) a[k] = lane_step(a[k], x + i + 8 * k, y ? y + i + 8 * k : NULL, vc, square);
    __m256 lo = _mm256_add_ps(_mm256_add_ps(a[0], a[2]), _mm256_add_ps(a[4], a[6]));
    __m256 hi = _mm256_add_ps(_mm256_add_ps(a[1], a[3]), _mm256_add_ps(a[5], a[7]));
    for (; i + 16 <= n; i += 16) {
        lo = lane_step(lo, x + i, y ? y + i : NULL, vc, square);
        hi = lane_step(hi, x + i + 8, y ? y + i + 8 : NULL, vc, square);
    }
    float lanes[16];
    _mm256_storeu_ps(lanes, lo);
    _mm256_storeu_ps(lanes + 8, hi);
    for (; i < n; i++) dfs_lane_add(lanes + i % 16, x, y, i, c, square);
    return dfs_lanes_sum(lanes);
}

TARGET static float block_sum(const float *x, const float *y, size_t n, float c, int square) {
    if (y) return lane_sums(x, y, n, c, 0);
    return square ? lane_sums(x, NULL, n, c, 1) : lane_sums(x, NULL, n, c, 0);
}

TARGET static double sum_avx2(const float *x, size_t n) { return dfs_blocks(block_sum, x, NULL, n, 0.0f, 0); }
TARGET static double sumsq_avx2(const float *x, size_t n, float c) { return dfs_blocks(block_sum, x, NULL, n, c, 1); }
TARGET static double dot_avx2(const float *x, const float *y, size_t n) { return dfs_blocks(block_sum, x, y, n, 0.0f, 0); }

/* Eight values (the first `live` of them when fewer are left) of silu_grad and affine, as
 * dfs_silu_grad1 and dfs_affine1 compute them. */
TARGET static inline __m256 load_live(const float *p, int live) {
    return live == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, dfs_first8(live));
}
TARGET static inline void store_live(float *p, __m256 v, int live) {
    if (live == 8) _mm256_storeu_ps(p, v);
    else dfs_store_first8(p, v, live);
}

TARGET static inline __attribute__((always_inline)) void silu_grad8(float *dx, const float *dy, const float *x, int live,
                                                                    __m256 vs, __m256 vh, int add) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 v = _mm256_add_ps(_mm256_mul_ps(load_live(x, live), vs), vh);
    const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), v))));
    const __m256 g = _mm256_mul_ps(s, _mm256_add_ps(one, _mm256_mul_ps(v, _mm256_sub_ps(one, s))));
    const __m256 acc = add ? load_live(dx, live) : _mm256_setzero_ps();
    store_live(dx, _mm256_fmadd_ps(load_live(dy, live), g, acc), live);
}

/* v[j] = x·scale + shift (a product, then a sum) and e[j] = e^−v[j] for the 32 values at x: the
 * first steps of SiLU and its gradient, four vectors at a time (exp_k). */
TARGET static inline __attribute__((always_inline)) void scaled_exp4(__m256 v[4], __m256 e[4], const float *x, __m256 vs,
                                                                     __m256 vh) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        v[j] = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * j), vs), vh);
        e[j] = _mm256_sub_ps(_mm256_setzero_ps(), v[j]);
    }
    exp_k(e, 4);
}

TARGET static void silu_grad_avx2(float *dx, const float *dy, const float *x, size_t n, float scale, float shift, int add) {
    const __m256 vs = _mm256_set1_ps(scale), vh = _mm256_set1_ps(shift), one = _mm256_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) { /* four vectors at a time, as silu_grad8 computes each */
        __m256 v[4], e[4];
        scaled_exp4(v, e, x + i, vs, vh);
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, e[j]));
            const __m256 g = _mm256_mul_ps(s, _mm256_add_ps(one, _mm256_mul_ps(v[j], _mm256_sub_ps(one, s))));
            const __m256 acc = add ? _mm256_loadu_ps(dx + i + 8 * j) : _mm256_setzero_ps();
            _mm256_storeu_ps(dx + i + 8 * j, _mm256_fmadd_ps(_mm256_loadu_ps(dy + i + 8 * j), g, acc));
        }
    }
    for (; i + 8 <= n; i += 8) silu_grad8(dx + i, dy + i, x + i, 8, vs, vh, add);
    if (i < n) silu_grad8(dx + i, dy + i, x + i, (int)(n - i), vs, vh, add);
}

TARGET static inline __attribute__((always_inline)) void affine8(float *y, const float *x, int live, __m256 vs, __m256 vh,
                                                                 int silu) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 v = _mm256_add_ps(_mm256_mul_ps(load_live(x, live), vs), vh);
    if (silu) v = _mm256_div_ps(v, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), v))));
    store_live(y, v, live);
}

TARGET static void affine_avx2(float *y, const float *x, size_t n, float scale, float shift, int silu) {
    const __m256 vs = _mm256_set1_ps(scale), vh = _mm256_set1_ps(shift), one = _mm256_set1_ps(1.0f);
    size_t i = 0;
    if (silu) /* four vectors at a time, their exponentials interleaved */
        for (; i + 32 <= n; i += 32) {
            __m256 v[4], e[4];
            scaled_exp4(v, e, x + i, vs, vh);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) _mm256_storeu_ps(y + i + 8 * j, _mm256_div_ps(v[j], _mm256_add_ps(one, e[j])));
        }
    for (; i + 8 <= n; i += 8) affine8(y + i, x + i, 8, vs, vh, silu);
    if (i < n) affine8(y + i, x + i, (int)(n - i), vs, vh, silu);
}

const dfs_vmath_impl dfs_vmath_avx2 = {"avx2",   exp_avx2, exp_sum_avx2,   silu_avx2,  sum_avx2,
                                       sumsq_avx2, dot_avx2, silu_grad_avx2, affine_avx2};
#endif
