/* UNet2DModel's forward pass as a flat sequence of op calls on one activation arena.
 *
 * The same code plans and runs: in planning mode no op is called and only the arena's peak size
 * and the FLOPs are counted, so the plan can never disagree with the run. The arena is a stack:
 * a layer's temporaries are pushed above its inputs, and `keep` moves the layer's output down
 * over them when it is done. Skip connections stay on the stack until the up path uses them. */
#include <string.h>

#include "model/unet.h"

typedef struct ten { size_t off; int C, H, W; } ten; /* (B, C, H, W) at arena + off */

typedef struct run {
    const dfs_unet *u;
    const float *P;  /* parameters */
    float *arena;    /* NULL when planning */
    int B;
    size_t top, peak;
    double flops;
} run;

static size_t numel(const run *r, ten t) { return (size_t)r->B * t.C * t.H * t.W; }

static ten push(run *r, int C, int H, int W) {
    ten t = {r->top, C, H, W};
    r->top += (numel(r, t) + 15) & ~(size_t)15; /* 64-byte aligned */
    if (r->top > r->peak) r->peak = r->top;
    return t;
}

static size_t push_raw(run *r, size_t n) {
    size_t off = r->top;
    r->top += (n + 15) & ~(size_t)15;
    if (r->top > r->peak) r->peak = r->top;
    return off;
}

/* Arena addresses; NULL while planning (no pointer arithmetic on NULL). */
static float *at(const run *r, size_t off) { return r->arena ? r->arena + off : NULL; }
static float *A(const run *r, ten t) { return at(r, t.off); }
static const float *W(const run *r, size_t off) { return r->P + off; }

/* Pops everything above `mark` except t, which moves down to mark. */
static ten keep(run *r, size_t mark, ten t) {
    if (r->arena && t.off != mark) memmove(r->arena + mark, A(r, t), numel(r, t) * sizeof(float));
    t.off = mark;
    r->top = mark + ((numel(r, t) + 15) & ~(size_t)15);
    return t;
}

static void conv(run *r, const dfs_conv *c, const float *in, float *out, int H, int W_, int stride, int pad_t,
                 int pad_l, int OH, int OW) {
    r->flops += 2.0 * r->B * c->out * OH * OW * (double)c->in * c->k * c->k;
    const size_t mark = r->top, ws = push_raw(r, dfs_conv2d_workspace(c->in, c->k, c->k, OH, OW));
    r->top = mark;
    if (!r->arena) return;
    dfs_conv2d_forward(out, at(r, ws), in, W(r, c->w), W(r, c->b), r->B, c->in, H, W_, c->out, c->k, c->k, stride, pad_t, pad_l,
                       OH, OW);
}

static void groupnorm(run *r, const dfs_norm *n, const float *in, float *out, int HW, dfs_act act) {
    if (!r->arena) return;
    dfs_groupnorm_forward(out, in, W(r, n->g), W(r, n->b), r->B, n->C, HW, n->G, n->eps, act);
}

static void linear(run *r, const dfs_lin *l, const float *in, float *out, int N) {
    r->flops += 2.0 * N * l->in * l->out;
    if (!r->arena) return;
    dfs_linear_forward(out, in, W(r, l->w), W(r, l->b), N, l->in, l->out);
}

/* ResnetBlock2D. temb_act: act_fn(emb), (B, temb). */
static ten resnet(run *r, const dfs_resnet *p, ten x, size_t temb_act) {
    const dfs_unet_config *cfg = &r->u->cfg;
    const size_t mark = r->top;
    const int H = x.H, Wd = x.W;
    const int OH = p->up ? 2 * H : p->down ? H / 2 : H, OW = p->up ? 2 * Wd : p->down ? Wd / 2 : Wd;
    ten h = push(r, p->in, H, Wd);
    groupnorm(r, &p->norm1, A(r, x), A(r, h), H * Wd, cfg->act_fn);
    ten xs = x;
    if (p->up || p->down) {
        ten x2 = push(r, p->in, OH, OW), h2 = push(r, p->in, OH, OW);
        if (r->arena) {
            if (p->up) {
                dfs_upsample2x_forward(A(r, x2), A(r, x), r->B * p->in, H, Wd);
                dfs_upsample2x_forward(A(r, h2), A(r, h), r->B * p->in, H, Wd);
            } else {
                dfs_avgpool2x_forward(A(r, x2), A(r, x), r->B * p->in, H, Wd);
                dfs_avgpool2x_forward(A(r, h2), A(r, h), r->B * p->in, H, Wd);
            }
        }
        xs = x2;
        h = h2;
    }
    ten c1 = push(r, p->out, OH, OW);
    conv(r, &p->conv1, A(r, h), A(r, c1), OH, OW, 1, 1, 1, OH, OW);
    const size_t t = push_raw(r, (size_t)r->B * p->temb.out);
    linear(r, &p->temb, at(r, temb_act), at(r, t), r->B);
    if (r->arena) {
        if (cfg->scale_shift) {
            dfs_groupnorm_forward(A(r, c1), A(r, c1), W(r, p->norm2.g), W(r, p->norm2.b), r->B, p->out, OH * OW,
                                  p->norm2.G, p->norm2.eps, DFS_ACT_NONE);
            dfs_scale_shift(A(r, c1), at(r, t), r->B, p->out, OH * OW, cfg->act_fn);
        } else {
            dfs_add_channel_bias(A(r, c1), at(r, t), r->B, p->out, OH * OW);
            groupnorm(r, &p->norm2, A(r, c1), A(r, c1), OH * OW, cfg->act_fn);
        }
    }
    ten c2 = push(r, p->out, OH, OW);
    conv(r, &p->conv2, A(r, c1), A(r, c2), OH, OW, 1, 1, 1, OH, OW);
    if (p->has_shortcut) {
        ten sc = push(r, p->out, OH, OW);
        conv(r, &p->shortcut, A(r, xs), A(r, sc), OH, OW, 1, 0, 0, OH, OW);
        xs = sc;
    }
    if (r->arena) dfs_add_div(A(r, c2), A(r, xs), A(r, c2), numel(r, c2), p->out_scale);
    return keep(r, mark, c2);
}

/* Attention in place on x (its own residual). */
static void attention(run *r, const dfs_attn *p, ten x) {
    const size_t mark = r->top;
    const int HW = x.H * x.W, inner = p->heads * p->dh;
    ten xn = x;
    if (p->has_norm) {
        xn = push(r, x.C, x.H, x.W);
        groupnorm(r, &p->norm, A(r, x), A(r, xn), HW, DFS_ACT_NONE);
    }
    const size_t scratch = push_raw(r, dfs_attention_scratch(r->B, x.C, HW, p->heads, p->dh));
    r->flops += 2.0 * r->B * HW * ((double)x.C * inner * 4 + 2.0 * HW * inner);
    if (r->arena)
        dfs_attention_forward(A(r, x), at(r, scratch), A(r, xn), A(r, x), W(r, p->q.w), W(r, p->q.b),
                              W(r, p->k.w), W(r, p->k.b), W(r, p->v.w), W(r, p->v.b), W(r, p->o.w), W(r, p->o.b),
                              r->B, x.C, HW, p->heads, p->dh, p->rescale);
    r->top = mark;
}

/* The timestep (and class) embedding; returns the offset of act_fn(emb), (B, temb). */
static size_t embedding(run *r, const float *t, const int64_t *labels, const float *class_vec) {
    const dfs_unet *u = r->u;
    const dfs_unet_config *cfg = &u->cfg;
    const int B = r->B, temb = cfg->time_embedding_dim;
    const size_t tact = push_raw(r, (size_t)B * temb); /* the result; the rest are temporaries */
    const size_t proj = push_raw(r, (size_t)B * u->temb_in);
    const size_t hid = push_raw(r, (size_t)B * temb);
    const size_t emb = push_raw(r, (size_t)B * temb);
    const size_t cls = push_raw(r, (size_t)B * temb);
    float *a = r->arena;
    if (a) {
        if (cfg->time_embedding_type == DFS_TEMB_FOURIER)
            dfs_fourier_embedding(a + proj, t, B, W(r, u->fourier_w), cfg->block_out_channels[0]);
        else
            dfs_timestep_embedding(a + proj, t, B, u->temb_in, cfg->flip_sin_to_cos, cfg->freq_shift);
    }
    linear(r, &u->temb1, at(r, proj), at(r, hid), B);
    if (a) dfs_act_forward(a + hid, (size_t)B * temb, DFS_ACT_SILU);
    linear(r, &u->temb2, at(r, hid), at(r, emb), B);
    switch (cfg->class_embed_type) {
    case DFS_CLASS_EMB_NONE: break;
    case DFS_CLASS_EMB_TABLE:
        if (a)
            for (int b = 0; b < B; b++)
                dfs_add_div(a + emb + (size_t)b * temb, a + emb + (size_t)b * temb,
                            W(r, u->class_table) + (size_t)labels[b] * temb, (size_t)temb, 1.0f);
        break;
    case DFS_CLASS_EMB_TIMESTEP:
        if (a) {
            for (int b = 0; b < B; b++) a[cls + b] = (float)labels[b]; /* torch: labels.float() */
            dfs_timestep_embedding(a + proj, a + cls, B, u->temb_in, cfg->flip_sin_to_cos, cfg->freq_shift);
        }
        linear(r, &u->class1, at(r, proj), at(r, hid), B);
        if (a) dfs_act_forward(a + hid, (size_t)B * temb, DFS_ACT_SILU);
        linear(r, &u->class2, at(r, hid), at(r, cls), B);
        if (a) dfs_add_div(a + emb, a + emb, a + cls, (size_t)B * temb, 1.0f);
        break;
    case DFS_CLASS_EMB_IDENTITY:
        if (a) dfs_add_div(a + emb, a + emb, class_vec, (size_t)B * temb, 1.0f);
        break;
    }
    /* Every resnet applies act_fn to emb before its projection: do it once. */
    if (a) {
        memcpy(a + tact, a + emb, sizeof(float) * (size_t)B * temb);
        dfs_act_forward(a + tact, (size_t)B * temb, cfg->act_fn);
    }
    r->top = proj;
    return tact;
}

static int pop_skip(ten *skips, int *n_skips, ten *out) {
    if (*n_skips == 0) return 0;
    *out = skips[--*n_skips];
    return 1;
}

static void forward(run *r, const float *x, int H, int W_, const float *t, const int64_t *labels,
                    const float *class_vec, float *out) {
    const dfs_unet *u = r->u;
    const dfs_unet_config *cfg = &u->cfg;
    const int n = cfg->n_blocks;
    const size_t temb_act = embedding(r, t, labels, class_vec);

    const float *xin = x;
    if (cfg->center_input_sample) {
        ten xc = push(r, cfg->in_channels, H, W_);
        if (r->arena) {
            float *d = A(r, xc);
            for (size_t i = 0; i < numel(r, xc); i++) d[i] = 2.0f * x[i] - 1.0f;
        }
        xin = A(r, xc);
    }
    ten skips[1 + DFS_UNET_MAX_BLOCKS * (DFS_UNET_MAX_LAYERS + 1)];
    int n_skips = 0;
    ten h = push(r, cfg->block_out_channels[0], H, W_);
    conv(r, &u->conv_in, xin, A(r, h), H, W_, 1, 1, 1, H, W_);
    skips[n_skips++] = h;

    for (int i = 0; i < n; i++) {
        const dfs_block *blk = &u->down[i];
        for (int l = 0; l < blk->n_layers; l++) {
            h = resnet(r, &blk->res[l], h, temb_act);
            if (blk->has_attn) attention(r, &blk->attn[l], h);
            skips[n_skips++] = h;
        }
        if (blk->sampler == DFS_SAMPLER_CONV) {
            /* padding 0 means diffusers pads one row/column at the bottom/right only */
            const int OH = h.H / 2, OW = h.W / 2;
            ten d = push(r, h.C, OH, OW);
            conv(r, &blk->sconv, A(r, h), A(r, d), h.H, h.W, 2, blk->pad, blk->pad, OH, OW);
            h = d;
            skips[n_skips++] = h;
        } else if (blk->sampler == DFS_SAMPLER_RESNET) {
            h = resnet(r, &blk->sres, h, temb_act);
            skips[n_skips++] = h;
        }
    }

    if (u->has_mid) {
        h = resnet(r, &u->mid_res[0], h, temb_act);
        if (u->mid_has_attn) attention(r, &u->mid_attn, h);
        h = resnet(r, &u->mid_res[1], h, temb_act);
    }

    for (int i = 0; i < n; i++) {
        const dfs_block *blk = &u->up[i];
        for (int l = 0; l < blk->n_layers; l++) {
            ten skip;
            if (!pop_skip(skips, &n_skips, &skip)) DFS_ASSERT(0);
            /* h can be freed after this layer if nothing sits above it */
            const size_t mark = h.off + ((numel(r, h) + 15) & ~(size_t)15) == r->top ? h.off : r->top;
            ten cat = push(r, h.C + skip.C, h.H, h.W);
            if (r->arena) dfs_concat_channels(A(r, cat), A(r, h), h.C, A(r, skip), skip.C, r->B, h.H * h.W);
            ten o = resnet(r, &blk->res[l], cat, temb_act);
            if (blk->has_attn) attention(r, &blk->attn[l], o);
            h = keep(r, mark, o);
        }
        if (blk->sampler != DFS_SAMPLER_NONE) {
            const size_t mark = h.off + ((numel(r, h) + 15) & ~(size_t)15) == r->top ? h.off : r->top;
            ten o;
            if (blk->sampler == DFS_SAMPLER_CONV) {
                ten up = push(r, h.C, 2 * h.H, 2 * h.W);
                if (r->arena) dfs_upsample2x_forward(A(r, up), A(r, h), r->B * h.C, h.H, h.W);
                o = push(r, h.C, up.H, up.W);
                conv(r, &blk->sconv, A(r, up), A(r, o), up.H, up.W, 1, 1, 1, up.H, up.W);
            } else {
                o = resnet(r, &blk->sres, h, temb_act);
            }
            h = keep(r, mark, o);
        }
    }

    ten hn = push(r, h.C, h.H, h.W);
    groupnorm(r, &u->norm_out, A(r, h), A(r, hn), h.H * h.W, DFS_ACT_SILU); /* conv_act is always SiLU */
    conv(r, &u->conv_out, A(r, hn), out, h.H, h.W, 1, 1, 1, h.H, h.W);
    if (cfg->time_embedding_type == DFS_TEMB_FOURIER && r->arena) {
        const size_t per = (size_t)cfg->out_channels * H * W_;
        for (int b = 0; b < r->B; b++)
            for (size_t i = 0; i < per; i++) out[(size_t)b * per + i] /= t[b];
    }
}

dfs_unet_plan dfs_unet_plan_forward(const dfs_unet *u, int B, int H, int W_) {
    run r = {u, NULL, NULL, B, 0, 0, 0.0};
    forward(&r, NULL, H, W_, NULL, NULL, NULL, NULL);
    dfs_unet_plan p = {r.peak, r.flops};
    return p;
}

void dfs_unet_forward(const dfs_unet *u, const float *P, float *arena, const float *x, int B, int H, int W_,
                      const float *t, const int64_t *labels, const float *class_vec, float *out) {
    DFS_ASSERT(arena != NULL);
    run r = {u, P, arena, B, 0, 0, 0.0};
    forward(&r, x, H, W_, t, labels, class_vec, out);
}
