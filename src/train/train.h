/* Training a UNet2DModel with the ε-prediction objective (or v / x0), AdamW, EMA, checkpoints. */
#ifndef DFS_TRAIN_TRAIN_H
#define DFS_TRAIN_TRAIN_H

#include "core/internal.h"

typedef struct dfs_train_progress {
    int step, max_steps;
    double loss;          /* mean loss over the last steps */
    double lr;
    double images_per_s;
    double elapsed_s;
    int skipped;          /* updates skipped so far in this run for a NaN or infinite loss or gradient */
    int start_step;       /* the step this run began at (after --resume, the checkpoint's) */
} dfs_train_progress;

typedef struct dfs_train_params {
    const char *data;             /* "fashion-mnist", a directory or an idx file */
    const char *out_dir;          /* written as a DDPMPipeline directory */
    const char *unet_config;      /* UNet2DModel config.json; NULL: the built-in 28×28 model */
    const char *scheduler_config; /* scheduler_config.json; NULL: DDPM, linear betas, ε-prediction */
    int max_steps, batch_size, warmup_steps, lr_cosine;
    double lr, adam_beta1, adam_beta2, adam_eps, weight_decay, max_grad_norm;
    double ema_max_decay, ema_inv_gamma, ema_power;
    int conditional;              /* class-conditional with classifier-free guidance dropout */
    double p_uncond;              /* probability of dropping the label to the "no class" row */
    double snr_gamma;             /* min-SNR-γ loss weighting; 0: off */
    uint64_t seed;
    int checkpoint_every, progress_every, resume, f16_weights;
    int random_flip;              /* flip images horizontally with probability 1/2 */
    int stop_after;               /* steps to run in this call, then checkpoint and return; 0: to max_steps */
    int skip_nonfinite;           /* a NaN/infinite loss or gradient skips the update (the batch is
                                   * dropped, the step not counted) instead of stopping the run */
    /* progress: return non-zero to stop (a checkpoint is written first) */
    int (*on_progress)(void *user, const dfs_train_progress *p);
    /* after each checkpoint of the EMA weights (dir is a loadable pipeline directory) */
    void (*on_checkpoint)(void *user, const char *dir, int step);
    /* polled every step: non-zero stops training after a checkpoint (SIGINT handling) */
    int (*should_stop)(void *user);
    void *user;
} dfs_train_params;

void dfs_train_params_default(dfs_train_params *p);
dfs_status dfs_train(dfs_ctx *ctx, const dfs_train_params *p);

/* n_steps optimisation steps of m's parameters (in place, from fresh Adam moments) on one given
 * batch: x0 and noise (batch_size, C, H, W), integer timesteps ts and labels (or NULL), with p's
 * optimiser settings (the first step uses lr_at(0): use warmup_steps 0). *loss gets the first
 * step's loss; seconds (n_steps values, or NULL) the time of each step. For tests against
 * PyTorch and for benchmarks. */
struct dfs_json;
dfs_status dfs_train_steps(dfs_ctx *ctx, struct dfs_model *m, const struct dfs_json *scheduler_config,
                           const dfs_train_params *p, const float *x0, const float *noise, const int *ts,
                           const int64_t *labels, int n_steps, double *loss, double *seconds);

/* One optimisation step's arithmetic, exposed for tests: AdamW as torch.optim.AdamW (decoupled
 * weight decay, bias-corrected), over n parameters; step counts from 1. The gradient is taken times
 * grad_scale (gradient clipping; 1 for none): the same products as scaling it first. With ema, the
 * parameters' exponential moving average follows in the same pass, ema ← ema − (1 − ema_decay)·(ema − param)
 * with the updated param, as diffusers' EMAModel.step after the optimizer's. */
void dfs_adamw_step(float *param, const float *grad, float *m, float *v, size_t n, int step, double lr, double beta1,
                    double beta2, double eps, double weight_decay, float grad_scale, float *ema, float ema_decay);
/* diffusers' EMAModel decay with warm-up: 1 − (1 + step/inv_gamma)^−power, capped. */
double dfs_ema_decay(int optimization_step, double max_decay, double inv_gamma, double power);

#endif
