/* Parsing UNet2DModel configs. Defaults are UNet2DModel.__init__'s (diffusers 0.38). */
#include <math.h>
#include <string.h>

#include "model/unet_config.h"

static const struct { const char *name; dfs_block_kind kind; int down; } block_names[] = {
    {"DownBlock2D", DFS_BLOCK_DOWN, 1},
    {"AttnDownBlock2D", DFS_BLOCK_ATTN_DOWN, 1},
    {"ResnetDownsampleBlock2D", DFS_BLOCK_RESNET_DOWN, 1},
    {"UpBlock2D", DFS_BLOCK_UP, 0},
    {"AttnUpBlock2D", DFS_BLOCK_ATTN_UP, 0},
    {"ResnetUpsampleBlock2D", DFS_BLOCK_RESNET_UP, 0},
};

static const struct { const char *name; dfs_act act; } act_names[] = {
    {"silu", DFS_ACT_SILU}, {"swish", DFS_ACT_SILU}, {"mish", DFS_ACT_MISH},
    {"gelu", DFS_ACT_GELU}, {"relu", DFS_ACT_RELU},
};

const char *dfs_block_kind_name(dfs_block_kind k) {
    for (size_t i = 0; i < sizeof block_names / sizeof *block_names; i++)
        if (block_names[i].kind == k) return block_names[i].name;
    return "?";
}

const char *dfs_act_name(dfs_act a) {
    for (size_t i = 0; i < sizeof act_names / sizeof *act_names; i++)
        if (act_names[i].act == a) return act_names[i].name;
    return "none";
}

typedef struct reader {
    dfs_ctx *ctx;
    const dfs_json *j;
    const char *what;
} reader;

/* A present, non-null value of key, or NULL. */
static const dfs_json *get(const reader *r, const char *key) {
    const dfs_json *v = dfs_json_get(r->j, key);
    return v && v->type != DFS_JSON_NULL ? v : NULL;
}

static dfs_status bad(const reader *r, const char *key, const char *why) {
    return dfs_fail(r->ctx, DFS_ERR_FORMAT, "%s: config field '%s' %s", r->what, key, why);
}

/* Integer field in [lo, hi]; *out keeps its default when the key is missing or null. */
static dfs_status get_int(const reader *r, const char *key, int lo, int hi, int *out) {
    const dfs_json *v = get(r, key);
    if (!v) return DFS_OK;
    if (!dfs_json_is_int(v)) return bad(r, key, "must be an integer");
    if (v->number < lo || v->number > hi)
        return dfs_fail(r->ctx, DFS_ERR_FORMAT, "%s: config field '%s' is %.0f, outside [%d, %d]", r->what, key,
                        v->number, lo, hi);
    *out = (int)v->number;
    return DFS_OK;
}

static dfs_status get_float(const reader *r, const char *key, double lo, double hi, float *out) {
    const dfs_json *v = get(r, key);
    if (!v) return DFS_OK;
    if (v->type != DFS_JSON_NUMBER || !isfinite(v->number)) return bad(r, key, "must be a finite number");
    if (v->number < lo || v->number > hi)
        return dfs_fail(r->ctx, DFS_ERR_FORMAT, "%s: config field '%s' is %g, outside [%g, %g]", r->what, key,
                        v->number, lo, hi);
    *out = (float)v->number;
    return DFS_OK;
}

static dfs_status get_bool(const reader *r, const char *key, int *out) {
    const dfs_json *v = get(r, key);
    if (!v) return DFS_OK;
    if (v->type != DFS_JSON_BOOL) return bad(r, key, "must be true or false");
    *out = v->boolean;
    return DFS_OK;
}

/* String field; *out stays NULL (the caller's default) when missing or null. */
static dfs_status get_str(const reader *r, const char *key, const char **out) {
    const dfs_json *v = get(r, key);
    if (!v) return DFS_OK;
    if (v->type != DFS_JSON_STRING) return bad(r, key, "must be a string");
    *out = v->string;
    return DFS_OK;
}

static dfs_status unsupported(const reader *r, const char *key, const char *value) {
    return dfs_fail(r->ctx, DFS_ERR_UNSUPPORTED, "%s: config field '%s' = \"%s\" is not supported by diffuse",
                    r->what, key, value);
}

static dfs_status get_blocks(const reader *r, const char *key, int want_down, dfs_block_kind *kinds, int *n) {
    const dfs_json *v = get(r, key);
    if (!v) return DFS_OK; /* the caller has filled the defaults */
    if (v->type != DFS_JSON_ARRAY) return bad(r, key, "must be a list of block type names");
    if (v->n_items < 1 || v->n_items > DFS_UNET_MAX_BLOCKS)
        return dfs_fail(r->ctx, DFS_ERR_FORMAT, "%s: config field '%s' has %zu blocks; diffuse supports 1 to %d",
                        r->what, key, v->n_items, DFS_UNET_MAX_BLOCKS);
    for (size_t i = 0; i < v->n_items; i++) {
        const dfs_json *it = &v->items[i];
        if (it->type != DFS_JSON_STRING) return bad(r, key, "must be a list of block type names");
        const char *name = it->string;
        if (strncmp(name, "UNetRes", 7) == 0) name += 7; /* diffusers strips this prefix too */
        int found = 0;
        for (size_t k = 0; k < sizeof block_names / sizeof *block_names; k++) {
            if (strcmp(block_names[k].name, name) == 0) {
                if (block_names[k].down != want_down)
                    return dfs_fail(r->ctx, DFS_ERR_FORMAT, "%s: config field '%s' lists \"%s\", which is not %s block",
                                    r->what, key, it->string, want_down ? "a down" : "an up");
                kinds[i] = block_names[k].kind;
                found = 1;
            }
        }
        if (!found) return unsupported(r, key, it->string);
    }
    *n = (int)v->n_items;
    return DFS_OK;
}

dfs_status dfs_unet_config_parse(dfs_ctx *ctx, const dfs_json *j, const char *what, dfs_unet_config *cfg) {
    reader r = {ctx, j, what};
    dfs_status st;
    if (!j || j->type != DFS_JSON_OBJECT)
        return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: a model config must be a JSON object", what);
    const char *cls = NULL;
    if ((st = get_str(&r, "_class_name", &cls))) return st;
    if (cls && strcmp(cls, "UNet2DModel") != 0) return unsupported(&r, "_class_name", cls);

    memset(cfg, 0, sizeof *cfg);
    static const dfs_block_kind def_down[] = {DFS_BLOCK_DOWN, DFS_BLOCK_ATTN_DOWN, DFS_BLOCK_ATTN_DOWN, DFS_BLOCK_ATTN_DOWN};
    static const dfs_block_kind def_up[] = {DFS_BLOCK_ATTN_UP, DFS_BLOCK_ATTN_UP, DFS_BLOCK_ATTN_UP, DFS_BLOCK_UP};
    static const int def_boc[] = {224, 448, 672, 896};
    int n_down = 4, n_up = 4, n_boc = 4;
    memcpy(cfg->down, def_down, sizeof def_down);
    memcpy(cfg->up, def_up, sizeof def_up);
    memcpy(cfg->block_out_channels, def_boc, sizeof def_boc);
    cfg->in_channels = 3;
    cfg->out_channels = 3;
    cfg->flip_sin_to_cos = 1;
    cfg->has_mid_block = 1;
    cfg->layers_per_block = 2;
    cfg->mid_block_scale_factor = 1.0f;
    cfg->downsample_padding = 1;
    cfg->act_fn = DFS_ACT_SILU;
    cfg->attention_head_dim = 8;
    cfg->norm_num_groups = 32;
    cfg->norm_eps = 1e-5f;
    cfg->add_attention = 1;

    /* sample_size: an integer, a [height, width] pair, or null */
    const dfs_json *ss = get(&r, "sample_size");
    if (ss) {
        if (dfs_json_is_int(ss) && ss->number >= 1 && ss->number <= 65536) {
            cfg->sample_h = cfg->sample_w = (int)ss->number;
        } else if (ss->type == DFS_JSON_ARRAY && ss->n_items == 2 && dfs_json_is_int(&ss->items[0]) &&
                   dfs_json_is_int(&ss->items[1]) && ss->items[0].number >= 1 && ss->items[1].number >= 1 &&
                   ss->items[0].number <= 65536 && ss->items[1].number <= 65536) {
            cfg->sample_h = (int)ss->items[0].number;
            cfg->sample_w = (int)ss->items[1].number;
        } else {
            return bad(&r, "sample_size", "must be a positive integer or [height, width]");
        }
    }
    if ((st = get_int(&r, "in_channels", 1, DFS_UNET_MAX_CHANNELS, &cfg->in_channels))) return st;
    if ((st = get_int(&r, "out_channels", 1, DFS_UNET_MAX_CHANNELS, &cfg->out_channels))) return st;
    if ((st = get_bool(&r, "center_input_sample", &cfg->center_input_sample))) return st;
    if ((st = get_bool(&r, "flip_sin_to_cos", &cfg->flip_sin_to_cos))) return st;
    if ((st = get_float(&r, "freq_shift", -1e6, 1e6, &cfg->freq_shift))) return st;
    if ((st = get_int(&r, "layers_per_block", 1, DFS_UNET_MAX_LAYERS, &cfg->layers_per_block))) return st;
    if ((st = get_float(&r, "mid_block_scale_factor", 1e-6, 1e6, &cfg->mid_block_scale_factor))) return st;
    if ((st = get_int(&r, "downsample_padding", 0, 1, &cfg->downsample_padding))) return st;
    if ((st = get_int(&r, "norm_num_groups", 1, DFS_UNET_MAX_CHANNELS, &cfg->norm_num_groups))) return st;
    if ((st = get_int(&r, "attn_norm_num_groups", 1, DFS_UNET_MAX_CHANNELS, &cfg->attn_norm_num_groups))) return st;
    if ((st = get_float(&r, "norm_eps", 1e-12, 1.0, &cfg->norm_eps))) return st;
    if ((st = get_bool(&r, "add_attention", &cfg->add_attention))) return st;
    if ((st = get_int(&r, "num_class_embeds", 1, 1 << 24, &cfg->num_class_embeds))) return st;
    if ((st = get_int(&r, "time_embedding_dim", 1, DFS_UNET_MAX_CHANNELS, &cfg->time_embedding_dim))) return st;

    const dfs_json *ahd = dfs_json_get(j, "attention_head_dim");
    if (ahd && ahd->type == DFS_JSON_NULL) cfg->attention_head_dim = 0;
    else if ((st = get_int(&r, "attention_head_dim", 1, DFS_UNET_MAX_CHANNELS, &cfg->attention_head_dim))) return st;

    if ((st = get_blocks(&r, "down_block_types", 1, cfg->down, &n_down))) return st;
    if ((st = get_blocks(&r, "up_block_types", 0, cfg->up, &n_up))) return st;
    const dfs_json *boc = get(&r, "block_out_channels");
    if (boc) {
        if (boc->type != DFS_JSON_ARRAY || boc->n_items < 1 || boc->n_items > DFS_UNET_MAX_BLOCKS)
            return bad(&r, "block_out_channels", "must be a list of 1 to 8 channel counts");
        for (size_t i = 0; i < boc->n_items; i++) {
            const dfs_json *it = &boc->items[i];
            if (!dfs_json_is_int(it) || it->number < 1 || it->number > DFS_UNET_MAX_CHANNELS)
                return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: config field 'block_out_channels' entry %zu must be an integer in [1, %d]",
                                what, i, DFS_UNET_MAX_CHANNELS);
            cfg->block_out_channels[i] = (int)it->number;
        }
        n_boc = (int)boc->n_items;
    }
    if (n_down != n_up)
        return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: %d down_block_types but %d up_block_types; they must match", what, n_down, n_up);
    if (n_boc != n_down)
        return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: %d block_out_channels but %d down_block_types; they must match", what, n_boc, n_down);
    cfg->n_blocks = n_down;
    if (!cfg->time_embedding_dim) cfg->time_embedding_dim = 4 * cfg->block_out_channels[0];

    const char *s = NULL;
    if ((st = get_str(&r, "time_embedding_type", &s))) return st;
    if (s && strcmp(s, "fourier") == 0) cfg->time_embedding_type = DFS_TEMB_FOURIER;
    else if (s && strcmp(s, "positional") != 0) return unsupported(&r, "time_embedding_type", s);

    s = NULL;
    const dfs_json *mbt = dfs_json_get(j, "mid_block_type");
    if (mbt && mbt->type == DFS_JSON_NULL) cfg->has_mid_block = 0;
    if ((st = get_str(&r, "mid_block_type", &s))) return st;
    if (s && strcmp(s, "UNetMidBlock2D") != 0) return unsupported(&r, "mid_block_type", s);

    const char *types[2] = {NULL, NULL};
    if ((st = get_str(&r, "downsample_type", &types[0])) || (st = get_str(&r, "upsample_type", &types[1]))) return st;
    for (int i = 0; i < 2; i++) {
        dfs_resample *dst = i ? &cfg->upsample_type : &cfg->downsample_type;
        if (!types[i] || strcmp(types[i], "conv") == 0) *dst = DFS_RESAMPLE_CONV;
        else if (strcmp(types[i], "resnet") == 0) *dst = DFS_RESAMPLE_RESNET;
        else return unsupported(&r, i ? "upsample_type" : "downsample_type", types[i]);
    }

    s = NULL;
    if ((st = get_str(&r, "act_fn", &s))) return st;
    if (s) {
        size_t k = 0;
        while (k < sizeof act_names / sizeof *act_names && strcmp(act_names[k].name, s) != 0) k++;
        if (k == sizeof act_names / sizeof *act_names) return unsupported(&r, "act_fn", s);
        cfg->act_fn = act_names[k].act;
    }

    s = NULL;
    if ((st = get_str(&r, "resnet_time_scale_shift", &s))) return st;
    if (s && strcmp(s, "scale_shift") == 0) cfg->scale_shift = 1;
    else if (s && strcmp(s, "default") != 0) return unsupported(&r, "resnet_time_scale_shift", s);

    s = NULL;
    if ((st = get_str(&r, "class_embed_type", &s))) return st;
    if (!s) cfg->class_embed_type = cfg->num_class_embeds ? DFS_CLASS_EMB_TABLE : DFS_CLASS_EMB_NONE;
    else if (strcmp(s, "timestep") == 0) cfg->class_embed_type = DFS_CLASS_EMB_TIMESTEP;
    else if (strcmp(s, "identity") == 0) cfg->class_embed_type = DFS_CLASS_EMB_IDENTITY;
    else return unsupported(&r, "class_embed_type", s);
    return DFS_OK;
}
