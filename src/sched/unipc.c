/* UniPCMultistepScheduler (Zhao et al. 2023): a unified predictor-corrector in λ = log(α/σ).
 * Each step first corrects the current sample with the new model output (UniC), then predicts
 * the next one (UniP), with B(h) = h (bh1) or e^h − 1 (bh2). Arithmetic in float32 as diffusers'
 * 0-d tensors; the small linear systems are solved by Gaussian elimination with partial pivoting
 * in float, as LAPACK does for torch.linalg.solve. State: hist[0..] converted model outputs (newest
 * first), tmp[1] the last predicted-from sample, hist_t[0] this_order, hist_t[1] whether a last
 * sample exists. */
#include <string.h>

#include "sched/sched_internal.h"

dfs_status dfs_sched_dpmpp_set_timesteps(dfs_ctx *ctx, dfs_sched *s, int n);

static void alpha_sigma(float sigma, float *a, float *s) {
    *a = 1.0f / sqrtf(sigma * sigma + 1.0f);
    *s = sigma * *a;
}

static float lambda_of(float sigma) {
    float a, s;
    alpha_sigma(sigma, &a, &s);
    return logf(a) - logf(s);
}

/* Solves A x = b (n <= 3) in float with partial pivoting. */
static void solve(float A[3][3], float *b, int n, float *x) {
    int piv[3] = {0, 1, 2};
    for (int j = 0; j < n; j++) {
        int p = j;
        for (int i = j + 1; i < n; i++)
            if (fabsf(A[i][j]) > fabsf(A[p][j])) p = i;
        if (p != j) {
            for (int k = 0; k < n; k++) {
                const float t = A[j][k];
                A[j][k] = A[p][k];
                A[p][k] = t;
            }
            const int t = piv[j];
            piv[j] = piv[p];
            piv[p] = t;
            const float tb = b[j];
            b[j] = b[p];
            b[p] = tb;
        }
        const float inv = 1.0f / A[j][j];
        for (int i = j + 1; i < n; i++) {
            const float l = A[i][j] * inv;
            for (int k = j + 1; k < n; k++) A[i][k] = A[i][k] - l * A[j][k];
            b[i] = b[i] - l * b[j];
        }
    }
    /* back substitution column by column, as LAPACK's strsm does */
    for (int i = n - 1; i >= 0; i--) {
        x[i] = b[i] / A[i][i];
        for (int k = 0; k < i; k++) b[k] = b[k] - x[i] * A[k][i];
    }
}

/* rks, R and b of diffusers' UniP/UniC for `order`, given λ differences. hh, B_h, h_phi_1 out. */
static void coefficients(const dfs_sched *s, float h, const float *rk_prev, int order, float R[3][3], float *b, float *hh_out,
                         float *bh_out, float *phi1_out) {
    const int x0 = s->cfg.predict_x0;
    float rks[4];
    for (int k = 0; k < order - 1; k++) rks[k] = rk_prev[k];
    rks[order - 1] = 1.0f;
    const float hh = x0 ? -h : h, phi1 = expm1f(hh);
    float phik = phi1 / hh - 1.0f;
    float fact = 1.0f;
    const float bh = s->cfg.unipc_bh1 ? hh : expm1f(hh);
    for (int i = 1; i <= order; i++) {
        for (int k = 0; k < order; k++) R[i - 1 < 3 ? i - 1 : 2][k < 3 ? k : 2] = powf(rks[k], (float)(i - 1));
        b[i - 1] = phik * fact / bh;
        fact = fact * (float)(i + 1);
        phik = phik / hh - 1.0f / fact;
    }
    *hh_out = hh;
    *bh_out = bh;
    *phi1_out = phi1;
}

static void convert(const dfs_sched *s, int i, const float *mo, const float *x, float *out, size_t n, int B) {
    const dfs_sched_config *c = &s->cfg;
    float a, sg;
    alpha_sigma(s->sigmas[i], &a, &sg);
    for (size_t k = 0; k < n; k++) {
        float v;
        if (c->predict_x0) {
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
    if (c->thresholding && c->predict_x0) dfs_sched_clip_x0(s, out, n, B);
}

/* UniC: corrects this_sample (at step i) using the new converted output `model_t`. */
static void corrector(dfs_sched *s, int i, int order, const float *model_t, const float *last, const float *this_sample,
                      float *out, size_t n) {
    float at, st, as0, ss0;
    alpha_sigma(s->sigmas[i], &at, &st);
    alpha_sigma(s->sigmas[i - 1], &as0, &ss0);
    const float lt = logf(at) - logf(st), ls0 = logf(as0) - logf(ss0), h = lt - ls0;
    float rk[3] = {0, 0, 0};
    for (int k = 1; k < order; k++) rk[k - 1] = (lambda_of(s->sigmas[i - (k + 1)]) - ls0) / h;
    float R[3][3], b[3], hh, bh, phi1, rhos[3];
    coefficients(s, h, rk, order, R, b, &hh, &bh, &phi1);
    if (order == 1) rhos[0] = 0.5f;
    else solve(R, b, order, rhos);
    const float *m0 = s->hist[0];
    const int x0 = s->cfg.predict_x0;
    const float cx = x0 ? st / ss0 : at / as0, cm = x0 ? at * phi1 : st * phi1, cb = x0 ? at * bh : st * bh;
    for (size_t k = 0; k < n; k++) {
        float corr = 0.0f;
        for (int j = 0; j < order - 1; j++) {
            const float d = (s->hist[j + 1][k] - m0[k]) / rk[j];
            corr = j == 0 ? rhos[0] * d : corr + rhos[j] * d;
        }
        const float d1t = model_t[k] - m0[k];
        const float xt_ = cx * last[k] - cm * m0[k];
        out[k] = xt_ - cb * (corr + rhos[order - 1] * d1t);
    }
    (void)this_sample;
}

/* UniP: predicts step i + 1 from x (at step i). */
static void predictor(dfs_sched *s, int i, int order, const float *x, float *out, size_t n) {
    float at, st, as0, ss0;
    alpha_sigma(s->sigmas[i + 1], &at, &st);
    alpha_sigma(s->sigmas[i], &as0, &ss0);
    const float lt = logf(at) - logf(st), ls0 = logf(as0) - logf(ss0), h = lt - ls0;
    float rk[3] = {0, 0, 0};
    for (int k = 1; k < order; k++) rk[k - 1] = (lambda_of(s->sigmas[i - k]) - ls0) / h;
    float R[3][3], b[3], hh, bh, phi1, rhos[3] = {0, 0, 0};
    coefficients(s, h, rk, order, R, b, &hh, &bh, &phi1);
    if (order == 2) rhos[0] = 0.5f;
    else if (order > 2) solve(R, b, order - 1, rhos);
    const float *m0 = s->hist[0];
    const int x0 = s->cfg.predict_x0;
    const float cx = x0 ? st / ss0 : at / as0, cm = x0 ? at * phi1 : st * phi1, cb = x0 ? at * bh : st * bh;
    for (size_t k = 0; k < n; k++) {
        float res = 0.0f;
        for (int j = 0; j < order - 1; j++) {
            const float d = (s->hist[j + 1][k] - m0[k]) / rk[j];
            res = j == 0 ? rhos[0] * d : res + rhos[j] * d;
        }
        const float xt_ = cx * x[k] - cm * m0[k];
        out[k] = xt_ - cb * res;
    }
}

static dfs_status step(dfs_ctx *ctx, dfs_sched *s, int i, const float *mo, const float *x, const float *noise,
                       float *prev, float *pred_x0, size_t n, int B) {
    const dfs_sched_config *c = &s->cfg;
    if (i == 0) {
        s->hist_t[0] = 0;
        s->hist_t[1] = 0;
    }
    float *conv = s->tmp[0], *last = s->tmp[1], *corrected = s->tmp[2];
    convert(s, i, mo, x, conv, n, B);
    if (pred_x0) {
        float a, sg;
        alpha_sigma(s->sigmas[i], &a, &sg);
        for (size_t k = 0; k < n; k++) pred_x0[k] = c->predict_x0 ? conv[k] : (x[k] - sg * conv[k]) / a;
    }
    const float *xs = x;
    if (i > 0 && s->hist_t[1] != 0) {
        corrector(s, i, (int)s->hist_t[0], conv, last, x, corrected, n);
        xs = corrected;
    }
    float *oldest = s->hist[DFS_SCHED_HISTORY - 1];
    for (int k = DFS_SCHED_HISTORY - 1; k > 0; k--) s->hist[k] = s->hist[k - 1];
    s->hist[0] = oldest;
    memcpy(s->hist[0], conv, n * sizeof(float));
    int order = c->lower_order_final ? (c->solver_order < s->n_steps - i ? c->solver_order : s->n_steps - i) : c->solver_order;
    if (order > s->lower_order_nums + 1) order = s->lower_order_nums + 1;
    s->hist_t[0] = order;
    memcpy(last, xs, n * sizeof(float)); /* xs may be `corrected`; copy before prev (which may alias x) is written */
    s->hist_t[1] = 1;
    predictor(s, i, order, last, prev, n);
    if (s->lower_order_nums < c->solver_order) s->lower_order_nums++;
    return DFS_OK;
}

const dfs_sched_ops dfs_sched_unipc_ops = {dfs_sched_dpmpp_set_timesteps, NULL, NULL, step};
