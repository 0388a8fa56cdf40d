/* diffusers' UNet2DModel: the module tree built from a config, its parameter table (names,
 * shapes, offsets into one float32 block) and the forward pass. */
#ifndef DFS_MODEL_UNET_H
#define DFS_MODEL_UNET_H

#include "model/unet_config.h"

/* Offsets (in floats) into the parameter block; a layer's shape sits beside them. */
typedef struct dfs_lin { size_t w, b; int in, out; } dfs_lin;          /* w: (out, in), b: (out) */
typedef struct dfs_conv { /* w: (out, in, k, k) */
    size_t w, b;
    int in, out, k;
} dfs_conv;
typedef struct dfs_norm { size_t g, b; int C, G; float eps; } dfs_norm; /* GroupNorm gamma, beta: (C) */

typedef struct dfs_resnet {   /* ResnetBlock2D */
    int in, out;
    int up, down;             /* nearest 2x upsampling / 2x2 average pooling after norm1 */
    int has_shortcut;         /* 1x1 conv when in != out */
    float out_scale;          /* output_scale_factor: the sum is divided by it */
    dfs_norm norm1, norm2;
    dfs_conv conv1, conv2, shortcut;
    dfs_lin temb;             /* (out) or (2·out) with scale_shift */
} dfs_resnet;

typedef struct dfs_attn {     /* Attention with residual connection, 2-D input */
    int C, heads, dh;
    int has_norm;
    float rescale;            /* rescale_output_factor */
    dfs_norm norm;
    dfs_lin q, k, v, o;
} dfs_attn;

typedef enum dfs_sampler { DFS_SAMPLER_NONE, DFS_SAMPLER_CONV, DFS_SAMPLER_RESNET } dfs_sampler;

typedef struct dfs_block {
    dfs_block_kind kind;
    int n_layers, has_attn;
    dfs_resnet res[DFS_UNET_MAX_LAYERS + 1];
    dfs_attn attn[DFS_UNET_MAX_LAYERS + 1];
    dfs_sampler sampler;      /* down blocks: downsampler; up blocks: upsampler */
    dfs_conv sconv;           /* DFS_SAMPLER_CONV */
    int pad;                  /* downsampler padding (0: diffusers pads right/bottom by one) */
    dfs_resnet sres;          /* DFS_SAMPLER_RESNET */
} dfs_block;

typedef struct dfs_param {
    char *name;               /* diffusers state-dict key */
    int ndim;
    int64_t shape[4];
    size_t off, numel;
} dfs_param;

typedef struct dfs_unet {
    dfs_unet_config cfg;
    dfs_conv conv_in, conv_out;
    size_t fourier_w;         /* time_proj.weight (block_out_channels[0]), fourier only */
    int temb_in;              /* width of the timestep projection */
    dfs_lin temb1, temb2;     /* time_embedding.linear_1 / linear_2 */
    size_t class_table;       /* class_embedding.weight (num_class_embeds, temb) */
    dfs_lin class1, class2;   /* class_embedding.linear_1/2 for class_embed_type "timestep" */
    dfs_block down[DFS_UNET_MAX_BLOCKS], up[DFS_UNET_MAX_BLOCKS];
    int has_mid, mid_has_attn;
    dfs_resnet mid_res[2];
    dfs_attn mid_attn;
    dfs_norm norm_out;

    dfs_param *params;        /* (n_params) the parameter table, in registration order */
    size_t n_params, cap_params;
    size_t n_floats;          /* size of the parameter block */
} dfs_unet;

/* Builds the module tree and parameter table for cfg. Errors (a channel count not divisible by
 * the groups, heads of zero width, ...) name `what`. */
dfs_status dfs_unet_build(dfs_ctx *ctx, const dfs_unet_config *cfg, const char *what, dfs_unet **out);
void dfs_unet_free(dfs_unet *u);

/* Whether (H, W) can go through the network (every downsampled size doubles back exactly). */
dfs_status dfs_unet_check_size(dfs_ctx *ctx, const dfs_unet *u, int H, int W);

/* The activation arena a forward pass at (B, H, W) needs, in floats, its FLOPs and (training)
 * the number of tape records. */
/* prep_floats: the forward pass's prepared convolution weights (what each convolution's geometry
 * needs: dfs_conv2d_prepared_floats), 0 for training. */
typedef struct dfs_unet_plan { size_t arena_floats; double flops; size_t n_tape, prep_floats; } dfs_unet_plan;
dfs_unet_plan dfs_unet_plan_forward(const dfs_unet *u, int B, int H, int W);

/* One forward pass. P: the parameter block; arena: plan.arena_floats floats (64-byte aligned).
 * prep: NULL, or plan.prep_floats floats for the convolutions' prepared weights,
 * filled during this pass unless prep_ready says an earlier pass with the same P did.
 * x: (B, in, H, W); t: (B); labels: (B) class indices or NULL; class_vec: (B, temb) for
 * class_embed_type "identity" or NULL; out: (B, out, H, W). Allocates nothing. */
void dfs_unet_forward(const dfs_unet *u, const float *P, float *arena, float *prep, int prep_ready, int bf16,
                      const float *x, int B, int H, int W, const float *t, const int64_t *labels, const float *class_vec,
                      float *out);

/* ---- Training ----
 * A training forward pass keeps every activation in the arena (plan with dfs_unet_plan_train)
 * and records its ops on a tape of plan.n_tape records; dfs_unet_backward runs the tape in
 * reverse. */
typedef struct dfs_tape_op dfs_tape_op;
size_t dfs_unet_tape_op_size(void);
dfs_unet_plan dfs_unet_plan_train(const dfs_unet *u, int B, int H, int W);
/* Where the training forward pass left things in the arena: the output (B, out, H, W) and the
 * copy of the input, whose gradient the backward pass leaves at the same offset of garena. */
typedef struct dfs_unet_train_io { size_t out_off, in_off; } dfs_unet_train_io;
dfs_unet_train_io dfs_unet_forward_train(const dfs_unet *u, const float *P, float *arena, dfs_tape_op *tape,
                                         const float *x, int B, int H, int W, const float *t, const int64_t *labels,
                                         const float *class_vec);
/* Floats of scratch the backward pass needs for this tape. */
size_t dfs_unet_backward_scratch(const dfs_unet *u, const dfs_tape_op *tape, size_t n_tape, int B);
/* Backpropagates from the output gradient. garena: plan.arena_floats floats holding the output
 * gradient at io.out_off (the rest need not be initialised: each gradient is stored, or zeroed,
 * by its first use); G: parameter gradients, accumulated (+=) with the parameter block's layout.
 * input_grad: also the gradient of the input x, at io.in_off; else the first convolution skips it
 * (training needs only the parameters'). */
void dfs_unet_backward(const dfs_unet *u, const float *P, float *G, const float *arena, float *garena,
                       dfs_unet_train_io io, int input_grad, const dfs_tape_op *tape, size_t n_tape, float *scratch,
                       int B, const float *t, const int64_t *labels);

#endif
