/* Fully connected layer as dot products of contiguous rows. */
#include "core/internal.h"
#include "ops/ops.h"
#include "ops/vec.h"

void dfs_linear_forward(float *out, const float *inp, const float *w, const float *bias, int N, int I, int O) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++)
            out[(size_t)n * O + o] = (bias ? bias[o] : 0.0f) + dfs_dot(inp + (size_t)n * I, w + (size_t)o * I, I);
}

/* dX (N × I) += dY (N × O) · W (O × I) and dW (O × I) += dYᵀ · X, both as sums of scaled
 * contiguous rows (vectorisable), one writer per row; db sums over rows in order. */
void dfs_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, int N,
                         int I, int O) {
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            float *dx = dinp + (size_t)n * I;
            const float *dy = dout + (size_t)n * O;
            for (int o = 0; o < O; o++) {
                const float g = dy[o];
                const float *wr = w + (size_t)o * I;
                for (int i = 0; i < I; i++) dx[i] += g * wr[i];
            }
        }
    }
    if (dw) {
#pragma omp parallel for schedule(static)
        for (int o = 0; o < O; o++) {
            float *dwr = dw + (size_t)o * I;
            for (int n = 0; n < N; n++) {
                const float g = dout[(size_t)n * O + o];
                const float *x = inp + (size_t)n * I;
                for (int i = 0; i < I; i++) dwr[i] += g * x[i];
            }
        }
    }
    if (db) {
#pragma omp parallel for schedule(static)
        for (int o = 0; o < O; o++) {
            float s = 0.0f;
            for (int n = 0; n < N; n++) s += dout[(size_t)n * O + o];
            db[o] += s;
        }
    }
}
