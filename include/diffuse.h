/* diffuse: a diffusion-model engine in C.
 *
 * Minimal use (run the network once):
 *
 *     dfs_ctx *ctx = dfs_ctx_new();
 *     dfs_model_params mp;
 *     dfs_model_params_default(&mp);
 *     mp.path = "models/fashion-mnist";          // a diffusers model or pipeline directory
 *     dfs_model *m = NULL;
 *     if (dfs_model_load(ctx, &mp, &m) != DFS_OK) { fprintf(stderr, "%s\n", dfs_errmsg(ctx)); ... }
 *     dfs_model_forward(ctx, m, x, B, H, W, timesteps, NULL, out);   // x, out: (B, C, H, W)
 *     dfs_model_free(m);
 *     dfs_ctx_free(ctx);
 *
 * Errors: every call that can fail on data, files or memory returns a dfs_status; DFS_OK is 0. The
 * one-line reason (naming the file and the problem) is kept on the context: dfs_errmsg(ctx).
 * The library never prints and never exits.
 *
 * Ownership: whoever creates an object frees it (dfs_*_free; NULL is a no-op). Pointers passed in
 * are borrowed for the duration of the call unless a comment says otherwise.
 *
 * Threads: a context and the objects used with it belong to one caller thread at a time; the
 * library runs its own worker threads inside calls (dfs_ctx_set_threads). Results are identical
 * whatever the thread count.
 */
#ifndef DFS_DIFFUSE_H
#define DFS_DIFFUSE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dfs_status {
    DFS_OK = 0,
    DFS_ERR_NOMEM,       /* an allocation failed */
    DFS_ERR_IO,          /* a file could not be opened, read or written */
    DFS_ERR_FORMAT,      /* a file's contents are malformed */
    DFS_ERR_SHAPE,       /* tensor shapes do not fit together */
    DFS_ERR_ARG,         /* a bad argument or option value */
    DFS_ERR_UNSUPPORTED, /* well-formed, but something diffuse does not implement */
    DFS_ERR_INTERNAL
} dfs_status;

typedef struct dfs_ctx dfs_ctx;

dfs_ctx *dfs_ctx_new(void); /* NULL when out of memory */
void dfs_ctx_free(dfs_ctx *ctx);
void dfs_ctx_set_threads(dfs_ctx *ctx, int n_threads); /* worker threads used inside calls; default 1 */
int dfs_ctx_threads(const dfs_ctx *ctx);
/* Activation memory a call may take, in bytes (0, the default: the machine's free memory). A
 * request beyond it fails up front with DFS_ERR_NOMEM and the amount it would need. */
void dfs_ctx_set_max_memory(dfs_ctx *ctx, size_t bytes);
const char *dfs_errmsg(const dfs_ctx *ctx); /* the last error recorded on ctx, one line */
const char *dfs_status_str(dfs_status s);

/* Fault injection for tests: the n-th allocation from now fails (0 turns it off). */
void dfs_alloc_fail_at(long n);
size_t dfs_alloc_live_bytes(void); /* bytes currently allocated by the library */

/* ---- Models ---------------------------------------------------------------------------------- */

typedef struct dfs_model dfs_model;

typedef struct dfs_model_params {
    const char *path; /* model directory (config.json + diffusion_pytorch_model.safetensors) or a
                         pipeline directory (model_index.json, unet/, scheduler/) */
} dfs_model_params;

void dfs_model_params_default(dfs_model_params *p);
dfs_status dfs_model_load(dfs_ctx *ctx, const dfs_model_params *p, dfs_model **out);
void dfs_model_free(dfs_model *m);

typedef struct dfs_model_info {
    int in_channels, out_channels;
    int sample_h, sample_w;    /* config sample_size; 0 when the config has none */
    int num_class_embeds;      /* 0 for an unconditional model */
    int needs_class_labels;    /* 1 when forward requires labels */
    int64_t n_params;
    const char *weight_dtype;  /* "F32", "F16", "BF16" or "mixed": how the file stores them */
    const char *class_name;    /* "UNet2DModel", ... */
} dfs_model_info;

void dfs_model_get_info(const dfs_model *m, dfs_model_info *info);

/* Whether the network can run at H x W (each downsampled size must double back exactly). */
dfs_status dfs_model_check_size(dfs_ctx *ctx, const dfs_model *m, int H, int W);

/* Floating-point operations (multiply and add counted as 2) of one forward pass at batch 1 and
 * resolution H x W. */
double dfs_model_flops(const dfs_model *m, int H, int W);

/* Writes a few lines describing the architecture into buf (always NUL-terminated). */
void dfs_model_describe(const dfs_model *m, char *buf, size_t size);

/* One network evaluation. x: (B, in_channels, H, W); timesteps: (B) (fractional values are kept);
 * class_labels: (B) or NULL for unconditional models; out: (B, out_channels, H, W).
 * The first call at a new (B, H, W) plans and allocates the activation arena; later calls at the
 * same size allocate nothing. */
dfs_status dfs_model_forward(dfs_ctx *ctx, dfs_model *m, const float *x, int B, int H, int W,
                             const float *timesteps, const int64_t *class_labels, float *out);

/* The precision of the network's products: "f32" (the default) or "bf16", where the 3×3
 * convolutions' Winograd products take their operands rounded to bfloat16 (8 significant bits;
 * sums stay in float: outputs move by about 1% of their scale). Computed with AVX-512 BF16 where
 * the CPU has it, else the same numbers by a slower portable path; whether it beats f32 depends on
 * how fast the CPU's BF16 dot product is (docs/performance.md). Only inference uses it (training
 * stays in f32); BF16 needs the prepared weights that --max-memory may forbid, and without them
 * passes run in f32. */
dfs_status dfs_model_set_compute(dfs_ctx *ctx, dfs_model *m, const char *dtype);

/* The same for class_embed_type "identity": class_vec (B, time_embedding_dim) is added to the
 * time embedding as it is. */
dfs_status dfs_model_forward_vec(dfs_ctx *ctx, dfs_model *m, const float *x, int B, int H, int W,
                                 const float *timesteps, const float *class_vec, float *out);

/* ---- Sampling ------------------------------------------------------------------------------- */

/* Called after every sampler step (and once before the first with step = -1, x = x_T).
 * x, x0: the first image of the current batch's sample and predicted clean image; (B, C, H, W)
 * for the whole batch. Return non-zero to stop (dfs_sample then fails with DFS_ERR_ARG). */
typedef int (*dfs_sample_callback)(void *user, int first_image, int batch, int step, int n_steps, float timestep,
                                   const float *x, const float *x0);

typedef struct dfs_sample_params {
    const char *scheduler;        /* ddpm, ddim, pndm, dpmpp-2m, dpmpp-3m, euler, euler-a, heun, lms,
                                     unipc; NULL: the model's scheduler config as it is (else ddim) */
    const char *scheduler_config; /* a scheduler_config.json overriding the model's; NULL: none */
    int steps;                    /* inference steps (default 50) */
    double eta;                   /* DDIM's eta (default 0) */
    uint64_t seed;                /* torch.manual_seed(seed) semantics */
    int num_images, batch_size;   /* default 1 and num_images */
    const int64_t *class_labels;  /* (num_images) for class-conditional models, else NULL */
    double guidance_scale;        /* classifier-free guidance weight; 1 = off (default) */
    const float *init_noise;      /* (num_images, C, H, W) standard normal x_T, or NULL to draw it */
    int height, width;            /* 0: the config's sample_size */
    dfs_sample_callback callback;
    void *user;
} dfs_sample_params;

void dfs_sample_params_default(dfs_sample_params *p);

/* Generates num_images samples into out (num_images, C, H, W), float32, exactly as the sampler
 * returns them (not clamped). With the same seed, the numbers diffusers' DDPMPipeline and
 * DDIMPipeline draw (initial noise for each batch, then each step's noise). */
dfs_status dfs_sample(dfs_ctx *ctx, dfs_model *m, const dfs_sample_params *p, float *out);

/* The sample's shape for these parameters: channels, height, width. */
dfs_status dfs_sample_shape(dfs_ctx *ctx, const dfs_model *m, const dfs_sample_params *p, int *C, int *H, int *W);

/* The sampler dfs_sample will use with these parameters: its class name (e.g. "DDIMScheduler")
 * into buf, and the number of steps it takes per batch (Heun and PNDM take more than p->steps). */
dfs_status dfs_sample_scheduler_info(dfs_ctx *ctx, const dfs_model *m, const dfs_sample_params *p, char *buf, size_t size,
                                     int *n_steps);

#ifdef __cplusplus
}
#endif

#endif
