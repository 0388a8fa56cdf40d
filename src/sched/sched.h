/* Noise schedules and samplers, mirroring diffusers' scheduler classes and their config fields so
 * that a scheduler_config.json means the same thing here. Arithmetic follows diffusers operation
 * by operation: float32 where it computes on float32 tensors, double where it uses numpy.
 *
 * Use: dfs_sched_from_config (or _from_name), dfs_sched_set_timesteps(n), dfs_sched_prepare(count)
 * for the sample size, then for i in 0 .. dfs_sched_num_steps()-1: scale the input, run the model
 * at dfs_sched_timestep(i), and dfs_sched_step. A sampler knows nothing about the network. */
#ifndef DFS_SCHED_SCHED_H
#define DFS_SCHED_SCHED_H

#include "core/internal.h"
#include "io/json.h"

typedef enum dfs_sched_kind {
    DFS_SCHED_DDPM,
    DFS_SCHED_DDIM,
    DFS_SCHED_PNDM,
    DFS_SCHED_DPMPP, /* DPMSolverMultistepScheduler */
    DFS_SCHED_EULER,
    DFS_SCHED_EULER_A,
    DFS_SCHED_HEUN,
    DFS_SCHED_LMS,
    DFS_SCHED_UNIPC
} dfs_sched_kind;

typedef enum dfs_pred { DFS_PRED_EPSILON, DFS_PRED_V, DFS_PRED_SAMPLE } dfs_pred;
typedef enum dfs_spacing { DFS_SPACING_LEADING, DFS_SPACING_TRAILING, DFS_SPACING_LINSPACE } dfs_spacing;
typedef enum dfs_beta_schedule {
    DFS_BETA_LINEAR,
    DFS_BETA_SCALED_LINEAR,
    DFS_BETA_SQUAREDCOS_CAP_V2,
    DFS_BETA_SIGMOID,
    DFS_BETA_TRAINED
} dfs_beta_schedule;
typedef enum dfs_variance {
    DFS_VAR_FIXED_SMALL,
    DFS_VAR_FIXED_SMALL_LOG,
    DFS_VAR_FIXED_LARGE,
    DFS_VAR_FIXED_LARGE_LOG,
    DFS_VAR_LEARNED,
    DFS_VAR_LEARNED_RANGE
} dfs_variance;

typedef struct dfs_sched_config {
    dfs_sched_kind kind;
    int num_train_timesteps;
    double beta_start, beta_end;
    dfs_beta_schedule beta_schedule;
    float *trained_betas; /* (num_train_timesteps) when beta_schedule is TRAINED; owned */
    int rescale_betas_zero_snr;
    dfs_pred prediction_type;
    dfs_spacing timestep_spacing;
    int steps_offset;
    /* DDPM / DDIM */
    dfs_variance variance_type;
    int clip_sample;
    double clip_sample_range;
    int thresholding;
    double dynamic_thresholding_ratio, sample_max_value;
    int set_alpha_to_one;
    /* PNDM */
    int skip_prk_steps;
    /* sigma-based samplers */
    int use_karras_sigmas;
    /* DPM-Solver++ / UniPC */
    int solver_order;
    int algorithm_dpmsolver; /* 0: dpmsolver++, 1: dpmsolver */
    int solver_heun;         /* DPM-Solver solver_type: 0 midpoint, 1 heun */
    int unipc_bh1;           /* UniPC solver_type: 0 bh2, 1 bh1 */
    int lower_order_final, euler_at_final;
    int final_sigmas_zero;   /* final_sigmas_type "zero" (1) or "sigma_min" (0) */
    double lambda_min_clipped;
    int predict_x0;          /* UniPC */
    /* step options (pipeline arguments in diffusers, not config fields) */
    double eta;              /* DDIM: 0 deterministic, 1 DDPM-like */
    int use_clipped_model_output;
} dfs_sched_config;

typedef struct dfs_sched dfs_sched;

/* Reads a scheduler config. kind_override < 0: the kind comes from "_class_name" (a config without
 * one is DDIM). Otherwise that kind, with the config's shared fields carried over and the rest
 * taking the class's defaults, as diffusers' from_config does. `what` names the file. */
dfs_status dfs_sched_from_config(dfs_ctx *ctx, const dfs_json *config, const char *what, int kind_override,
                                 dfs_sched **out);
/* By CLI name (ddpm, ddim, pndm, dpmpp-2m, dpmpp-3m, euler, euler-a, heun, lms, unipc), over a
 * base config (may be NULL: library defaults). */
dfs_status dfs_sched_from_name(dfs_ctx *ctx, const char *name, const dfs_json *base, const char *what,
                               dfs_sched **out);
void dfs_sched_free(dfs_sched *s);

const char *dfs_sched_name(const dfs_sched *s);
const dfs_sched_config *dfs_sched_get_config(const dfs_sched *s);
/* DDIM's step arguments eta and use_clipped_model_output. */
void dfs_sched_set_eta(dfs_sched *s, double eta, int use_clipped_model_output);
const float *dfs_sched_alphas_cumprod(const dfs_sched *s); /* (num_train_timesteps) */

/* Chooses the timesteps for num_inference_steps (1 .. num_train_timesteps). */
dfs_status dfs_sched_set_timesteps(dfs_ctx *ctx, dfs_sched *s, int num_inference_steps);
/* Allocates the state for samples of n values (the whole batch) and resets the multistep history.
 * Call after set_timesteps, before the first step. */
dfs_status dfs_sched_prepare(dfs_ctx *ctx, dfs_sched *s, size_t n);

int dfs_sched_num_steps(const dfs_sched *s);         /* length of diffusers' scheduler.timesteps */
float dfs_sched_timestep(const dfs_sched *s, int i); /* what the model is called with at step i */
float dfs_sched_init_noise_sigma(const dfs_sched *s);
/* sigma of step i for sigma-based samplers (NAN for the others) */
float dfs_sched_sigma(const dfs_sched *s, int i);

/* x_in = scale_model_input(x, timestep of step i); may alias. */
void dfs_sched_scale_model_input(const dfs_sched *s, int i, const float *x, float *x_in, size_t n);
/* Whether step i draws noise (the caller draws n values with the RNG, in diffusers' order). */
int dfs_sched_step_needs_noise(const dfs_sched *s, int i);
/* Step i: model_output for sample x (B images of n/B values) → prev (may alias x) and, when
 * pred_x0 is not NULL, diffusers' pred_original_sample (or the denoised estimate). noise: n
 * values when the step needs them. Steps must run in order 0, 1, ... after prepare. */
dfs_status dfs_sched_step(dfs_ctx *ctx, dfs_sched *s, int i, const float *model_output, const float *x,
                          const float *noise, float *prev, float *pred_x0, size_t n, int B);

/* Training: x_t = sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·ε per image (add_noise), and the v target
 * sqrt(ᾱ_t)·ε − sqrt(1 − ᾱ_t)·x0 (get_velocity). per: values per image; t: (B) integer timesteps. */
void dfs_sched_add_noise(const dfs_sched *s, const float *x0, const float *noise, const int *t, int B, size_t per,
                         float *out);
void dfs_sched_velocity(const dfs_sched *s, const float *x0, const float *noise, const int *t, int B, size_t per,
                        float *out);

#endif
