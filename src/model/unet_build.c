/* Building UNet2DModel's module tree and parameter table from its config, following
 * diffusers' UNet2DModel.__init__, get_down_block / get_up_block and the block classes. */
#include <stdarg.h>
#include <string.h>

#include "model/unet.h"
#include "ops/ops.h"

typedef struct builder {
    dfs_ctx *ctx;
    const char *what;
    dfs_unet *u;
    dfs_status st; /* first error; later registrations are skipped */
} builder;

/* Registers a parameter named by the printf-style format, returns its offset. */
static size_t reg(builder *b, int ndim, const int64_t *shape, const char *fmt, ...) DFS_PRINTF(4, 5);
static size_t reg(builder *b, int ndim, const int64_t *shape, const char *fmt, ...) {
    dfs_unet *u = b->u;
    if (b->st) return 0;
    if (u->n_params == u->cap_params) {
        size_t cap = u->cap_params ? 2 * u->cap_params : 256;
        dfs_param *p = dfs_realloc(u->params, dfs_mul_size(cap, sizeof *p));
        if (!p) {
            b->st = dfs_fail(b->ctx, DFS_ERR_NOMEM, "%s: out of memory building the parameter table", b->what);
            return 0;
        }
        u->params = p;
        u->cap_params = cap;
    }
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    dfs_param *p = &u->params[u->n_params];
    memset(p, 0, sizeof *p);
    p->name = dfs_strdup(name);
    if (!p->name) {
        b->st = dfs_fail(b->ctx, DFS_ERR_NOMEM, "%s: out of memory building the parameter table", b->what);
        return 0;
    }
    u->n_params++;
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        p->numel *= (size_t)shape[i];
    }
    /* Each tensor starts on a 64-byte boundary so kernels may use aligned loads. */
    p->off = u->n_floats;
    u->n_floats += (p->numel + 15) & ~(size_t)15;
    return p->off;
}

static dfs_lin lin(builder *b, int in, int out, const char *prefix) {
    dfs_lin l = {0, 0, in, out};
    l.w = reg(b, 2, (int64_t[]){out, in}, "%s.weight", prefix);
    l.b = reg(b, 1, (int64_t[]){out}, "%s.bias", prefix);
    return l;
}

static dfs_conv conv(builder *b, int in, int out, int k, const char *prefix) {
    dfs_conv c = {0, 0, in, out, k};
    c.w = reg(b, 4, (int64_t[]){out, in, k, k}, "%s.weight", prefix);
    c.b = reg(b, 1, (int64_t[]){out}, "%s.bias", prefix);
    return c;
}

static dfs_norm norm(builder *b, int C, int G, float eps, const char *prefix) {
    dfs_norm n = {0, 0, C, G, eps};
    if (!b->st && (G < 1 || C % G != 0))
        b->st = dfs_fail(b->ctx, DFS_ERR_FORMAT, "%s: %s has %d channels, not divisible into %d groups", b->what,
                         prefix, C, G);
    n.g = reg(b, 1, (int64_t[]){C}, "%s.weight", prefix);
    n.b = reg(b, 1, (int64_t[]){C}, "%s.bias", prefix);
    return n;
}

static dfs_resnet resnet(builder *b, int in, int out, float out_scale, int up, int down, const char *prefix) {
    const dfs_unet_config *cfg = &b->u->cfg;
    char name[256];
    dfs_resnet r;
    memset(&r, 0, sizeof r);
    r.in = in;
    r.out = out;
    r.up = up;
    r.down = down;
    r.out_scale = out_scale;
    snprintf(name, sizeof name, "%s.norm1", prefix);
    r.norm1 = norm(b, in, cfg->norm_num_groups, cfg->norm_eps, name);
    snprintf(name, sizeof name, "%s.conv1", prefix);
    r.conv1 = conv(b, in, out, 3, name);
    snprintf(name, sizeof name, "%s.time_emb_proj", prefix);
    r.temb = lin(b, cfg->time_embedding_dim, cfg->scale_shift ? 2 * out : out, name);
    snprintf(name, sizeof name, "%s.norm2", prefix);
    r.norm2 = norm(b, out, cfg->norm_num_groups, cfg->norm_eps, name);
    snprintf(name, sizeof name, "%s.conv2", prefix);
    r.conv2 = conv(b, out, out, 3, name);
    if (in != out) {
        r.has_shortcut = 1;
        snprintf(name, sizeof name, "%s.conv_shortcut", prefix);
        r.shortcut = conv(b, in, out, 1, name);
    }
    return r;
}

/* heads = C // head_dim as diffusers computes it; groups: 0 for no GroupNorm. */
static dfs_attn attention(builder *b, int C, int head_dim, int groups, float rescale, const char *prefix) {
    const dfs_unet_config *cfg = &b->u->cfg;
    char name[256];
    dfs_attn a;
    memset(&a, 0, sizeof a);
    a.C = C;
    a.dh = head_dim;
    a.heads = C / head_dim;
    a.rescale = rescale;
    if (!b->st && a.heads < 1)
        b->st = dfs_fail(b->ctx, DFS_ERR_FORMAT, "%s: %s: attention_head_dim %d is wider than its %d channels",
                         b->what, prefix, head_dim, C);
    if (groups) {
        a.has_norm = 1;
        snprintf(name, sizeof name, "%s.group_norm", prefix);
        a.norm = norm(b, C, groups, cfg->norm_eps, name);
    }
    const int inner = a.heads * a.dh;
    snprintf(name, sizeof name, "%s.to_q", prefix);
    a.q = lin(b, C, inner, name);
    snprintf(name, sizeof name, "%s.to_k", prefix);
    a.k = lin(b, C, inner, name);
    snprintf(name, sizeof name, "%s.to_v", prefix);
    a.v = lin(b, C, inner, name);
    snprintf(name, sizeof name, "%s.to_out.0", prefix);
    a.o = lin(b, inner, C, name);
    return a;
}

static int is_attn_block(dfs_block_kind k) { return k == DFS_BLOCK_ATTN_DOWN || k == DFS_BLOCK_ATTN_UP; }

static void build_down(builder *b, int i, int in, int out, int is_final) {
    const dfs_unet_config *cfg = &b->u->cfg;
    dfs_block *blk = &b->u->down[i];
    char name[256];
    blk->kind = cfg->down[i];
    blk->n_layers = cfg->layers_per_block;
    blk->has_attn = is_attn_block(blk->kind);
    const int head_dim = cfg->attention_head_dim ? cfg->attention_head_dim : out;
    for (int l = 0; l < blk->n_layers; l++) {
        snprintf(name, sizeof name, "down_blocks.%d.resnets.%d", i, l);
        blk->res[l] = resnet(b, l == 0 ? in : out, out, 1.0f, 0, 0, name);
        if (blk->has_attn) {
            snprintf(name, sizeof name, "down_blocks.%d.attentions.%d", i, l);
            blk->attn[l] = attention(b, out, head_dim, cfg->norm_num_groups, 1.0f, name);
        }
    }
    if (is_final) return;
    /* DownBlock2D always downsamples with a conv; AttnDownBlock2D follows downsample_type;
     * ResnetDownsampleBlock2D always uses a resnet with average pooling. */
    int use_resnet = blk->kind == DFS_BLOCK_RESNET_DOWN ||
                     (blk->kind == DFS_BLOCK_ATTN_DOWN && cfg->downsample_type == DFS_RESAMPLE_RESNET);
    if (use_resnet) {
        blk->sampler = DFS_SAMPLER_RESNET;
        snprintf(name, sizeof name, "down_blocks.%d.downsamplers.0", i);
        blk->sres = resnet(b, out, out, 1.0f, 0, 1, name);
    } else {
        blk->sampler = DFS_SAMPLER_CONV;
        blk->pad = cfg->downsample_padding;
        snprintf(name, sizeof name, "down_blocks.%d.downsamplers.0.conv", i);
        blk->sconv = conv(b, out, out, 3, name);
    }
}

static void build_up(builder *b, int i, int prev_out, int out, int in, int is_final) {
    const dfs_unet_config *cfg = &b->u->cfg;
    dfs_block *blk = &b->u->up[i];
    char name[256];
    blk->kind = cfg->up[i];
    blk->n_layers = cfg->layers_per_block + 1;
    blk->has_attn = is_attn_block(blk->kind);
    const int head_dim = cfg->attention_head_dim ? cfg->attention_head_dim : out;
    for (int l = 0; l < blk->n_layers; l++) {
        const int skip = l == blk->n_layers - 1 ? in : out;
        const int res_in = l == 0 ? prev_out : out;
        snprintf(name, sizeof name, "up_blocks.%d.resnets.%d", i, l);
        blk->res[l] = resnet(b, res_in + skip, out, 1.0f, 0, 0, name);
        if (blk->has_attn) {
            snprintf(name, sizeof name, "up_blocks.%d.attentions.%d", i, l);
            blk->attn[l] = attention(b, out, head_dim, cfg->norm_num_groups, 1.0f, name);
        }
    }
    if (is_final) return;
    int use_resnet = blk->kind == DFS_BLOCK_RESNET_UP ||
                     (blk->kind == DFS_BLOCK_ATTN_UP && cfg->upsample_type == DFS_RESAMPLE_RESNET);
    if (use_resnet) {
        blk->sampler = DFS_SAMPLER_RESNET;
        snprintf(name, sizeof name, "up_blocks.%d.upsamplers.0", i);
        blk->sres = resnet(b, out, out, 1.0f, 1, 0, name);
    } else {
        blk->sampler = DFS_SAMPLER_CONV;
        snprintf(name, sizeof name, "up_blocks.%d.upsamplers.0.conv", i);
        blk->sconv = conv(b, out, out, 3, name);
    }
}

dfs_status dfs_unet_build(dfs_ctx *ctx, const dfs_unet_config *cfg, const char *what, dfs_unet **out) {
    *out = NULL;
    dfs_unet *u = dfs_calloc(1, sizeof *u);
    if (!u) return dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory", what);
    u->cfg = *cfg;
    builder b = {ctx, what, u, DFS_OK};
    const int *boc = cfg->block_out_channels, n = cfg->n_blocks, c0 = boc[0], temb = cfg->time_embedding_dim;

    u->conv_in = conv(&b, cfg->in_channels, c0, 3, "conv_in");
    if (cfg->time_embedding_type == DFS_TEMB_FOURIER) {
        u->fourier_w = reg(&b, 1, (int64_t[]){c0}, "time_proj.weight");
        u->temb_in = 2 * c0;
    } else {
        u->temb_in = c0;
    }
    u->temb1 = lin(&b, u->temb_in, temb, "time_embedding.linear_1");
    u->temb2 = lin(&b, temb, temb, "time_embedding.linear_2");
    if (cfg->class_embed_type == DFS_CLASS_EMB_TABLE) {
        u->class_table = reg(&b, 2, (int64_t[]){cfg->num_class_embeds, temb}, "class_embedding.weight");
    } else if (cfg->class_embed_type == DFS_CLASS_EMB_TIMESTEP) {
        u->class1 = lin(&b, u->temb_in, temb, "class_embedding.linear_1");
        u->class2 = lin(&b, temb, temb, "class_embedding.linear_2");
    }

    int out_c = c0;
    for (int i = 0; i < n; i++) {
        const int in_c = out_c;
        out_c = boc[i];
        build_down(&b, i, in_c, out_c, i == n - 1);
    }

    if (cfg->has_mid_block) {
        const int C = boc[n - 1];
        const float s = cfg->mid_block_scale_factor;
        u->has_mid = 1;
        u->mid_res[0] = resnet(&b, C, C, s, 0, 0, "mid_block.resnets.0");
        if (cfg->add_attention) {
            /* The mid block's attention normalises only with the default time shift, unless
             * attn_norm_num_groups says otherwise. */
            int groups = cfg->attn_norm_num_groups ? cfg->attn_norm_num_groups : cfg->scale_shift ? 0 : cfg->norm_num_groups;
            u->mid_has_attn = 1;
            u->mid_attn = attention(&b, C, cfg->attention_head_dim ? cfg->attention_head_dim : C, groups, s,
                                    "mid_block.attentions.0");
        }
        u->mid_res[1] = resnet(&b, C, C, s, 0, 0, "mid_block.resnets.1");
    }

    out_c = boc[n - 1];
    for (int i = 0; i < n; i++) {
        const int prev = out_c;
        out_c = boc[n - 1 - i];
        const int in_c = boc[n - 1 - (i + 1 < n ? i + 1 : n - 1)];
        build_up(&b, i, prev, out_c, in_c, i == n - 1);
    }
    u->norm_out = norm(&b, c0, cfg->norm_num_groups, cfg->norm_eps, "conv_norm_out");
    u->conv_out = conv(&b, c0, cfg->out_channels, 3, "conv_out");

    if (b.st) {
        dfs_unet_free(u);
        return b.st;
    }
    *out = u;
    return DFS_OK;
}

void dfs_unet_free(dfs_unet *u) {
    if (!u) return;
    for (size_t i = 0; i < u->n_params; i++) dfs_free(u->params[i].name);
    dfs_free(u->params);
    dfs_free(u);
}

dfs_status dfs_unet_check_size(dfs_ctx *ctx, const dfs_unet *u, int H, int W) {
    int f = 1 << (u->cfg.n_blocks - 1);
    if (H < 1 || W < 1 || H > 16384 || W > 16384)
        return dfs_fail(ctx, DFS_ERR_SHAPE, "sample size %dx%d is outside 1..16384", H, W);
    if (H % f || W % f)
        return dfs_fail(ctx, DFS_ERR_SHAPE, "sample size %dx%d must be divisible by %d for a UNet with %d blocks", H, W,
                        f, u->cfg.n_blocks);
    return DFS_OK;
}
