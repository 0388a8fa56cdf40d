/* DPMSolverMultistepScheduler (Lu et al. 2022, DPM-Solver and DPM-Solver++): multistep
 * exponential integrators in λ = log(α/σ), orders 1 to 3, with the midpoint or Heun form of the
 * second-order update, data (dpmsolver++) or noise (dpmsolver) prediction. Scalars are float32
 * 0-d tensors in diffusers; every coefficient is rounded as it rounds them. */
#include <string.h>

#include "sched/sched_internal.h"
#include "sched/sigmas.h"

/* Shared with UniPC, whose timesteps and sigmas are built the same way. */
dfs_status dfs_sched_dpmpp_set_timesteps(dfs_ctx *ctx, dfs_sched *s, int n);
dfs_status dfs_sched_dpmpp_set_timesteps(dfs_ctx *ctx, dfs_sched *s, int n) {
    const dfs_sched_config *c = &s->cfg;
    const int T = c->num_train_timesteps;
    /* λ_min_clipped trims the noisiest timesteps (cosine schedules) */
    int clipped = 0;
    for (int i = 0; i < T; i++) {
        const float ac = s->alphas_cumprod[i];
        const float lambda = logf(sqrtf(ac)) - logf(sqrtf(1.0f - ac));
        if ((double)lambda < c->lambda_min_clipped) clipped++;
    }
    const int last = T - clipped;
    double *ts = dfs_malloc(sizeof(double) * (size_t)(n + 2)), *sig = dfs_malloc(sizeof(double) * (size_t)(n + 2));
    double *train = dfs_malloc(sizeof(double) * (size_t)T), *logs = dfs_malloc(sizeof(double) * (size_t)T);
    dfs_status st = ts && sig && train && logs ? DFS_OK : dfs_fail(ctx, DFS_ERR_NOMEM, "scheduler: out of memory");
    int m = n;
    if (!st) {
        switch (c->timestep_spacing) {
        case DFS_SPACING_LINSPACE:
            for (int i = 0; i <= n; i++) ts[n - i] = nearbyint((double)(last - 1) * i / n);
            break;
        case DFS_SPACING_LEADING: {
            const int ratio = last / (n + 1);
            for (int i = 0; i <= n; i++) ts[n - i] = (double)(i * ratio + c->steps_offset);
            break;
        }
        case DFS_SPACING_TRAILING: {
            const double ratio = (double)T / n;
            m = 0;
            for (double v = last; v > 0 && m < n; v -= ratio) ts[m++] = nearbyint(v) - 1;
            break;
        }
        }
        dfs_sched_train_sigmas(s, train);
        if (c->use_karras_sigmas) {
            for (int i = 0; i < T; i++) logs[i] = (double)logf((float)train[i]); /* numpy: log of a float32 array */
            dfs_sched_karras(train[0], train[T - 1], m, sig);
            for (int i = 0; i < m; i++) {
                ts[i] = dfs_sched_sigma_to_t(sig[i], logs, T);
                if (c->beta_schedule != DFS_BETA_SQUAREDCOS_CAP_V2) ts[i] = nearbyint(ts[i]);
            }
        } else {
            for (int i = 0; i < m; i++) sig[i] = dfs_sched_interp((double)(int64_t)ts[i], train, T);
        }
        const float ac0 = s->alphas_cumprod[0];
        sig[m] = c->final_sigmas_zero ? 0.0 : (double)sqrtf((1.0f - ac0) / ac0);
        if (c->kind == DFS_SCHED_UNIPC && c->use_karras_sigmas && !c->final_sigmas_zero) sig[m] = sig[m - 1];
        if (!(st = dfs_sched_alloc_steps(ctx, s, m, 1))) {
            for (int i = 0; i <= m; i++) s->sigmas[i] = (float)sig[i];
            for (int i = 0; i < m; i++) {
                s->ts_int[i] = (int)(int64_t)ts[i];
                s->timesteps[i] = (float)s->ts_int[i];
            }
        }
    }
    dfs_free(ts);
    dfs_free(sig);
    dfs_free(train);
    dfs_free(logs);
    return st;
}

static void alpha_sigma(float sigma, float *alpha_t, float *sigma_t) {
    *alpha_t = 1.0f / sqrtf(sigma * sigma + 1.0f);
    *sigma_t = sigma * *alpha_t;
}

static float lambda_of(float sigma) {
    float a, sg;
    alpha_sigma(sigma, &a, &sg);
    return logf(a) - logf(sg);
}

/* The model output converted to x0 (dpmsolver++) or ε (dpmsolver) at step i. */
static void convert(const dfs_sched *s, int i, const float *mo, const float *x, float *out, size_t n, int B) {
    const dfs_sched_config *c = &s->cfg;
    float a, sg;
    alpha_sigma(s->sigmas[i], &a, &sg);
    for (size_t k = 0; k < n; k++) {
        float v;
        if (!c->algorithm_dpmsolver) {
            switch (c->prediction_type) {
            case DFS_PRED_EPSILON: v = (x[k] - sg * mo[k]) / a; break;
            case DFS_PRED_SAMPLE: v = mo[k]; break;
            default: v = a * x[k] - sg * mo[k]; break;
            }
        } else {
            switch (c->prediction_type) {
            case DFS_PRED_EPSILON: v = mo[k]; break;
            case DFS_PRED_SAMPLE: v = (x[k] - a * mo[k]) / sg; break;
            default: v = a * mo[k] + sg * x[k]; break;
            }
        }
        out[k] = v;
    }
    if (c->thresholding) {
        if (!c->algorithm_dpmsolver) {
            dfs_sched_clip_x0(s, out, n, B);
        } else {
            float *x0 = s->tmp[1];
            for (size_t k = 0; k < n; k++) x0[k] = (x[k] - sg * out[k]) / a;
            dfs_sched_clip_x0(s, x0, n, B);
            for (size_t k = 0; k < n; k++) out[k] = (x[k] - a * x0[k]) / sg;
        }
    }
}

static dfs_status step(dfs_ctx *ctx, dfs_sched *s, int i, const float *mo, const float *x, const float *noise,
                       float *prev, float *pred_x0, size_t n, int B) {
    const dfs_sched_config *c = &s->cfg;
    const int N = s->n_steps, pp = !c->algorithm_dpmsolver;
    const int lower_final = i == N - 1 && (c->euler_at_final || (c->lower_order_final && N < 15) || c->final_sigmas_zero);
    const int lower_second = i == N - 2 && c->lower_order_final && N < 15;
    /* history: hist[0] newest */
    float *h0 = s->hist[DFS_SCHED_HISTORY - 1];
    for (int k = DFS_SCHED_HISTORY - 1; k > 0; k--) s->hist[k] = s->hist[k - 1];
    s->hist[0] = h0;
    convert(s, i, mo, x, s->hist[0], n, B);
    if (pred_x0) {
        float a, sg;
        alpha_sigma(s->sigmas[i], &a, &sg);
        for (size_t k = 0; k < n; k++) pred_x0[k] = pp ? s->hist[0][k] : (x[k] - sg * s->hist[0][k]) / a;
    }
    float at, st_, as0, ss0;
    alpha_sigma(s->sigmas[i + 1], &at, &st_);
    alpha_sigma(s->sigmas[i], &as0, &ss0);
    const float lt = logf(at) - logf(st_), ls0 = logf(as0) - logf(ss0), h = lt - ls0;
    const float *m0 = s->hist[0], *m1 = s->hist[1], *m2 = s->hist[2];
    const int order = c->solver_order == 1 || s->lower_order_nums < 1 || lower_final ? 1
                      : c->solver_order == 2 || s->lower_order_nums < 2 || lower_second ? 2
                                                                                        : 3;
    const float eh = expf(-h), ehp = expf(h);
    if (order == 1) {
        const float cx = pp ? st_ / ss0 : at / as0, cm = pp ? at * (eh - 1.0f) : st_ * (ehp - 1.0f);
        for (size_t k = 0; k < n; k++) prev[k] = cx * x[k] - cm * m0[k];
    } else if (order == 2) {
        const float ls1 = lambda_of(s->sigmas[i - 1]), h0 = ls0 - ls1, r0 = h0 / h, inv_r0 = 1.0f / r0;
        const float cx = pp ? st_ / ss0 : at / as0;
        const float c0 = pp ? at * (eh - 1.0f) : st_ * (ehp - 1.0f);
        float c1;
        if (!c->solver_heun) c1 = 0.5f * c0; /* midpoint: − 0.5·c0·D1 */
        else c1 = pp ? -(at * ((eh - 1.0f) / h + 1.0f)) : st_ * ((ehp - 1.0f) / h - 1.0f);
        for (size_t k = 0; k < n; k++) {
            const float d1 = inv_r0 * (m0[k] - m1[k]);
            prev[k] = cx * x[k] - c0 * m0[k] - c1 * d1;
        }
    } else {
        const float ls1 = lambda_of(s->sigmas[i - 1]), ls2 = lambda_of(s->sigmas[i - 2]);
        const float h0 = ls0 - ls1, h1 = ls1 - ls2, r0 = h0 / h, r1 = h1 / h;
        const float i0 = 1.0f / r0, i1 = 1.0f / r1, w = r0 / (r0 + r1), i01 = 1.0f / (r0 + r1);
        const float cx = pp ? st_ / ss0 : at / as0;
        const float c0 = pp ? at * (eh - 1.0f) : st_ * (ehp - 1.0f);
        const float c1 = pp ? at * ((eh - 1.0f) / h + 1.0f) : st_ * ((ehp - 1.0f) / h - 1.0f);
        const float c2 = pp ? at * ((eh - 1.0f + h) / (h * h) - 0.5f) : st_ * ((ehp - 1.0f - h) / (h * h) - 0.5f);
        for (size_t k = 0; k < n; k++) {
            const float d10 = i0 * (m0[k] - m1[k]), d11 = i1 * (m1[k] - m2[k]);
            const float d1 = d10 + w * (d10 - d11), d2 = i01 * (d10 - d11);
            prev[k] = pp ? cx * x[k] - c0 * m0[k] + c1 * d1 - c2 * d2 : cx * x[k] - c0 * m0[k] - c1 * d1 - c2 * d2;
        }
    }
    if (s->lower_order_nums < c->solver_order) s->lower_order_nums++;
    return DFS_OK;
}

const dfs_sched_ops dfs_sched_dpmpp_ops = {dfs_sched_dpmpp_set_timesteps, NULL, NULL, step};
