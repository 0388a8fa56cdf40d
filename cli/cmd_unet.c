/* diffuse unet: one network evaluation on .npy inputs. */
#include <string.h>

#include "cli.h"
#include "core/internal.h"
#include "io/npy.h"

static const cli_opt opts[] = {
    {"--model", "-m", "DIR", "diffusers model or pipeline directory (required)"},
    {"--input", "-i", "X.npy", "noisy samples, float32 (N, C, H, W) (required)"},
    {"--timesteps", "-t", "T.npy", "timesteps: N values or one for all, float32/float64/int64/int32 (required)"},
    {"--class-labels", NULL, "Y.npy", "class labels, N int64 values (class-conditional models)"},
    {"--output", "-o", "OUT.npy", "where to write the model output, float32 (N, C_out, H, W) (required)"},
    {"--max-memory", NULL, "MB", "refuse to start when activations would need more (default: free memory)"},
    {"--dtype", NULL, "T", "f32 (default) or bf16: bfloat16 operands for the 3x3 convolutions' products (less exact; its speed depends on the CPU: docs/performance.md)"},
    {"--threads", NULL, "N", "worker threads (default 1)"},
};
#define N_OPTS (int)(sizeof opts / sizeof *opts)

/* Converts an integer or float array to N float timesteps (one value broadcasts, as diffusers
 * broadcasts a scalar timestep over the batch). */
static dfs_status read_timesteps(dfs_ctx *ctx, const char *path, int N, float *t) {
    dfs_npy a;
    dfs_status s = dfs_npy_read(ctx, path, &a);
    if (s) return s;
    if (a.ndim > 1 || (a.numel != (size_t)N && a.numel != 1)) {
        s = dfs_fail(ctx, DFS_ERR_SHAPE, "%s: %zu timesteps for a batch of %d (need %d values or one)", path, a.numel, N, N);
        goto done;
    }
    for (int i = 0; i < N; i++) {
        size_t k = a.numel == 1 ? 0 : (size_t)i;
        switch (a.dtype) {
        case DFS_DTYPE_F32: t[i] = ((const float *)a.data)[k]; break;
        case DFS_DTYPE_F64: t[i] = (float)((const double *)a.data)[k]; break;
        case DFS_DTYPE_I64: t[i] = (float)((const int64_t *)a.data)[k]; break; /* torch: timesteps.float() */
        case DFS_DTYPE_I32: t[i] = (float)((const int32_t *)a.data)[k]; break;
        default:
            s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: timesteps must be float32, float64, int64 or int32, not %s", path,
                         dfs_dtype_name(a.dtype));
            goto done;
        }
    }
done:
    dfs_npy_free(&a);
    return s;
}

static dfs_status read_labels(dfs_ctx *ctx, const char *path, int N, int64_t *y) {
    dfs_npy a;
    dfs_status s = dfs_npy_read(ctx, path, &a);
    if (s) return s;
    if (a.ndim > 1 || (a.numel != (size_t)N && a.numel != 1)) {
        s = dfs_fail(ctx, DFS_ERR_SHAPE, "%s: %zu class labels for a batch of %d", path, a.numel, N);
    } else if (a.dtype != DFS_DTYPE_I64 && a.dtype != DFS_DTYPE_I32) {
        s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: class labels must be int64 or int32, not %s", path, dfs_dtype_name(a.dtype));
    } else {
        for (int i = 0; i < N; i++) {
            size_t k = a.numel == 1 ? 0 : (size_t)i;
            y[i] = a.dtype == DFS_DTYPE_I64 ? ((const int64_t *)a.data)[k] : ((const int32_t *)a.data)[k];
        }
    }
    dfs_npy_free(&a);
    return s;
}

int cmd_unet(int argc, char **argv) {
    cli_args a;
    if (cli_parse("unet", opts, N_OPTS, argc, argv, 2, &a)) return 2;
    if (a.help) {
        cli_usage(stdout, "diffuse unet -m DIR --input X.npy --timesteps T.npy [--class-labels Y.npy] --output OUT.npy",
                  "Runs the network once, as diffusers' UNet2DModel(sample, timestep, class_labels) would, and\n"
                  "writes its output. The output file is written only when everything succeeded.",
                  opts, N_OPTS);
        return 0;
    }
    const char *model = cli_get(&a, opts, N_OPTS, "--model"), *in = cli_get(&a, opts, N_OPTS, "--input");
    const char *tpath = cli_get(&a, opts, N_OPTS, "--timesteps"), *ypath = cli_get(&a, opts, N_OPTS, "--class-labels");
    const char *outp = cli_get(&a, opts, N_OPTS, "--output"), *thr = cli_get(&a, opts, N_OPTS, "--threads");
    if (!model || !in || !tpath || !outp) {
        fprintf(stderr, "diffuse unet: --model, --input, --timesteps and --output are required\n");
        return 2;
    }
    long threads = 1;
    if (thr && cli_int("unet", "--threads", thr, 1, 1024, &threads)) return 2;
    const char *dtype = cli_get(&a, opts, N_OPTS, "--dtype");
    if (cli_dtype("unet", dtype)) return 2;

    dfs_ctx *ctx = dfs_ctx_new();
    if (!ctx) return 1;
    dfs_ctx_set_threads(ctx, (int)threads);
    if (cli_get(&a, opts, N_OPTS, "--max-memory")) {
        long mb = 0;
        if (cli_int("unet", "--max-memory", cli_get(&a, opts, N_OPTS, "--max-memory"), 1, 1L << 30, &mb)) {
            dfs_ctx_free(ctx);
            return 2;
        }
        dfs_ctx_set_max_memory(ctx, (size_t)mb << 20);
    }
    dfs_model *m = NULL;
    dfs_npy x = {0};
    float *t = NULL, *out = NULL;
    int64_t *y = NULL;
    int rc = 0;
    dfs_status s;
    dfs_model_params mp;
    dfs_model_params_default(&mp);
    mp.path = model;
    if ((s = dfs_model_load(ctx, &mp, &m))) goto fail;
    if (dtype && (s = dfs_model_set_compute(ctx, m, dtype))) goto fail;
    dfs_model_info info;
    dfs_model_get_info(m, &info);
    if ((s = dfs_npy_read(ctx, in, &x))) goto fail;
    if (x.dtype != DFS_DTYPE_F32) {
        s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: the input must be float32, not %s", in, dfs_dtype_name(x.dtype));
        goto fail;
    }
    if (x.ndim != 4 || x.shape[1] != info.in_channels || x.shape[0] < 1 || x.shape[0] > 65536) {
        s = dfs_fail(ctx, DFS_ERR_SHAPE, "%s: the input must have shape (N, %d, H, W) with 1 <= N <= 65536", in,
                     info.in_channels);
        goto fail;
    }
    const int N = (int)x.shape[0], H = (int)x.shape[2], W = (int)x.shape[3];
    if ((s = dfs_model_check_size(ctx, m, H, W))) goto fail;
    t = dfs_malloc(sizeof(float) * (size_t)N);
    y = dfs_malloc(sizeof(int64_t) * (size_t)N);
    size_t n_out = dfs_mul_size(dfs_mul_size((size_t)N * info.out_channels, (size_t)H), (size_t)W);
    out = dfs_malloc(dfs_mul_size(n_out, sizeof(float)));
    if (!t || !y || !out) {
        s = dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((s = read_timesteps(ctx, tpath, N, t))) goto fail;
    if (ypath && (s = read_labels(ctx, ypath, N, y))) goto fail;
    if ((s = dfs_model_forward(ctx, m, x.data, N, H, W, t, ypath ? y : NULL, out))) goto fail;
    int64_t shape[4] = {N, info.out_channels, H, W};
    if ((s = dfs_npy_write(ctx, outp, DFS_DTYPE_F32, 4, shape, out))) goto fail;
    goto done;
fail:
    rc = cli_fail("unet", ctx, s);
done:
    dfs_free(t);
    dfs_free(y);
    dfs_free(out);
    dfs_npy_free(&x);
    dfs_model_free(m);
    dfs_ctx_free(ctx);
    return rc;
}
