/* Single ops of the bundled 28×28 model timed alone at its shapes (median of the repeats after a
 * warm-up, fixed pseudo-random inputs): the 1×1 and stride-2 convolutions (forward, weight and
 * input gradients), GroupNorm + SiLU (forward, and the fused backward training uses) and attention
 * at 7×7 (inference, training forward, backward). It is how the per-op figures of
 * docs/performance.md were taken: build the two versions to compare and run them alternately on
 * the same machine, since the host's speed drifts.
 * usage: build/bench/op_times [batch (64)] [threads (2)] [repeats (20)] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "ops/ops.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *buffer(size_t n) {
    float *p = dfs_malloc((n + 64) * sizeof(float));
    if (!p) {
        fprintf(stderr, "op_times: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n + 64; i++) p[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    return p;
}

static int repeats = 20;

/* Runs SETUP then STMT once, then `repeats` times, and prints STMT's median time. */
#define TIME(label, SETUP, STMT)                                                                                       \
    do {                                                                                                               \
        double t_[1000];                                                                                               \
        SETUP;                                                                                                         \
        STMT;                                                                                                          \
        for (int r_ = 0; r_ < repeats; r_++) {                                                                         \
            SETUP;                                                                                                     \
            const double t0_ = now_ms();                                                                               \
            STMT;                                                                                                      \
            t_[r_] = now_ms() - t0_;                                                                                   \
        }                                                                                                              \
        qsort(t_, (size_t)repeats, sizeof(double), cmp_double);                                                        \
        printf("%-44s %8.3f ms\n", label, t_[repeats / 2]);                                                            \
    } while (0)

/* A convolution: forward, then the weight gradient and the input gradient separately. */
static void conv(int B, int C, int OC, int H, int K, int stride) {
    const int pad = K / 2, OH = (H + 2 * pad - K) / stride + 1;
    float *x = buffer((size_t)B * C * H * H), *w = buffer((size_t)OC * C * K * K), *b = buffer((size_t)OC);
    float *y = buffer((size_t)B * OC * OH * OH), *dx = buffer((size_t)B * C * H * H), *dw = buffer((size_t)OC * C * K * K);
    const size_t fw = dfs_conv2d_workspace(B, C, OC, K, K, stride, OH, OH);
    const size_t bw = dfs_conv2d_backward_workspace(B, C, OC, K, K, stride, OH, OH);
    float *ws = buffer(fw > bw ? fw : bw);
    char label[96];
    snprintf(label, sizeof label, "conv %d->%d %dx%d k%d s%d forward", C, OC, H, H, K, stride);
    TIME(label, (void)0, dfs_conv2d_forward(y, ws, x, w, b, B, C, H, H, OC, K, K, stride, pad, pad, OH, OH));
    snprintf(label, sizeof label, "conv %d->%d %dx%d k%d s%d dW", C, OC, H, H, K, stride);
    TIME(label, (void)0, dfs_conv2d_backward(NULL, dw, NULL, ws, y, x, w, B, C, H, H, OC, K, K, stride, pad, pad, OH, OH, 0));
    snprintf(label, sizeof label, "conv %d->%d %dx%d k%d s%d dinp", C, OC, H, H, K, stride);
    TIME(label, (void)0, dfs_conv2d_backward(dx, NULL, NULL, ws, y, x, w, B, C, H, H, OC, K, K, stride, pad, pad, OH, OH, 0));
    dfs_free(x), dfs_free(w), dfs_free(b), dfs_free(y), dfs_free(dx), dfs_free(dw), dfs_free(ws);
}

/* GroupNorm (8 groups) + SiLU: forward with the statistics saved, and the fused backward (which
 * overwrites its output gradient: restored before each run, outside the timing). */
static void groupnorm(int B, int C, int HW) {
    const int G = 8;
    const size_t n = (size_t)B * C * HW;
    float *x = buffer(n), *y = buffer(n), *dy = buffer(n), *dy0 = buffer(n), *dx = buffer(n), *g = buffer((size_t)C);
    float *bt = buffer((size_t)C);
    float *dg = buffer((size_t)C), *db = buffer((size_t)C), *ws = buffer(dfs_groupnorm_backward_workspace(B, C, G));
    double *stats = dfs_malloc(2 * (size_t)B * G * sizeof(double));
    char label[96];
    snprintf(label, sizeof label, "groupnorm+silu C%d HW%d forward", C, HW);
    TIME(label, (void)0, dfs_groupnorm_forward(y, x, g, bt, B, C, HW, G, 1e-5f, DFS_ACT_SILU, stats));
    snprintf(label, sizeof label, "groupnorm+silu C%d HW%d backward", C, HW);
    TIME(label, memcpy(dy, dy0, n * sizeof(float)), dfs_groupnorm_backward(dx, dg, db, ws, dy, x, g, bt, stats, B, C, HW, G, 1e-5f, DFS_ACT_SILU, 0));
    dfs_free(x), dfs_free(y), dfs_free(dy), dfs_free(dy0), dfs_free(dx), dfs_free(g), dfs_free(bt), dfs_free(dg), dfs_free(db);
    dfs_free(ws), dfs_free(stats);
}

/* Attention with 4 heads of 32 over 7×7 positions and 128 channels, as the model's. */
static void attention(int B) {
    const int C = 128, HW = 49, heads = 4, dh = 32;
    const size_t n = (size_t)B * C * HW, inner = (size_t)heads * dh;
    float *x = buffer(n), *res = buffer(n), *out = buffer(n), *dout = buffer(n), *dx = buffer(n), *dres = buffer(n);
    float *w[4], *b[4], *gw[4], *gb[4];
    for (int i = 0; i < 4; i++) w[i] = buffer(inner * C), b[i] = buffer(inner), gw[i] = buffer(inner * C), gb[i] = buffer(inner);
    const size_t s1 = dfs_attention_scratch(B, C, HW, heads, dh), s2 = dfs_attention_backward_scratch(B, C, HW, heads, dh);
    float *scratch = buffer(s1 > s2 ? s1 : s2), *saved = buffer(dfs_attention_saved_size(B, C, HW, heads, dh));
    dfs_attn_grads g = {gw[0], gb[0], gw[1], gb[1], gw[2], gb[2], gw[3], gb[3]};
    TIME("attention 7x7 C128 inference", (void)0,
         dfs_attention_forward(out, scratch, x, res, w[0], b[0], w[1], b[1], w[2], b[2], w[3], b[3], B, C, HW, heads, dh, 1.0f));
    TIME("attention 7x7 C128 training forward", (void)0,
         dfs_attention_forward_train(out, saved, scratch, x, res, w[0], b[0], w[1], b[1], w[2], b[2], w[3], b[3], B, C, HW,
                                     heads, dh, 1.0f));
    TIME("attention 7x7 C128 backward", (void)0,
         dfs_attention_backward(dx, dres, &g, scratch, dout, saved, x, w[0], w[1], w[2], w[3], B, C, HW, heads, dh, 1.0f));
    for (int i = 0; i < 4; i++) dfs_free(w[i]), dfs_free(b[i]), dfs_free(gw[i]), dfs_free(gb[i]);
    dfs_free(x), dfs_free(res), dfs_free(out), dfs_free(dout), dfs_free(dx), dfs_free(dres), dfs_free(scratch), dfs_free(saved);
}

int main(int argc, char **argv) {
    const int B = argc > 1 ? atoi(argv[1]) : 64, threads = argc > 2 ? atoi(argv[2]) : 2;
    repeats = argc > 3 ? atoi(argv[3]) : 20;
    if (B < 1 || B > 4096 || threads < 1 || threads > 1024 || repeats < 1 || repeats > 1000) {
        fprintf(stderr, "usage: op_times [batch 1..4096] [threads 1..1024] [repeats 1..1000]\n");
        return 2;
    }
    dfs_ops_set_threads(threads);
    printf("batch %d, %d threads, median of %d\n", B, threads, repeats);
    conv(B, 96, 32, 28, 1, 1);
    conv(B, 192, 64, 14, 1, 1);
    conv(B, 256, 128, 7, 1, 1);
    conv(B, 32, 32, 28, 3, 2);
    conv(B, 64, 64, 14, 3, 2);
    groupnorm(B, 32, 784);
    groupnorm(B, 96, 784);
    attention(B);
    return 0;
}
