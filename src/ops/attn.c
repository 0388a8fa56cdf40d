/* Self-attention over image positions with an online softmax: each query row keeps a running
 * maximum and sum while it walks the keys, so memory stays O(HW·C) instead of O(HW²).
 * Scratch layout per image (reused image by image): T (HW, C) tokens, Q, K, V, O (HW, inner),
 * Y (HW, C). */
#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "ops/ops.h"
#include "ops/vec.h"

size_t dfs_attention_scratch(int B, int C, int HW, int heads, int dh) {
    size_t inner = (size_t)heads * dh;
    return (size_t)HW * (2 * (size_t)C + 4 * inner);
}

static void transpose(float *dst, const float *src, int rows, int cols) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < cols; c++)
        for (int r = 0; r < rows; r++) dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
}

void dfs_attention_forward(float *out, float *scratch, const float *xn, const float *residual,
                           const float *wq, const float *bq, const float *wk, const float *bk,
                           const float *wv, const float *bv, const float *wo, const float *bo,
                           int B, int C, int HW, int heads, int dh, float rescale) {
    const int inner = heads * dh;
    float *T = scratch, *Q = T + (size_t)HW * C, *K = Q + (size_t)HW * inner;
    float *V = K + (size_t)HW * inner, *O = V + (size_t)HW * inner, *Y = O + (size_t)HW * inner;
    const float scale = 1.0f / sqrtf((float)dh);
    for (int b = 0; b < B; b++) {
        const size_t img = (size_t)b * C * HW;
        transpose(T, xn + img, C, HW);
        dfs_linear_forward(Q, T, wq, bq, HW, C, inner);
        dfs_linear_forward(K, T, wk, bk, HW, C, inner);
        dfs_linear_forward(V, T, wv, bv, HW, C, inner);
#pragma omp parallel for collapse(2) schedule(static)
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < HW; i++) {
                const float *q = Q + (size_t)i * inner + (size_t)h * dh;
                float *o = O + (size_t)i * inner + (size_t)h * dh;
                float m = -INFINITY, l = 0.0f;
                memset(o, 0, sizeof(float) * (size_t)dh);
                for (int j = 0; j < HW; j++) {
                    const float s = dfs_dot(q, K + (size_t)j * inner + (size_t)h * dh, dh) * scale;
                    if (s > m) {
                        const float r = expf(m - s); /* 0 on the first key */
                        l *= r;
                        for (int d = 0; d < dh; d++) o[d] *= r;
                        m = s;
                    }
                    const float p = expf(s - m);
                    l += p;
                    const float *v = V + (size_t)j * inner + (size_t)h * dh;
                    for (int d = 0; d < dh; d++) o[d] += p * v[d];
                }
                const float inv = 1.0f / l;
                for (int d = 0; d < dh; d++) o[d] *= inv;
            }
        }
        dfs_linear_forward(Y, O, wo, bo, HW, inner, C);
        const float *res = residual + img;
        float *dst = out + img;
#pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < HW; p++)
                dst[(size_t)c * HW + p] = (Y[(size_t)p * C + c] + res[(size_t)c * HW + p]) / rescale;
    }
}
