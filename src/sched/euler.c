/* EulerDiscreteScheduler and EulerAncestralDiscreteScheduler (Karras et al. 2022, k-diffusion):
 * the probability-flow ODE in σ, x_{next} = x + (x − x̂0)/σ · (σ_next − σ), and its ancestral
 * variant that steps down to σ_down and adds σ_up of fresh noise. */
#include <string.h>

#include "sched/sched_internal.h"
#include "sched/sigmas.h"

/* Timesteps as float32 by spacing (diffusers' Euler family builds them in float). */
static void float_timesteps(const dfs_sched *s, int n, double *out) {
    const int T = s->cfg.num_train_timesteps;
    switch (s->cfg.timestep_spacing) {
    case DFS_SPACING_LINSPACE:
        for (int i = 0; i < n; i++) out[n - 1 - i] = (float)(n == 1 ? 0.0 : (double)(T - 1) * i / (n - 1));
        break;
    case DFS_SPACING_LEADING:
        for (int i = 0; i < n; i++) out[n - 1 - i] = (float)(i * (T / n)) + (float)s->cfg.steps_offset;
        break;
    case DFS_SPACING_TRAILING: {
        const double ratio = (double)T / n;
        int k = 0;
        for (double v = T; v > 0 && k < n; v -= ratio) out[k++] = (float)nearbyint(v) - 1.0f;
        break;
    }
    }
}

static dfs_status set_timesteps_common(dfs_ctx *ctx, dfs_sched *s, int n, int karras, int sigma_min_final) {
    const int T = s->cfg.num_train_timesteps;
    double *ts = dfs_malloc(sizeof(double) * (size_t)(n + 1)), *sig = dfs_malloc(sizeof(double) * (size_t)(n + 1));
    double *train = dfs_malloc(sizeof(double) * (size_t)T), *logs = dfs_malloc(sizeof(double) * (size_t)T);
    dfs_status st = ts && sig && train && logs ? dfs_sched_alloc_steps(ctx, s, n, 1)
                                              : dfs_fail(ctx, DFS_ERR_NOMEM, "scheduler: out of memory");
    if (!st) {
        float_timesteps(s, n, ts);
        dfs_sched_train_sigmas(s, train);
        for (int i = 0; i < n; i++) sig[i] = dfs_sched_interp(ts[i], train, T);
        if (karras) {
            for (int i = 0; i < T; i++) logs[i] = (double)logf((float)train[i]); /* numpy: log of a float32 array */
            dfs_sched_karras(sig[n - 1], sig[0], n, sig);
            for (int i = 0; i < n; i++) ts[i] = dfs_sched_sigma_to_t(sig[i], logs, T);
        }
        const float ac0 = s->alphas_cumprod[0];
        sig[n] = sigma_min_final ? (double)sqrtf((1.0f - ac0) / ac0) : 0.0;
        float max_sigma = 0;
        for (int i = 0; i <= n; i++) {
            s->sigmas[i] = (float)sig[i];
            if (s->sigmas[i] > max_sigma) max_sigma = s->sigmas[i];
        }
        for (int i = 0; i < n; i++) {
            s->timesteps[i] = (float)ts[i];
            s->ts_int[i] = (int)ts[i];
        }
        const dfs_spacing sp = s->cfg.timestep_spacing;
        s->init_noise_sigma = sp == DFS_SPACING_LEADING ? sqrtf(max_sigma * max_sigma + 1.0f) : max_sigma;
    }
    dfs_free(ts);
    dfs_free(sig);
    dfs_free(train);
    dfs_free(logs);
    return st;
}

static dfs_status euler_set_timesteps(dfs_ctx *ctx, dfs_sched *s, int n) {
    return set_timesteps_common(ctx, s, n, s->cfg.use_karras_sigmas, !s->cfg.final_sigmas_zero);
}

static dfs_status euler_a_set_timesteps(dfs_ctx *ctx, dfs_sched *s, int n) { return set_timesteps_common(ctx, s, n, 0, 0); }

static void scale_input(const dfs_sched *s, int i, const float *x, float *x_in, size_t n) {
    const float sigma = s->sigmas[i], d = sqrtf(sigma * sigma + 1.0f);
    for (size_t k = 0; k < n; k++) x_in[k] = x[k] / d;
}

/* x̂0 from the model output at σ (diffusers' Euler-family formulas). */
static void denoised(dfs_pred p, float sigma, const float *mo, const float *x, float *x0, size_t n) {
    const float c_out = -sigma / sqrtf(sigma * sigma + 1.0f), c_skip = sigma * sigma + 1.0f;
    for (size_t k = 0; k < n; k++) {
        switch (p) {
        case DFS_PRED_EPSILON: x0[k] = x[k] - sigma * mo[k]; break;
        case DFS_PRED_SAMPLE: x0[k] = mo[k]; break;
        case DFS_PRED_V: x0[k] = mo[k] * c_out + x[k] / c_skip; break;
        }
    }
}

static dfs_status euler_step(dfs_ctx *ctx, dfs_sched *s, int i, const float *mo, const float *x, const float *noise,
                             float *prev, float *pred_x0, size_t n, int B) {
    const float sigma = s->sigmas[i], dt = s->sigmas[i + 1] - sigma;
    float *x0 = pred_x0 ? pred_x0 : s->tmp[0];
    denoised(s->cfg.prediction_type, sigma, mo, x, x0, n);
    for (size_t k = 0; k < n; k++) {
        const float d = (x[k] - x0[k]) / sigma;
        prev[k] = x[k] + d * dt;
    }
    return DFS_OK;
}

static int always(const dfs_sched *s, int i) { return 1; }

static dfs_status euler_a_step(dfs_ctx *ctx, dfs_sched *s, int i, const float *mo, const float *x, const float *noise,
                               float *prev, float *pred_x0, size_t n, int B) {
    const float sf = s->sigmas[i], st = s->sigmas[i + 1];
    const float up = sqrtf(st * st * (sf * sf - st * st) / (sf * sf)), down = sqrtf(st * st - up * up);
    const float dt = down - sf;
    float *x0 = pred_x0 ? pred_x0 : s->tmp[0];
    denoised(s->cfg.prediction_type, sf, mo, x, x0, n);
    for (size_t k = 0; k < n; k++) {
        const float d = (x[k] - x0[k]) / sf;
        const float v = x[k] + d * dt;
        prev[k] = v + noise[k] * up;
    }
    return DFS_OK;
}

/* HeunDiscreteScheduler: each interval takes an Euler predictor and a trapezoid corrector, so
 * diffusers lists every timestep but the first twice: sigmas [σ0, σ1, σ1, ..., σ_{n-1}, σ_{n-1}, 0]. */
static dfs_status heun_set_timesteps(dfs_ctx *ctx, dfs_sched *s, int n) {
    dfs_status st = set_timesteps_common(ctx, s, n, s->cfg.use_karras_sigmas, 0);
    if (st) return st;
    float *ts = dfs_malloc(sizeof(float) * (size_t)n), *sg = dfs_malloc(sizeof(float) * (size_t)(n + 1));
    const float init = s->init_noise_sigma;
    if (!ts || !sg) {
        dfs_free(ts);
        dfs_free(sg);
        return dfs_fail(ctx, DFS_ERR_NOMEM, "scheduler: out of memory");
    }
    memcpy(ts, s->timesteps, sizeof(float) * (size_t)n);
    memcpy(sg, s->sigmas, sizeof(float) * (size_t)(n + 1));
    if ((st = dfs_sched_alloc_steps(ctx, s, 2 * n - 1, 1))) {
        dfs_free(ts);
        dfs_free(sg);
        return st;
    }
    s->timesteps[0] = ts[0];
    s->sigmas[0] = sg[0];
    for (int i = 1; i < n; i++) {
        s->timesteps[2 * i - 1] = s->timesteps[2 * i] = ts[i];
        s->sigmas[2 * i - 1] = s->sigmas[2 * i] = sg[i];
    }
    s->sigmas[2 * n - 1] = 0.0f;
    for (int i = 0; i < 2 * n - 1; i++) s->ts_int[i] = (int)s->timesteps[i];
    s->init_noise_sigma = init;
    dfs_free(ts);
    dfs_free(sg);
    return DFS_OK;
}

static dfs_status heun_step(dfs_ctx *ctx, dfs_sched *s, int i, const float *mo, const float *x, const float *noise,
                            float *prev, float *pred_x0, size_t n, int B) {
    /* lower_order_nums is 1 between a predictor and its corrector; hist[0] holds the predictor's
     * derivative, hist[1] the sample it started from, hist_t[0] its dt */
    const int first = s->lower_order_nums == 0;
    const float sigma = first ? s->sigmas[i] : s->sigmas[i - 1], sigma_next = first ? s->sigmas[i + 1] : s->sigmas[i];
    const float sigma_in = first ? sigma : sigma_next;
    float *x0 = pred_x0 ? pred_x0 : s->tmp[0];
    denoised(s->cfg.prediction_type, sigma_in, mo, x, x0, n);
    if (s->cfg.clip_sample) dfs_sched_clip_x0(s, x0, n, B);
    if (first) {
        const float dt = sigma_next - sigma;
        for (size_t k = 0; k < n; k++) {
            const float d = (x[k] - x0[k]) / sigma;
            s->hist[0][k] = d;
            s->hist[1][k] = x[k];
            prev[k] = x[k] + d * dt;
        }
        s->hist_t[0] = dt;
        s->lower_order_nums = 1;
    } else {
        const float dt = (float)s->hist_t[0];
        for (size_t k = 0; k < n; k++) {
            float d = (x[k] - x0[k]) / sigma_next;
            d = (s->hist[0][k] + d) / 2.0f;
            prev[k] = s->hist[1][k] + d * dt;
        }
        s->lower_order_nums = 0;
    }
    return DFS_OK;
}

/* LMSDiscreteScheduler: linear multistep in σ over the last (up to 4) derivatives, with
 * coefficients ∫ L_j(τ) dτ over [σ_i, σ_{i+1}] of the Lagrange basis through the previous sigmas.
 * diffusers integrates them with scipy's quad; these polynomials are integrated exactly. */
static double lms_coefficient(const dfs_sched *s, int order, int i, int j) {
    double poly[5] = {1, 0, 0, 0, 0}; /* coefficients of τ^0 .. τ^4 */
    int deg = 0;
    const double sj = s->sigmas[i - j];
    for (int k = 0; k < order; k++) {
        if (k == j) continue;
        const double sk = s->sigmas[i - k], den = sj - sk;
        for (int d = deg + 1; d >= 0; d--) poly[d] = ((d > 0 ? poly[d - 1] : 0.0) - sk * poly[d]) / den;
        deg++;
    }
    const double a = s->sigmas[i], b = s->sigmas[i + 1];
    double r = 0;
    for (int d = 0; d <= deg; d++) r += poly[d] * (pow(b, d + 1) - pow(a, d + 1)) / (d + 1);
    return r;
}

static dfs_status lms_step(dfs_ctx *ctx, dfs_sched *s, int i, const float *mo, const float *x, const float *noise,
                           float *prev, float *pred_x0, size_t n, int B) {
    const float sigma = s->sigmas[i];
    float *x0 = pred_x0 ? pred_x0 : s->tmp[0];
    denoised(s->cfg.prediction_type, sigma, mo, x, x0, n);
    float *oldest = s->hist[DFS_SCHED_HISTORY - 1];
    for (int k = DFS_SCHED_HISTORY - 1; k > 0; k--) s->hist[k] = s->hist[k - 1];
    s->hist[0] = oldest;
    for (size_t k = 0; k < n; k++) s->hist[0][k] = (x[k] - x0[k]) / sigma;
    if (s->lower_order_nums < 4) s->lower_order_nums++;
    const int order = i + 1 < 4 ? i + 1 : 4;
    float c[4];
    for (int j = 0; j < order; j++) c[j] = (float)lms_coefficient(s, order, i, j);
    for (size_t k = 0; k < n; k++) {
        float acc = 0.0f + c[0] * s->hist[0][k];
        for (int j = 1; j < order; j++) acc = acc + c[j] * s->hist[j][k];
        prev[k] = x[k] + acc;
    }
    return DFS_OK;
}

const dfs_sched_ops dfs_sched_lms_ops = {euler_set_timesteps, scale_input, NULL, lms_step};

const dfs_sched_ops dfs_sched_heun_ops = {heun_set_timesteps, scale_input, NULL, heun_step};

const dfs_sched_ops dfs_sched_euler_ops = {euler_set_timesteps, scale_input, NULL, euler_step};
const dfs_sched_ops dfs_sched_euler_a_ops = {euler_a_set_timesteps, scale_input, always, euler_a_step};
