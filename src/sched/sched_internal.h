/* What the sampler files share: the scheduler object and the schedule helpers. */
#ifndef DFS_SCHED_INTERNAL_H
#define DFS_SCHED_INTERNAL_H

#include <math.h>

#include "sched/sched.h"

#define DFS_SCHED_HISTORY 4 /* model outputs kept by multistep samplers */

struct dfs_sched {
    dfs_sched_config cfg;
    float *betas, *alphas, *alphas_cumprod; /* (T) float32, as diffusers builds them */
    float final_alpha_cumprod;              /* DDIM / PNDM: ᾱ before the first training step */

    int num_inference_steps;
    int n_steps;       /* entries of timesteps */
    float *timesteps;  /* (n_steps) passed to the model */
    int *ts_int;       /* (n_steps) the integer timesteps, for the ᾱ-indexed samplers */
    float *sigmas;     /* (n_steps + 1) sigma-based samplers, else NULL */
    float init_noise_sigma;

    /* state for one sampling run over n values */
    size_t n;
    float *hist[DFS_SCHED_HISTORY]; /* multistep: previous converted model outputs, newest first */
    float *tmp[3];                  /* scratch */
    int lower_order_nums;
    double hist_t[DFS_SCHED_HISTORY]; /* per-history-entry data (sigmas, lambdas) */
};

/* One sampler family: how it picks timesteps and how it steps. */
typedef struct dfs_sched_ops {
    dfs_status (*set_timesteps)(dfs_ctx *ctx, dfs_sched *s, int n);
    void (*scale_input)(const dfs_sched *s, int i, const float *x, float *x_in, size_t n);
    int (*needs_noise)(const dfs_sched *s, int i);
    dfs_status (*step)(dfs_ctx *ctx, dfs_sched *s, int i, const float *mo, const float *x, const float *noise,
                       float *prev, float *pred_x0, size_t n, int B);
} dfs_sched_ops;

extern const dfs_sched_ops dfs_sched_ddpm_ops, dfs_sched_ddim_ops, dfs_sched_euler_ops, dfs_sched_euler_a_ops,
    dfs_sched_dpmpp_ops, dfs_sched_heun_ops, dfs_sched_pndm_ops, dfs_sched_lms_ops, dfs_sched_unipc_ops;

/* Integer timesteps by spacing, as diffusers' DDPM/DDIM set_timesteps computes them (descending). */
dfs_status dfs_sched_int_timesteps(dfs_ctx *ctx, dfs_sched *s, int n, int *out);
/* Allocates s->timesteps / ts_int / sigmas for n_steps entries (sigmas: n_steps + 1 when with_sigmas). */
dfs_status dfs_sched_alloc_steps(dfs_ctx *ctx, dfs_sched *s, int n_steps, int with_sigmas);

/* Clamps pred_x0 to ±clip_sample_range, or applies dynamic thresholding, per the config. */
void dfs_sched_clip_x0(const dfs_sched *s, float *x0, size_t n, int B);

#endif
