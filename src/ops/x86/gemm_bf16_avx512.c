/* The BF16 micro-kernel of gemm.h on AVX-512 BF16: an 8×48 tile of C in 24 zmm registers, like
 * the float kernel, with VDPBF16PS taking a pair of K per instruction (twice the products of an
 * FMA). Tiles of at most 32 or 16 columns take a 2- or 1-vector version. Only called when cpuid
 * reports AVX512_BF16 and AVX512BW. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ops/gemm.h"
#include "ops/x86/tile.h"

#define TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

TARGET static inline __attribute__((always_inline)) void tile(int nv, int kc2, const uint32_t *a, size_t lda,
                                                              const uint32_t *b, size_t ldb, float *c, size_t ldc,
                                                              int mr, int nr, int add) {
    __m512 acc[8][3];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) acc[i][v] = _mm512_setzero_ps();
    const uint32_t *ar[8]; /* rows past mr repeat the last valid row: computed, never stored */
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) ar[i] = a + (size_t)(i < mr ? i : mr - 1) * lda;
    for (int k = 0; k < kc2; k++) {
        __m512bh bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) bv[v] = (__m512bh)_mm512_loadu_si512(b + 16 * v);
        b += ldb;
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            const __m512bh x = (__m512bh)_mm512_set1_epi32((int)ar[i][k]);
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], x, bv[v]);
        }
    }
    dfs_tile_store(8, nv, acc, c, ldc, mr, nr, add);
}

TARGET static void kernel16(int kc2, const uint32_t *a, size_t lda, const uint32_t *b, size_t ldb, float *c, size_t ldc,
                            int mr, int nr, int add) {
    tile(1, kc2, a, lda, b, ldb, c, ldc, mr, nr, add);
}

TARGET static void kernel32(int kc2, const uint32_t *a, size_t lda, const uint32_t *b, size_t ldb, float *c, size_t ldc,
                            int mr, int nr, int add) {
    tile(2, kc2, a, lda, b, ldb, c, ldc, mr, nr, add);
}

TARGET static void kernel(int kc2, const uint32_t *a, size_t lda, const uint32_t *b, size_t ldb, float *c, size_t ldc,
                          int mr, int nr, int add) {
    if (nr <= 16) kernel16(kc2, a, lda, b, ldb, c, ldc, mr, nr, add);
    else if (nr <= 32) kernel32(kc2, a, lda, b, ldb, c, ldc, mr, nr, add);
    else tile(3, kc2, a, lda, b, ldb, c, ldc, mr, nr, add);
}

/* Pairs of 16 columns: both rows converted at once (round to nearest even, as dfs_bf16_round), then
 * the two halves interleaved so that column j holds (lo[j], hi[j]). */
TARGET static void pack(uint32_t *dst, const float *lo, const float *hi, int n) {
    static const uint16_t order[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i inter = _mm512_loadu_si512(order);
    for (int j = 0; j < n; j += 16) {
        const __mmask16 m = dfs_first16(n - j);
        const __m512 l = _mm512_maskz_loadu_ps(m, lo + j), h = hi ? _mm512_maskz_loadu_ps(m, hi + j) : _mm512_setzero_ps();
        const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(h, l); /* l in the low 256 bits, h in the high */
        _mm512_mask_storeu_epi32(dst + j, m, _mm512_permutexvar_epi16(inter, both));
    }
}

const dfs_gemm_bf16_impl dfs_gemm_bf16_avx512 = {"avx512bf16", kernel, pack};
#endif
