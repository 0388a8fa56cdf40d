/* UNet2DModel's config.json, parsed and validated, with diffusers' defaults for missing keys. */
#ifndef DFS_MODEL_UNET_CONFIG_H
#define DFS_MODEL_UNET_CONFIG_H

#include "core/internal.h"
#include "io/json.h"
#include "ops/ops.h"

#define DFS_UNET_MAX_BLOCKS 8
#define DFS_UNET_MAX_LAYERS 16   /* layers_per_block; up blocks have one more */
#define DFS_UNET_MAX_CHANNELS 65536

typedef enum dfs_block_kind {
    DFS_BLOCK_DOWN,           /* DownBlock2D */
    DFS_BLOCK_ATTN_DOWN,      /* AttnDownBlock2D */
    DFS_BLOCK_RESNET_DOWN,    /* ResnetDownsampleBlock2D */
    DFS_BLOCK_UP,             /* UpBlock2D */
    DFS_BLOCK_ATTN_UP,        /* AttnUpBlock2D */
    DFS_BLOCK_RESNET_UP       /* ResnetUpsampleBlock2D */
} dfs_block_kind;

typedef enum dfs_resample { DFS_RESAMPLE_CONV, DFS_RESAMPLE_RESNET } dfs_resample;
typedef enum dfs_temb_kind { DFS_TEMB_POSITIONAL, DFS_TEMB_FOURIER } dfs_temb_kind;
typedef enum dfs_class_emb {
    DFS_CLASS_EMB_NONE,
    DFS_CLASS_EMB_TABLE,    /* class_embed_type null + num_class_embeds: nn.Embedding */
    DFS_CLASS_EMB_TIMESTEP, /* labels → sinusoidal projection → TimestepEmbedding */
    DFS_CLASS_EMB_IDENTITY  /* labels are already (B, time_embed_dim) vectors */
} dfs_class_emb;

typedef struct dfs_unet_config {
    int sample_h, sample_w; /* 0 when sample_size is null */
    int in_channels, out_channels;
    int center_input_sample;
    dfs_temb_kind time_embedding_type;
    int time_embedding_dim; /* resolved: time_embedding_dim or 4·block_out_channels[0] */
    float freq_shift;
    int flip_sin_to_cos;
    int n_blocks;
    dfs_block_kind down[DFS_UNET_MAX_BLOCKS], up[DFS_UNET_MAX_BLOCKS];
    int block_out_channels[DFS_UNET_MAX_BLOCKS];
    int has_mid_block;
    int layers_per_block;
    float mid_block_scale_factor;
    int downsample_padding;
    dfs_resample downsample_type, upsample_type;
    dfs_act act_fn;
    int attention_head_dim;   /* 0: null (one head spanning the channels) */
    int norm_num_groups;
    int attn_norm_num_groups; /* 0: null */
    float norm_eps;
    int scale_shift;          /* resnet_time_scale_shift == "scale_shift" */
    int add_attention;
    dfs_class_emb class_embed_type;
    int num_class_embeds;     /* 0: null */
} dfs_unet_config;

/* Reads a UNet2DModel config object. `what` (the file path) prefixes error messages. Keys that
 * diffusers ignores are ignored; a value diffusers would reject, or one diffuse does not
 * implement, is an error naming the key and the value. */
dfs_status dfs_unet_config_parse(dfs_ctx *ctx, const dfs_json *j, const char *what, dfs_unet_config *cfg);

const char *dfs_block_kind_name(dfs_block_kind k);
const char *dfs_act_name(dfs_act a);

#endif
