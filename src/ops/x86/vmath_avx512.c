/* AVX-512 version of vmath.h's algorithm, 16 lanes at a time; the element-wise functions and
 * exp_sum take a last partial vector under a mask (the same operations as the portable version's
 * per value), the block sums their tails through dfs_lane_add. Only called when cpuid reports
 * AVX-512F. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ops/vmath.h"
#include "ops/x86/exp16.h"
#include "ops/x86/lanes.h"

#define TARGET __attribute__((target("avx512f,fma")))

TARGET static void exp_avx512(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = dfs_first16((ptrdiff_t)(n - i));
        _mm512_mask_storeu_ps(y + i, m, dfs_exp16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

TARGET static float exp_sum_avx512(float *x, size_t n, float scale, float shift) {
    const __m512 vs = _mm512_set1_ps(scale), vm = _mm512_set1_ps(-shift);
    __m512 acc = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) { /* the tail's lanes[i % 16] += x[i] under a mask */
        const __mmask16 m = dfs_first16((ptrdiff_t)(n - i));
        const __m512 e = dfs_exp16(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), vs, vm));
        _mm512_mask_storeu_ps(x + i, m, e);
        acc = _mm512_mask_add_ps(acc, m, acc, e);
    }
    float lanes[16];
    _mm512_storeu_ps(lanes, acc);
    return dfs_lanes_sum(lanes);
}

TARGET static void silu_avx512(float *x, size_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 16) { /* the last vector masked */
        const __mmask16 m = dfs_first16((ptrdiff_t)(n - i));
        const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_div_ps(v, _mm512_add_ps(one, dfs_exp16(_mm512_sub_ps(_mm512_setzero_ps(), v)))));
    }
}

/* acc plus what the 16 values at x add to their lanes (dfs_lane_add, 16 at a time). */
TARGET static inline __m512 lane_step(__m512 acc, const float *x, const float *y, __m512 vc, int square) {
    const __m512 v = _mm512_loadu_ps(x);
    if (y) return _mm512_fmadd_ps(v, _mm512_loadu_ps(y), acc);
    if (square) {
        const __m512 d = _mm512_sub_ps(v, vc);
        return _mm512_fmadd_ps(d, d, acc);
    }
    return _mm512_add_ps(acc, v);
}

/* One block of at most DFS_SUM_BLOCK values in lanes (vmath.h): Σ x·y when y is given, else
 * Σ (x − c)² when square, else Σ x. */
TARGET static float block_sum(const float *x, const float *y, size_t n, float c, int square) {
    const __m512 vc = _mm512_set1_ps(c);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = lane_step(a0, x + i, y ? y + i : NULL, vc, square);
        a1 = lane_step(a1, x + i + 16, y ? y + i + 16 : NULL, vc, square);
        a2 = lane_step(a2, x + i + 32, y ? y + i + 32 : NULL, vc, square);
        a3 = lane_step(a3, x + i + 48, y ? y + i + 48 : NULL, vc, square);
    }
    __m512 acc = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    for (; i + 16 <= n; i += 16) acc = lane_step(acc, x + i, y ? y + i : NULL, vc, square);
    float lanes[16];
    _mm512_storeu_ps(lanes, acc);
    for (; i < n; i++) dfs_lane_add(lanes + i % 16, x, y, i, c, square);
    return dfs_lanes_sum(lanes);
}

TARGET static double sum_avx512(const float *x, size_t n) { return dfs_blocks(block_sum, x, NULL, n, 0.0f, 0); }
TARGET static double sumsq_avx512(const float *x, size_t n, float c) { return dfs_blocks(block_sum, x, NULL, n, c, 1); }
TARGET static double dot_avx512(const float *x, const float *y, size_t n) { return dfs_blocks(block_sum, x, y, n, 0.0f, 0); }

TARGET static void silu_grad_avx512(float *dx, const float *dy, const float *x, size_t n, float scale, float shift, int add) {
    const __m512 one = _mm512_set1_ps(1.0f), vs = _mm512_set1_ps(scale), vh = _mm512_set1_ps(shift);
    for (size_t i = 0; i < n; i += 16) { /* the last vector masked: the same operations as dfs_silu_grad1 */
        const __mmask16 m = dfs_first16((ptrdiff_t)(n - i));
        const __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs), vh);
        const __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, dfs_exp16(_mm512_sub_ps(_mm512_setzero_ps(), v))));
        const __m512 g = _mm512_mul_ps(s, _mm512_add_ps(one, _mm512_mul_ps(v, _mm512_sub_ps(one, s))));
        const __m512 acc = add ? _mm512_maskz_loadu_ps(m, dx + i) : _mm512_setzero_ps();
        _mm512_mask_storeu_ps(dx + i, m, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, dy + i), g, acc));
    }
}

TARGET static void affine_avx512(float *y, const float *x, size_t n, float scale, float shift, int silu) {
    const __m512 vs = _mm512_set1_ps(scale), vh = _mm512_set1_ps(shift), one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 16) { /* the last vector masked: the same operations as dfs_affine1 */
        const __mmask16 m = dfs_first16((ptrdiff_t)(n - i));
        __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs), vh);
        if (silu) v = _mm512_div_ps(v, _mm512_add_ps(one, dfs_exp16(_mm512_sub_ps(_mm512_setzero_ps(), v))));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

const dfs_vmath_impl dfs_vmath_avx512 = {"avx512",     exp_avx512,   exp_sum_avx512, silu_avx512,     sum_avx512,
                                         sumsq_avx512, dot_avx512,   silu_grad_avx512, affine_avx512};
#endif
