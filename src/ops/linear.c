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
