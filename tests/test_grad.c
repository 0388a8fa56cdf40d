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
    float *ws = zeros(dfs_conv2d_backward_workspace(C, OC, K, K, s.OH, s.OW));
    dfs_conv2d_backward(dx, dw, db, ws, s.g, s.x, s.w, B, C, H, W, OC, K, K, stride, pad, pad, s.OH, s.OW);
    check_grad("conv dx", conv_loss, &s, s.x, dx, nx, 1e-2f);
    check_grad("conv dw", conv_loss, &s, s.w, dw, nw, 1e-2f);
    check_grad("conv db", conv_loss, &s, s.b, db, OC, 1e-2f);
    /* accumulation (+=) and thread-count independence */
    float *dx1 = zeros(nx), *dw1 = zeros(nw);
    dfs_ops_set_threads(1);
    dfs_conv2d_backward(dx1, dw1, NULL, ws, s.g, s.x, s.w, B, C, H, W, OC, K, K, stride, pad, pad, s.OH, s.OW);
    TEST_CHECK(memcmp(dx1, dx, nx * sizeof(float)) == 0 && memcmp(dw1, dw, nw * sizeof(float)) == 0);
    dfs_conv2d_backward(dx1, NULL, NULL, ws, s.g, s.x, s.w, B, C, H, W, OC, K, K, stride, pad, pad, s.OH, s.OW);
    int doubled = 1;
    for (size_t i = 0; i < nx; i++) doubled &= fabsf(dx1[i] - 2 * dx[i]) <= 1e-5f * (1 + fabsf(dx[i]));
    TEST_CHECK(doubled);
    dfs_free(s.x); dfs_free(s.w); dfs_free(s.b); dfs_free(s.g); dfs_free(s.y);
    dfs_free(dx); dfs_free(dw); dfs_free(db); dfs_free(ws); dfs_free(dx1); dfs_free(dw1);
}

int main(void) {
    test_conv(2, 3, 6, 5, 4, 3, 1, 1);
    test_conv(1, 5, 7, 7, 9, 1, 1, 0);
    test_conv(2, 4, 8, 6, 3, 3, 2, 1);
    test_conv(1, 3, 6, 6, 5, 3, 2, 0);
    test_conv(1, 30, 9, 9, 10, 3, 1, 1); /* K = 270: more than one packed panel */
    return test_summary("grad");
}
