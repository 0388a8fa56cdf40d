/* diffuse bench: median time of one forward pass, or of one training step. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "core/internal.h"
#include "train/train.h"

static const cli_opt opts[] = {
    {"--model", "-m", "DIR", "diffusers model or pipeline directory (required)"},
    {"--batch", "-b", "B", "batch size (default 1)"},
    {"--size", NULL, "HxW", "resolution (default: the config's sample_size, else 32x32)"},
    {"--dtype", NULL, "T", "f32 (default) or bf16: bfloat16 operands for the 3x3 convolutions' products (less exact; its speed depends on the CPU: docs/performance.md)"},
    {"--threads", NULL, "N", "worker threads (default 1)"},
    {"--repeat", NULL, "N", "timed forward passes after one warm-up (default 10)"},
    {"--train", NULL, NULL, "time training steps (forward, backward, AdamW, EMA) instead of forward passes"},
    {"--json", NULL, NULL, "print one line of JSON instead of text"},
};
#define N_OPTS (int)(sizeof opts / sizeof *opts)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Training steps on one batch: x as x0 and as noise, timesteps spread over [0, 1000). */
static int bench_train(dfs_ctx *ctx, dfs_model *m, const char *path, const float *x, int B, int threads, int repeat,
                       int json, double *times) {
    dfs_model_info info;
    dfs_model_get_info(m, &info);
    dfs_train_params tp;
    dfs_train_params_default(&tp);
    tp.batch_size = B;
    tp.warmup_steps = 0;
    tp.conditional = info.needs_class_labels;
    int *ts = dfs_malloc((size_t)B * sizeof(int));
    int64_t *labels = dfs_calloc((size_t)B, sizeof(int64_t));
    double *all = dfs_malloc((size_t)(repeat + 1) * sizeof(double)), loss = 0;
    dfs_status s = DFS_OK;
    if (ts && labels && all) {
        for (int b = 0; b < B; b++) ts[b] = (int)((b * 997L + 500) % 1000);
        s = dfs_train_steps(ctx, m, NULL, &tp, x, x, ts, tp.conditional ? labels : NULL, repeat + 1, &loss, all);
    }
    int rc = 0;
    if (!ts || !labels || !all) {
        fprintf(stderr, "diffuse bench: out of memory\n");
        rc = 1;
    } else if (s) {
        rc = cli_fail("bench", ctx, s);
    } else {
        memcpy(times, all + 1, (size_t)repeat * sizeof(double)); /* the first step is a warm-up */
        qsort(times, (size_t)repeat, sizeof *times, cmp_double);
        double med = repeat % 2 ? times[repeat / 2] : 0.5 * (times[repeat / 2 - 1] + times[repeat / 2]);
        if (json)
            printf("{\"model\": \"%s\", \"batch\": %d, \"threads\": %d, \"train_step_ms_median\": %.4f, "
                   "\"train_step_ms_min\": %.4f, \"images_per_s\": %.2f, \"repeat\": %d}\n",
                   path, B, threads, med * 1e3, times[0] * 1e3, B / med, repeat);
        else
            printf("%s: training step at batch %d, %d thread%s: median %.2f ms, min %.2f ms, %.1f images/s\n", path, B,
                   threads, threads == 1 ? "" : "s", med * 1e3, times[0] * 1e3, B / med);
    }
    dfs_free(ts);
    dfs_free(labels);
    dfs_free(all);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    cli_args a;
    if (cli_parse("bench", opts, N_OPTS, argc, argv, 2, &a)) return 2;
    if (a.help) {
        cli_usage(stdout, "diffuse bench -m DIR [--batch B] [--threads N] [--dtype f32|bf16] [--train] [--json]",
                  "Times forward passes of the network on fixed random input and prints the median, the\n"
                  "minimum and the achieved GFLOP/s (FLOPs as 'diffuse info' counts them). With --train,\n"
                  "times training steps on one fixed batch instead and prints the median and images/s.",
                  opts, N_OPTS);
        return 0;
    }
    const char *path = cli_get(&a, opts, N_OPTS, "--model");
    if (!path) {
        fprintf(stderr, "diffuse bench: --model DIR is required\n");
        return 2;
    }
    long B = 1, threads = 1, repeat = 10;
    const char *v;
    if ((v = cli_get(&a, opts, N_OPTS, "--batch")) && cli_int("bench", "--batch", v, 1, 4096, &B)) return 2;
    if ((v = cli_get(&a, opts, N_OPTS, "--threads")) && cli_int("bench", "--threads", v, 1, 1024, &threads)) return 2;
    if ((v = cli_get(&a, opts, N_OPTS, "--repeat")) && cli_int("bench", "--repeat", v, 1, 100000, &repeat)) return 2;
    int json = cli_get(&a, opts, N_OPTS, "--json") != NULL, train = cli_get(&a, opts, N_OPTS, "--train") != NULL;
    const char *dtype = cli_get(&a, opts, N_OPTS, "--dtype");
    if (cli_dtype("bench", dtype)) return 2;
    if (train && dtype && strcmp(dtype, "f32") != 0) {
        fprintf(stderr, "diffuse bench: training runs in f32; --dtype is for forward passes\n");
        return 2;
    }

    dfs_ctx *ctx = dfs_ctx_new();
    if (!ctx) return 1;
    dfs_ctx_set_threads(ctx, (int)threads);
    dfs_model_params mp;
    dfs_model_params_default(&mp);
    mp.path = path;
    dfs_model *m = NULL;
    dfs_status s = dfs_model_load(ctx, &mp, &m);
    if (!s && dtype) s = dfs_model_set_compute(ctx, m, dtype);
    if (s) {
        int rc = cli_fail("bench", ctx, s);
        dfs_ctx_free(ctx);
        return rc;
    }
    dfs_model_info info;
    dfs_model_get_info(m, &info);
    int H = info.sample_h ? info.sample_h : 32, W = info.sample_w ? info.sample_w : 32;
    if (train && (cli_get(&a, opts, N_OPTS, "--size") || !info.sample_h)) {
        fprintf(stderr, "diffuse bench: --train runs at the model's sample_size (%s)\n",
                info.sample_h ? "--size is for forward passes" : "its config has none");
        dfs_model_free(m);
        dfs_ctx_free(ctx);
        return 2;
    }
    if ((v = cli_get(&a, opts, N_OPTS, "--size"))) {
        char *end;
        long h = strtol(v, &end, 10), w = h;
        if (*end == 'x') w = strtol(end + 1, &end, 10);
        if (*end || h < 1 || w < 1 || h > 16384 || w > 16384) {
            fprintf(stderr, "diffuse bench: --size must be N or HxW, not '%s'\n", v);
            dfs_model_free(m);
            dfs_ctx_free(ctx);
            return 2;
        }
        H = (int)h;
        W = (int)w;
    }
    int rc = 0;
    size_t n_in = (size_t)B * info.in_channels * H * W, n_out = (size_t)B * info.out_channels * H * W;
    float *x = dfs_malloc(n_in * sizeof(float)), *out = dfs_malloc(n_out * sizeof(float)), *t = dfs_malloc(B * sizeof(float));
    int64_t *y = dfs_calloc((size_t)B, sizeof(int64_t));
    double *times = dfs_malloc((size_t)repeat * sizeof(double));
    if (!x || !out || !t || !y || !times) {
        fprintf(stderr, "diffuse bench: out of memory\n");
        rc = 1;
        goto done;
    }
    uint32_t st = 12345;
    for (size_t i = 0; i < n_in; i++) {
        st = st * 1664525u + 1013904223u;
        x[i] = (float)((st >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
    }
    for (long b = 0; b < B; b++) t[b] = (float)(500 + b);
    const int64_t *labels = info.needs_class_labels ? y : NULL;
    if (train) {
        rc = bench_train(ctx, m, path, x, (int)B, (int)threads, (int)repeat, json, times);
        goto done;
    }
    if ((s = dfs_model_forward(ctx, m, x, (int)B, H, W, t, labels, out))) { /* warm-up, plans the arena */
        rc = cli_fail("bench", ctx, s);
        goto done;
    }
    for (long r = 0; r < repeat; r++) {
        double t0 = now();
        dfs_model_forward(ctx, m, x, (int)B, H, W, t, labels, out);
        times[r] = now() - t0;
    }
    qsort(times, (size_t)repeat, sizeof *times, cmp_double);
    double med = repeat % 2 ? times[repeat / 2] : 0.5 * (times[repeat / 2 - 1] + times[repeat / 2]);
    double flops = dfs_model_flops(m, H, W) * (double)B;
    if (json)
        printf("{\"model\": \"%s\", \"batch\": %ld, \"threads\": %ld, \"height\": %d, \"width\": %d, \"dtype\": \"%s\", "
               "\"forward_ms_median\": %.4f, \"forward_ms_min\": %.4f, \"gflops\": %.3f, \"gflop_per_forward\": %.4f, "
               "\"repeat\": %ld}\n",
               path, B, threads, H, W, dtype ? dtype : "f32", med * 1e3, times[0] * 1e3, flops / med / 1e9, flops / 1e9, repeat);
    else
        printf("%s: batch %ld, %dx%d, %s, %ld thread%s: median %.3f ms, min %.3f ms, %.2f GFLOP/s (%.3f GFLOP per pass)\n",
               path, B, H, W, dtype ? dtype : "f32", threads, threads == 1 ? "" : "s", med * 1e3, times[0] * 1e3,
               flops / med / 1e9, flops / 1e9);
done:
    dfs_free(x);
    dfs_free(out);
    dfs_free(t);
    dfs_free(y);
    dfs_free(times);
    dfs_model_free(m);
    dfs_ctx_free(ctx);
    return rc;
}
