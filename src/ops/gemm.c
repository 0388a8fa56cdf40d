/* Choosing a GEMM micro-kernel, and the portable one. */
#include "core/internal.h"
#include "ops/gemm.h"

#define SCALAR_NR 16

static void kernel_scalar(int kc, const float *a, size_t lda, const float *b, float *c, size_t ldc, int mr, int nr) {
    float acc[DFS_GEMM_MR][SCALAR_NR] = {{0}};
    for (int i = 0; i < mr; i++) {
        const float *ar = a + (size_t)i * lda;
        for (int k = 0; k < kc; k++) {
            const float av = ar[k];
            const float *br = b + (size_t)k * SCALAR_NR;
            for (int j = 0; j < SCALAR_NR; j++) acc[i][j] += av * br[j];
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) c[(size_t)i * ldc + j] += acc[i][j];
}

const dfs_gemm_impl dfs_gemm_scalar = {"scalar", SCALAR_NR, kernel_scalar};

int dfs_gemm_available(const dfs_gemm_impl **out, int max) {
    int n = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (n < max && __builtin_cpu_supports("avx512f")) out[n++] = &dfs_gemm_avx512;
    if (n < max && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) out[n++] = &dfs_gemm_avx2;
#endif
    if (n < max) out[n++] = &dfs_gemm_scalar;
    return n;
}

const dfs_gemm_impl *dfs_gemm_best(void) {
    const dfs_gemm_impl *impls[4];
    dfs_gemm_available(impls, 4);
    return impls[0];
}
