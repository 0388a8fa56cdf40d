/* DDPMScheduler (Ho et al. 2020): ancestral sampling with the posterior q(x_{t-1} | x_t, x0).
 * Every scalar below is a float32 0-d tensor in diffusers, so the arithmetic is float32 in the
 * same order. */
#include <string.h>

#include "sched/sched_internal.h"

static dfs_status set_timesteps(dfs_ctx *ctx, dfs_sched *s, int n) {
    dfs_status st = dfs_sched_alloc_steps(ctx, s, n, 0);
    if (st || (st = dfs_sched_int_timesteps(ctx, s, n, s->ts_int))) return st;
    for (int i = 0; i < n; i++) s->timesteps[i] = (float)s->ts_int[i];
    return DFS_OK;
}

static int needs_noise(const dfs_sched *s, int i) { return s->ts_int[i] > 0; }

/* x0 from the model output, as DDPM and DDIM compute it. */
void dfs_sched_pred_x0(dfs_pred p, const float *mo, const float *x, float apt, float bpt, float *x0, size_t n);
void dfs_sched_pred_x0(dfs_pred p, const float *mo, const float *x, float apt, float bpt, float *x0, size_t n) {
    const float sa = sqrtf(apt), sb = sqrtf(bpt);
    for (size_t k = 0; k < n; k++) {
        switch (p) {
        case DFS_PRED_EPSILON: x0[k] = (x[k] - sb * mo[k]) / sa; break;
        case DFS_PRED_SAMPLE: x0[k] = mo[k]; break;
        case DFS_PRED_V: x0[k] = sa * x[k] - sb * mo[k]; break;
        }
    }
}

static dfs_status step(dfs_ctx *ctx, dfs_sched *s, int i, const float *mo_in, const float *x, const float *noise,
                       float *prev, float *pred_x0, size_t n, int B) {
    const dfs_sched_config *c = &s->cfg;
    const int t = s->ts_int[i], prev_t = i + 1 < s->n_steps ? s->ts_int[i + 1] : -1;
    const int learned = c->variance_type == DFS_VAR_LEARNED || c->variance_type == DFS_VAR_LEARNED_RANGE;
    const size_t per = n / (size_t)B;
    /* learned variances: the model output has twice the channels, [mean part, variance part] */
    float *mo = s->tmp[0], *pv = s->tmp[1], *x0 = pred_x0 ? pred_x0 : s->hist[0];
    for (int b = 0; b < B; b++) {
        memcpy(mo + (size_t)b * per, mo_in + (size_t)b * per * (learned ? 2 : 1), per * sizeof(float));
        if (learned) memcpy(pv + (size_t)b * per, mo_in + (size_t)b * 2 * per + per, per * sizeof(float));
    }
    const float apt = s->alphas_cumprod[t], aptp = prev_t >= 0 ? s->alphas_cumprod[prev_t] : 1.0f;
    const float bpt = 1.0f - apt, bptp = 1.0f - aptp;
    const float cur_alpha = apt / aptp, cur_beta = 1.0f - cur_alpha;
    dfs_sched_pred_x0(c->prediction_type, mo, x, apt, bpt, x0, n);
    dfs_sched_clip_x0(s, x0, n, B);
    const float cx0 = (sqrtf(aptp) * cur_beta) / bpt, cx = sqrtf(cur_alpha) * bptp / bpt;
    float var = bptp / bpt * cur_beta;
    if (var < 1e-20f) var = 1e-20f;
    for (size_t k = 0; k < n; k++) {
        float v = cx0 * x0[k] + cx * x[k];
        if (t > 0) {
            float sd;
            switch (c->variance_type) {
            case DFS_VAR_FIXED_SMALL: sd = sqrtf(var); break;
            case DFS_VAR_FIXED_SMALL_LOG: sd = expf(0.5f * logf(var)); break;
            case DFS_VAR_FIXED_LARGE: sd = sqrtf(cur_beta); break;
            case DFS_VAR_FIXED_LARGE_LOG: sd = sqrtf(logf(cur_beta)); break; /* NaN, as in diffusers (docs/samplers.md) */
            case DFS_VAR_LEARNED: sd = sqrtf(pv[k]); break;
            case DFS_VAR_LEARNED_RANGE: {
                const float frac = (pv[k] + 1.0f) / 2.0f;
                sd = expf(0.5f * (frac * logf(cur_beta) + (1.0f - frac) * logf(var)));
                break;
            }
            default: sd = 0;
            }
            v = v + sd * noise[k];
        }
        prev[k] = v;
    }
    return DFS_OK;
}

const dfs_sched_ops dfs_sched_ddpm_ops = {set_timesteps, NULL, needs_noise, step};
