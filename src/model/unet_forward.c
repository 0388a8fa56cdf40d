/* UNet2DModel's forward pass as a flat sequence of op calls on one activation arena, and in
 * training the same sequence recorded on a tape and run backwards.
 *
 * The same code plans and runs: in planning mode no op is called and only the arena's peak size,
 * the tape length and the FLOPs are counted, so the plan can never disagree with the run.
 *
 * Inference: the arena is a stack. A layer's temporaries are pushed above its inputs, and `keep`
 * moves the layer's output down over them when it is done. Skip connections stay on the stack
 * until the up path uses them.
 *
 * Training: nothing is popped (except pure scratch), every op appends a record to the tape, and
 * GroupNorm, activations and attention run unfused and out of place so the backward pass finds
 * each op's inputs. Gradients of activations live in a second arena with the same layout: the
 * gradient of the tensor at arena offset k is at offset k of the gradient arena. */
#include <string.h>

#include "model/unet.h"

typedef struct ten { size_t off; int C, H, W; } ten; /* (B, C, H, W) at arena + off */

typedef enum op_kind {
    OP_CONV,
    OP_GN,
    OP_ACT,
    OP_LIN,
    OP_BIAS,       /* x += t per channel, in place */
    OP_SCALESHIFT, /* y = x·(1 + scale) + shift */
    OP_ATTN,
    OP_ADDDIV,     /* y = (a + b) / f */
    OP_UP,
    OP_POOL,
    OP_CAT,
    OP_CLASS,      /* emb[b] += table[label[b]], in place */
    OP_AFFINE,     /* y = x·f + g (center_input_sample: 2x − 1) */
    OP_DIVT        /* y[b] /= t[b], in place (fourier) */
} op_kind;

struct dfs_tape_op {
    op_kind kind;
    size_t a, b, c, d; /* arena offsets: inputs, output, saved */
    size_t n;          /* element count, where one is needed */
    const void *layer; /* dfs_conv / dfs_norm / dfs_lin / dfs_attn */
    int C, H, W, OH, OW, stride, pad;
    dfs_act act;
    float f, g;
};

typedef struct run {
    const dfs_unet *u;
    const float *P;   /* parameters */
    float *arena;     /* NULL when planning */
    int B, train;
    size_t top, peak;
    double flops;
    dfs_tape_op *tape; /* training: (n_tape) records; NULL when planning */
    size_t n_tape;
    const float *t;    /* (B) timesteps */
    const int64_t *labels;
    float *prep;       /* inference: prepared conv weights (plan.prep_floats), or NULL */
    int prep_ready;    /* prep already holds them (else each conv fills its part first) */
    int bf16;          /* prep holds BF16 Winograd weights: those products run in BF16 */
    size_t prep_top;   /* where the next conv's prepared weights go (each conv's, in the order they run) */
} run;

static size_t numel(const run *r, ten t) { return (size_t)r->B * t.C * t.H * t.W; }

static size_t push_raw(run *r, size_t n) {
    size_t off = r->top;
    r->top += (n + 15) & ~(size_t)15; /* 64-byte aligned */
    if (r->top > r->peak) r->peak = r->top;
    return off;
}

static ten push(run *r, int C, int H, int W) {
    ten t = {0, C, H, W};
    t.off = push_raw(r, numel(r, t));
    return t;
}

/* Arena addresses; NULL while planning (no pointer arithmetic on NULL). */
static float *at(const run *r, size_t off) { return r->arena ? r->arena + off : NULL; }
static float *A(const run *r, ten t) { return at(r, t.off); }
static const float *W(const run *r, size_t off) { return r->P + off; }

/* Appends a tape record (training) and says whether the op should be computed now. */
static int record(run *r, const dfs_tape_op *op) {
    if (r->train) {
        if (r->tape) r->tape[r->n_tape] = *op;
        r->n_tape++;
    }
    return r->arena != NULL;
}

/* Inference: pops everything above `mark` except t, which moves down to mark. Training keeps all. */
static ten keep(run *r, size_t mark, ten t) {
    if (r->train) return t;
    if (r->arena && t.off != mark) memmove(r->arena + mark, A(r, t), numel(r, t) * sizeof(float));
    t.off = mark;
    r->top = mark + ((numel(r, t) + 15) & ~(size_t)15);
    return t;
}

/* Whether t lies wholly outside the n floats from mark. */
static int clear_of(const run *r, ten t, size_t mark, size_t n) {
    return t.off + numel(r, t) <= mark || t.off >= mark + n;
}

/* (a + b) / div as the block's output. In inference at mark (see keep): written straight there
 * when neither input lies in the way, else computed above and moved down. In training over b
 * (conv2's output, which nothing else reads: its gradient is then the sum's, divided in place). */
static ten add_div(run *r, ten a, ten b, float div, int onto_b);
static ten block_output(run *r, size_t mark, ten a, ten b, float div) {
    const size_t n = (numel(r, a) + 15) & ~(size_t)15;
    if (r->train) return add_div(r, a, b, div, 1);
    if (clear_of(r, a, mark, n) && clear_of(r, b, mark, n)) {
        r->top = mark;
        return add_div(r, a, b, div, 0);
    }
    return keep(r, mark, add_div(r, a, b, div, 0));
}

/* Frees temporaries above mark (inference only). */
static void release(run *r, size_t mark) {
    if (!r->train) r->top = mark;
}

/* A convolution into a new tensor; in inference also with the (B, out) rows at arena offset temb
 * added per image (NO_TEMB: none), and/or into *dst instead of a new tensor: stored there, or added
 * onto it when acc is set. */
#define NO_TEMB ((size_t)-1)
static ten conv_into(run *r, const dfs_conv *c, ten in, int stride, int pad, int OH, int OW, size_t temb, const ten *dst,
                     int acc) {
    DFS_ASSERT(!r->train || (temb == NO_TEMB && !dst));
    ten out = dst ? *dst : push(r, c->out, OH, OW);
    r->flops += 2.0 * r->B * c->out * OH * OW * (double)c->in * c->k * c->k;
    const size_t mark = r->top, ws = push_raw(r, dfs_conv2d_workspace(r->B, c->in, c->out, c->k, c->k, stride, OH, OW));
    r->top = mark; /* pure scratch */
    dfs_tape_op op = {OP_CONV, in.off, 0, out.off, 0, 0, c, in.C, in.H, in.W, OH, OW, stride, pad, DFS_ACT_NONE, 0, 0};
    const size_t n_prep = dfs_conv2d_prepared_floats(r->B, c->in, in.H, in.W, c->out, c->k, c->k, stride, pad, pad, OH, OW);
    const size_t prep_at = r->prep_top;
    r->prep_top += (n_prep + 15) & ~(size_t)15; /* 64-byte aligned */
    if (record(r, &op)) {
        float *prep = NULL;
        if (r->prep && n_prep) {
            prep = r->prep + prep_at;
            if (!r->prep_ready)
                dfs_conv2d_prepare(prep, W(r, c->w), r->B, c->in, in.H, in.W, c->out, c->k, c->k, stride, pad, pad, OH, OW,
                                   r->bf16);
        }
        dfs_conv2d_forward_prepared(A(r, out), at(r, ws), A(r, in), W(r, c->w), prep, W(r, c->b),
                                    temb == NO_TEMB ? NULL : at(r, temb), r->B, c->in, in.H, in.W, c->out, c->k, c->k, stride,
                                    pad, pad, OH, OW, prep && r->bf16, acc);
    }
    return out;
}

static ten conv(run *r, const dfs_conv *c, ten in, int stride, int pad, int OH, int OW) {
    return conv_into(r, c, in, stride, pad, OH, OW, NO_TEMB, NULL, 0);
}

static ten act(run *r, ten in, dfs_act a) {
    ten out = push(r, in.C, in.H, in.W);
    dfs_tape_op op = {OP_ACT, in.off, 0, out.off, 0, numel(r, in), NULL, 0, 0, 0, 0, 0, 0, 0, a, 0, 0};
    if (record(r, &op)) {
        dfs_act_apply(A(r, out), A(r, in), numel(r, in), a);
    }
    return out;
}

/* GroupNorm followed by an activation: one op, except in training for activations other than
 * SiLU (whose gradient the GroupNorm backward computes itself, from its input, so the normalised
 * tensor is never stored), which follow as a recorded op of their own. In inference, when the
 * caller no longer needs the input (`consume`), in place: no new memory is written, and an
 * activation's worth less of the stack. */
static ten groupnorm(run *r, const dfs_norm *n, ten in, dfs_act a, int consume) {
    ten out = consume && !r->train ? in : push(r, in.C, in.H, in.W);
    const dfs_act fused = r->train && a != DFS_ACT_SILU ? DFS_ACT_NONE : a;
    const size_t stats = r->train ? push_raw(r, 4 * (size_t)r->B * n->G) : 0; /* (B·G, 2) doubles */
    dfs_tape_op op = {OP_GN, in.off, 0, out.off, stats, 0, n, in.C, in.H, in.W, 0, 0, 0, 0, fused, 0, 0};
    if (record(r, &op))
        dfs_groupnorm_forward(A(r, out), A(r, in), W(r, n->g), W(r, n->b), r->B, n->C, in.H * in.W, n->G, n->eps, fused,
                              r->train ? (double *)at(r, stats) : NULL);
    if (fused != a) out = act(r, out, a);
    return out;
}

/* Linear layer on (rows, in) → (rows, out) raw buffers. */
static size_t linear(run *r, const dfs_lin *l, size_t in, int rows) {
    size_t out = push_raw(r, (size_t)rows * l->out);
    r->flops += 2.0 * rows * l->in * l->out;
    dfs_tape_op op = {OP_LIN, in, 0, out, 0, 0, l, rows, 0, 0, 0, 0, 0, 0, DFS_ACT_NONE, 0, 0};
    if (record(r, &op)) dfs_linear_forward(at(r, out), at(r, in), W(r, l->w), W(r, l->b), rows, l->in, l->out);
    return out;
}

static ten add_div(run *r, ten a, ten b, float div, int onto_b) {
    ten out = onto_b ? b : push(r, a.C, a.H, a.W);
    dfs_tape_op op = {OP_ADDDIV, a.off, b.off, out.off, 0, numel(r, a), NULL, 0, 0, 0, 0, 0, 0, 0, DFS_ACT_NONE, div, 0};
    if (record(r, &op)) dfs_add_div(A(r, out), A(r, a), A(r, b), numel(r, a), div);
    return out;
}

static ten resample(run *r, ten in, int up) {
    ten out = up ? push(r, in.C, 2 * in.H, 2 * in.W) : push(r, in.C, in.H / 2, in.W / 2);
    dfs_tape_op op = {up ? OP_UP : OP_POOL, in.off, 0, out.off, 0, 0, NULL, in.C, in.H, in.W, 0, 0, 0, 0, DFS_ACT_NONE, 0, 0};
    if (record(r, &op)) {
        if (up) dfs_upsample2x_forward(A(r, out), A(r, in), r->B * in.C, in.H, in.W);
        else dfs_avgpool2x_forward(A(r, out), A(r, in), r->B * in.C, in.H, in.W);
    }
    return out;
}

/* ResnetBlock2D. temb_act: act_fn(emb), (B, temb). In inference the time embedding is added by
 * conv1 as it stores its output, and a block with a shortcut convolution and an output scale of 1
 * computes the shortcut first, at the block's place on the stack (or at out_at, free room below x
 * the caller gives: NO_OUT for none), and lets conv2 add onto it (the same sums as adding the two
 * afterwards); then, if x is the caller's temporary (x_temp: the up path's concatenation), nothing
 * reads x after norm1, which runs in place. */
#define NO_OUT ((size_t)-1)
static ten resnet(run *r, const dfs_resnet *p, ten x, size_t temb_act, int x_temp, size_t out_at) {
    const dfs_unet_config *cfg = &r->u->cfg;
    const size_t mark = r->top;
    const int onto = !r->train && p->has_shortcut && p->out_scale == 1.0f && !p->up && !p->down;
    const int temb_in_conv = !r->train && !cfg->scale_shift;
    const ten at_out = {out_at, p->shortcut.out, x.H, x.W};
    const ten sc = !onto ? x
                   : out_at != NO_OUT ? conv_into(r, &p->shortcut, x, 1, 0, x.H, x.W, NO_TEMB, &at_out, 0)
                                      : conv(r, &p->shortcut, x, 1, 0, x.H, x.W);
    ten h = groupnorm(r, &p->norm1, x, cfg->act_fn, onto && x_temp);
    ten xs = x;
    if (p->up || p->down) {
        xs = resample(r, x, p->up);
        h = resample(r, h, p->up);
    }
    size_t t = temb_in_conv ? linear(r, &p->temb, temb_act, r->B) : NO_TEMB;
    ten c1 = conv_into(r, &p->conv1, h, 1, 1, h.H, h.W, t, NULL, 0);
    if (!temb_in_conv) t = linear(r, &p->temb, temb_act, r->B);
    if (cfg->scale_shift) {
        c1 = groupnorm(r, &p->norm2, c1, DFS_ACT_NONE, 1);
        ten ss = r->train ? push(r, c1.C, c1.H, c1.W) : c1;
        dfs_tape_op op = {OP_SCALESHIFT, c1.off, t, ss.off, 0, 0, NULL, c1.C, c1.H, c1.W, 0, 0, 0, 0, DFS_ACT_NONE, 0, 0};
        if (record(r, &op)) {
            if (ss.off != c1.off) memcpy(A(r, ss), A(r, c1), numel(r, c1) * sizeof(float));
            dfs_scale_shift(A(r, ss), at(r, t), r->B, c1.C, c1.H * c1.W, r->train ? DFS_ACT_NONE : cfg->act_fn);
        }
        c1 = r->train ? act(r, ss, cfg->act_fn) : ss;
    } else {
        dfs_tape_op op = {OP_BIAS, c1.off, t, c1.off, 0, 0, NULL, c1.C, c1.H, c1.W, 0, 0, 0, 0, DFS_ACT_NONE, 0, 0};
        if (!temb_in_conv && record(r, &op)) dfs_add_channel_bias(A(r, c1), at(r, t), r->B, c1.C, c1.H * c1.W);
        c1 = groupnorm(r, &p->norm2, c1, cfg->act_fn, 1);
    }
    if (onto) {
        conv_into(r, &p->conv2, c1, 1, 1, c1.H, c1.W, NO_TEMB, &sc, 1);
        release(r, sc.off + ((numel(r, sc) + 15) & ~(size_t)15));
        return sc;
    }
    ten c2 = conv(r, &p->conv2, c1, 1, 1, c1.H, c1.W);
    if (p->has_shortcut) xs = conv(r, &p->shortcut, xs, 1, 0, xs.H, xs.W);
    return block_output(r, mark, xs, c2, p->out_scale);
}

/* GroupNorm written as token rows (B, HW, C), for attention (inference only). */
static ten groupnorm_tokens(run *r, const dfs_norm *n, ten in) {
    ten out = push(r, in.C, in.H, in.W);
    const size_t ws = push_raw(r, dfs_groupnorm_tokens_workspace(n->C, in.H * in.W, n->G));
    if (r->arena)
        dfs_groupnorm_forward_tokens(A(r, out), at(r, ws), A(r, in), W(r, n->g), W(r, n->b), r->B, n->C, in.H * in.W, n->G,
                                     n->eps);
    r->top = ws;
    return out;
}

/* Attention: in place on x in inference; a new tensor in training. Inference of batches of small
 * images normalises straight into token rows (dfs_attention_forward_tokens). */
static ten attention(run *r, const dfs_attn *p, ten x) {
    const size_t mark = r->top;
    const int HW = x.H * x.W;
    const int tokens = !r->train && p->has_norm && dfs_attention_takes_tokens(r->B, HW);
    ten xn = tokens ? groupnorm_tokens(r, &p->norm, x) : p->has_norm ? groupnorm(r, &p->norm, x, DFS_ACT_NONE, 0) : x;
    ten out = r->train ? push(r, x.C, x.H, x.W) : x;
    size_t saved = r->train ? push_raw(r, dfs_attention_saved_size(r->B, x.C, HW, p->heads, p->dh)) : 0;
    const size_t scratch_mark = r->top;
    const size_t scratch = push_raw(r, dfs_attention_scratch(r->B, x.C, HW, p->heads, p->dh));
    r->top = scratch_mark;
    r->flops += 2.0 * r->B * HW * ((double)x.C * p->heads * p->dh * 4 + 2.0 * HW * p->heads * p->dh);
    dfs_tape_op op = {OP_ATTN, xn.off, x.off, out.off, saved, 0, p, x.C, x.H, x.W, 0, 0, 0, 0, DFS_ACT_NONE, 0, 0};
    if (record(r, &op)) {
        const float *P = r->P;
        if (r->train)
            dfs_attention_forward_train(A(r, out), at(r, saved), at(r, scratch), A(r, xn), A(r, x), P + p->q.w, P + p->q.b,
                                        P + p->k.w, P + p->k.b, P + p->v.w, P + p->v.b, P + p->o.w, P + p->o.b, r->B,
                                        x.C, HW, p->heads, p->dh, p->rescale);
        else
            (tokens ? dfs_attention_forward_tokens : dfs_attention_forward)(
                A(r, out), at(r, scratch), A(r, xn), A(r, x), P + p->q.w, P + p->q.b, P + p->k.w, P + p->k.b, P + p->v.w,
                P + p->v.b, P + p->o.w, P + p->o.b, r->B, x.C, HW, p->heads, p->dh, p->rescale);
    }
    release(r, mark);
    return out;
}

/* The timestep (and class) embedding; returns the offset of act_fn(emb), (B, temb). */
static size_t embedding(run *r, const float *class_vec) {
    const dfs_unet *u = r->u;
    const dfs_unet_config *cfg = &u->cfg;
    const int B = r->B, temb = cfg->time_embedding_dim;
    const size_t mark = r->top;
    const size_t tact = push_raw(r, (size_t)B * temb); /* the result; in inference the rest is popped */
    const size_t proj = push_raw(r, (size_t)B * u->temb_in);
    float *a = r->arena;
    if (a) {
        if (cfg->time_embedding_type == DFS_TEMB_FOURIER)
            dfs_fourier_embedding(a + proj, r->t, B, W(r, u->fourier_w), cfg->block_out_channels[0]);
        else
            dfs_timestep_embedding(a + proj, r->t, B, u->temb_in, cfg->flip_sin_to_cos, cfg->freq_shift);
    }
    ten h1 = {linear(r, &u->temb1, proj, B), temb, 1, 1};
    ten emb = {linear(r, &u->temb2, act(r, h1, DFS_ACT_SILU).off, B), temb, 1, 1};
    switch (cfg->class_embed_type) {
    case DFS_CLASS_EMB_NONE: break;
    case DFS_CLASS_EMB_TABLE: {
        dfs_tape_op op = {OP_CLASS, emb.off, 0, emb.off, 0, 0, NULL, temb, 0, 0, 0, 0, 0, 0, DFS_ACT_NONE, 0, 0};
        if (record(r, &op))
            for (int b = 0; b < B; b++)
                dfs_add_div(a + emb.off + (size_t)b * temb, a + emb.off + (size_t)b * temb,
                            W(r, u->class_table) + (size_t)r->labels[b] * temb, (size_t)temb, 1.0f);
        break;
    }
    case DFS_CLASS_EMB_TIMESTEP: {
        const size_t lab = push_raw(r, (size_t)B), cproj = push_raw(r, (size_t)B * u->temb_in);
        if (a) {
            for (int b = 0; b < B; b++) a[lab + b] = (float)r->labels[b]; /* torch: labels.float() */
            dfs_timestep_embedding(a + cproj, a + lab, B, u->temb_in, cfg->flip_sin_to_cos, cfg->freq_shift);
        }
        ten c1 = {linear(r, &u->class1, cproj, B), temb, 1, 1};
        ten c2 = {linear(r, &u->class2, act(r, c1, DFS_ACT_SILU).off, B), temb, 1, 1};
        emb = add_div(r, emb, c2, 1.0f, 0);
        break;
    }
    case DFS_CLASS_EMB_IDENTITY: {
        const size_t cv = push_raw(r, (size_t)B * temb);
        if (a) memcpy(a + cv, class_vec, sizeof(float) * (size_t)B * temb);
        ten cvt = {cv, temb, 1, 1};
        emb = add_div(r, emb, cvt, 1.0f, 0);
        break;
    }
    }
    /* Every resnet applies act_fn to emb before its projection: do it once. */
    ten e = act(r, emb, cfg->act_fn);
    if (r->train) return e.off;
    if (a) memcpy(a + tact, a + e.off, sizeof(float) * (size_t)B * temb);
    r->top = mark + (((size_t)B * temb + 15) & ~(size_t)15);
    return tact;
}

static ten forward(run *r, const float *x, int H, int W_, const float *class_vec, size_t *in_off) {
    const dfs_unet *u = r->u;
    const dfs_unet_config *cfg = &u->cfg;
    const int n = cfg->n_blocks;
    const size_t temb_act = embedding(r, class_vec);

    ten xin = push(r, cfg->in_channels, H, W_);
    if (r->arena) memcpy(A(r, xin), x, numel(r, xin) * sizeof(float));
    if (in_off) *in_off = xin.off;
    if (cfg->center_input_sample) {
        ten xc = push(r, cfg->in_channels, H, W_);
        dfs_tape_op op = {OP_AFFINE, xin.off, 0, xc.off, 0, numel(r, xin), NULL, 0, 0, 0, 0, 0, 0, 0, DFS_ACT_NONE, 2.0f, -1.0f};
        if (record(r, &op)) {
            float *d = A(r, xc);
            const float *s = A(r, xin);
            for (size_t i = 0; i < numel(r, xc); i++) d[i] = 2.0f * s[i] - 1.0f;
        }
        xin = xc;
    }
    ten skips[1 + DFS_UNET_MAX_BLOCKS * (DFS_UNET_MAX_LAYERS + 1)];
    int n_skips = 0;
    ten h = conv(r, &u->conv_in, xin, 1, 1, H, W_);
    skips[n_skips++] = h;

    for (int i = 0; i < n; i++) {
        const dfs_block *blk = &u->down[i];
        for (int l = 0; l < blk->n_layers; l++) {
            h = resnet(r, &blk->res[l], h, temb_act, 0, NO_OUT);
            if (blk->has_attn) h = attention(r, &blk->attn[l], h);
            skips[n_skips++] = h;
        }
        if (blk->sampler == DFS_SAMPLER_CONV) {
            /* padding 0: diffusers pads one row and column at the bottom/right only, which is
             * what a stride-2 conv with no top/left padding and an H/2 x W/2 output reads */
            h = conv(r, &blk->sconv, h, 2, blk->pad, h.H / 2, h.W / 2);
            skips[n_skips++] = h;
        } else if (blk->sampler == DFS_SAMPLER_RESNET) {
            h = resnet(r, &blk->sres, h, temb_act, 0, NO_OUT);
            skips[n_skips++] = h;
        }
    }

    if (u->has_mid) {
        h = resnet(r, &u->mid_res[0], h, temb_act, 0, NO_OUT);
        if (u->mid_has_attn) h = attention(r, &u->mid_attn, h);
        h = resnet(r, &u->mid_res[1], h, temb_act, 0, NO_OUT);
    }

    for (int i = 0; i < n; i++) {
        const dfs_block *blk = &u->up[i];
        for (int l = 0; l < blk->n_layers; l++) {
            DFS_ASSERT(n_skips > 0);
            ten skip = skips[--n_skips];
            /* h can be freed after this layer if nothing sits above it */
            const size_t mark = h.off + ((numel(r, h) + 15) & ~(size_t)15) == r->top ? h.off : r->top;
            ten cat = push(r, h.C + skip.C, h.H, h.W);
            dfs_tape_op op = {OP_CAT, h.off, skip.off, cat.off, 0, (size_t)skip.C, NULL, h.C, h.H, h.W, 0, 0, 0, 0, DFS_ACT_NONE, 0, 0};
            if (record(r, &op)) dfs_concat_channels(A(r, cat), A(r, h), h.C, A(r, skip), skip.C, r->B, h.H * h.W);
            /* h, copied, is dead: in inference the layer's output takes its place when it fits
             * below cat (no move down afterwards) */
            const dfs_resnet *res = &blk->res[l];
            const ten o_shape = {0, res->conv2.out, h.H, h.W};
            const size_t out_at = !r->train && mark + numel(r, o_shape) <= cat.off ? mark : NO_OUT;
            ten o = resnet(r, res, cat, temb_act, 1, out_at);
            if (blk->has_attn) o = attention(r, &blk->attn[l], o);
            h = keep(r, mark, o);
        }
        if (blk->sampler != DFS_SAMPLER_NONE) {
            const size_t mark = h.off + ((numel(r, h) + 15) & ~(size_t)15) == r->top ? h.off : r->top;
            ten o;
            if (blk->sampler == DFS_SAMPLER_CONV) {
                /* in inference, when h is on top and the output needs at least its room, the
                 * upsampled h goes above the output's room so that the convolution writes at mark
                 * (no move down afterwards); h is read before any of its room is written */
                const ten o_at = {mark, blk->sconv.out, 2 * h.H, 2 * h.W};
                const size_t o_end = mark + ((numel(r, o_at) + 15) & ~(size_t)15);
                const int in_place = !r->train && mark == h.off && o_end >= r->top;
                if (in_place) r->top = o_end;
                ten up = resample(r, h, 1);
                o = in_place ? conv_into(r, &blk->sconv, up, 1, 1, up.H, up.W, NO_TEMB, &o_at, 0)
                             : conv(r, &blk->sconv, up, 1, 1, up.H, up.W);
            } else {
                o = resnet(r, &blk->sres, h, temb_act, 0, NO_OUT);
            }
            h = keep(r, mark, o);
        }
    }

    ten hn = groupnorm(r, &u->norm_out, h, DFS_ACT_SILU, 1); /* conv_act is always SiLU */
    ten out = conv(r, &u->conv_out, hn, 1, 1, h.H, h.W);
    if (cfg->time_embedding_type == DFS_TEMB_FOURIER) {
        dfs_tape_op op = {OP_DIVT, out.off, 0, out.off, 0, 0, NULL, out.C, out.H, out.W, 0, 0, 0, 0, DFS_ACT_NONE, 0, 0};
        if (record(r, &op)) {
            const size_t per = (size_t)out.C * out.H * out.W;
            float *o = A(r, out);
            for (int b = 0; b < r->B; b++)
                for (size_t i = 0; i < per; i++) o[(size_t)b * per + i] /= r->t[b];
        }
    }
    return out;
}

dfs_unet_plan dfs_unet_plan_forward(const dfs_unet *u, int B, int H, int W_) {
    run r = {u, NULL, NULL, B, 0, 0, 0, 0.0, NULL, 0, NULL, NULL, NULL, 0, 0, 0};
    forward(&r, NULL, H, W_, NULL, NULL);
    dfs_unet_plan p = {r.peak, r.flops, 0, r.prep_top};
    return p;
}

void dfs_unet_forward(const dfs_unet *u, const float *P, float *arena, float *prep, int prep_ready, int bf16,
                      const float *x, int B, int H, int W_, const float *t, const int64_t *labels, const float *class_vec,
                      float *out) {
    DFS_ASSERT(arena != NULL);
    run r = {u, P, arena, B, 0, 0, 0, 0.0, NULL, 0, t, labels, prep, prep_ready, prep && bf16, 0};
    ten o = forward(&r, x, H, W_, class_vec, NULL);
    memcpy(out, A(&r, o), numel(&r, o) * sizeof(float));
}

dfs_unet_plan dfs_unet_plan_train(const dfs_unet *u, int B, int H, int W_) {
    run r = {u, NULL, NULL, B, 1, 0, 0, 0.0, NULL, 0, NULL, NULL, NULL, 0, 0, 0};
    forward(&r, NULL, H, W_, NULL, NULL);
    dfs_unet_plan p = {r.peak, r.flops, r.n_tape, 0};
    return p;
}

dfs_unet_train_io dfs_unet_forward_train(const dfs_unet *u, const float *P, float *arena, dfs_tape_op *tape,
                                         const float *x, int B, int H, int W_, const float *t, const int64_t *labels,
                                         const float *class_vec) {
    run r = {u, P, arena, B, 1, 0, 0, 0.0, tape, 0, t, labels, NULL, 0, 0, 0};
    dfs_unet_train_io io = {0, 0};
    io.out_off = forward(&r, x, H, W_, class_vec, &io.in_off).off;
    return io;
}

size_t dfs_unet_backward_scratch(const dfs_unet *u, const dfs_tape_op *tape, size_t n_tape, int B) {
    size_t need = 0;
    for (size_t i = 0; i < n_tape; i++) {
        const dfs_tape_op *op = &tape[i];
        size_t s = 0;
        if (op->kind == OP_CONV) {
            const dfs_conv *c = op->layer;
            s = dfs_conv2d_backward_workspace(B, c->in, c->out, c->k, c->k, op->stride, op->OH, op->OW);
        } else if (op->kind == OP_GN) {
            s = dfs_groupnorm_backward_workspace(B, ((const dfs_norm *)op->layer)->C, ((const dfs_norm *)op->layer)->G);
        } else if (op->kind == OP_ATTN) {
            const dfs_attn *p = op->layer;
            s = dfs_attention_backward_scratch(B, op->C, op->H * op->W, p->heads, p->dh);
        }
        if (s > need) need = s;
    }
    return need;
}

/* The ranges of the gradient arena an op reads or adds to in the backward pass: its output's
 * gradient, then its inputs'. Returns how many (an input done in place shares its output's). */
static int op_ranges(const dfs_tape_op *op, int B, size_t off[3], size_t len[3]) {
    const size_t img = (size_t)B * op->C * op->H * op->W;
    int k = 0;
#define RANGE(o, n) (off[k] = (o), len[k] = (n), k++)
    switch (op->kind) {
    case OP_CONV: {
        const dfs_conv *c = op->layer;
        RANGE(op->c, (size_t)B * c->out * op->OH * op->OW);
        RANGE(op->a, img);
        break;
    }
    case OP_GN: RANGE(op->c, img), RANGE(op->a, img); break;
    case OP_ACT: case OP_ADDDIV: case OP_AFFINE:
        RANGE(op->c, op->n), RANGE(op->a, op->n);
        if (op->kind == OP_ADDDIV) RANGE(op->b, op->n);
        break;
    case OP_LIN: {
        const dfs_lin *l = op->layer;
        RANGE(op->c, (size_t)op->C * l->out), RANGE(op->a, (size_t)op->C * l->in);
        break;
    }
    case OP_BIAS: RANGE(op->c, img), RANGE(op->b, (size_t)B * op->C); break;
    case OP_SCALESHIFT: RANGE(op->c, img), RANGE(op->a, img), RANGE(op->b, (size_t)B * 2 * op->C); break;
    case OP_ATTN: RANGE(op->c, img), RANGE(op->a, img), RANGE(op->b, img); break;
    case OP_UP: RANGE(op->c, 4 * img), RANGE(op->a, img); break;
    case OP_POOL: RANGE(op->c, img / 4), RANGE(op->a, img); break;
    case OP_CAT:
        RANGE(op->c, img + (size_t)B * op->n * op->H * op->W), RANGE(op->a, img);
        RANGE(op->b, (size_t)B * op->n * op->H * op->W);
        break;
    case OP_CLASS: RANGE(op->c, (size_t)B * op->C); break;
    case OP_DIVT: RANGE(op->c, img); break;
    }
#undef RANGE
    return k;
}

/* Whether garena[off ...] already holds a gradient when op i runs: the output's, or a range of an
 * op later on the tape (run before it). */
static int initialised(const dfs_tape_op *tape, size_t n_tape, size_t i, size_t off, size_t out_off, int B) {
    if (off == out_off) return 1;
    for (size_t j = i + 1; j < n_tape; j++) {
        size_t o[3], l[3];
        const int k = op_ranges(&tape[j], B, o, l);
        for (int q = 0; q < k; q++)
            if (o[q] == off) return 1;
    }
    return 0;
}

void dfs_unet_backward(const dfs_unet *u, const float *P, float *G, const float *arena, float *garena,
                       dfs_unet_train_io io, int input_grad,
                       const dfs_tape_op *tape, size_t n_tape, float *scratch, int B, const float *t,
                       const int64_t *labels) {
    const float *a = arena;
    float *g = garena;
    for (size_t i = n_tape; i-- > 0;) {
        const dfs_tape_op *op = &tape[i];
        const size_t HW = (size_t)op->H * op->W;
        /* the first op that touches a gradient stores it, or (for the ops that only add) zeroes it
         * just before, while it is about to be in cache anyway, instead of the whole arena up front */
        size_t off[3], len[3];
        int fresh[3] = {0, 0, 0}; /* not yet holding a gradient */
        const int k = op_ranges(op, B, off, len);
        for (int q = 0; q < k; q++) {
            int done = initialised(tape, n_tape, i, off[q], io.out_off, B);
            for (int p = 0; p < q; p++) done |= off[p] == off[q];
            fresh[q] = !done;
            /* convolutions, GroupNorm, activations, sums and concatenations store their inputs'
             * gradients instead of adding them (the same values: 0 + x is x) */
            const int stores = (q == 1 && (op->kind == OP_CONV || op->kind == OP_GN || op->kind == OP_ACT)) ||
                               (q >= 1 && (op->kind == OP_ADDDIV || op->kind == OP_CAT));
            if (!done && !stores) dfs_zero(g + off[q], len[q]);
        }
        switch (op->kind) {
        case OP_CONV: {
            const dfs_conv *c = op->layer;
            float *dinp = !input_grad && op->a == io.in_off ? NULL : g + op->a;
            dfs_conv2d_backward(dinp, G + c->w, G + c->b, scratch, g + op->c, a + op->a, P + c->w, B, c->in, op->H, op->W,
                                c->out, c->k, c->k, op->stride, op->pad, op->pad, op->OH, op->OW, !fresh[1]);
            break;
        }
        case OP_GN: {
            const dfs_norm *n = op->layer;
            dfs_groupnorm_backward(g + op->a, G + n->g, G + n->b, scratch, g + op->c, a + op->a, P + n->g, P + n->b,
                                   (const double *)(a + op->d), B, n->C, (int)HW, n->G, n->eps, op->act, !fresh[1]);
            break;
        }
        case OP_ACT: dfs_act_backward(g + op->a, g + op->c, a + op->a, op->n, op->act, !fresh[1]); break;
        case OP_LIN: {
            const dfs_lin *l = op->layer;
            dfs_linear_backward(g + op->a, G + l->w, G + l->b, g + op->c, a + op->a, P + l->w, op->C, l->in, l->out);
            break;
        }
        case OP_BIAS: dfs_channel_sum_backward(g + op->b, g + op->c, B, op->C, (int)HW); break;
        case OP_SCALESHIFT:
            dfs_scale_shift_backward(g + op->a, g + op->b, g + op->c, a + op->a, a + op->b, B, op->C, (int)HW);
            break;
        case OP_ATTN: {
            const dfs_attn *p = op->layer;
            dfs_attn_grads gr = {G + p->q.w, G + p->q.b, G + p->k.w, G + p->k.b,
                                 G + p->v.w, G + p->v.b, G + p->o.w, G + p->o.b};
            dfs_attention_backward(g + op->a, g + op->b, &gr, scratch, g + op->c, a + op->d, a + op->a, P + p->q.w,
                                   P + p->k.w, P + p->v.w, P + p->o.w, B, op->C, (int)HW, p->heads, p->dh, p->rescale);
            break;
        }
        case OP_ADDDIV: {
            const float *go = g + op->c, div = op->f;
            float *ga = g + op->a, *gb = g + op->b;
            /* store instead of add; also where the sum overwrote b (training): b's gradient is then
             * go / div in place of go, each element read before it is written */
            const int sa = fresh[1], sb = fresh[2] || gb == go;
            DFS_ASSERT(ga != gb); /* the network never adds a tensor to itself (the loop assumes it) */
#pragma omp parallel for simd schedule(static)
            for (size_t k = 0; k < op->n; k++) {
                const float d = div == 1.0f ? go[k] : go[k] / div; /* x / 1 is x: no divisions */
                ga[k] = (sa ? 0.0f : ga[k]) + d;
                gb[k] = (sb ? 0.0f : gb[k]) + d;
            }
            break;
        }
        case OP_UP: dfs_upsample2x_backward(g + op->a, g + op->c, B * op->C, op->H, op->W); break;
        case OP_POOL: dfs_avgpool2x_backward(g + op->a, g + op->c, B * op->C, op->H, op->W); break;
        case OP_CAT: {
            const size_t na = (size_t)op->C * HW, nb = op->n * HW; /* n: the skip's channels */
#pragma omp parallel for schedule(static)
            for (int b = 0; b < B; b++) {
                const float *gc = g + op->c + (size_t)b * (na + nb);
                float *ga = g + op->a + (size_t)b * na, *gb = g + op->b + (size_t)b * nb;
#pragma omp simd
                for (size_t k = 0; k < na; k++) ga[k] = (fresh[1] ? 0.0f : ga[k]) + gc[k];
#pragma omp simd
                for (size_t k = 0; k < nb; k++) gb[k] = (fresh[2] ? 0.0f : gb[k]) + gc[na + k];
            }
            break;
        }
        case OP_CLASS: {
            const int temb = op->C;
            /* in image order, so repeated labels sum the same way every time */
            for (int b = 0; b < B; b++) {
                float *row = G + u->class_table + (size_t)labels[b] * temb;
                const float *ge = g + op->c + (size_t)b * temb;
                for (int k = 0; k < temb; k++) row[k] += ge[k];
            }
            break;
        }
        case OP_AFFINE:
            for (size_t k = 0; k < op->n; k++) g[op->a + k] += g[op->c + k] * op->f;
            break;
        case OP_DIVT: {
            const size_t per = (size_t)op->C * HW;
            for (int b = 0; b < B; b++)
                for (size_t k = 0; k < per; k++) g[op->c + (size_t)b * per + k] /= t[b];
            break;
        }
        }
    }
}

size_t dfs_unet_tape_op_size(void) { return sizeof(dfs_tape_op); }
