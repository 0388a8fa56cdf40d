/* Creating a fresh model from a config (PyTorch's default initialisation) and writing a model as
 * a diffusers directory that UNet2DModel.from_pretrained and DDPMPipeline load unchanged. */
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "core/rng.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "io/tensor.h"
#include "model/model.h"

dfs_status dfs_model_create(dfs_ctx *ctx, const dfs_json *config, const char *what, uint64_t seed, dfs_model **out) {
    *out = NULL;
    dfs_model *m = dfs_calloc(1, sizeof *m);
    if (!m) return dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
    dfs_unet_config cfg;
    dfs_status st = dfs_unet_config_parse(ctx, config, what, &cfg);
    if (!st) st = dfs_unet_build(ctx, &cfg, what, &m->unet);
    if (!st) {
        m->root = dfs_strdup("(new)");
        m->dir = dfs_strdup("(new)");
        m->params = dfs_calloc(m->unet->n_floats ? m->unet->n_floats : 1, sizeof(float));
        if (!m->root || !m->dir || !m->params) st = dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory for the parameters");
    }
    dfs_rng *rng = st ? NULL : dfs_rng_new(seed);
    if (!st && !rng) st = dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < m->unet->n_params; i++) {
        const dfs_param *p = &m->unet->params[i];
        float *w = m->params + p->off;
        const char *name = p->name;
        const size_t len = strlen(name);
        const int is_bias = len > 5 && strcmp(name + len - 5, ".bias") == 0;
        const int is_norm = strstr(name, "norm") != NULL;
        if (is_norm) { /* GroupNorm: weight 1, bias 0 */
            for (size_t k = 0; k < p->numel; k++) w[k] = is_bias ? 0.0f : 1.0f;
            continue;
        }
        if (strcmp(name, "class_embedding.weight") == 0 || strcmp(name, "time_proj.weight") == 0) {
            /* nn.Embedding: N(0, 1); GaussianFourierProjection: N(0, 1)·16 */
            dfs_rng_randn(rng, w, p->numel);
            if (name[0] == 't')
                for (size_t k = 0; k < p->numel; k++) w[k] *= 16.0f;
            continue;
        }
        /* nn.Conv2d / nn.Linear: U(−1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias; the bias's
         * fan_in is its weight's, the tensor registered just before it */
        const dfs_param *wp = is_bias && i > 0 ? &m->unet->params[i - 1] : p;
        const size_t fan_in = wp->ndim >= 2 ? wp->numel / (size_t)wp->shape[0] : 1;
        const float bound = 1.0f / sqrtf((float)fan_in);
        for (size_t k = 0; k < p->numel; k++)
            w[k] = ((float)(dfs_rng_u32(rng) >> 8) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * bound;
    }
    dfs_rng_free(rng);
    m->weight_dtype = "F32";
    if (st) {
        dfs_model_free(m);
        return st;
    }
    *out = m;
    return DFS_OK;
}

static const char *block_json(dfs_block_kind k) { return dfs_block_kind_name(k); }

/* config.json with every field UNet2DModel takes, so diffusers needs no defaults of its own. */
static dfs_status write_config(dfs_ctx *ctx, const dfs_unet_config *c, const char *path) {
    char buf[4096];
    size_t n = 0;
#define PUT(...) (n += (size_t)snprintf(buf + n, n < sizeof buf ? sizeof buf - n : 0, __VA_ARGS__))
    PUT("{\n  \"_class_name\": \"UNet2DModel\",\n  \"_diffusers_version\": \"0.38.0\",\n");
    PUT("  \"act_fn\": \"%s\",\n  \"add_attention\": %s,\n", dfs_act_name(c->act_fn), c->add_attention ? "true" : "false");
    if (c->attention_head_dim) PUT("  \"attention_head_dim\": %d,\n", c->attention_head_dim);
    else PUT("  \"attention_head_dim\": null,\n");
    if (c->attn_norm_num_groups) PUT("  \"attn_norm_num_groups\": %d,\n", c->attn_norm_num_groups);
    else PUT("  \"attn_norm_num_groups\": null,\n");
    PUT("  \"block_out_channels\": [");
    for (int i = 0; i < c->n_blocks; i++) PUT("%s%d", i ? ", " : "", c->block_out_channels[i]);
    PUT("],\n  \"center_input_sample\": %s,\n", c->center_input_sample ? "true" : "false");
    static const char *const cls[] = {"null", "null", "\"timestep\"", "\"identity\""};
    PUT("  \"class_embed_type\": %s,\n", cls[c->class_embed_type]);
    PUT("  \"down_block_types\": [");
    for (int i = 0; i < c->n_blocks; i++) PUT("%s\"%s\"", i ? ", " : "", block_json(c->down[i]));
    PUT("],\n  \"downsample_padding\": %d,\n  \"downsample_type\": \"%s\",\n  \"dropout\": 0.0,\n", c->downsample_padding,
        c->downsample_type == DFS_RESAMPLE_RESNET ? "resnet" : "conv");
    PUT("  \"flip_sin_to_cos\": %s,\n  \"freq_shift\": %g,\n", c->flip_sin_to_cos ? "true" : "false", (double)c->freq_shift);
    PUT("  \"in_channels\": %d,\n  \"layers_per_block\": %d,\n  \"mid_block_scale_factor\": %.17g,\n", c->in_channels,
        c->layers_per_block, (double)c->mid_block_scale_factor);
    PUT("  \"mid_block_type\": %s,\n", c->has_mid_block ? "\"UNetMidBlock2D\"" : "null");
    PUT("  \"norm_eps\": %.9g,\n  \"norm_num_groups\": %d,\n", (double)c->norm_eps, c->norm_num_groups);
    if (c->num_class_embeds) PUT("  \"num_class_embeds\": %d,\n", c->num_class_embeds);
    else PUT("  \"num_class_embeds\": null,\n");
    PUT("  \"num_train_timesteps\": null,\n  \"out_channels\": %d,\n", c->out_channels);
    PUT("  \"resnet_time_scale_shift\": \"%s\",\n", c->scale_shift ? "scale_shift" : "default");
    if (c->sample_h == c->sample_w) PUT("  \"sample_size\": %d,\n", c->sample_h);
    else PUT("  \"sample_size\": [%d, %d],\n", c->sample_h, c->sample_w);
    PUT("  \"time_embedding_dim\": %d,\n  \"time_embedding_type\": \"%s\",\n", c->time_embedding_dim,
        c->time_embedding_type == DFS_TEMB_FOURIER ? "fourier" : "positional");
    PUT("  \"up_block_types\": [");
    for (int i = 0; i < c->n_blocks; i++) PUT("%s\"%s\"", i ? ", " : "", block_json(c->up[i]));
    PUT("],\n  \"upsample_type\": \"%s\"\n}\n", c->upsample_type == DFS_RESAMPLE_RESNET ? "resnet" : "conv");
#undef PUT
    if (n >= sizeof buf) return dfs_fail(ctx, DFS_ERR_INTERNAL, "%s: config too long", path);
    dfs_out_file of;
    dfs_status st = dfs_out_open(ctx, path, &of);
    if (st) return st;
    if ((st = dfs_out_write(ctx, &of, buf, n))) {
        dfs_out_abort(&of);
        return st;
    }
    return dfs_out_commit(ctx, &of);
}

static dfs_status write_text(dfs_ctx *ctx, const char *path, const char *text) {
    dfs_out_file of;
    dfs_status st = dfs_out_open(ctx, path, &of);
    if (st) return st;
    if ((st = dfs_out_write(ctx, &of, text, strlen(text)))) {
        dfs_out_abort(&of);
        return st;
    }
    return dfs_out_commit(ctx, &of);
}

static dfs_status make_dir(dfs_ctx *ctx, const char *path) {
    if (mkdir(path, 0755) == 0 || dfs_path_exists(path)) return DFS_OK;
    return dfs_fail(ctx, DFS_ERR_IO, "%s: cannot create the directory", path);
}

/* Writes a DDPMPipeline directory: model_index.json, unet/ (config.json and the weights, F32 or
 * F16) and scheduler/scheduler_config.json. Each file is written atomically. */
dfs_status dfs_model_save_params(dfs_ctx *ctx, const dfs_model *m, const float *params, const char *dir, int f16,
                                 const char *scheduler_json) {
    const dfs_unet *u = m->unet;
    dfs_status st = make_dir(ctx, dir);
    if (st) return st;
    char *udir = dfs_path_join(dir, "unet"), *cfg = dfs_path_join(dir, "unet/config.json");
    char *weights = dfs_path_join(dir, "unet/diffusion_pytorch_model.safetensors");
    char *sdir = dfs_path_join(dir, "scheduler"), *scfg = dfs_path_join(dir, "scheduler/scheduler_config.json");
    char *index = dfs_path_join(dir, "model_index.json");
    dfs_st_entry *e = dfs_calloc(u->n_params, sizeof *e);
    uint16_t *half = f16 ? dfs_malloc(sizeof(uint16_t) * (u->n_floats ? u->n_floats : 1)) : NULL;
    if (!udir || !cfg || !weights || !sdir || !scfg || !index || !e || (f16 && !half)) {
        st = dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < u->n_params; i++) {
        const dfs_param *p = &u->params[i];
        e[i].name = p->name;
        e[i].dtype = f16 ? DFS_DTYPE_F16 : DFS_DTYPE_F32;
        e[i].ndim = p->ndim;
        for (int d = 0; d < p->ndim; d++) e[i].shape[d] = p->shape[d];
        if (f16) {
            for (size_t k = 0; k < p->numel; k++) half[p->off + k] = dfs_f32_to_f16(params[p->off + k]);
            e[i].data = half + p->off;
        } else {
            e[i].data = params + p->off;
        }
    }
    static const char *const meta[] = {"format", "pt", NULL};
    static const char index_json[] = "{\n  \"_class_name\": \"DDPMPipeline\",\n  \"_diffusers_version\": \"0.38.0\",\n"
                                     "  \"scheduler\": [\"diffusers\", \"DDPMScheduler\"],\n"
                                     "  \"unet\": [\"diffusers\", \"UNet2DModel\"]\n}\n";
    if ((st = make_dir(ctx, udir)) || (st = make_dir(ctx, sdir))) goto done;
    if ((st = dfs_safetensors_write(ctx, weights, e, u->n_params, meta))) goto done;
    if ((st = write_config(ctx, &u->cfg, cfg))) goto done;
    if ((st = write_text(ctx, scfg, scheduler_json))) goto done;
    st = write_text(ctx, index, index_json);
done:
    dfs_free(udir);
    dfs_free(cfg);
    dfs_free(weights);
    dfs_free(sdir);
    dfs_free(scfg);
    dfs_free(index);
    dfs_free(e);
    dfs_free(half);
    return st;
}
