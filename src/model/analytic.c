/* Closed-form denoisers for Gaussian and Gaussian-mixture data.
 * For x0 ~ N(μ, s²I) and x_t = sqrt(ᾱ)·x0 + sqrt(1 − ᾱ)·ε: x_t ~ N(sqrt(ᾱ)μ, (ᾱs² + 1 − ᾱ)I), and
 * E[x0 | x_t] = μ + sqrt(ᾱ)·s²·(x_t − sqrt(ᾱ)μ)/(ᾱs² + 1 − ᾱ). A mixture weighs each component's
 * posterior mean by its responsibility. ε̂ = (x_t − sqrt(ᾱ)x̂0)/sqrt(1 − ᾱ), v̂ = sqrt(ᾱ)ε̂ − sqrt(1 − ᾱ)x̂0. */
#include <math.h>
#include <string.h>

#include "model/analytic.h"
#include "sched/sched.h"

static dfs_status bad(dfs_ctx *ctx, const char *what, const char *why) {
    return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: %s", what, why);
}

/* A scalar or an array of d numbers into out (d values). */
static int read_vec(const dfs_json *v, float *out, size_t d) {
    if (v && v->type == DFS_JSON_NUMBER && isfinite(v->number)) {
        for (size_t i = 0; i < d; i++) out[i] = (float)v->number;
        return 1;
    }
    if (!v || v->type != DFS_JSON_ARRAY || v->n_items != d) return 0;
    for (size_t i = 0; i < d; i++) {
        if (v->items[i].type != DFS_JSON_NUMBER || !isfinite(v->items[i].number)) return 0;
        out[i] = (float)v->items[i].number;
    }
    return 1;
}

dfs_status dfs_analytic_parse(dfs_ctx *ctx, const dfs_json *j, const char *what, dfs_analytic **out) {
    *out = NULL;
    const dfs_json *cls = dfs_json_get(j, "_class_name"), *shape = dfs_json_get(j, "sample_shape");
    const int mixture = cls && cls->type == DFS_JSON_STRING && strcmp(cls->string, "AnalyticGaussianMixture") == 0;
    if (!shape || shape->type != DFS_JSON_ARRAY || shape->n_items != 3)
        return bad(ctx, what, "sample_shape must be [channels, height, width]");
    int dims[3];
    for (int i = 0; i < 3; i++) {
        if (!dfs_json_is_int(&shape->items[i]) || shape->items[i].number < 1 || shape->items[i].number > 4096)
            return bad(ctx, what, "sample_shape entries must be integers from 1 to 4096");
        dims[i] = (int)shape->items[i].number;
    }
    const size_t d = (size_t)dims[0] * dims[1] * dims[2];
    dfs_analytic *a = dfs_calloc(1, sizeof *a);
    if (!a) return dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory", what);
    a->C = dims[0];
    a->H = dims[1];
    a->W = dims[2];
    dfs_status st = DFS_OK;
    if (!mixture) {
        a->K = 1;
        a->means = dfs_malloc(d * sizeof(float));
        const dfs_json *sd = dfs_json_get(j, "std");
        if (!a->means) st = dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory", what);
        else if (!read_vec(dfs_json_get(j, "mean"), a->means, d)) st = bad(ctx, what, "mean must be a number or an array of C*H*W numbers");
        else if (!sd || sd->type != DFS_JSON_NUMBER || !(sd->number > 0) || !isfinite(sd->number)) st = bad(ctx, what, "std must be a positive number");
        else a->stds[0] = sd->number;
    } else {
        const dfs_json *ms = dfs_json_get(j, "means"), *ss = dfs_json_get(j, "stds"), *ws = dfs_json_get(j, "weights");
        if (!ms || ms->type != DFS_JSON_ARRAY || ms->n_items < 1 || ms->n_items > DFS_ANALYTIC_MAX_COMPONENTS) {
            st = bad(ctx, what, "means must be a list of 1 to 64 components");
        } else {
            a->K = (int)ms->n_items;
            a->means = dfs_malloc(d * (size_t)a->K * sizeof(float));
            double wsum = 0;
            if (!a->means) st = dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory", what);
            if (!st && (!ss || ss->type != DFS_JSON_ARRAY || (int)ss->n_items != a->K || !ws || ws->type != DFS_JSON_ARRAY ||
                        (int)ws->n_items != a->K))
                st = bad(ctx, what, "stds and weights must list one number per component");
            for (int k = 0; !st && k < a->K; k++) {
                const double s = ss->items[k].number, w = ws->items[k].number;
                if (!read_vec(&ms->items[k], a->means + (size_t)k * d, d)) st = bad(ctx, what, "each mean must be a number or C*H*W numbers");
                else if (ss->items[k].type != DFS_JSON_NUMBER || !(s > 0) || !isfinite(s)) st = bad(ctx, what, "stds must be positive");
                else if (ws->items[k].type != DFS_JSON_NUMBER || !(w > 0) || !isfinite(w)) st = bad(ctx, what, "weights must be positive");
                else {
                    a->stds[k] = s;
                    wsum += w;
                }
            }
            for (int k = 0; !st && k < a->K; k++) a->log_weights[k] = log(ws->items[k].number / wsum);
        }
    }
    if (st) {
        dfs_analytic_free(a);
        return st;
    }
    a->prediction = DFS_PRED_EPSILON;
    *out = a;
    return DFS_OK;
}

void dfs_analytic_free(dfs_analytic *a) {
    if (!a) return;
    dfs_free(a->means);
    dfs_free(a);
}

static double alpha_bar(const dfs_analytic *a, double t) {
    const double tt = t < 0 ? 0 : t > a->T - 1 ? a->T - 1 : t;
    const int lo = (int)floor(tt), hi = lo + 1 < a->T ? lo + 1 : lo;
    return a->alphas_cumprod[lo] + (a->alphas_cumprod[hi] - (double)a->alphas_cumprod[lo]) * (tt - lo);
}

void dfs_analytic_forward(const dfs_analytic *a, const float *x, int B, const float *t, float *out) {
    const size_t d = (size_t)a->C * a->H * a->W;
    for (int b = 0; b < B; b++) {
        const double ab = alpha_bar(a, t[b]), sa = sqrt(ab), sb = sqrt(1 - ab);
        const float *xb = x + (size_t)b * d;
        float *ob = out + (size_t)b * d;
        /* responsibilities from the log-densities of x_t under each component */
        double logp[DFS_ANALYTIC_MAX_COMPONENTS], mx = -INFINITY;
        for (int k = 0; k < a->K; k++) {
            const double var = ab * a->stds[k] * a->stds[k] + 1 - ab;
            const float *mu = a->means + (size_t)k * d;
            double q = 0;
            for (size_t i = 0; i < d; i++) {
                const double r = xb[i] - sa * mu[i];
                q += r * r;
            }
            logp[k] = a->log_weights[k] - 0.5 * q / var - 0.5 * (double)d * log(var);
            if (logp[k] > mx) mx = logp[k];
        }
        double z = 0;
        for (int k = 0; k < a->K; k++) z += (logp[k] = exp(logp[k] - mx));
        for (size_t i = 0; i < d; i++) {
            double x0 = 0;
            for (int k = 0; k < a->K; k++) {
                const double s2 = a->stds[k] * a->stds[k], mu = a->means[(size_t)k * d + i];
                x0 += logp[k] / z * (mu + sa * s2 * (xb[i] - sa * mu) / (ab * s2 + 1 - ab));
            }
            const double eps = sb > 0 ? (xb[i] - sa * x0) / sb : 0.0;
            double o = eps;
            if (a->prediction == DFS_PRED_SAMPLE) o = x0;
            else if (a->prediction == DFS_PRED_V) o = sa * eps - sb * x0;
            ob[i] = (float)o;
        }
    }
}
