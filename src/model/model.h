/* The loaded model behind the public dfs_model handle. */
#ifndef DFS_MODEL_MODEL_H
#define DFS_MODEL_MODEL_H

#include "io/json.h"
#include "model/analytic.h"
#include "model/unet.h"

struct dfs_model {
    char *root;               /* the path given (a model or pipeline directory) */
    char *dir;                /* the UNet's directory */
    dfs_unet *unet;           /* the network, or NULL for an analytic denoiser */
    dfs_analytic *analytic;   /* closed-form denoiser (AnalyticGaussian[Mixture]), or NULL */
    float *params;            /* (unet->n_floats) */
    const char *weight_dtype; /* how the file stored them */
    float *arena;             /* activation arena for (plan_b, plan_h, plan_w) */
    size_t arena_floats;
    float *prep;              /* conv weights prepared for inference (prep_floats), or NULL */
    size_t prep_floats;       /* what the plan's forward pass prepares (dfs_unet_plan) */
    int prep_ready;           /* prep matches params: clear it whenever params change */
    int prep_skipped;         /* no memory for prep (or not within --max-memory): passes go without */
    int bf16;                 /* compute type "bf16" (dfs_model_set_compute): needs prep, else passes run in F32 */
    int plan_b, plan_h, plan_w, plan_threads;
};

/* A new model from a UNet2DModel config, initialised as PyTorch initialises its layers (seeded). */
dfs_status dfs_model_create(dfs_ctx *ctx, const dfs_json *config, const char *what, uint64_t seed, dfs_model **out);
/* Writes params (laid out as m's) as a DDPMPipeline directory with the given scheduler config. */
dfs_status dfs_model_save_params(dfs_ctx *ctx, const dfs_model *m, const float *params, const char *dir, int f16,
                                 const char *scheduler_json);

/* Analytic denoisers take ᾱ and the prediction type from the sampler's schedule. */
void dfs_model_set_schedule(dfs_model *m, const float *alphas_cumprod, int T, int prediction);

/* Runs the network after the caller has validated the inputs. */
dfs_status dfs_model_run(dfs_ctx *ctx, dfs_model *m, const float *x, int B, int H, int W, const float *t,
                         const int64_t *labels, const float *class_vec, float *out);

#endif
