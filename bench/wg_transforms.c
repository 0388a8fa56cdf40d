/* The Winograd tile transforms alone, every version this CPU runs side by side (the vector ones and
 * the portable one, winograd.h): a layer's input transform (F(4×4, 3×3) and F(2×2, 3×3)) and output
 * transform, walked as the convolution walks them (runs of 16 tiles, every channel of a run before
 * the next run), the versions alternating round by round; prints each one's best round in
 * nanoseconds per run of 16 tiles and channel. A batch small enough for cache (the default) times
 * the instructions, a large one adds the wait for memory. It is how the transforms' per-run figures
 * of docs/performance.md were taken (there as cycles, at 3.1 GHz).
 * usage: build/bench/wg_transforms [batch (4)] [channels (96)] [size (28)] [rounds (200)] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/internal.h"
#include "ops/winograd.h"

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static float *buffer(size_t n) {
    float *p = dfs_malloc((n + 64) * sizeof(float));
    if (!p) {
        fprintf(stderr, "wg_transforms: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n + 64; i++) p[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    return p;
}

enum { IN4, OUT4, IN2, OUT2, KINDS };
static const char *const kind_name[KINDS] = {"F(4x4) input", "F(4x4) output", "F(2x2) input", "F(2x2) output"};

/* One pass of transform `kind` over all B·T tiles and C channels; returns the runs done. */
static long pass(const dfs_wg_impl *wg, int kind, float *v, float *img, int B, int C, int H, int W) {
    const int m = kind < IN2 ? 4 : 2, TW = (W + m - 1) / m, T = (H + m - 1) / m * TW;
    const size_t xs = (size_t)C * 16 + 16, plane = (size_t)H * W;
    long runs = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T;) { /* runs within one image, at most one tile row of F(2×2) tiles */
            const int tx = t % TW, len = m == 4 ? (T - t < 16 ? T - t : 16) : (TW - tx < 16 ? TW - tx : 16);
            for (int c = 0; c < C; c++) {
                float *p = img + ((size_t)b * C + c) * plane, *vc = v + (size_t)c * 16;
                if (kind == IN4) wg->in4_run(vc, xs, p, (size_t)C * plane, H, W, t / TW, tx, len);
                if (kind == OUT4) wg->out4_run(p, (size_t)C * plane, H, W, vc, xs, t / TW, tx, len, 0.5f, NULL, 0, 0);
                if (kind == IN2) wg->in_run(vc, xs, p, (size_t)C * plane, H, W, t / TW, tx, len);
                if (kind == OUT2) wg->out_run(p, (size_t)C * plane, H, W, vc, xs, t / TW, tx, len, 0.5f, NULL, 0, 0);
            }
            runs += C;
            t += len;
        }
    return runs;
}

int main(int argc, char **argv) {
    const int B = argc > 1 ? atoi(argv[1]) : 4, C = argc > 2 ? atoi(argv[2]) : 96, H = argc > 3 ? atoi(argv[3]) : 28;
    const int rounds = argc > 4 ? atoi(argv[4]) : 200;
    if (B < 1 || C < 1 || H < 3 || H > 256 || rounds < 1) return 2;
    const dfs_wg_impl *impls[4];
    const int n = dfs_winograd_available(impls, 4);
    float *img = buffer((size_t)B * C * H * H), *v = buffer(36 * ((size_t)C * 16 + 16));
    printf("batch %d, %d channels, %dx%d: best of %d rounds, ns per run of 16 tiles and channel\n", B, C, H, H, rounds);
    printf("%-16s", "transform");
    for (int i = 0; i < n; i++) printf(" %10s", impls[i]->name);
    printf("\n");
    for (int kind = 0; kind < KINDS; kind++) {
        double best[4];
        for (int i = 0; i < n; i++) best[i] = 1e300;
        for (int r = 0; r < rounds; r++)
            for (int i = 0; i < n; i++) {
                const double t0 = now_ns();
                const long runs = pass(impls[i], kind, v, img, B, C, H, H);
                const double per = (now_ns() - t0) / (double)runs;
                if (per < best[i]) best[i] = per;
            }
        printf("%-16s", kind_name[kind]);
        for (int i = 0; i < n; i++) printf(" %10.1f", best[i]);
        printf("\n");
    }
    dfs_free(img), dfs_free(v);
    return 0;
}
