/* Every op's backward against central finite differences of the naive forward (src/ops/ref),
 * whose sums run in double: L = Σ g ⊙ f(x) for a fixed random g, and dL/dx_i ≈ (L(x+h) − L(x−h))/2h
 * at a sample of positions of every input and parameter. */
#include <string.h>

#include "core/internal.h"
#include "ops/ops.h"
#include "ops/ref/ref.h"
#include "test.h"

static unsigned long long rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / 8388608.0) - 1.0);
}
static float *rand_buf(size_t n, float scale) {
    float *p = dfs_malloc(n * sizeof(float) + 64);
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}
static float *zeros(size_t n) { return dfs_calloc(n + 16, sizeof(float)); }

typedef double (*loss_fn)(void *st);

/* Compares the analytic gradient `grad` of buffer x (n values) with finite differences of f at
 * up to 24 positions. */
static void check_grad(const char *what, loss_fn f, void *st, float *x, const float *grad, size_t n, float h) {
    double worst = 0, scale = 1e-3;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(grad[i]));
    size_t step = n > 24 ? n / 24 : 1;
    for (size_t i = (size_t)(frand() * 0.5f + 0.5f) % step; i < n; i += step) {
        const float old = x[i];
        const float xp = old + h, xm = old - h;
        x[i] = xp;
        const double lp = f(st);
        x[i] = xm;
        const double lm = f(st);
        x[i] = old;
        const double fd = (lp - lm) / ((double)xp - (double)xm);
        worst = fmax(worst, fabs(fd - grad[i]) / scale);
    }
    if (!TEST_CHECK(worst < 2e-3)) fprintf(stderr, "  %s: worst relative gradient error %.3g\n", what, worst);
}

static double dot(const float *g, const float *y, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * y[i];
    return s;
}

/* ---- conv2d ---- */
typedef struct conv_st {
    int B, C, H, W, OC, K, stride, pad, OH, OW;
    float *x, *w, *b, *g, *y;
} conv_st;

static double conv_loss(void *p) {
    conv_st *s = p;
    dfs_conv2d_forward_ref(s->y, s->x, s->w, s->b, s->B, s->C, s->H, s->W, s->OC, s->K, s->K, s->stride, s->pad, s->pad,
                           s->OH, s->OW);
    return dot(s->g, s->y, (size_t)s->B * s->OC * s->OH * s->OW);
}

static void test_conv(int B, int C, int H, int W, int OC, int K, int stride, int pad) {
    conv_st s = {B, C, H, W, OC, K, stride, pad, 0, 0, NULL, NULL, NULL, NULL, NULL};
    const int pad_b = pad == 0 && stride == 2 ? 1 : pad;
    s.OH = (H + pad + pad_b - K) / stride + 1;
    s.OW = (W + pad + pad_b - K) / stride + 1;
    const size_t nx = (size_t)B * C * H * W, nw = (size_t)OC * C * K * K, ny = (size_t)B * OC * s.OH * s.OW;
    s.x = rand_buf(nx, 1);
    s.w = rand_buf(nw, 0.5f);
    s.b = rand_buf(OC, 1);
    s.g = rand_buf(ny, 1);
    s.y = zeros(ny);
    float *dx = zeros(nx), *dw = zeros(nw), *db = zeros(OC);
    dfs_ops_set_threads(2);
    /* scratch starts as NaN: a kernel that reads scratch it did not write shows in the results */
    const size_t nws = dfs_conv2d_backward_workspace(B, C, OC, K, K, stride, s.OH, s.OW);
    float *ws = zeros(nws);
    for (size_t i = 0; i < nws; i++) ws[i] = NAN;
    dfs_conv2d_backward(dx, dw, db, ws, s.g, s.x, s.w, B, C, H, W, OC, K, K, stride, pad, pad, s.OH, s.OW, 1);
    check_grad("conv dx", conv_loss, &s, s.x, dx, nx, 1e-2f);
    check_grad("conv dw", conv_loss, &s, s.w, dw, nw, 1e-2f);
    check_grad("conv db", conv_loss, &s, s.b, db, OC, 1e-2f);
    /* every element of dx and dw against sums in double */
    double *rx = dfs_calloc(nx, sizeof(double)), *rw = dfs_calloc(nw, sizeof(double)), ex = 0, ew = 0, mx = 1, mw = 1;
    for (int b = 0; b < B; b++)
        for (int oc = 0; oc < OC; oc++)
            for (int oy = 0; oy < s.OH; oy++)
                for (int ox = 0; ox < s.OW; ox++) {
                    const double gv = s.g[(((size_t)b * OC + oc) * s.OH + oy) * s.OW + ox];
                    for (int c = 0; c < C; c++)
                        for (int ky = 0; ky < K; ky++)
                            for (int kx = 0; kx < K; kx++) {
                                const int iy = oy * stride + ky - pad, ix = ox * stride + kx - pad;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                const size_t xi = (((size_t)b * C + c) * H + iy) * W + ix, wi = (((size_t)oc * C + c) * K + ky) * K + kx;
                                rx[xi] += gv * s.w[wi];
                                rw[wi] += gv * s.x[xi];
                            }
                }
    for (size_t i = 0; i < nx; i++) ex = fmax(ex, fabs(dx[i] - rx[i])), mx = fmax(mx, fabs(rx[i]));
    for (size_t i = 0; i < nw; i++) ew = fmax(ew, fabs(dw[i] - rw[i])), mw = fmax(mw, fabs(rw[i]));
    if (!TEST_CHECK(ex / mx < 1e-5 && ew / mw < 1e-5))
        fprintf(stderr, "  conv B%d C%d %dx%d OC%d k%d s%d p%d: dx err %g, dw err %g\n", B, C, H, W, OC, K, stride, pad, ex / mx, ew / mw);
    dfs_free(rx);
    dfs_free(rw);
    /* accumulation (+=) and thread-count independence */
    float *dx1 = zeros(nx), *dw1 = zeros(nw);
    dfs_ops_set_threads(1);
    dfs_conv2d_backward(dx1, dw1, NULL, ws, s.g, s.x, s.w, B, C, H, W, OC, K, K, stride, pad, pad, s.OH, s.OW, 1);
    TEST_CHECK(memcmp(dx1, dx, nx * sizeof(float)) == 0 && memcmp(dw1, dw, nw * sizeof(float)) == 0);
    dfs_conv2d_backward(dx1, NULL, NULL, ws, s.g, s.x, s.w, B, C, H, W, OC, K, K, stride, pad, pad, s.OH, s.OW, 1);
    int doubled = 1;
    for (size_t i = 0; i < nx; i++) doubled &= fabsf(dx1[i] - 2 * dx[i]) <= 1e-5f * (1 + fabsf(dx[i]));
    TEST_CHECK(doubled);
    /* stored instead of added: what was there is overwritten (0 + x is x, so the same values) */
    for (size_t i = 0; i < nx; i++) dx1[i] = NAN;
    dfs_conv2d_backward(dx1, NULL, NULL, ws, s.g, s.x, s.w, B, C, H, W, OC, K, K, stride, pad, pad, s.OH, s.OW, 0);
    int same = 1;
    for (size_t i = 0; i < nx; i++) same &= dx1[i] == dx[i];
    TEST_CHECK(same);
    dfs_free(s.x); dfs_free(s.w); dfs_free(s.b); dfs_free(s.g); dfs_free(s.y);
    dfs_free(dx); dfs_free(dw); dfs_free(db); dfs_free(ws); dfs_free(dx1); dfs_free(dw1);
}

/* ---- GroupNorm ---- */
typedef struct gn_st { int B, C, HW, G; dfs_act act; float *x, *gm, *bt, *g, *y; } gn_st;
static double gn_loss(void *p) {
    gn_st *s = p;
    dfs_groupnorm_forward_ref(s->y, s->x, s->gm, s->bt, s->B, s->C, s->HW, s->G, 1e-5f, s->act);
    return dot(s->g, s->y, (size_t)s->B * s->C * s->HW);
}
/* GroupNorm with act (none or SiLU): against finite differences, with saved statistics, storing
 * instead of adding, and with SiLU against the two ops it fuses (SiLU's own gradient, then
 * GroupNorm's): the same bits. */
static void test_groupnorm(int B, int C, int HW, int G, dfs_act act) {
    gn_st s = {B, C, HW, G, act, NULL, NULL, NULL, NULL, NULL};
    const size_t n = (size_t)B * C * HW;
    s.x = rand_buf(n, 2);
    s.gm = rand_buf(C, 1);
    s.bt = rand_buf(C, 1);
    s.g = rand_buf(n, 1);
    s.y = zeros(n);
    float *dx = zeros(n), *dg = zeros(C), *db = zeros(C), *ws = zeros(dfs_groupnorm_backward_workspace(B, C, G));
    float *dout = zeros(n); /* the backward overwrites it when fusing SiLU */
    memcpy(dout, s.g, n * sizeof(float));
    dfs_groupnorm_backward(dx, dg, db, ws, dout, s.x, s.gm, s.bt, NULL, B, C, HW, G, 1e-5f, act, 1);
    check_grad("groupnorm dx", gn_loss, &s, s.x, dx, n, 1e-2f);
    check_grad("groupnorm dgamma", gn_loss, &s, s.gm, dg, C, 1e-2f);
    check_grad("groupnorm dbeta", gn_loss, &s, s.bt, db, C, 1e-2f);
    /* with the statistics the forward pass saved: the same bits */
    double *stats = dfs_calloc(2 * (size_t)B * G, sizeof(double));
    float *dx2 = zeros(n), *dg2 = zeros(C), *db2 = zeros(C);
    dfs_groupnorm_forward(s.y, s.x, s.gm, s.bt, B, C, HW, G, 1e-5f, act, stats);
    memcpy(dout, s.g, n * sizeof(float));
    dfs_groupnorm_backward(dx2, dg2, db2, ws, dout, s.x, s.gm, s.bt, stats, B, C, HW, G, 1e-5f, act, 1);
    TEST_CHECK(memcmp(dx, dx2, n * sizeof(float)) == 0 && memcmp(dg, dg2, C * sizeof(float)) == 0 &&
               memcmp(db, db2, C * sizeof(float)) == 0);
    /* stored instead of added: the same values as adding to zeros */
    for (size_t i = 0; i < n; i++) dx2[i] = NAN;
    memcpy(dout, s.g, n * sizeof(float));
    dfs_groupnorm_backward(dx2, NULL, NULL, ws, dout, s.x, s.gm, s.bt, stats, B, C, HW, G, 1e-5f, act, 0);
    int same = 1;
    for (size_t i = 0; i < n; i++) same &= dx2[i] == dx[i];
    TEST_CHECK(same);
    if (act == DFS_ACT_SILU) { /* unfused: GroupNorm's output kept, SiLU's gradient taken from it */
        float *yn = zeros(n), *dyn = zeros(n), *dx3 = zeros(n), *dg3 = zeros(C), *db3 = zeros(C);
        dfs_groupnorm_forward(yn, s.x, s.gm, s.bt, B, C, HW, G, 1e-5f, DFS_ACT_NONE, stats);
        dfs_act_backward(dyn, s.g, yn, n, DFS_ACT_SILU, 0);
        dfs_groupnorm_backward(dx3, dg3, db3, ws, dyn, s.x, s.gm, s.bt, stats, B, C, HW, G, 1e-5f, DFS_ACT_NONE, 1);
        TEST_CHECK(memcmp(dx, dx3, n * sizeof(float)) == 0 && memcmp(dg, dg3, C * sizeof(float)) == 0 &&
                   memcmp(db, db3, C * sizeof(float)) == 0);
        TEST_CHECK(memcmp(dout, dyn, n * sizeof(float)) == 0); /* what the fused backward left in dout */
        dfs_free(yn); dfs_free(dyn); dfs_free(dx3); dfs_free(dg3); dfs_free(db3);
    }
    dfs_free(dout); dfs_free(stats); dfs_free(dx2); dfs_free(dg2); dfs_free(db2);
    dfs_free(s.x); dfs_free(s.gm); dfs_free(s.bt); dfs_free(s.g); dfs_free(s.y); dfs_free(dx); dfs_free(dg); dfs_free(db); dfs_free(ws);
}

/* ---- activations ---- */
typedef struct act_st { size_t n; dfs_act act; float *x, *g; } act_st;
static double act_loss(void *p) {
    act_st *s = p;
    double l = 0;
    for (size_t i = 0; i < s->n; i++) l += s->g[i] * dfs_act_ref(s->x[i], s->act);
    return l;
}
static void test_act(dfs_act act) {
    act_st s = {50, act, rand_buf(50, 4), rand_buf(50, 1)};
    float *dx = zeros(50);
    for (int i = 0; i < 50; i++)
        if (fabsf(s.x[i]) < 0.02f) s.x[i] = 0.5f; /* keep ReLU's kink away from the difference */
    dfs_act_backward(dx, s.g, s.x, 50, act, 1);
    check_grad("activation", act_loss, &s, s.x, dx, 50, 1e-3f);
    float *dx2 = rand_buf(50, 1); /* stored instead of added: the same values as adding to zeros */
    dfs_act_backward(dx2, s.g, s.x, 50, act, 0);
    int same = 1;
    for (int i = 0; i < 50; i++) same &= dx2[i] == dx[i];
    TEST_CHECK(same);
    dfs_free(dx2);
    dfs_free(s.x); dfs_free(s.g); dfs_free(dx);
}

/* ---- linear ---- */
typedef struct lin_st { int N, I, O; float *x, *w, *b, *g, *y; } lin_st;
static double lin_loss(void *p) {
    lin_st *s = p;
    dfs_linear_forward_ref(s->y, s->x, s->w, s->b, s->N, s->I, s->O);
    return dot(s->g, s->y, (size_t)s->N * s->O);
}
static void test_linear(int N, int I, int O) {
    lin_st s = {N, I, O, rand_buf((size_t)N * I, 1), rand_buf((size_t)O * I, 1), rand_buf(O, 1), rand_buf((size_t)N * O, 1), zeros((size_t)N * O)};
    float *dx = zeros((size_t)N * I), *dw = zeros((size_t)O * I), *db = zeros(O);
    dfs_linear_backward(dx, dw, db, s.g, s.x, s.w, N, I, O);
    check_grad("linear dx", lin_loss, &s, s.x, dx, (size_t)N * I, 1e-2f);
    check_grad("linear dw", lin_loss, &s, s.w, dw, (size_t)O * I, 1e-2f);
    check_grad("linear db", lin_loss, &s, s.b, db, O, 1e-2f);
    dfs_free(s.x); dfs_free(s.w); dfs_free(s.b); dfs_free(s.g); dfs_free(s.y); dfs_free(dx); dfs_free(dw); dfs_free(db);
}

/* ---- attention ---- */
typedef struct at_st { int B, C, HW, heads, dh; float rescale; float *x, *res, *w[4], *bias[4], *g, *y; } at_st;
static double at_loss(void *p) {
    at_st *s = p;
    dfs_attention_forward_ref(s->y, s->x, s->res, s->w[0], s->bias[0], s->w[1], s->bias[1], s->w[2], s->bias[2], s->w[3],
                              s->bias[3], s->B, s->C, s->HW, s->heads, s->dh, s->rescale);
    return dot(s->g, s->y, (size_t)s->B * s->C * s->HW);
}
static void test_attention(int B, int C, int HW, int heads, int dh, float rescale) {
    at_st s = {B, C, HW, heads, dh, rescale, NULL, NULL, {0}, {0}, NULL, NULL};
    const size_t n = (size_t)B * C * HW, inner = (size_t)heads * dh;
    s.x = rand_buf(n, 1);
    s.res = rand_buf(n, 1);
    for (int k = 0; k < 4; k++) {
        s.w[k] = rand_buf(inner * C, 0.5f);
        s.bias[k] = rand_buf(k == 3 ? (size_t)C : inner, 0.2f);
    }
    s.g = rand_buf(n, 1);
    s.y = zeros(n);
    float *out = zeros(n), *saved = zeros(dfs_attention_saved_size(B, C, HW, heads, dh));
    float *scr = zeros(dfs_attention_scratch(B, C, HW, heads, dh) + dfs_attention_backward_scratch(B, C, HW, heads, dh));
    float *dx = zeros(n), *dres = zeros(n), *dw[4], *db[4];
    for (int k = 0; k < 4; k++) {
        dw[k] = zeros(inner * C);
        db[k] = zeros(k == 3 ? (size_t)C : inner);
    }
    dfs_attention_forward_train(out, saved, scr, s.x, s.res, s.w[0], s.bias[0], s.w[1], s.bias[1], s.w[2], s.bias[2], s.w[3],
                                s.bias[3], B, C, HW, heads, dh, rescale);
    at_loss(&s);
    double e = 0;
    for (size_t i = 0; i < n; i++) e = fmax(e, fabs(out[i] - s.y[i]));
    TEST_CHECK(e < 1e-5);
    dfs_attn_grads gr = {dw[0], db[0], dw[1], db[1], dw[2], db[2], dw[3], db[3]};
    dfs_attention_backward(dx, dres, &gr, scr, s.g, saved, s.x, s.w[0], s.w[1], s.w[2], s.w[3], B, C, HW, heads, dh, rescale);
    check_grad("attention dx", at_loss, &s, s.x, dx, n, 1e-2f);
    check_grad("attention dres", at_loss, &s, s.res, dres, n, 1e-2f);
    static const char *names[4] = {"attention dwq", "attention dwk", "attention dwv", "attention dwo"};
    for (int k = 0; k < 4; k++) {
        check_grad(names[k], at_loss, &s, s.w[k], dw[k], inner * C, 1e-2f);
        check_grad("attention bias", at_loss, &s, s.bias[k], db[k], k == 3 ? (size_t)C : inner, 1e-2f);
    }
    dfs_free(s.x); dfs_free(s.res); dfs_free(s.g); dfs_free(s.y); dfs_free(out); dfs_free(saved); dfs_free(scr);
    dfs_free(dx); dfs_free(dres);
    for (int k = 0; k < 4; k++) { dfs_free(s.w[k]); dfs_free(s.bias[k]); dfs_free(dw[k]); dfs_free(db[k]); }
}

/* ---- resampling and element-wise ---- */
typedef struct rs_st { int BC, H, W, up; float *x, *g, *y; } rs_st;
static double rs_loss(void *p) {
    rs_st *s = p;
    if (s->up) dfs_upsample2x_forward(s->y, s->x, s->BC, s->H, s->W);
    else dfs_avgpool2x_forward(s->y, s->x, s->BC, s->H, s->W);
    return dot(s->g, s->y, (size_t)s->BC * (s->up ? 4 * s->H * s->W : (s->H / 2) * (s->W / 2)));
}
static void test_resample(int up) {
    rs_st s = {3, 6, 4, up, rand_buf(72, 1), rand_buf(up ? 288 : 18, 1), zeros(288)};
    float *dx = zeros(72);
    if (up) dfs_upsample2x_backward(dx, s.g, 3, 6, 4);
    else dfs_avgpool2x_backward(dx, s.g, 3, 6, 4);
    check_grad(up ? "upsample" : "avgpool", rs_loss, &s, s.x, dx, 72, 1e-2f);
    dfs_free(s.x); dfs_free(s.g); dfs_free(s.y); dfs_free(dx);
}

typedef struct ss_st { int B, C, HW, shift; float *x, *t, *g, *y; } ss_st;
static double ss_loss(void *p) {
    ss_st *s = p;
    size_t n = (size_t)s->B * s->C * s->HW;
    memcpy(s->y, s->x, n * sizeof(float));
    if (s->shift) dfs_scale_shift(s->y, s->t, s->B, s->C, s->HW, DFS_ACT_NONE);
    else dfs_add_channel_bias(s->y, s->t, s->B, s->C, s->HW);
    return dot(s->g, s->y, n);
}
static void test_time_cond(int shift) {
    ss_st s = {2, 3, 5, shift, rand_buf(30, 1), rand_buf(12, 1), rand_buf(30, 1), zeros(30)};
    float *dx = zeros(30), *dt = zeros(12);
    if (shift) {
        dfs_scale_shift_backward(dx, dt, s.g, s.x, s.t, 2, 3, 5);
        check_grad("scale_shift dx", ss_loss, &s, s.x, dx, 30, 1e-2f);
    } else {
        dfs_channel_sum_backward(dt, s.g, 2, 3, 5);
    }
    check_grad(shift ? "scale_shift dt" : "channel bias", ss_loss, &s, s.t, dt, shift ? 12 : 6, 1e-2f);
    dfs_free(s.x); dfs_free(s.t); dfs_free(s.g); dfs_free(s.y); dfs_free(dx); dfs_free(dt);
}

int main(void) {
    test_groupnorm(2, 8, 9, 4, DFS_ACT_NONE);
    test_groupnorm(1, 6, 5, 6, DFS_ACT_NONE);
    test_act(DFS_ACT_SILU);
    test_act(DFS_ACT_MISH);
    test_act(DFS_ACT_GELU);
    test_act(DFS_ACT_RELU);
    test_linear(3, 7, 5);
    test_attention(1, 8, 6, 2, 4, 1.0f);
    test_attention(2, 6, 5, 1, 6, 1.41421356f);
    test_attention(1, 10, 7, 3, 3, 1.0f);
    test_attention(1, 3, 300, 1, 4, 1.0f); /* several query and key blocks in both backward passes */
    test_resample(1);
    test_resample(0);
    test_time_cond(0);
    test_time_cond(1);
    test_conv(2, 3, 6, 5, 4, 3, 1, 1);
    test_conv(1, 5, 7, 7, 9, 1, 1, 0);
    test_conv(2, 4, 8, 6, 3, 3, 2, 1);
    test_conv(1, 3, 6, 6, 5, 3, 2, 0);
    test_conv(1, 30, 9, 9, 10, 3, 1, 1); /* K = 270: more than one packed panel */
    test_conv(2, 11, 17, 19, 50, 3, 1, 1); /* several pixel panels, channel and output-channel tails */
    test_conv(1, 9, 20, 20, 7, 1, 1, 0);
    test_conv(2, 4, 9, 7, 3, 3, 1, 0);     /* no padding */
    test_conv(3, 20, 23, 21, 17, 3, 1, 1); /* Winograd weight gradient over two chunks of tiles, odd sizes */
    test_conv(12, 70, 9, 9, 66, 3, 1, 1);  /* the same for a layer large enough to share each chunk */
    test_conv(11, 9, 5, 6, 50, 1, 1, 0);   /* two groups of images, the images read in place, two strips */
    test_conv(11, 6, 5, 4, 7, 3, 1, 0);    /* two groups of images, padded copies */
    test_conv(9, 6, 7, 7, 5, 3, 1, 1);     /* Winograd: runs over 4 tile rows */
    test_conv(16, 10, 7, 7, 9, 3, 1, 1);   /* the input gradient by F(4×4, 3×3) too */
    test_conv(23, 5, 5, 13, 4, 3, 1, 1);   /* Winograd: runs over 2 tile rows, a chunk ending mid-image */
    /* GroupNorm with SiLU fused, last, so the draws of the checks above stay as they were: the
     * attention case with 300 positions has gradients of about 0.01, and some other draws put the
     * finite differences' rounding noise (float outputs) above the tolerance there */
    test_groupnorm(2, 8, 9, 4, DFS_ACT_SILU);
    test_groupnorm(3, 6, 37, 2, DFS_ACT_SILU);
    /* strided gradients in padded-row space and by phases: two groups of images, stride 3 with a
     * kernel wider than it and padding, an even kernel, stride 3 with a kernel of 2 (a phase
     * that meets no tap) */
    test_conv(11, 5, 9, 10, 7, 3, 2, 1);
    test_conv(2, 3, 10, 11, 4, 4, 3, 2);
    test_conv(3, 2, 7, 8, 3, 2, 2, 0);
    test_conv(2, 3, 9, 8, 4, 2, 3, 0);
    return test_summary("grad");
}
