/* Nearest-neighbour upsampling and average pooling by a factor of two. */
#include "ops/ops.h"

void dfs_upsample2x_forward(float *out, const float *inp, int BC, int H, int W) {
    const int OW = 2 * W;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < BC; p++) {
        const float *src = inp + (size_t)p * H * W;
        float *dst = out + (size_t)p * 4 * H * W;
        for (int y = 0; y < H; y++) {
            float *r0 = dst + (size_t)(2 * y) * OW, *r1 = r0 + OW;
            for (int x = 0; x < W; x++) r0[2 * x] = r0[2 * x + 1] = src[(size_t)y * W + x];
            for (int x = 0; x < OW; x++) r1[x] = r0[x];
        }
    }
}

void dfs_avgpool2x_forward(float *out, const float *inp, int BC, int H, int W) {
    const int OH = H / 2, OW = W / 2;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < BC; p++) {
        const float *src = inp + (size_t)p * H * W;
        float *dst = out + (size_t)p * OH * OW;
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                const float *s = src + (size_t)(2 * y) * W + 2 * x;
                dst[(size_t)y * OW + x] = (s[0] + s[1] + s[W] + s[W + 1]) * 0.25f;
            }
    }
}

void dfs_upsample2x_backward(float *dinp, const float *dout, int BC, int H, int W) {
    const int OW = 2 * W;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < BC; p++) {
        const float *src = dout + (size_t)p * 4 * H * W;
        float *dst = dinp + (size_t)p * H * W;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const float *s = src + (size_t)(2 * y) * OW + 2 * x;
                dst[(size_t)y * W + x] += (s[0] + s[1]) + (s[OW] + s[OW + 1]);
            }
    }
}

void dfs_avgpool2x_backward(float *dinp, const float *dout, int BC, int H, int W) {
    const int OH = H / 2, OW = W / 2;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < BC; p++) {
        const float *src = dout + (size_t)p * OH * OW;
        float *dst = dinp + (size_t)p * H * W;
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                const float g = src[(size_t)y * OW + x] * 0.25f;
                float *d = dst + (size_t)(2 * y) * W + 2 * x;
                d[0] += g;
                d[1] += g;
                d[W] += g;
                d[W + 1] += g;
            }
    }
}
