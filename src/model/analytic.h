/* Analytic denoisers: data distributions whose exact denoiser is known in closed form, so every
 * sampler can be checked against ground truth. */
#ifndef DFS_MODEL_ANALYTIC_H
#define DFS_MODEL_ANALYTIC_H

#include "io/json.h"

#define DFS_ANALYTIC_MAX_COMPONENTS 64

typedef struct dfs_analytic {
    int C, H, W;
    int K;          /* mixture components (1 for AnalyticGaussian) */
    float *means;   /* (K, C·H·W) */
    double stds[DFS_ANALYTIC_MAX_COMPONENTS], log_weights[DFS_ANALYTIC_MAX_COMPONENTS];
    /* set by the sampler before use */
    const float *alphas_cumprod; /* (T) (borrowed) */
    int T;
    int prediction; /* dfs_pred */
} dfs_analytic;

/* Parses an AnalyticGaussian ({"mean", "std", "sample_shape"}) or AnalyticGaussianMixture
 * ({"means", "stds", "weights", "sample_shape"}) config. Means are scalars or arrays of C·H·W. */
dfs_status dfs_analytic_parse(dfs_ctx *ctx, const dfs_json *j, const char *what, dfs_analytic **out);
void dfs_analytic_free(dfs_analytic *a);

/* The exact model output for x (B images) at timesteps t: E[ε | x_t] (or v, or x0, per the
 * prediction type), with ᾱ interpolated linearly between integer timesteps (t clamped to
 * [0, T−1]). Computed in double. */
void dfs_analytic_forward(const dfs_analytic *a, const float *x, int B, const float *t, float *out);

#endif
