/* Fully connected layers as GEMMs (src/ops/gemm.c), which read the transposed operands in
 * place; a forward pass of a few rows (the time embedding at small batches) as dot products. */
#include <string.h>

#include "core/internal.h"
#include "ops/gemm.h"
#include "ops/ops.h"
#include "ops/vmath.h"

static void linear_forward(float *out, const float *inp, const float *w, const float *bias, int N, int I, int O,
                           int threaded) {
    if (N < DFS_LINEAR_FEW_ROWS) { /* dot products beat packing all of wᵀ for the GEMM */
        const dfs_vmath_impl *vm = dfs_vmath_best();
#pragma omp parallel for schedule(static) if (threaded)
        for (int o = 0; o < O; o++)
            for (int n = 0; n < N; n++)
                out[(size_t)n * O + o] = (float)vm->dot(inp + (size_t)n * I, w + (size_t)o * I, (size_t)I) + (bias ? bias[o] : 0.0f);
        return;
    }
#pragma omp parallel for schedule(static) if (threaded)
    for (int n = 0; n < N; n++) {
        float *row = out + (size_t)n * O;
        if (bias) memcpy(row, bias, sizeof(float) * (size_t)O);
        else memset(row, 0, sizeof(float) * (size_t)O);
    }
    /* out (N × O) += inp (N × I) · wᵀ (I × O) */
    (threaded ? dfs_gemm : dfs_gemm_1t)(N, O, I, inp, (size_t)I, 1, w, 1, (size_t)I, out, (size_t)O);
}

void dfs_linear_forward(float *out, const float *inp, const float *w, const float *bias, int N, int I, int O) {
    linear_forward(out, inp, w, bias, N, I, O, 1);
}

void dfs_linear_forward_1t(float *out, const float *inp, const float *w, const float *bias, int N, int I, int O) {
    linear_forward(out, inp, w, bias, N, I, O, 0);
}

/* dX (N × I) += dY (N × O) · W (O × I) and dW (O × I) += dYᵀ · X; db sums over rows in order. */
void dfs_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, int N,
                         int I, int O) {
    if (dinp) dfs_gemm(N, I, O, dout, (size_t)O, 1, w, (size_t)I, 1, dinp, (size_t)I);
    if (dw) dfs_gemm(O, I, N, dout, 1, (size_t)O, inp, (size_t)I, 1, dw, (size_t)I);
    if (db) { /* each column summed over the rows in order, a block of columns at a time (vectorised) */
#pragma omp parallel for schedule(static)
        for (int o0 = 0; o0 < O; o0 += 64) {
            const int m = O - o0 < 64 ? O - o0 : 64;
            float s[64] = {0};
            for (int n = 0; n < N; n++) {
                const float *row = dout + (size_t)n * O + o0;
#pragma omp simd
                for (int j = 0; j < m; j++) s[j] += row[j];
            }
            for (int j = 0; j < m; j++) db[o0 + j] += s[j];
        }
    }
}
