/* diffuse info: what a model is, in a few lines. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_opt opts[] = {
    {"--model", "-m", "DIR", "diffusers model or pipeline directory (required)"},
    {"--size", NULL, "HxW", "resolution for the FLOP count (default: the config's sample_size, else 32x32)"},
};
#define N_OPTS (int)(sizeof opts / sizeof *opts)

/* Parses "H", or "HxW". */
static int parse_size(const char *s, int *h, int *w) {
    char *end;
    long a = strtol(s, &end, 10), b = a;
    if (end == s || a < 1 || a > 16384) return 0;
    if (*end == 'x') {
        const char *t = end + 1;
        b = strtol(t, &end, 10);
        if (end == t || b < 1 || b > 16384) return 0;
    }
    if (*end) return 0;
    *h = (int)a;
    *w = (int)b;
    return 1;
}

int cmd_info(int argc, char **argv) {
    cli_args a;
    if (cli_parse("info", opts, N_OPTS, argc, argv, 2, &a)) return 2;
    if (a.help) {
        cli_usage(stdout, "diffuse info -m DIR [--size HxW]",
                  "Loads a model and prints its architecture, parameter count, weight dtype and the FLOPs of one\n"
                  "forward pass at batch 1 (a multiply-add counts as two).",
                  opts, N_OPTS);
        return 0;
    }
    const char *path = cli_get(&a, opts, N_OPTS, "--model"), *size = cli_get(&a, opts, N_OPTS, "--size");
    if (!path) {
        fprintf(stderr, "diffuse info: --model DIR is required\n");
        return 2;
    }
    dfs_ctx *ctx = dfs_ctx_new();
    if (!ctx) return 1;
    dfs_model_params mp;
    dfs_model_params_default(&mp);
    mp.path = path;
    dfs_model *m = NULL;
    dfs_status s = dfs_model_load(ctx, &mp, &m);
    if (s) {
        int rc = cli_fail("info", ctx, s);
        dfs_ctx_free(ctx);
        return rc;
    }
    dfs_model_info info;
    dfs_model_get_info(m, &info);
    int H = info.sample_h ? info.sample_h : 32, W = info.sample_w ? info.sample_w : 32;
    if (size && !parse_size(size, &H, &W)) {
        fprintf(stderr, "diffuse info: --size must be N or HxW with sides from 1 to 16384, not '%s'\n", size);
        dfs_model_free(m);
        dfs_ctx_free(ctx);
        return 2;
    }
    char desc[2048];
    dfs_model_describe(m, desc, sizeof desc);
    printf("model: %s\n%s\n", path, desc);
    printf("parameters: %lld (%.2f M), stored as %s\n", (long long)info.n_params, info.n_params / 1e6, info.weight_dtype);
    if (dfs_model_check_size(ctx, m, H, W) == DFS_OK)
        printf("forward pass at batch 1, %dx%d: %.3f GFLOP\n", H, W, dfs_model_flops(m, H, W) / 1e9);
    else
        printf("forward pass at %dx%d: not possible (%s)\n", H, W, dfs_errmsg(ctx));
    dfs_model_free(m);
    dfs_ctx_free(ctx);
    return 0;
}
