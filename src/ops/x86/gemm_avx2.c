/* AVX2+FMA GEMM micro-kernel: an 8×16 tile of C in 16 ymm registers (B's two vectors are loaded
 * as memory operands of the FMAs). Only called when cpuid reports AVX2 and FMA. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ops/gemm.h"

#define NR 16

__attribute__((target("avx2,fma"))) static void kernel(int kc, const float *a, size_t lda, const float *b, size_t ldb, float *c,
                                                       size_t ldc, int mr, int nr, int add) {
    __m256 acc[8][2];
    for (int i = 0; i < 8; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    const float *ar[8];
    for (int i = 0; i < 8; i++) ar[i] = a + (size_t)(i < mr ? i : mr - 1) * lda;
    for (int k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        b += ldb;
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            const __m256 v = _mm256_broadcast_ss(ar[i] + k);
            acc[i][0] = _mm256_fmadd_ps(v, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(v, b1, acc[i][1]);
        }
    }
    float tmp[16];
    for (int i = 0; i < mr; i++) {
        float *cp = c + (size_t)i * ldc;
        if (nr == NR && add) {
            _mm256_storeu_ps(cp, _mm256_add_ps(_mm256_loadu_ps(cp), acc[i][0]));
            _mm256_storeu_ps(cp + 8, _mm256_add_ps(_mm256_loadu_ps(cp + 8), acc[i][1]));
        } else if (nr == NR) {
            _mm256_storeu_ps(cp, acc[i][0]);
            _mm256_storeu_ps(cp + 8, acc[i][1]);
        } else {
            _mm256_storeu_ps(tmp, acc[i][0]);
            _mm256_storeu_ps(tmp + 8, acc[i][1]);
            for (int j = 0; j < nr; j++) cp[j] = add ? cp[j] + tmp[j] : tmp[j];
        }
    }
}

const dfs_gemm_impl dfs_gemm_avx2 = {"avx2", NR, kernel, dfs_gemm_transpose_scalar, dfs_gemm_phase_plane_scalar};
#endif
