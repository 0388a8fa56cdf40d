/* DDIMScheduler (Song et al. 2021). diffusers takes the previous timestep as t − T/N whatever the
 * spacing (a known quirk, matched here and noted in docs/samplers.md). */
#include "sched/sched_internal.h"

void dfs_sched_pred_x0(dfs_pred p, const float *mo, const float *x, float apt, float bpt, float *x0, size_t n);

static dfs_status set_timesteps(dfs_ctx *ctx, dfs_sched *s, int n) {
    dfs_status st = dfs_sched_alloc_steps(ctx, s, n, 0);
    if (st || (st = dfs_sched_int_timesteps(ctx, s, n, s->ts_int))) return st;
    for (int i = 0; i < n; i++) s->timesteps[i] = (float)s->ts_int[i];
    return DFS_OK;
}

static int needs_noise(const dfs_sched *s, int i) { return s->cfg.eta > 0; }

static dfs_status step(dfs_ctx *ctx, dfs_sched *s, int i, const float *mo, const float *x, const float *noise,
                       float *prev, float *pred_x0, size_t n, int B) {
    const dfs_sched_config *c = &s->cfg;
    const int t = s->ts_int[i], prev_t = t - c->num_train_timesteps / s->num_inference_steps;
    const float apt = s->alphas_cumprod[t], aptp = prev_t >= 0 ? s->alphas_cumprod[prev_t] : s->final_alpha_cumprod;
    const float bpt = 1.0f - apt, bptp = 1.0f - aptp;
    const float sa = sqrtf(apt), sb = sqrtf(bpt);
    float *x0 = pred_x0 ? pred_x0 : s->hist[0], *eps = s->tmp[0];
    dfs_sched_pred_x0(c->prediction_type, mo, x, apt, bpt, x0, n);
    for (size_t k = 0; k < n; k++) {
        switch (c->prediction_type) {
        case DFS_PRED_EPSILON: eps[k] = mo[k]; break;
        case DFS_PRED_SAMPLE: eps[k] = (x[k] - sa * x0[k]) / sb; break;
        case DFS_PRED_V: eps[k] = sa * mo[k] + sb * x[k]; break;
        }
    }
    dfs_sched_clip_x0(s, x0, n, B);
    const float var = (bptp / bpt) * (1.0f - apt / aptp);
    const float std = (float)c->eta * sqrtf(var);
    if (c->use_clipped_model_output)
        for (size_t k = 0; k < n; k++) eps[k] = (x[k] - sa * x0[k]) / sb;
    const float dir = sqrtf(1.0f - aptp - std * std), sap = sqrtf(aptp);
    for (size_t k = 0; k < n; k++) {
        float v = sap * x0[k] + dir * eps[k];
        if (c->eta > 0) v = v + std * noise[k];
        prev[k] = v;
    }
    return DFS_OK;
}

const dfs_sched_ops dfs_sched_ddim_ops = {set_timesteps, NULL, needs_noise, step};
