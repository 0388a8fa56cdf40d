/* dfs_model: a network loaded from a diffusers directory, with its parameter block and the
 * activation arena of the last (B, H, W) it ran at. */
#include <math.h>
#include <string.h>

#include "core/ctx.h"
#include "io/file.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "ops/ops.h"

#define CONFIG_MAX_BYTES (4u << 20)

void dfs_model_params_default(dfs_model_params *p) {
    memset(p, 0, sizeof *p);
}

/* Old diffusers checkpoints (google/ddpm-cifar10-32) name attention weights query, key, value and
 * proj_attn. Returns the legacy name for a current one, or 0 when there is none. */
static int legacy_name(const char *name, char *buf, size_t size) {
    static const char *const map[][2] = {
        {".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        const char *hit = strstr(name, map[i][0]);
        if (!hit || !strstr(name, ".attentions.")) continue;
        int n = snprintf(buf, size, "%.*s%s%s", (int)(hit - name), name, map[i][1], hit + strlen(map[i][0]));
        return n > 0 && (size_t)n < size;
    }
    return 0;
}

/* Appends "name" to a comma-separated list of at most a few names, counting the rest. */
static void list_add(char *buf, size_t size, int *count, const char *name) {
    if (*count < 4) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s'%s'", len ? ", " : "", name);
    }
    (*count)++;
}

static void list_finish(char *buf, size_t size, int count) {
    if (count > 4) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, " and %d more", count - 4);
    }
}

/* Copies every tensor of the table from the file into m->params, converting to float32. */
static dfs_status load_weights(dfs_ctx *ctx, dfs_model *m, const char *path) {
    dfs_safetensors *st = NULL;
    dfs_status s = dfs_safetensors_open(ctx, path, &st);
    if (s) return s;
    const dfs_unet *u = m->unet;
    size_t n_file = dfs_safetensors_count(st);
    unsigned char *used = dfs_calloc(n_file ? n_file : 1, 1);
    m->params = dfs_malloc(dfs_mul_size(u->n_floats ? u->n_floats : 1, sizeof(float)));
    if (!used || !m->params) {
        dfs_free(used);
        dfs_safetensors_close(st);
        return dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory for %zu parameters", path, u->n_floats);
    }
    memset(m->params, 0, u->n_floats * sizeof(float));
    char missing[512] = "";
    int n_missing = 0, seen_dtype[3] = {0, 0, 0};
    for (size_t i = 0; i < u->n_params; i++) {
        const dfs_param *p = &u->params[i];
        const dfs_st_tensor *t = dfs_safetensors_find(st, p->name);
        char legacy[300];
        if (!t && legacy_name(p->name, legacy, sizeof legacy)) t = dfs_safetensors_find(st, legacy);
        if (!t) {
            list_add(missing, sizeof missing, &n_missing, p->name);
            continue;
        }
        int same = t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
        if (!same) {
            char want[96] = "", got[96] = "";
            for (int d = 0; d < p->ndim; d++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "," : "", (long long)p->shape[d]);
            for (int d = 0; d < t->ndim; d++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "", (long long)t->shape[d]);
            s = dfs_fail(ctx, DFS_ERR_SHAPE, "%s: tensor '%s' has shape (%s), the config needs (%s)", path, t->name, got,
                         want);
            goto done;
        }
        if (t->dtype != DFS_DTYPE_F32 && t->dtype != DFS_DTYPE_F16 && t->dtype != DFS_DTYPE_BF16) {
            s = dfs_fail(ctx, DFS_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; weights must be F32, F16 or BF16", path,
                         t->name, dfs_dtype_name(t->dtype));
            goto done;
        }
        seen_dtype[t->dtype == DFS_DTYPE_F32 ? 0 : t->dtype == DFS_DTYPE_F16 ? 1 : 2] = 1;
        if ((s = dfs_st_tensor_to_f32(ctx, t, m->params + p->off))) goto done;
        for (size_t k = 0; k < p->numel; k++)
            if (!isfinite(m->params[p->off + k])) {
                s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: tensor '%s' holds NaN or infinite values (element %zu)", path,
                             t->name, k);
                goto done;
            }
        used[t - dfs_safetensors_at(st, 0)] = 1;
    }
    if (n_missing) {
        list_finish(missing, sizeof missing, n_missing);
        s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: %d tensor%s the config needs %s missing: %s", path, n_missing,
                     n_missing == 1 ? "" : "s", n_missing == 1 ? "is" : "are", missing);
        goto done;
    }
    char extra[512] = "";
    int n_extra = 0;
    for (size_t i = 0; i < n_file; i++)
        if (!used[i]) list_add(extra, sizeof extra, &n_extra, dfs_safetensors_at(st, i)->name);
    if (n_extra) {
        list_finish(extra, sizeof extra, n_extra);
        s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: %d unexpected tensor%s the config does not use: %s", path, n_extra,
                     n_extra == 1 ? "" : "s", extra);
        goto done;
    }
    m->weight_dtype = seen_dtype[0] + seen_dtype[1] + seen_dtype[2] > 1 ? "mixed"
                      : seen_dtype[1]                                  ? "F16"
                      : seen_dtype[2]                                  ? "BF16"
                                                                       : "F32";
done:
    dfs_free(used);
    dfs_safetensors_close(st);
    return s;
}

/* Finds the UNet directory: the path itself, or its unet/ when it is a pipeline. */
static dfs_status resolve_dirs(dfs_ctx *ctx, dfs_model *m, const char *path) {
    char *index = dfs_path_join(path, "model_index.json");
    if (!index) return dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
    int is_pipeline = dfs_path_exists(index);
    dfs_free(index);
    m->dir = is_pipeline ? dfs_path_join(path, "unet") : dfs_strdup(path);
    m->root = dfs_strdup(path);
    if (!m->dir || !m->root) return dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
    char *cfg = dfs_path_join(m->dir, "config.json");
    if (!cfg) return dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
    int ok = dfs_path_exists(cfg);
    dfs_free(cfg);
    if (!ok)
        return dfs_fail(ctx, DFS_ERR_IO, "%s: not a diffusers model directory (no %s)", path,
                        is_pipeline ? "unet/config.json" : "config.json or model_index.json");
    return DFS_OK;
}

dfs_status dfs_model_load(dfs_ctx *ctx, const dfs_model_params *p, dfs_model **out) {
    *out = NULL;
    if (!p || !p->path) return dfs_fail(ctx, DFS_ERR_ARG, "no model path given");
    dfs_model *m = dfs_calloc(1, sizeof *m);
    if (!m) return dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
    dfs_json *cj = NULL;
    char *cfg_path = NULL, *weights = NULL;
    dfs_status s = resolve_dirs(ctx, m, p->path);
    if (s) goto fail;
    cfg_path = dfs_path_join(m->dir, "config.json");
    weights = dfs_path_join(m->dir, "diffusion_pytorch_model.safetensors");
    if (!cfg_path || !weights) {
        s = dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((s = dfs_json_load_file(ctx, cfg_path, CONFIG_MAX_BYTES, &cj))) goto fail;
    const dfs_json *cls = dfs_json_get(cj, "_class_name");
    if (cls && cls->type == DFS_JSON_STRING && strncmp(cls->string, "AnalyticGaussian", 16) == 0) {
        if ((s = dfs_analytic_parse(ctx, cj, cfg_path, &m->analytic))) goto fail;
        m->weight_dtype = "none";
        dfs_json_free(cj);
        dfs_free(cfg_path);
        dfs_free(weights);
        *out = m;
        return DFS_OK;
    }
    dfs_unet_config cfg;
    if ((s = dfs_unet_config_parse(ctx, cj, cfg_path, &cfg))) goto fail;
    if ((s = dfs_unet_build(ctx, &cfg, cfg_path, &m->unet))) goto fail;
    if (!dfs_path_exists(weights)) {
        char *bin = dfs_path_join(m->dir, "diffusion_pytorch_model.bin");
        int has_bin = bin && dfs_path_exists(bin);
        dfs_free(bin);
        s = dfs_fail(ctx, DFS_ERR_IO, "%s: missing%s", weights,
                     has_bin ? " (only a PyTorch .bin is there: convert it to safetensors; pickles are never loaded)" : "");
        goto fail;
    }
    if ((s = load_weights(ctx, m, weights))) goto fail;
    dfs_json_free(cj);
    dfs_free(cfg_path);
    dfs_free(weights);
    *out = m;
    return DFS_OK;
fail:
    dfs_json_free(cj);
    dfs_free(cfg_path);
    dfs_free(weights);
    dfs_model_free(m);
    return s;
}

void dfs_model_free(dfs_model *m) {
    if (!m) return;
    dfs_analytic_free(m->analytic);
    dfs_unet_free(m->unet);
    dfs_free(m->params);
    dfs_free(m->arena);
    dfs_free(m->prep);
    dfs_free(m->dir);
    dfs_free(m->root);
    dfs_free(m);
}

void dfs_model_set_schedule(dfs_model *m, const float *alphas_cumprod, int T, int prediction) {
    if (!m->analytic) return;
    m->analytic->alphas_cumprod = alphas_cumprod;
    m->analytic->T = T;
    m->analytic->prediction = prediction;
}

void dfs_model_get_info(const dfs_model *m, dfs_model_info *info) {
    memset(info, 0, sizeof *info);
    if (m->analytic) {
        const dfs_analytic *a = m->analytic;
        info->in_channels = info->out_channels = a->C;
        info->sample_h = a->H;
        info->sample_w = a->W;
        info->weight_dtype = "none";
        info->class_name = a->K > 1 ? "AnalyticGaussianMixture" : "AnalyticGaussian";
        return;
    }
    const dfs_unet_config *c = &m->unet->cfg;
    info->in_channels = c->in_channels;
    info->out_channels = c->out_channels;
    info->sample_h = c->sample_h;
    info->sample_w = c->sample_w;
    info->num_class_embeds = c->class_embed_type == DFS_CLASS_EMB_TABLE ? c->num_class_embeds : 0;
    info->needs_class_labels = c->class_embed_type != DFS_CLASS_EMB_NONE;
    for (size_t i = 0; i < m->unet->n_params; i++) info->n_params += (int64_t)m->unet->params[i].numel;
    info->weight_dtype = m->weight_dtype;
    info->class_name = "UNet2DModel";
}

dfs_status dfs_model_check_size(dfs_ctx *ctx, const dfs_model *m, int H, int W) {
    if (m->analytic) {
        if (H != m->analytic->H || W != m->analytic->W)
            return dfs_fail(ctx, DFS_ERR_SHAPE, "the analytic denoiser's samples are %dx%d, not %dx%d", m->analytic->H,
                            m->analytic->W, H, W);
        return DFS_OK;
    }
    return dfs_unet_check_size(ctx, m->unet, H, W);
}

double dfs_model_flops(const dfs_model *m, int H, int W) {
    return m->analytic ? 0.0 : dfs_unet_plan_forward(m->unet, 1, H, W).flops;
}

void dfs_model_describe(const dfs_model *m, char *buf, size_t size) {
    if (m->analytic) {
        snprintf(buf, size, "%s: exact denoiser for %d-component Gaussian data of shape %dx%dx%d",
                 m->analytic->K > 1 ? "AnalyticGaussianMixture" : "AnalyticGaussian", m->analytic->K, m->analytic->C,
                 m->analytic->H, m->analytic->W);
        return;
    }
    const dfs_unet_config *c = &m->unet->cfg;
    size_t n = 0;
    buf[0] = 0;
#define OUT(...) (n += (size_t)snprintf(buf + n, n < size ? size - n : 0, __VA_ARGS__), n = n < size ? n : size)
    OUT("UNet2DModel: %d -> %d channels", c->in_channels, c->out_channels);
    if (c->sample_h) OUT(", sample size %dx%d", c->sample_h, c->sample_w);
    OUT("\n  blocks:");
    for (int i = 0; i < c->n_blocks; i++) OUT(" %s(%d)", dfs_block_kind_name(c->down[i]), c->block_out_channels[i]);
    OUT(" | mid: %s |", c->has_mid_block ? (c->add_attention ? "resnet+attention+resnet" : "resnet+resnet") : "none");
    for (int i = 0; i < c->n_blocks; i++) OUT(" %s", dfs_block_kind_name(c->up[i]));
    OUT("\n  layers per block %d, GroupNorm %d groups (eps %g), %s, attention head dim ", c->layers_per_block,
        c->norm_num_groups, (double)c->norm_eps, dfs_act_name(c->act_fn));
    if (c->attention_head_dim) OUT("%d", c->attention_head_dim);
    else OUT("= channels");
    OUT("\n  time embedding %s (%d)%s", c->time_embedding_type == DFS_TEMB_FOURIER ? "fourier" : "positional",
        c->time_embedding_dim, c->scale_shift ? ", scale_shift" : "");
    switch (c->class_embed_type) {
    case DFS_CLASS_EMB_NONE: OUT(", unconditional"); break;
    case DFS_CLASS_EMB_TABLE: OUT(", %d classes", c->num_class_embeds); break;
    case DFS_CLASS_EMB_TIMESTEP: OUT(", class labels via timestep embedding"); break;
    case DFS_CLASS_EMB_IDENTITY: OUT(", class embedding vectors (identity)"); break;
    }
#undef OUT
}

dfs_status dfs_model_forward(dfs_ctx *ctx, dfs_model *m, const float *x, int B, int H, int W,
                             const float *timesteps, const int64_t *class_labels, float *out) {
    dfs_status s;
    if (m->analytic) {
        if (class_labels) return dfs_fail(ctx, DFS_ERR_ARG, "class labels given, but the model is unconditional");
        if (!m->analytic->alphas_cumprod)
            return dfs_fail(ctx, DFS_ERR_ARG, "an analytic denoiser needs a noise schedule: use it through 'diffuse sample'");
        if ((s = dfs_model_check_size(ctx, m, H, W))) return s;
        dfs_analytic_forward(m->analytic, x, B, timesteps, out);
        return DFS_OK;
    }
    const dfs_unet_config *c = &m->unet->cfg;
    if (B < 1 || B > (1 << 20)) return dfs_fail(ctx, DFS_ERR_ARG, "batch size %d is out of range", B);
    if ((s = dfs_unet_check_size(ctx, m->unet, H, W))) return s;
    switch (c->class_embed_type) {
    case DFS_CLASS_EMB_NONE:
        if (class_labels) return dfs_fail(ctx, DFS_ERR_ARG, "class labels given, but the model is unconditional");
        break;
    case DFS_CLASS_EMB_TABLE:
        if (!class_labels) return dfs_fail(ctx, DFS_ERR_ARG, "the model is class-conditional: class labels are required");
        for (int b = 0; b < B; b++)
            if (class_labels[b] < 0 || class_labels[b] >= c->num_class_embeds)
                return dfs_fail(ctx, DFS_ERR_ARG, "class label %lld (batch element %d) is outside [0, %d)",
                                (long long)class_labels[b], b, c->num_class_embeds);
        break;
    case DFS_CLASS_EMB_TIMESTEP:
        if (!class_labels) return dfs_fail(ctx, DFS_ERR_ARG, "the model is class-conditional: class labels are required");
        break;
    case DFS_CLASS_EMB_IDENTITY:
        return dfs_fail(ctx, DFS_ERR_UNSUPPORTED,
                        "class_embed_type \"identity\" takes class embedding vectors: use dfs_model_forward_vec");
    }
    for (int b = 0; b < B; b++) {
        if (!isfinite(timesteps[b])) return dfs_fail(ctx, DFS_ERR_ARG, "timestep %d is not finite", b);
        if (c->time_embedding_type == DFS_TEMB_FOURIER && !(timesteps[b] > 0))
            return dfs_fail(ctx, DFS_ERR_ARG, "timestep %g: a fourier time embedding needs timesteps > 0",
                            (double)timesteps[b]);
    }
    return dfs_model_run(ctx, m, x, B, H, W, timesteps, class_labels, NULL, out);
}

dfs_status dfs_model_forward_vec(dfs_ctx *ctx, dfs_model *m, const float *x, int B, int H, int W,
                                 const float *timesteps, const float *class_vec, float *out) {
    dfs_status s;
    if (m->analytic || m->unet->cfg.class_embed_type != DFS_CLASS_EMB_IDENTITY)
        return dfs_fail(ctx, DFS_ERR_ARG, "class embedding vectors are only for class_embed_type \"identity\"");
    if (B < 1 || B > (1 << 20)) return dfs_fail(ctx, DFS_ERR_ARG, "batch size %d is out of range", B);
    if ((s = dfs_unet_check_size(ctx, m->unet, H, W))) return s;
    return dfs_model_run(ctx, m, x, B, H, W, timesteps, NULL, class_vec, out);
}

dfs_status dfs_model_set_compute(dfs_ctx *ctx, dfs_model *m, const char *dtype) {
    const int bf16 = dtype && strcmp(dtype, "bf16") == 0;
    if (!dtype || (!bf16 && strcmp(dtype, "f32") != 0))
        return dfs_fail(ctx, DFS_ERR_ARG, "compute type '%s' is not one of f32, bf16", dtype ? dtype : "(null)");
    if (bf16 != m->bf16) m->prep_ready = 0; /* prepared in the other precision */
    m->bf16 = bf16;
    return DFS_OK;
}

dfs_status dfs_model_run(dfs_ctx *ctx, dfs_model *m, const float *x, int B, int H, int W, const float *t,
                         const int64_t *labels, const float *class_vec, float *out) {
    dfs_ops_set_threads(dfs_ctx_threads(ctx)); /* before planning: scratch sizes depend on it */
    if (!m->arena || m->plan_b != B || m->plan_h != H || m->plan_w != W || m->plan_threads != dfs_ctx_threads(ctx)) {
        dfs_unet_plan plan = dfs_unet_plan_forward(m->unet, B, H, W);
        char what[96];
        snprintf(what, sizeof what, "a forward pass at batch %d, %dx%d", B, H, W);
        dfs_status s = dfs_check_memory(ctx, (double)plan.arena_floats * sizeof(float), what);
        if (s) return s;
        dfs_free(m->arena);
        m->arena = dfs_malloc(dfs_mul_size(plan.arena_floats ? plan.arena_floats : 1, sizeof(float)));
        m->plan_b = 0;
        if (!m->arena)
            return dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory: a forward pass at batch %d, %dx%d needs %.1f MiB", B, H, W,
                            plan.arena_floats * 4.0 / 1048576.0);
        m->arena_floats = plan.arena_floats;
        m->plan_b = B;
        m->plan_h = H;
        m->plan_w = W;
        m->plan_threads = dfs_ctx_threads(ctx);
        /* what is prepared, and its size, depend on the batch and size (dfs_conv2d_prepare) */
        dfs_free(m->prep);
        m->prep = NULL;
        m->prep_skipped = 0;
        m->prep_floats = plan.prep_floats;
    }
    if (!m->prep && !m->prep_skipped) {
        /* only a speed-up: without the memory for it (or under --max-memory), each pass prepares its own */
        const size_t n = m->prep_floats;
        const double limit = dfs_memory_limit(ctx, NULL);
        if (!limit || ((double)n + (double)m->arena_floats) * sizeof(float) <= limit)
            m->prep = dfs_malloc(dfs_mul_size(n, sizeof(float)));
        m->prep_skipped = m->prep == NULL;
        m->prep_ready = 0;
    }
    dfs_unet_forward(m->unet, m->params, m->arena, m->prep, m->prep_ready, m->bf16, x, B, H, W, t, labels, class_vec, out);
    m->prep_ready = m->prep != NULL;
    return DFS_OK;
}
