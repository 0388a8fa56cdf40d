/* Element-wise sums, channel concatenation and zeroing, shared out among the threads. */
#include <string.h>

#include "ops/ops.h"
#include "ops/vmath.h"

#define ZERO_CHUNK 65536 /* floats per task of dfs_zero */

void dfs_zero(float *p, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += ZERO_CHUNK) memset(p + i, 0, sizeof(float) * (n - i < ZERO_CHUNK ? n - i : ZERO_CHUNK));
}

void dfs_add_div(float *out, const float *a, const float *b, size_t n, float div) {
    if (div == 1.0f) { /* the usual output_scale_factor: x / 1 is x, skip the divisions */
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
        return;
    }
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = (a[i] + b[i]) / div;
}

void dfs_concat_channels(float *out, const float *a, int Ca, const float *b, int Cb, int B, int HW) {
    const size_t na = (size_t)Ca * HW, nb = (size_t)Cb * HW;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < B; i++) {
        memcpy(out + (size_t)i * (na + nb), a + (size_t)i * na, na * sizeof(float));
        memcpy(out + (size_t)i * (na + nb) + na, b + (size_t)i * nb, nb * sizeof(float));
    }
}

void dfs_add_channel_bias(float *x, const float *bias, int B, int C, int HW) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            float *row = x + ((size_t)b * C + c) * HW;
            const float v = bias[(size_t)b * C + c];
#pragma omp simd
            for (int i = 0; i < HW; i++) row[i] += v;
        }
}

void dfs_scale_shift(float *x, const float *t, int B, int C, int HW, dfs_act act) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            float *row = x + ((size_t)b * C + c) * HW;
            const float scale = 1.0f + t[(size_t)b * 2 * C + c], shift = t[(size_t)b * 2 * C + C + c];
            for (int i = 0; i < HW; i++) row[i] = row[i] * scale + shift;
            dfs_act_forward(row, (size_t)HW, act);
        }
}

void dfs_channel_sum_backward(float *dbias, const float *dx, int B, int C, int HW) {
    const dfs_vmath_impl *vm = dfs_vmath_best();
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            dbias[(size_t)b * C + c] += (float)vm->sum(dx + ((size_t)b * C + c) * HW, (size_t)HW);
}

void dfs_scale_shift_backward(float *dinp, float *dt, const float *dout, const float *inp, const float *t, int B, int C,
                              int HW) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            const size_t off = ((size_t)b * C + c) * HW;
            const float scale = 1.0f + t[(size_t)b * 2 * C + c];
            double ds = 0, dsh = 0;
            for (int i = 0; i < HW; i++) {
                ds += (double)dout[off + i] * inp[off + i];
                dsh += dout[off + i];
                dinp[off + i] += dout[off + i] * scale;
            }
            dt[(size_t)b * 2 * C + c] += (float)ds;
            dt[(size_t)b * 2 * C + C + c] += (float)dsh;
        }
}
