/* Direct 2-D convolution. The hot loop runs along an output row for four output channels at
 * once, so each input value loaded feeds four multiply-adds. Each (image, 4-channel block) has one
 * writer, and every output sums over (c, ky, kx) in the same order whatever the thread count. */
#include "core/internal.h"
#include "ops/ops.h"

/* First and last output column whose input column ox·stride + kx − pad_l lies in [0, W). */
static void valid_cols(int W, int OW, int stride, int kx, int pad_l, int *lo, int *hi) {
    int off = kx - pad_l; /* input column of output column 0 */
    int l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int h = (W - 1 - off) >= 0 ? (W - 1 - off) / stride : -1;
    if (h > OW - 1) h = OW - 1;
    *lo = l;
    *hi = h;
}

void dfs_conv2d_forward(float *out, const float *inp, const float *w, const float *bias, int B, int C,
                        int H, int W, int OC, int KH, int KW, int stride, int pad_t, int pad_l, int OH, int OW) {
    DFS_ASSERT(stride >= 1 && OH >= 1 && OW >= 1);
    const size_t in_plane = (size_t)H * W, out_plane = (size_t)OH * OW, ksize = (size_t)KH * KW;
    const int n_ocb = (OC + 3) / 4;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int ocb = 0; ocb < n_ocb; ocb++) {
            const int oc0 = ocb * 4, nb = OC - oc0 < 4 ? OC - oc0 : 4;
            float *o[4];
            for (int j = 0; j < 4; j++) {
                int oc = oc0 + (j < nb ? j : 0);
                o[j] = out + ((size_t)b * OC + oc) * out_plane;
            }
            for (int j = 0; j < nb; j++) {
                float bv = bias ? bias[oc0 + j] : 0.0f;
                for (size_t i = 0; i < out_plane; i++) o[j][i] = bv;
            }
            for (int c = 0; c < C; c++) {
                const float *ip = inp + ((size_t)b * C + c) * in_plane;
                for (int ky = 0; ky < KH; ky++) {
                    for (int kx = 0; kx < KW; kx++) {
                        float wv[4] = {0, 0, 0, 0};
                        for (int j = 0; j < nb; j++) wv[j] = w[((size_t)(oc0 + j) * C + c) * ksize + (size_t)ky * KW + kx];
                        int lo, hi;
                        valid_cols(W, OW, stride, kx, pad_l, &lo, &hi);
                        if (lo > hi) continue;
                        for (int oy = 0; oy < OH; oy++) {
                            int iy = oy * stride + ky - pad_t;
                            if (iy < 0 || iy >= H) continue;
                            const float *row = ip + (size_t)iy * W + (kx - pad_l);
                            float *r0 = o[0] + (size_t)oy * OW, *r1 = o[1] + (size_t)oy * OW;
                            float *r2 = o[2] + (size_t)oy * OW, *r3 = o[3] + (size_t)oy * OW;
                            if (nb == 4 && stride == 1) {
                                for (int ox = lo; ox <= hi; ox++) {
                                    float v = row[ox];
                                    r0[ox] += wv[0] * v;
                                    r1[ox] += wv[1] * v;
                                    r2[ox] += wv[2] * v;
                                    r3[ox] += wv[3] * v;
                                }
                            } else {
                                for (int j = 0; j < nb; j++) {
                                    float *r = o[j] + (size_t)oy * OW;
                                    for (int ox = lo; ox <= hi; ox++) r[ox] += wv[j] * row[(size_t)ox * stride];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
