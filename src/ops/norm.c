/* GroupNorm (+ activation), one writer per (image, group). */
#include <math.h>

#include "core/internal.h"
#include "ops/ops.h"
#include "ops/vmath.h"

/* Mean and 1/std (rounded to float, as the forward uses it) of n values: sums of float blocks
 * added in double (vmath.h), the variance taken around the mean. */
static void moments(const dfs_vmath_impl *vm, const float *x, size_t n, float eps, double *mean, float *rstd) {
    const double m = vm->sum(x, n) / (double)n;
    *mean = m;
    *rstd = (float)(1.0 / sqrt(vm->sumsq(x, n, (float)m) / (double)n + (double)eps));
}

void dfs_groupnorm_forward(float *out, const float *inp, const float *gamma, const float *beta, int B,
                           int C, int HW, int G, float eps, dfs_act act) {
    DFS_ASSERT(G > 0 && C % G == 0);
    const int CG = C / G;
    const size_t n = (size_t)CG * HW;
    const dfs_vmath_impl *vm = dfs_vmath_best();
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int g = 0; g < G; g++) {
            const size_t base = ((size_t)b * C + (size_t)g * CG) * HW;
            const float *x = inp + base;
            double mean;
            float rstd;
            moments(vm, x, n, eps, &mean, &rstd);
            const float meanf = (float)mean;
            float *y = out + base;
            /* y = x·scale + shift, the form torch's CPU kernel uses */
            for (int c = 0; c < CG; c++) {
                const int ch = g * CG + c;
                const float scale = rstd * gamma[ch];
                const float shift = beta[ch] - meanf * scale;
                float *yr = y + (size_t)c * HW;
                const float *xr = x + (size_t)c * HW;
                for (int i = 0; i < HW; i++) yr[i] = xr[i] * scale + shift;
                dfs_act_forward(yr, (size_t)HW, act);
            }
        }
    }
}

/* Mean and 1/std of each (image, group), as the forward computes them. */
static void group_stats(double *mean, double *rstd, const float *inp, int B, int C, int HW, int G, float eps) {
    const int CG = C / G;
    const size_t n = (size_t)CG * HW;
    const dfs_vmath_impl *vm = dfs_vmath_best();
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int g = 0; g < G; g++) {
            float r;
            moments(vm, inp + ((size_t)b * C + (size_t)g * CG) * HW, n, eps, &mean[b * G + g], &r);
            rstd[b * G + g] = r;
        }
}

size_t dfs_groupnorm_backward_workspace(int B, int G) { return 4 * (size_t)B * G; /* floats: 2·B·G doubles */ }

void dfs_groupnorm_backward(float *dinp, float *dgamma, float *dbeta, float *ws, const float *dout, const float *inp,
                            const float *gamma, int B, int C, int HW, int G, float eps) {
    const int CG = C / G;
    const size_t n = (size_t)CG * HW;
    double *mean = (double *)ws, *rstd = mean + (size_t)B * G;
    group_stats(mean, rstd, inp, B, C, HW, G, eps);
    if (dgamma || dbeta) {
#pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++) {
            double sg = 0, sb = 0;
            for (int b = 0; b < B; b++) {
                const double m = mean[b * G + c / CG], r = rstd[b * G + c / CG];
                const float *x = inp + ((size_t)b * C + c) * HW, *dy = dout + ((size_t)b * C + c) * HW;
                for (int i = 0; i < HW; i++) {
                    sg += dy[i] * ((x[i] - m) * r);
                    sb += dy[i];
                }
            }
            if (dgamma) dgamma[c] += (float)sg;
            if (dbeta) dbeta[c] += (float)sb;
        }
    }
    if (!dinp) return;
    /* dx = rstd·(dy·γ − mean(dy·γ) − x̂·mean(dy·γ·x̂)) over the group */
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int g = 0; g < G; g++) {
            const double m = mean[b * G + g], r = rstd[b * G + g];
            const size_t base = ((size_t)b * C + (size_t)g * CG) * HW;
            double s1 = 0, s2 = 0;
            for (int c = 0; c < CG; c++) {
                const double gm = gamma[g * CG + c];
                for (int i = 0; i < HW; i++) {
                    const size_t k = base + (size_t)c * HW + i;
                    const double dyg = dout[k] * gm;
                    s1 += dyg;
                    s2 += dyg * (inp[k] - m) * r;
                }
            }
            s1 /= (double)n;
            s2 /= (double)n;
            for (int c = 0; c < CG; c++) {
                const double gm = gamma[g * CG + c];
                for (int i = 0; i < HW; i++) {
                    const size_t k = base + (size_t)c * HW + i;
                    dinp[k] += (float)(r * (dout[k] * gm - s1 - (inp[k] - m) * r * s2));
                }
            }
        }
}
