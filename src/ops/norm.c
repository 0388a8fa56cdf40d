/* GroupNorm (+ activation), one writer per (image, group). */
#include <math.h>

#include "core/internal.h"
#include "ops/gemm.h"
#include "ops/ops.h"
#include "ops/vmath.h"

/* Mean and 1/std (rounded to float, as the forward uses it) of n values: sums of float blocks
 * added in double (vmath.h), the variance taken around the mean. */
static void moments(const dfs_vmath_impl *vm, const float *x, size_t n, float eps, double *mean, float *rstd) {
    const double m = vm->sum(x, n) / (double)n;
    *mean = m;
    *rstd = (float)(1.0 / sqrt(vm->sumsq(x, n, (float)m) / (double)n + (double)eps));
}

/* One group: y (CG rows of HW, at stride HW) = act(x·scale + shift) for the CG channels from ch0
 * of x; its mean and 1/std into st when st is not NULL. */
static void norm_group(const dfs_vmath_impl *vm, float *y, const float *x, int CG, int HW, int ch0, const float *gamma,
                       const float *beta, float eps, dfs_act act, double *st) {
    double mean;
    float rstd;
    moments(vm, x, (size_t)CG * HW, eps, &mean, &rstd);
    if (st) st[0] = mean, st[1] = rstd;
    const float meanf = (float)mean;
    /* y = x·scale + shift, the form torch's CPU kernel uses */
    for (int c = 0; c < CG; c++) {
        const int ch = ch0 + c;
        const float scale = rstd * gamma[ch];
        const float shift = beta[ch] - meanf * scale;
        float *yr = y + (size_t)c * HW;
        const float *xr = x + (size_t)c * HW;
        if (act == DFS_ACT_NONE || act == DFS_ACT_SILU) {
            vm->affine(yr, xr, (size_t)HW, scale, shift, act == DFS_ACT_SILU);
        } else {
            for (int i = 0; i < HW; i++) yr[i] = xr[i] * scale + shift;
            dfs_act_forward(yr, (size_t)HW, act);
        }
    }
}

void dfs_groupnorm_forward(float *out, const float *inp, const float *gamma, const float *beta, int B,
                           int C, int HW, int G, float eps, dfs_act act, double *stats) {
    DFS_ASSERT(G > 0 && C % G == 0);
    const int CG = C / G;
    const dfs_vmath_impl *vm = dfs_vmath_best();
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int g = 0; g < G; g++) {
            const size_t base = ((size_t)b * C + (size_t)g * CG) * HW;
            norm_group(vm, out + base, inp + base, CG, HW, g * CG, gamma, beta, eps, act,
                       stats ? stats + 2 * ((size_t)b * G + g) : NULL);
        }
}

size_t dfs_groupnorm_tokens_workspace(int C, int HW, int G) {
    return (size_t)dfs_ops_max_threads() * ((size_t)(C / G) * HW + 16);
}

/* Each group normalised into the thread's part of ws, then transposed 16 × 16 at a time into its
 * CG columns of the image's token rows. */
void dfs_groupnorm_forward_tokens(float *out, float *ws, const float *inp, const float *gamma, const float *beta, int B,
                                  int C, int HW, int G, float eps) {
    DFS_ASSERT(G > 0 && C % G == 0);
    const int CG = C / G;
    const dfs_vmath_impl *vm = dfs_vmath_best();
    const dfs_gemm_impl *gm = dfs_gemm_best();
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int g = 0; g < G; g++) {
            float *y = ws + (size_t)dfs_ops_thread_id() * ((size_t)CG * HW + 16);
            norm_group(vm, y, inp + ((size_t)b * C + (size_t)g * CG) * HW, CG, HW, g * CG, gamma, beta, eps, DFS_ACT_NONE,
                       NULL);
            dfs_gemm_transpose_blocks(gm, out + (size_t)b * HW * C + (size_t)g * CG, (size_t)C, y, (size_t)HW, HW, CG);
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

size_t dfs_groupnorm_backward_workspace(int B, int C, int G) {
    return 4 * (size_t)B * G + 4 * (size_t)B * C; /* floats: 2·B·G + 2·B·C doubles */
}

/* With x̂ = (x − m)·r over a group of n values and, per channel c of an image, A_c = Σ dy and
 * D_c = Σ dy·x (vectorised block sums):
 *     dβ_c += Σ_images A_c,   dγ_c += Σ_images r·(D_c − m·A_c),
 *     dx = r·(dy·γ − s1/n − x̂·s2/n),  s1 = Σ_c γ_c·A_c,  s2 = r·Σ_c γ_c·(D_c − m·A_c),
 * the last applied as dx += dy·(r·γ_c) + x·k1 + k0 with k1 = −r²·s2/n, k0 = r²·m·s2/n − r·s1/n. */
void dfs_groupnorm_backward(float *dinp, float *dgamma, float *dbeta, float *ws, float *dout, const float *inp,
                            const float *gamma, const float *beta, const double *stats, int B, int C, int HW, int G,
                            float eps, dfs_act act, int dinp_add) {
    DFS_ASSERT(act == DFS_ACT_NONE || act == DFS_ACT_SILU);
    const int CG = C / G;
    const size_t n = (size_t)CG * HW;
    const dfs_vmath_impl *vm = dfs_vmath_best();
    double *mean = (double *)ws, *rstd = mean + (size_t)B * G, *A = rstd + (size_t)B * G, *D = A + (size_t)B * C;
    if (stats)
        for (size_t bg = 0; bg < (size_t)B * G; bg++) mean[bg] = stats[2 * bg], rstd[bg] = stats[2 * bg + 1];
    else
        group_stats(mean, rstd, inp, B, C, HW, G, eps);
    /* one task per (image, group): the per-channel sums, then, while the group is still in
     * cache, the input gradient */
#pragma omp parallel for schedule(static)
    for (int bg = 0; bg < B * G; bg++) {
        const int g = bg % G;
        const size_t c0 = (size_t)(bg / G) * C + (size_t)g * CG;
        for (int c = 0; c < CG; c++) {
            const size_t bc = c0 + (size_t)c;
            const float *x = inp + bc * HW;
            float *dy = dout + bc * HW;
            if (act == DFS_ACT_SILU) { /* the forward's scale and shift, in float */
                const float scale = (float)rstd[bg] * gamma[g * CG + c], shift = beta[g * CG + c] - (float)mean[bg] * scale;
                vm->silu_grad(dy, dy, x, (size_t)HW, scale, shift, 0);
            }
            A[bc] = vm->sum(dy, (size_t)HW);
            D[bc] = vm->dot(dy, x, (size_t)HW);
        }
        if (!dinp) continue;
        const double m = mean[bg], r = rstd[bg];
        double s1 = 0, s2 = 0;
        for (int c = 0; c < CG; c++) {
            const double gm = gamma[g * CG + c];
            s1 += gm * A[c0 + c];
            s2 += gm * (D[c0 + c] - m * A[c0 + c]);
        }
        s2 *= r;
        const float k1 = (float)(-r * r * s2 / (double)n), k0 = (float)(r * r * m * s2 / (double)n - r * s1 / (double)n);
        for (int c = 0; c < CG; c++) {
            const float a = (float)(r * gamma[g * CG + c]);
            float *dx = dinp + (c0 + c) * HW;
            const float *dy = dout + (c0 + c) * HW, *x = inp + (c0 + c) * HW;
            if (dinp_add)
#pragma omp simd /* the same operations per element, vectorised */
                for (int i = 0; i < HW; i++) dx[i] += dy[i] * a + x[i] * k1 + k0;
            else
#pragma omp simd
                for (int i = 0; i < HW; i++) dx[i] = dy[i] * a + x[i] * k1 + k0;
        }
    }
    for (int c = 0; c < C && (dgamma || dbeta); c++) {
        double sg = 0, sb = 0;
        for (int b = 0; b < B; b++) {
            const size_t k = (size_t)b * C + c, bg = (size_t)b * G + c / CG;
            sb += A[k];
            sg += rstd[bg] * (D[k] - mean[bg] * A[k]);
        }
        if (dgamma) dgamma[c] += (float)sg;
        if (dbeta) dbeta[c] += (float)sb;
    }
}
