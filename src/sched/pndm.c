/* PNDMScheduler (Liu et al. 2022, pseudo numerical methods): optional Runge-Kutta warm-up steps
 * (PRK), then linear multistep (PLMS) over the last model outputs, each applied through the
 * transfer x_t → x_{t'} of _get_prev_sample. State: ets (hist[0] newest, count n_ets), the running
 * PRK combination (tmp[2]) and the sample a multistep started from (tmp[1]). */
#include <string.h>

#include "sched/sched_internal.h"

typedef struct pndm_state {
    int counter, n_ets, has_cur_sample, n_prk;
} pndm_state;

/* lives in hist_t as integers: [0] counter, [1] number of ets, [2] cur_sample set, [3] PRK steps */
static pndm_state get(const dfs_sched *s) {
    pndm_state p = {(int)s->hist_t[0], (int)s->hist_t[1], (int)s->hist_t[2], (int)s->hist_t[3]};
    return p;
}
static void put(dfs_sched *s, pndm_state p) {
    s->hist_t[0] = p.counter;
    s->hist_t[1] = p.n_ets;
    s->hist_t[2] = p.has_cur_sample;
    s->hist_t[3] = p.n_prk;
}

static dfs_status set_timesteps(dfs_ctx *ctx, dfs_sched *s, int n) {
    const dfs_sched_config *c = &s->cfg;
    const int T = c->num_train_timesteps;
    int *asc = dfs_malloc(sizeof(int) * (size_t)n); /* diffusers' _timesteps, ascending */
    if (!asc) return dfs_fail(ctx, DFS_ERR_NOMEM, "scheduler: out of memory");
    switch (c->timestep_spacing) {
    case DFS_SPACING_LINSPACE:
        for (int i = 0; i < n; i++) asc[i] = (int)nearbyint(n == 1 ? 0.0 : (double)(T - 1) * i / (n - 1));
        break;
    case DFS_SPACING_LEADING:
        for (int i = 0; i < n; i++) asc[i] = i * (T / n) + c->steps_offset;
        break;
    case DFS_SPACING_TRAILING: {
        const double ratio = (double)T / n;
        int k = 0;
        for (double v = T; v > 0 && k < n; v -= ratio) asc[n - 1 - k++] = (int)nearbyint(v) - 1;
        break;
    }
    }
    dfs_status st;
    if (c->skip_prk_steps) {
        /* [_ts[:-1], _ts[-2:-1], _ts[-1:]] reversed: the second-to-last timestep twice (n >= 2) */
        if (!(st = dfs_sched_alloc_steps(ctx, s, n == 1 ? 1 : n + 1, 0))) {
            int k = 0;
            s->ts_int[k++] = asc[n - 1];
            if (n >= 2) s->ts_int[k++] = asc[n - 2];
            for (int i = n - 2; i >= 0; i--) s->ts_int[k++] = asc[i];
            s->hist_t[3] = 0;
        }
    } else if (n < 4) {
        st = dfs_fail(ctx, DFS_ERR_ARG, "PNDM with Runge-Kutta warm-up (skip_prk_steps false) needs at least 4 steps");
    } else if (!(st = dfs_sched_alloc_steps(ctx, s, 12 + (n - 3), 0))) {
        int prk[8], k = 0;
        const int half = T / n / 2;
        for (int i = 0; i < 4; i++) {
            prk[2 * i] = asc[n - 4 + i];
            prk[2 * i + 1] = asc[n - 4 + i] + half;
        }
        /* prk[:-1].repeat(2)[1:-1], reversed */
        int rep[14];
        for (int i = 0; i < 7; i++) rep[2 * i] = rep[2 * i + 1] = prk[i];
        for (int i = 12; i >= 1; i--) s->ts_int[k++] = rep[i];
        for (int i = n - 4; i >= 0; i--) s->ts_int[k++] = asc[i];
        s->hist_t[3] = 12;
    }
    if (!st)
        for (int i = 0; i < s->n_steps; i++) s->timesteps[i] = (float)s->ts_int[i];
    dfs_free(asc);
    return st;
}

/* x_t → x_{t'} given ε (or v) at t. */
static void transfer(const dfs_sched *s, const float *x, int t, int tp, const float *mo, float *prev, size_t n) {
    const float apt = s->alphas_cumprod[t], aptp = tp >= 0 ? s->alphas_cumprod[tp] : s->final_alpha_cumprod;
    const float bpt = 1.0f - apt, bptp = 1.0f - aptp;
    const float sc = sqrtf(aptp / apt), denom = apt * sqrtf(bptp) + sqrtf(apt * bpt * aptp), diff = aptp - apt;
    const float sa = sqrtf(apt), sb = sqrtf(bpt);
    for (size_t k = 0; k < n; k++) {
        const float e = s->cfg.prediction_type == DFS_PRED_V ? sa * mo[k] + sb * x[k] : mo[k];
        prev[k] = sc * x[k] - diff * e / denom;
    }
}

static void push_ets(dfs_sched *s, pndm_state *p, const float *mo, size_t n) {
    float *oldest = s->hist[DFS_SCHED_HISTORY - 1];
    for (int k = DFS_SCHED_HISTORY - 1; k > 0; k--) s->hist[k] = s->hist[k - 1];
    s->hist[0] = oldest;
    memcpy(s->hist[0], mo, n * sizeof(float));
    if (p->n_ets < DFS_SCHED_HISTORY) p->n_ets++;
}

static dfs_status step(dfs_ctx *ctx, dfs_sched *s, int i, const float *mo, const float *x, const float *noise,
                       float *prev, float *pred_x0, size_t n, int B) {
    if (s->cfg.prediction_type == DFS_PRED_SAMPLE)
        return dfs_fail(ctx, DFS_ERR_UNSUPPORTED, "PNDM supports prediction_type epsilon and v_prediction only");
    pndm_state p = get(s);
    if (i == 0) memset(&p, 0, sizeof p), p.n_prk = (int)s->hist_t[3];
    const int T = s->cfg.num_train_timesteps, ratio = T / s->num_inference_steps;
    int t = s->ts_int[i];
    float *comb = s->tmp[0], *cur_sample = s->tmp[1], *cur_mo = s->tmp[2];
    if (p.counter < p.n_prk) {
        const int diff = p.counter % 2 ? 0 : ratio / 2, tp = t - diff;
        t = s->ts_int[p.counter / 4 * 4];
        const float sixth = (float)(1.0 / 6), third = (float)(1.0 / 3);
        const float *use = mo;
        switch (p.counter % 4) {
        case 0:
            for (size_t k = 0; k < n; k++) cur_mo[k] = 0.0f + sixth * mo[k];
            push_ets(s, &p, mo, n);
            memcpy(cur_sample, x, n * sizeof(float));
            p.has_cur_sample = 1;
            break;
        case 1:
        case 2:
            for (size_t k = 0; k < n; k++) cur_mo[k] = cur_mo[k] + third * mo[k];
            break;
        case 3:
            for (size_t k = 0; k < n; k++) comb[k] = cur_mo[k] + sixth * mo[k];
            use = comb;
            break;
        }
        transfer(s, p.has_cur_sample ? cur_sample : x, t, tp, use, prev, n);
        p.counter++;
        put(s, p);
        if (pred_x0) memcpy(pred_x0, prev, n * sizeof(float));
        return DFS_OK;
    }
    int tp = t - ratio;
    if (p.counter != 1) {
        push_ets(s, &p, mo, n);
    } else {
        tp = t;
        t = t + ratio;
    }
    const float *src = x;
    const float *e1 = s->hist[0], *e2 = s->hist[1], *e3 = s->hist[2], *e4 = s->hist[3];
    if (p.n_ets == 1 && p.counter == 0) {
        memcpy(comb, mo, n * sizeof(float));
        memcpy(cur_sample, x, n * sizeof(float));
        p.has_cur_sample = 1;
    } else if (p.n_ets == 1 && p.counter == 1) {
        for (size_t k = 0; k < n; k++) comb[k] = (mo[k] + e1[k]) / 2.0f;
        src = cur_sample;
        p.has_cur_sample = 0;
    } else if (p.n_ets == 2) {
        for (size_t k = 0; k < n; k++) comb[k] = (3.0f * e1[k] - e2[k]) / 2.0f;
    } else if (p.n_ets == 3) {
        for (size_t k = 0; k < n; k++) comb[k] = (23.0f * e1[k] - 16.0f * e2[k] + 5.0f * e3[k]) / 12.0f;
    } else {
        const float w = (float)(1.0 / 24);
        for (size_t k = 0; k < n; k++) comb[k] = w * (55.0f * e1[k] - 59.0f * e2[k] + 37.0f * e3[k] - 9.0f * e4[k]);
    }
    transfer(s, src, t, tp, comb, prev, n);
    p.counter++;
    put(s, p);
    if (pred_x0) memcpy(pred_x0, prev, n * sizeof(float));
    return DFS_OK;
}

const dfs_sched_ops dfs_sched_pndm_ops = {set_timesteps, NULL, NULL, step};
