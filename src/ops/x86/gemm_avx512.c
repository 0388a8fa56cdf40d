/* AVX-512 GEMM micro-kernel: an 8×48 tile of C in 24 zmm registers. Per k it loads three
 * vectors of B and broadcasts eight values of A straight from memory into the FMAs. Compiled
 * with -mavx512f; only called when cpuid reports AVX-512F. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ops/gemm.h"

#define NR 48

__attribute__((target("avx512f,fma"))) static void kernel(int kc, const float *a, size_t lda, const float *b, size_t ldb, float *c,
                                                          size_t ldc, int mr, int nr, int add) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
    __m512 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
    __m512 c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00;
    __m512 c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;
    /* rows past mr repeat the last valid row: computed, never stored */
    const float *a0 = a, *a1 = a + (mr > 1 ? 1 : 0) * lda, *a2 = a + (mr > 2 ? 2 : mr - 1) * lda;
    const float *a3 = a + (mr > 3 ? 3 : mr - 1) * lda, *a4 = a + (mr > 4 ? 4 : mr - 1) * lda;
    const float *a5 = a + (mr > 5 ? 5 : mr - 1) * lda, *a6 = a + (mr > 6 ? 6 : mr - 1) * lda;
    const float *a7 = a + (mr > 7 ? 7 : mr - 1) * lda;
    for (int k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), b2 = _mm512_loadu_ps(b + 32);
        b += ldb;
        __m512 v = _mm512_set1_ps(a0[k]);
        c00 = _mm512_fmadd_ps(v, b0, c00), c01 = _mm512_fmadd_ps(v, b1, c01), c02 = _mm512_fmadd_ps(v, b2, c02);
        v = _mm512_set1_ps(a1[k]);
        c10 = _mm512_fmadd_ps(v, b0, c10), c11 = _mm512_fmadd_ps(v, b1, c11), c12 = _mm512_fmadd_ps(v, b2, c12);
        v = _mm512_set1_ps(a2[k]);
        c20 = _mm512_fmadd_ps(v, b0, c20), c21 = _mm512_fmadd_ps(v, b1, c21), c22 = _mm512_fmadd_ps(v, b2, c22);
        v = _mm512_set1_ps(a3[k]);
        c30 = _mm512_fmadd_ps(v, b0, c30), c31 = _mm512_fmadd_ps(v, b1, c31), c32 = _mm512_fmadd_ps(v, b2, c32);
        v = _mm512_set1_ps(a4[k]);
        c40 = _mm512_fmadd_ps(v, b0, c40), c41 = _mm512_fmadd_ps(v, b1, c41), c42 = _mm512_fmadd_ps(v, b2, c42);
        v = _mm512_set1_ps(a5[k]);
        c50 = _mm512_fmadd_ps(v, b0, c50), c51 = _mm512_fmadd_ps(v, b1, c51), c52 = _mm512_fmadd_ps(v, b2, c52);
        v = _mm512_set1_ps(a6[k]);
        c60 = _mm512_fmadd_ps(v, b0, c60), c61 = _mm512_fmadd_ps(v, b1, c61), c62 = _mm512_fmadd_ps(v, b2, c62);
        v = _mm512_set1_ps(a7[k]);
        c70 = _mm512_fmadd_ps(v, b0, c70), c71 = _mm512_fmadd_ps(v, b1, c71), c72 = _mm512_fmadd_ps(v, b2, c72);
    }
    const __m512 acc[8][3] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32},
                              {c40, c41, c42}, {c50, c51, c52}, {c60, c61, c62}, {c70, c71, c72}};
    for (int v = 0; v < 3; v++) {
        const int cols = nr - 16 * v;
        if (cols <= 0) break;
        const __mmask16 m = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
        for (int i = 0; i < mr; i++) {
            float *cp = c + (size_t)i * ldc + 16 * v;
            _mm512_mask_storeu_ps(cp, m, add ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, cp), acc[i][v]) : acc[i][v]);
        }
    }
}

const dfs_gemm_impl dfs_gemm_avx512 = {"avx512", NR, kernel};
#endif
