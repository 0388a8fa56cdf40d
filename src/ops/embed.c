/* Timestep embeddings: sinusoidal (DDPM) and Gaussian Fourier (NCSN++ / score SDE). */
#include <math.h>

#include "ops/ops.h"

void dfs_timestep_embedding(float *out, const float *t, int N, int dim, int flip_sin_to_cos, float freq_shift) {
    const int half = dim / 2;
    /* torch: exponent = float32(-ln 10000) · arange(half) / (half − shift), each step in float32,
     * then exp in float32. */
    const float neg_log_period = (float)-9.210340371976184;
    for (int n = 0; n < N; n++) {
        float *row = out + (size_t)n * dim;
        for (int i = 0; i < half; i++) {
            const float e = (neg_log_period * (float)i) / ((float)half - freq_shift);
            const float freq = expf(e);
            const float arg = t[n] * freq;
            const float s = sinf(arg), c = cosf(arg);
            row[flip_sin_to_cos ? half + i : i] = s;
            row[flip_sin_to_cos ? i : half + i] = c;
        }
        if (dim % 2) row[dim - 1] = 0.0f;
    }
}

void dfs_fourier_embedding(float *out, const float *t, int N, const float *w, int D) {
    const float pi_f = (float)3.14159265358979323846; /* torch multiplies by 2, then by float32(pi) */
    for (int n = 0; n < N; n++) {
        const float lt = logf(t[n]);
        for (int i = 0; i < D; i++) {
            const float arg = ((lt * w[i]) * 2.0f) * pi_f;
            out[(size_t)n * 2 * D + i] = sinf(arg);
            out[(size_t)n * 2 * D + D + i] = cosf(arg);
        }
    }
}
