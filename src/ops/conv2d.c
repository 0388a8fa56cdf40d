/* 2-D convolution as a GEMM over implicit im2col panels:
 *     out[b] (OC × P) = w (OC × K) · patches (K × P),   K = C·KH·KW, P = OH·OW.
 * The weights are used as stored (row-major OC × K). The patch matrix is never built whole:
 * for each block of pixels and DFS_GEMM_KC rows of K, a panel is packed into the workspace in
 * the micro-kernel's strip layout, then every 8-row block of weights is multiplied against it.
 * Threads split the packing by strips and the multiplication by (row block, strip) tiles, so
 * every output element has one writer and sums over K in the same order. */
#include <string.h>

#include "core/internal.h"
#include "ops/gemm.h"
#include "ops/ops.h"

#define STRIPS_PER_PANEL 8

size_t dfs_conv2d_workspace(int C, int KH, int KW, int OH, int OW) {
    const dfs_gemm_impl *g = dfs_gemm_best();
    return (size_t)DFS_GEMM_KC * g->nr * STRIPS_PER_PANEL;
}

/* Packs rows [k0, k0+kc) of the patch matrix for pixels [p0, p0+ncols) of one image into a strip
 * of NR columns ([k][NR], zero beyond ncols and outside the image). */
static void pack_strip(float *dst, int NR, const float *img, int H, int W, int KH, int KW, int stride, int pad_t,
                       int pad_l, int OW, int k0, int kc, int p0, int ncols) {
    int oy[64], ox[64];
    DFS_ASSERT(NR <= 64);
    for (int j = 0; j < ncols; j++) {
        oy[j] = (p0 + j) / OW;
        ox[j] = (p0 + j) % OW;
    }
    const int ksz = KH * KW;
    for (int kk = 0; kk < kc; kk++) {
        const int k = k0 + kk, c = k / ksz, r = k % ksz, ky = r / KW, kx = r % KW;
        const float *plane = img + (size_t)c * H * W;
        float *d = dst + (size_t)kk * NR;
        int j = 0;
        if (stride == 1) {
            /* runs of pixels in one output row read one contiguous input run */
            while (j < ncols) {
                const int y = oy[j], iy = y + ky - pad_t;
                int run = OW - ox[j];
                if (run > ncols - j) run = ncols - j;
                if (iy < 0 || iy >= H) {
                    memset(d + j, 0, sizeof(float) * (size_t)run);
                } else {
                    const float *src = plane + (size_t)iy * W;
                    const int ix0 = ox[j] + kx - pad_l;
                    for (int t = 0; t < run; t++) {
                        const int ix = ix0 + t;
                        d[j + t] = ix >= 0 && ix < W ? src[ix] : 0.0f;
                    }
                }
                j += run;
            }
        } else {
            for (; j < ncols; j++) {
                const int iy = oy[j] * stride + ky - pad_t, ix = ox[j] * stride + kx - pad_l;
                d[j] = iy >= 0 && iy < H && ix >= 0 && ix < W ? plane[(size_t)iy * W + ix] : 0.0f;
            }
        }
        for (; j < NR; j++) d[j] = 0.0f;
    }
}

void dfs_conv2d_forward(float *out, float *ws, const float *inp, const float *w, const float *bias, int B, int C,
                        int H, int W, int OC, int KH, int KW, int stride, int pad_t, int pad_l, int OH, int OW) {
    DFS_ASSERT(stride >= 1 && OH >= 1 && OW >= 1);
    const dfs_gemm_impl *g = dfs_gemm_best();
    const int NR = g->nr, K = C * KH * KW, P = OH * OW;
    const int n_mb = (OC + DFS_GEMM_MR - 1) / DFS_GEMM_MR;
    const int panel_cols = NR * STRIPS_PER_PANEL;
#pragma omp parallel
    for (int b = 0; b < B; b++) {
        const float *img = inp + (size_t)b * C * H * W;
        float *ob = out + (size_t)b * OC * P;
        for (int p0 = 0; p0 < P; p0 += panel_cols) {
            const int cols = P - p0 < panel_cols ? P - p0 : panel_cols;
            const int n_strips = (cols + NR - 1) / NR;
            for (int k0 = 0; k0 < K; k0 += DFS_GEMM_KC) {
                const int kc = K - k0 < DFS_GEMM_KC ? K - k0 : DFS_GEMM_KC;
#pragma omp for schedule(static)
                for (int s = 0; s < n_strips; s++) {
                    const int sc = cols - s * NR < NR ? cols - s * NR : NR;
                    pack_strip(ws + (size_t)s * kc * NR, NR, img, H, W, KH, KW, stride, pad_t, pad_l, OW, k0, kc,
                               p0 + s * NR, sc);
                }
#pragma omp for collapse(2) schedule(static)
                for (int mb = 0; mb < n_mb; mb++) {
                    for (int s = 0; s < n_strips; s++) {
                        const int m0 = mb * DFS_GEMM_MR, mr = OC - m0 < DFS_GEMM_MR ? OC - m0 : DFS_GEMM_MR;
                        const int sc = cols - s * NR < NR ? cols - s * NR : NR;
                        float *c = ob + (size_t)m0 * P + p0 + (size_t)s * NR;
                        if (k0 == 0)
                            for (int i = 0; i < mr; i++)
                                for (int j = 0; j < sc; j++) c[(size_t)i * P + j] = bias ? bias[m0 + i] : 0.0f;
                        g->kernel(kc, w + (size_t)m0 * K + k0, (size_t)K, ws + (size_t)s * kc * NR, c, (size_t)P, mr, sc);
                    }
                }
            }
        }
    }
}
