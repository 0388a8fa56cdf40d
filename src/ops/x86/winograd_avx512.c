/* AVX-512 tile transforms of winograd.c: the 16 tiles of a run are the 16 lanes. Columns 2j + k
 * of a padded row are split out of two loads by even/odd permutes; outputs are interleaved back
 * the same way. The same additions in the same order as the portable version, so the same bits.
 * Only called when cpuid reports AVX-512F. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ops/winograd.h"

#define TARGET __attribute__((target("avx512f")))

/* The lanes l of a load at column x whose columns x + l lie in 0 .. W−1. */
static __mmask16 inside(int x, int W) {
    const int lo = x < 0 ? -x : 0, hi = W - x < 16 ? W - x : 16;
    return hi <= lo ? 0 : (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

TARGET static void in_run(float *v, size_t xs, const float *plane, int H, int W, int y0, int x0, int len) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __mmask16 mask = (__mmask16)((1u << len) - 1);
    const __mmask16 ma = inside(x0, W), mb = inside(x0 + 16, W), mc = inside(x0 + 2, W), me = inside(x0 + 18, W);
    __m512 d[4][4]; /* the loops are unrolled so that these stay in registers */
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        /* masked loads read nothing outside the plane: a row outside it loads no lane */
        const int in = y0 + i >= 0 && y0 + i < H;
        const float *r = plane + ((ptrdiff_t)(in ? y0 + i : 0) * W + x0);
        const __m512 a = _mm512_maskz_loadu_ps(in ? ma : 0, r), b = _mm512_maskz_loadu_ps(in ? mb : 0, r + 16);
        const __m512 c = _mm512_maskz_loadu_ps(in ? mc : 0, r + 2), e = _mm512_maskz_loadu_ps(in ? me : 0, r + 18);
        d[i][0] = _mm512_permutex2var_ps(a, even, b);
        d[i][1] = _mm512_permutex2var_ps(a, odd, b);
        d[i][2] = _mm512_permutex2var_ps(c, even, e);
        d[i][3] = _mm512_permutex2var_ps(c, odd, e);
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) { /* Bᵀ d, column k */
        const __m512 d0 = d[0][k], d1 = d[1][k], d2 = d[2][k], d3 = d[3][k];
        d[0][k] = _mm512_sub_ps(d0, d2);
        d[1][k] = _mm512_add_ps(d1, d2);
        d[2][k] = _mm512_sub_ps(d2, d1);
        d[3][k] = _mm512_sub_ps(d1, d3);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) { /* (Bᵀ d) B, row i */
        _mm512_mask_storeu_ps(v + (4 * i + 0) * xs, mask, _mm512_sub_ps(d[i][0], d[i][2]));
        _mm512_mask_storeu_ps(v + (4 * i + 1) * xs, mask, _mm512_add_ps(d[i][1], d[i][2]));
        _mm512_mask_storeu_ps(v + (4 * i + 2) * xs, mask, _mm512_sub_ps(d[i][2], d[i][1]));
        _mm512_mask_storeu_ps(v + (4 * i + 3) * xs, mask, _mm512_sub_ps(d[i][1], d[i][3]));
    }
}

TARGET static void out_run(float *o, size_t W, const float *m, size_t xs, int len, int rows, int cols, float bias,
                           float bias2, int accumulate) {
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    const __mmask16 mask = (__mmask16)((1u << len) - 1);
    const __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
    const __mmask16 m1 = (__mmask16)(cols <= 16 ? 0 : (1u << (cols - 16)) - 1);
    __m512 a[4][4], s[2][4]; /* the loops are unrolled so that these stay in registers */
#pragma GCC unroll 16
    for (int x = 0; x < 16; x++) a[x / 4][x % 4] = _mm512_maskz_loadu_ps(mask, m + x * xs);
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) { /* Aᵀ M */
        s[0][k] = _mm512_add_ps(_mm512_add_ps(a[0][k], a[1][k]), a[2][k]);
        s[1][k] = _mm512_sub_ps(_mm512_sub_ps(a[1][k], a[2][k]), a[3][k]);
    }
    const __m512 vb = _mm512_set1_ps(bias), vb2 = _mm512_set1_ps(bias2);
#pragma GCC unroll 2
    for (int r = 0; r < rows; r++) { /* (Aᵀ M) A, interleaved back into a row of 2·len outputs */
        const __m512 y0 = _mm512_add_ps(_mm512_add_ps(s[r][0], s[r][1]), s[r][2]);
        const __m512 y1 = _mm512_sub_ps(_mm512_sub_ps(s[r][1], s[r][2]), s[r][3]);
        __m512 first = _mm512_permutex2var_ps(y0, lo, y1), second = _mm512_permutex2var_ps(y0, hi, y1);
        float *row = o + (size_t)r * W;
        first = _mm512_add_ps(_mm512_add_ps(first, vb), vb2);
        second = _mm512_add_ps(_mm512_add_ps(second, vb), vb2);
        if (accumulate) {
            first = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, row), first);
            second = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, row + 16), second);
        }
        _mm512_mask_storeu_ps(row, m0, first);
        _mm512_mask_storeu_ps(row + 16, m1, second);
    }
}

TARGET static void grad_run(float *z, size_t xs, const float *dy, size_t W, int len, int rows, int cols) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __mmask16 mask = (__mmask16)((1u << len) - 1);
    const __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xFFFF : (1u << cols) - 1);
    const __mmask16 m1 = (__mmask16)(cols <= 16 ? 0 : (1u << (cols - 16)) - 1);
    __m512 y[2][2];
#pragma GCC unroll 2
    for (int r = 0; r < 2; r++) {
        const __mmask16 k0 = r < rows ? m0 : 0, k1 = r < rows ? m1 : 0;
        const __m512 a = _mm512_maskz_loadu_ps(k0, dy + (size_t)r * W), b = _mm512_maskz_loadu_ps(k1, dy + (size_t)r * W + 16);
        y[r][0] = _mm512_permutex2var_ps(a, even, b);
        y[r][1] = _mm512_permutex2var_ps(a, odd, b);
    }
    __m512 t[4][2];
#pragma GCC unroll 2
    for (int k = 0; k < 2; k++) { /* A' dY */
        t[0][k] = y[0][k];
        t[1][k] = _mm512_add_ps(y[0][k], y[1][k]);
        t[2][k] = _mm512_sub_ps(y[0][k], y[1][k]);
        t[3][k] = y[1][k];
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) { /* (A' dY) A'ᵀ */
        _mm512_mask_storeu_ps(z + (4 * i + 0) * xs, mask, t[i][0]);
        _mm512_mask_storeu_ps(z + (4 * i + 1) * xs, mask, _mm512_add_ps(t[i][0], t[i][1]));
        _mm512_mask_storeu_ps(z + (4 * i + 2) * xs, mask, _mm512_sub_ps(t[i][0], t[i][1]));
        _mm512_mask_storeu_ps(z + (4 * i + 3) * xs, mask, t[i][1]);
    }
}

const dfs_wg_impl dfs_wg_avx512 = {"avx512", in_run, out_run, grad_run};
#endif
