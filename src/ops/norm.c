/* GroupNorm (+ activation), one writer per (image, group). */
#include <math.h>

#include "core/internal.h"
#include "ops/ops.h"

void dfs_groupnorm_forward(float *out, const float *inp, const float *gamma, const float *beta, int B,
                           int C, int HW, int G, float eps, dfs_act act) {
    DFS_ASSERT(G > 0 && C % G == 0);
    const int CG = C / G;
    const size_t n = (size_t)CG * HW;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++) {
        for (int g = 0; g < G; g++) {
            const size_t base = ((size_t)b * C + (size_t)g * CG) * HW;
            const float *x = inp + base;
            double sum = 0.0;
            for (size_t i = 0; i < n; i++) sum += x[i];
            const double mean = sum / (double)n;
            double ss = 0.0;
            for (size_t i = 0; i < n; i++) {
                double d = x[i] - mean;
                ss += d * d;
            }
            const float rstd = (float)(1.0 / sqrt(ss / (double)n + (double)eps));
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
