/* The 3×3 convolutions of google/ddpm-cifar10-32's UNet (or of the bundled 28×28 model) at a given batch, each timed alone with
 * the prepared weights the model keeps (median of 7 runs after a warm-up, random inputs), and their
 * total: GFLOP/s counted as the direct convolution's 2·OC·C·9·OH·OW multiply-adds per image, so a
 * layer computed with fewer products (Winograd) can show more than the machine's peak. With a peak
 * (from bench/fma_peak, same threads) it also prints each as a fraction of it.
 * A fourth argument "bf16" runs the Winograd products in BF16 (dfs_conv2d_prepare).
 * A fifth argument "fashion" times the bundled 28×28 model's layers instead of CIFAR's.
 * usage: build/bench/conv_layers [batch (16)] [threads (2)] [peak GFLOP/s] [f32|bf16] [cifar|fashion] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "ops/ops.h"

typedef struct shape { int C, OC, H, stride, count; } shape; /* H = input size (square) */

/* conv_in, the down blocks (resnets, then a stride-2 downsampler), the mid block, the up blocks
 * (resnets on concatenated skips, then the upsampler's conv) and conv_out, as diffusers builds
 * them for block_out_channels (128, 256, 256, 256) and layers_per_block 2. */
static const shape cifar[] = {
    {3, 128, 32, 1, 1},   {128, 128, 32, 1, 4}, {128, 128, 32, 2, 1}, {128, 256, 16, 1, 1}, {256, 256, 16, 1, 3},
    {256, 256, 16, 2, 1}, {256, 256, 8, 1, 4},  {256, 256, 8, 2, 1},  {256, 256, 4, 1, 8},  {512, 256, 4, 1, 3},
    {256, 256, 4, 1, 3},  {256, 256, 8, 1, 1},  {512, 256, 8, 1, 3},  {256, 256, 8, 1, 3},  {256, 256, 16, 1, 1},
    {512, 256, 16, 1, 2}, {384, 256, 16, 1, 1}, {256, 256, 16, 1, 3}, {256, 256, 32, 1, 1}, {384, 128, 32, 1, 1},
    {256, 128, 32, 1, 2}, {128, 128, 32, 1, 3}, {128, 3, 32, 1, 1},
};

/* The same for the bundled model: block_out_channels (32, 64, 128), layers_per_block 1, 28×28. */
static const shape fashion[] = {
    {1, 32, 28, 1, 1},   {32, 32, 28, 1, 4},   {32, 32, 28, 2, 1},  {32, 64, 14, 1, 1},  {64, 64, 14, 1, 1},
    {64, 64, 14, 2, 1},  {64, 128, 7, 1, 1},   {128, 128, 7, 1, 7}, {256, 128, 7, 1, 1}, {192, 128, 7, 1, 1},
    {128, 128, 14, 1, 1}, {192, 64, 14, 1, 1}, {64, 64, 14, 1, 2},  {96, 64, 14, 1, 1},  {64, 64, 28, 1, 1},
    {96, 32, 28, 1, 1},  {64, 32, 28, 1, 1},   {32, 1, 28, 1, 1},
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *random_floats(size_t n, unsigned *seed) {
    float *p = dfs_malloc(n * sizeof(float) + 64);
    if (!p) exit(1);
    for (size_t i = 0; i < n; i++) p[i] = (float)rand_r(seed) / RAND_MAX - 0.5f;
    return p;
}

int main(int argc, char **argv) {
    const int B = argc > 1 ? atoi(argv[1]) : 16, threads = argc > 2 ? atoi(argv[2]) : 2;
    const double peak = argc > 3 ? atof(argv[3]) : 0;
    const int bf16 = argc > 4 && strcmp(argv[4], "bf16") == 0;
    const int small = argc > 5 && strcmp(argv[5], "fashion") == 0;
    if (B < 1 || threads < 1 || (argc > 4 && !bf16 && strcmp(argv[4], "f32") != 0) ||
        (argc > 5 && !small && strcmp(argv[5], "cifar") != 0))
        return 2;
    const shape *layers = small ? fashion : cifar;
    const size_t n_layers = small ? sizeof fashion / sizeof *fashion : sizeof cifar / sizeof *cifar;
    dfs_ops_set_threads(threads);
    unsigned seed = 1;
    double total_flops = 0, total_s = 0;
    printf("%-24s %10s %10s%s\n", "layer (C->OC, size, stride)", "ms", "GFLOP/s", peak > 0 ? "   of peak" : "");
    for (size_t i = 0; i < n_layers; i++) {
        const shape *s = &layers[i];
        const int O = s->H / s->stride;
        const size_t nin = (size_t)B * s->C * s->H * s->H, nw = (size_t)s->OC * s->C * 9;
        float *x = random_floats(nin, &seed), *w = random_floats(nw, &seed), *b = random_floats((size_t)s->OC, &seed);
        float *y = random_floats((size_t)B * s->OC * O * O, &seed);
        float *ws = random_floats(dfs_conv2d_workspace(B, s->C, s->OC, 3, 3, s->stride, O, O), &seed);
        float *prep = random_floats(dfs_conv2d_prepared_floats(B, s->C, s->H, s->H, s->OC, 3, 3, s->stride, 1, 1, O, O), &seed);
        dfs_conv2d_prepare(prep, w, B, s->C, s->H, s->H, s->OC, 3, 3, s->stride, 1, 1, O, O, bf16);
        double t[7];
        for (int r = -1; r < 7; r++) {
            const double t0 = now();
            dfs_conv2d_forward_prepared(y, ws, x, w, prep, b, NULL, B, s->C, s->H, s->H, s->OC, 3, 3, s->stride, 1, 1, O, O, bf16,
                                        0);
            if (r >= 0) t[r] = now() - t0;
        }
        qsort(t, 7, sizeof *t, cmp);
        const double flops = 2.0 * B * s->OC * s->C * 9.0 * O * O, gf = flops / t[3] / 1e9;
        char name[64];
        snprintf(name, sizeof name, "%d->%d, %dx%d, s%d (x%d)", s->C, s->OC, s->H, s->H, s->stride, s->count);
        printf("%-24s %10.3f %10.1f", name, t[3] * 1e3, gf);
        if (peak > 0) printf("   %6.1f%%", 100 * gf / peak);
        printf("\n");
        total_flops += flops * s->count;
        total_s += t[3] * s->count;
        dfs_free(x), dfs_free(w), dfs_free(b), dfs_free(y), dfs_free(ws), dfs_free(prep);
    }
    printf("all 3x3 layers, batch %d, %d threads: %.1f ms, %.1f GFLOP/s", B, threads, total_s * 1e3, total_flops / total_s / 1e9);
    if (peak > 0) printf(", %.1f%% of %.1f", 100 * total_flops / total_s / 1e9 / peak, peak);
    printf("\n");
    return 0;
}
