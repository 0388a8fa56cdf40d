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

size_t dfs_conv2d_workspace(int C, int KH, int KW, int OH, int OW) {
    return (size_t)DFS_GEMM_KC * dfs_gemm_best()->nr * dfs_ops_max_threads();
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
                    int lo = -ix0 > 0 ? -ix0 : 0, hi = W - ix0 < run ? W - ix0 : run;
                    if (hi < lo) hi = lo;
                    for (int t = 0; t < lo; t++) d[j + t] = 0.0f;
                    memcpy(d + j + lo, src + ix0 + lo, sizeof(float) * (size_t)(hi - lo));
                    for (int t = hi; t < run; t++) d[j + t] = 0.0f;
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
    const int n_strips = (P + NR - 1) / NR;
    const long n_work = (long)B * n_strips;
#pragma omp parallel for schedule(static)
    for (long t = 0; t < n_work; t++) {
        const int b = (int)(t / n_strips), s = (int)(t % n_strips);
        const int p0 = s * NR, cols = P - p0 < NR ? P - p0 : NR;
        float *panel = ws + (size_t)dfs_ops_thread_id() * DFS_GEMM_KC * NR;
        const float *img = inp + (size_t)b * C * H * W;
        float *ob = out + (size_t)b * OC * P + p0;
        for (int oc = 0; oc < OC; oc++)
            for (int j = 0; j < cols; j++) ob[(size_t)oc * P + j] = bias ? bias[oc] : 0.0f;
        for (int k0 = 0; k0 < K; k0 += DFS_GEMM_KC) {
            const int kc = K - k0 < DFS_GEMM_KC ? K - k0 : DFS_GEMM_KC;
            pack_strip(panel, NR, img, H, W, KH, KW, stride, pad_t, pad_l, OW, k0, kc, p0, cols);
            for (int m0 = 0; m0 < OC; m0 += DFS_GEMM_MR) {
                const int mr = OC - m0 < DFS_GEMM_MR ? OC - m0 : DFS_GEMM_MR;
                g->kernel(kc, w + (size_t)m0 * K + k0, (size_t)K, panel, ob + (size_t)m0 * P, (size_t)P, mr, cols);
            }
        }
    }
}
