/* Element-wise activations, as torch defines them. */
#include <math.h>
#include <string.h>

#include "ops/ops.h"
#include "ops/vmath.h"

static inline float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); } /* torch's threshold */

void dfs_act_forward(float *x, size_t n, dfs_act act) {
    switch (act) {
    case DFS_ACT_NONE: return;
    case DFS_ACT_SILU: dfs_vmath_best()->silu(x, n); return;
    case DFS_ACT_MISH:
        for (size_t i = 0; i < n; i++) x[i] = x[i] * tanhf(softplus(x[i]));
        return;
    case DFS_ACT_GELU:
        for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
        return;
    case DFS_ACT_RELU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
        return;
    }
}

#define CHUNK 4096 /* values per task of the whole-tensor loops below */

void dfs_act_apply(float *out, const float *in, size_t n, dfs_act act) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += CHUNK) {
        const size_t m = n - i < CHUNK ? n - i : CHUNK;
        if (out != in) memcpy(out + i, in + i, m * sizeof(float));
        dfs_act_forward(out + i, m, act);
    }
}

void dfs_act_backward(float *dinp, const float *dout, const float *inp, size_t n, dfs_act act, int add) {
    if (act == DFS_ACT_SILU) {
        const dfs_vmath_impl *vm = dfs_vmath_best();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i += CHUNK) {
            const size_t m = n - i < CHUNK ? n - i : CHUNK;
            vm->silu_grad(dinp + i, dout + i, inp + i, m, 1.0f, 0.0f, add);
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        const float x = inp[i];
        float d = 1.0f;
        switch (act) {
        case DFS_ACT_NONE: break;
        case DFS_ACT_SILU: break; /* above */
        case DFS_ACT_MISH: {
            const float sp = softplus(x), t = tanhf(sp), s = 1.0f / (1.0f + expf(-x));
            d = t + x * (1.0f - t * t) * s;
            break;
        }
        case DFS_ACT_GELU:
            d = 0.5f * (1.0f + erff(x * 0.70710678118654752f)) + x * 0.39894228040143268f * expf(-0.5f * x * x);
            break;
        case DFS_ACT_RELU: d = x > 0.0f ? 1.0f : 0.0f; break;
        }
        dinp[i] = (add ? dinp[i] : 0.0f) + dout[i] * d;
    }
}
