/* Allocation failure on every path, SQLite-style: make the 1st, 2nd, 3rd ... allocation fail in turn
 * while loading a model (safetensors, config, tables), running it, sampling and writing outputs.
 * Each attempt must fail cleanly (DFS_ERR_NOMEM, or succeed once the count passes the last
 * allocation), never crash, and leave no memory allocated. */
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "io/npy.h"
#include "io/png.h"
#include "test.h"

static int load_and_sample(dfs_ctx *ctx, const char *out_path, dfs_status *st_out) {
    dfs_model_params mp;
    dfs_model_params_default(&mp);
    mp.path = "tests/fixtures/unet/tiny/model";
    dfs_model *m = NULL;
    dfs_status st = dfs_model_load(ctx, &mp, &m);
    float out[2 * 3 * 16 * 16];
    if (!st) {
        dfs_sample_params sp;
        dfs_sample_params_default(&sp);
        sp.scheduler = "dpmpp-2m";
        sp.steps = 2;
        sp.num_images = 2;
        st = dfs_sample(ctx, m, &sp, out);
    }
    if (!st) {
        const int64_t shape[4] = {2, 3, 16, 16};
        st = dfs_npy_write(ctx, out_path, DFS_DTYPE_F32, 4, shape, out);
    }
    dfs_model_free(m);
    *st_out = st;
    return st == DFS_OK;
}

int main(void) {
    dfs_ctx *ctx = dfs_ctx_new();
    dfs_ctx_set_threads(ctx, 1);
    char path[128];
    snprintf(path, sizeof path, "/tmp/diffuse-allocfail.%d.npy", (int)getpid());
    const size_t live = dfs_alloc_live_bytes();
    int succeeded = 0, clean = 1, statuses_ok = 1;
    long n;
    for (n = 1; n < 5000 && !succeeded; n++) {
        dfs_alloc_fail_at(n);
        dfs_status st;
        succeeded = load_and_sample(ctx, path, &st);
        dfs_alloc_fail_at(0);
        if (!succeeded && st != DFS_ERR_NOMEM) {
            statuses_ok = 0;
            fprintf(stderr, "  allocation %ld failing gave status %d: %s\n", n, st, dfs_errmsg(ctx));
        }
        if (dfs_alloc_live_bytes() != live) {
            clean = 0;
            fprintf(stderr, "  allocation %ld failing leaked %zu bytes\n", n, dfs_alloc_live_bytes() - live);
            break;
        }
    }
    TEST_CHECK(succeeded);
    TEST_CHECK(clean);
    TEST_CHECK(statuses_ok);
    if (getenv("DFS_TEST_VERBOSE")) printf("  %ld allocation sites walked\n", n - 1);
    unlink(path);
    dfs_ctx_free(ctx);
    return test_summary("alloc_fail");
}
