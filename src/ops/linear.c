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

void dfs_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, int N,
                         int I, int O) {
    if (dinp) {
#pragma omp parallel for collapse(2) schedule(static)
        for (int n = 0; n < N; n++)
            for (int i = 0; i < I; i++) {
                float s = 0.0f;
                for (int o = 0; o < O; o++) s += dout[(size_t)n * O + o] * w[(size_t)o * I + i];
                dinp[(size_t)n * I + i] += s;
            }
    }
    if (dw) {
#pragma omp parallel for collapse(2) schedule(static)
        for (int o = 0; o < O; o++)
            for (int i = 0; i < I; i++) {
                float s = 0.0f;
                for (int n = 0; n < N; n++) s += dout[(size_t)n * O + o] * inp[(size_t)n * I + i];
                dw[(size_t)o * I + i] += s;
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
