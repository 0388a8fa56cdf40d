/* AdamW and EMA with PyTorch's / diffusers' arithmetic. */
#include <math.h>

#include "train/train.h"

/* torch.optim.AdamW, single-tensor path: decay first, then m ← lerp(m, g, 1 − β1),
 * v ← β2·v + (1 − β2)·g², p ← p − (lr / (1 − β1^t))·m / (sqrt(v)/sqrt(1 − β2^t) + ε). Scalars
 * are rounded to float32 where torch applies them to float32 tensors. */
void dfs_adamw_step(float *param, const float *grad, float *m, float *v, size_t n, int step, double lr, double beta1,
                    double beta2, double eps, double weight_decay, float grad_scale, float *ema, float ema_decay) {
    const float decay = (float)(1.0 - lr * weight_decay), w1 = (float)(1.0 - beta1), b2 = (float)beta2;
    const float w2 = (float)(1.0 - beta2);
    const double bc1 = 1.0 - pow(beta1, step), bc2 = 1.0 - pow(beta2, step);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2), epsf = (float)eps;
#pragma omp parallel for simd schedule(static) /* vectorised: the same IEEE operations per element */
    for (size_t i = 0; i < n; i++) {
        const float g = grad[i] * grad_scale; /* g·1 is g */
        param[i] = param[i] * decay;
        m[i] = m[i] + w1 * (g - m[i]);
        v[i] = v[i] * b2 + w2 * g * g;
        const float denom = sqrtf(v[i]) / bc2_sqrt + epsf;
        param[i] = param[i] + -step_size * m[i] / denom;
        if (ema) ema[i] = ema[i] - (1.0f - ema_decay) * (ema[i] - param[i]);
    }
}

double dfs_ema_decay(int optimization_step, double max_decay, double inv_gamma, double power) {
    const int step = optimization_step - 1; /* diffusers: max(0, step − update_after_step − 1) */
    if (step <= 0) return 0.0;
    double d = 1.0 - pow(1.0 + step / inv_gamma, -power);
    return d < max_decay ? d : max_decay;
}
