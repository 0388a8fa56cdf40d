/* Naive reference ops (see ref.h). */
#include <math.h>

#include "core/internal.h"
#include "ops/ref/ref.h"

void dfs_conv2d_forward_ref(float *out, const float *inp, const float *w, const float *bias, int B, int C, int H,
                            int W, int OC, int KH, int KW, int stride, int pad_t, int pad_l, int OH, int OW) {
    for (int b = 0; b < B; b++)
        for (int oc = 0; oc < OC; oc++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    double s = bias ? bias[oc] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int ky = 0; ky < KH; ky++)
                            for (int kx = 0; kx < KW; kx++) {
                                int iy = oy * stride + ky - pad_t, ix = ox * stride + kx - pad_l;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                s += (double)inp[(((size_t)b * C + c) * H + iy) * W + ix] *
                                     w[(((size_t)oc * C + c) * KH + ky) * KW + kx];
                            }
                    out[(((size_t)b * OC + oc) * OH + oy) * OW + ox] = (float)s;
                }
}

void dfs_linear_forward_ref(float *out, const float *inp, const float *w, const float *bias, int N, int I, int O) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int i = 0; i < I; i++) s += (double)inp[(size_t)n * I + i] * w[(size_t)o * I + i];
            out[(size_t)n * O + o] = (float)s;
        }
}

double dfs_act_ref(double x, dfs_act act) {
    switch (act) {
    case DFS_ACT_NONE: return x;
    case DFS_ACT_SILU: return x / (1.0 + exp(-x));
    case DFS_ACT_MISH: return x * tanh(log1p(exp(x)));
    case DFS_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case DFS_ACT_RELU: return x > 0 ? x : 0;
    }
    return x;
}

void dfs_groupnorm_forward_ref(float *out, const float *inp, const float *gamma, const float *beta, int B, int C,
                               int HW, int G, float eps, dfs_act act) {
    const int CG = C / G;
    for (int b = 0; b < B; b++)
        for (int g = 0; g < G; g++) {
            const float *x = inp + ((size_t)b * C + (size_t)g * CG) * HW;
            const size_t n = (size_t)CG * HW;
            double mean = 0, var = 0;
            for (size_t i = 0; i < n; i++) mean += x[i];
            mean /= (double)n;
            for (size_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
            var /= (double)n;
            for (int c = 0; c < CG; c++)
                for (int i = 0; i < HW; i++) {
                    const int ch = g * CG + c;
                    double y = (x[(size_t)c * HW + i] - mean) / sqrt(var + eps) * gamma[ch] + beta[ch];
                    out[((size_t)b * C + ch) * HW + i] = (float)dfs_act_ref(y, act);
                }
        }
}

void dfs_attention_forward_ref(float *out, const float *xn, const float *residual, const float *wq, const float *bq,
                               const float *wk, const float *bk, const float *wv, const float *bv, const float *wo,
                               const float *bo, int B, int C, int HW, int heads, int dh, float rescale) {
    const int inner = heads * dh;
    double *q = dfs_malloc(sizeof(double) * (size_t)HW * inner), *k = dfs_malloc(sizeof(double) * (size_t)HW * inner);
    double *v = dfs_malloc(sizeof(double) * (size_t)HW * inner), *o = dfs_malloc(sizeof(double) * (size_t)HW * inner);
    double *p = dfs_malloc(sizeof(double) * (size_t)HW);
    DFS_ASSERT(q && k && v && o && p);
    for (int b = 0; b < B; b++) {
        const float *x = xn + (size_t)b * C * HW;
        for (int i = 0; i < HW; i++)
            for (int j = 0; j < inner; j++) {
                double sq = bq[j], sk = bk[j], sv = bv[j];
                for (int c = 0; c < C; c++) {
                    double xv = x[(size_t)c * HW + i];
                    sq += xv * wq[(size_t)j * C + c];
                    sk += xv * wk[(size_t)j * C + c];
                    sv += xv * wv[(size_t)j * C + c];
                }
                q[(size_t)i * inner + j] = sq;
                k[(size_t)i * inner + j] = sk;
                v[(size_t)i * inner + j] = sv;
            }
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < HW; i++) {
                double m = -INFINITY, sum = 0;
                for (int j = 0; j < HW; j++) {
                    double s = 0;
                    for (int d = 0; d < dh; d++) s += q[(size_t)i * inner + h * dh + d] * k[(size_t)j * inner + h * dh + d];
                    p[j] = s / sqrt((double)dh);
                    if (p[j] > m) m = p[j];
                }
                for (int j = 0; j < HW; j++) sum += (p[j] = exp(p[j] - m));
                for (int d = 0; d < dh; d++) {
                    double s = 0;
                    for (int j = 0; j < HW; j++) s += p[j] * v[(size_t)j * inner + h * dh + d];
                    o[(size_t)i * inner + h * dh + d] = s / sum;
                }
            }
        for (int i = 0; i < HW; i++)
            for (int c = 0; c < C; c++) {
                double s = bo[c];
                for (int j = 0; j < inner; j++) s += o[(size_t)i * inner + j] * wo[(size_t)c * inner + j];
                size_t idx = ((size_t)b * C + c) * HW + i;
                out[idx] = (float)((s + residual[idx]) / rescale);
            }
    }
    dfs_free(q);
    dfs_free(k);
    dfs_free(v);
    dfs_free(o);
    dfs_free(p);
}
