/* google/ddpm-cifar10-32's architecture (block_out_channels 128, 256, 256, 256; two layers per
 * block; attention at 16x16; 35.7M parameters) against diffusers on deterministic weights that
 * tests/weights_gen.h regenerates (tools/gen_unet_extra.py made the reference with the same recipe):
 * parameter count, the generator itself, and the output within 1e-4 of its scale. */
#include <string.h>

#include "core/internal.h"
#include "io/json.h"
#include "io/npy.h"
#include "model/model.h"
#include "test.h"
#include "weights_gen.h"

int main(void) {
    dfs_ctx *ctx = dfs_ctx_new();
    const char *dir = "tests/fixtures/unet_extra/cifar10_arch";
    dfs_json *cfg = NULL, *index = NULL;
    dfs_model *m = NULL;
    char p[256];
    snprintf(p, sizeof p, "%s/config.json", dir);
    TEST_CHECK(dfs_json_load_file(ctx, p, 1 << 20, &cfg) == DFS_OK);
    TEST_CHECK(dfs_json_load_file(ctx, "tests/fixtures/unet_extra/index.json", 1 << 20, &index) == DFS_OK);
    if (TEST_CHECK(cfg && index && dfs_model_create(ctx, cfg, p, 0, &m) == DFS_OK)) {
        const dfs_json *entry = dfs_json_get(index, "cifar10_arch");
        dfs_model_info info;
        dfs_model_get_info(m, &info);
        TEST_CHECK(info.n_params == (int64_t)dfs_json_get(entry, "n_params")->number && info.n_params == 35746307);
        const dfs_unet *u = m->unet;
        for (size_t i = 0; i < u->n_params; i++)
            test_weights_fill(u->params[i].name, u->params[i].ndim, u->params[i].shape, m->params + u->params[i].off);
        /* the generator agrees with the Python one */
        const dfs_json *checks = dfs_json_get(entry, "weights_check");
        for (size_t k = 0; checks && k < checks->n_items; k++) {
            const dfs_json *c = &checks->items[k];
            const dfs_json *shape = dfs_json_get(c, "shape"), *first = dfs_json_get(c, "first");
            int64_t sh[4];
            size_t n = 1;
            for (size_t d = 0; d < shape->n_items; d++) n *= (size_t)(sh[d] = (int64_t)shape->items[d].number);
            float *w = dfs_malloc(n * sizeof(float));
            test_weights_fill(c->key, (int)shape->n_items, sh, w);
            double sum = 0;
            for (size_t i = 0; i < n; i++) sum += w[i];
            int same = fabs(sum - dfs_json_get(c, "sum")->number) < 1e-9 * (1 + fabs(sum));
            for (size_t i = 0; i < first->n_items; i++) same &= w[i] == (float)first->items[i].number;
            TEST_CHECK(same);
            dfs_free(w);
        }
        dfs_npy x, t, e;
        snprintf(p, sizeof p, "%s/sample.npy", dir);
        TEST_CHECK(dfs_npy_read(ctx, p, &x) == DFS_OK);
        snprintf(p, sizeof p, "%s/timesteps.npy", dir);
        TEST_CHECK(dfs_npy_read(ctx, p, &t) == DFS_OK);
        snprintf(p, sizeof p, "%s/expected.npy", dir);
        TEST_CHECK(dfs_npy_read(ctx, p, &e) == DFS_OK);
        float ts[2] = {(float)((int64_t *)t.data)[0], (float)((int64_t *)t.data)[1]};
        float *out = dfs_malloc(e.numel * sizeof(float));
        dfs_ctx_set_threads(ctx, 2);
        TEST_CHECK(dfs_model_forward(ctx, m, x.data, 2, 32, 32, ts, NULL, out) == DFS_OK);
        double d = 0, mx = 0;
        for (size_t i = 0; i < e.numel; i++) {
            d = fmax(d, fabs(out[i] - ((float *)e.data)[i]));
            mx = fmax(mx, fabs(((float *)e.data)[i]));
        }
        if (!TEST_CHECK(d <= 1e-4 * mx)) fprintf(stderr, "  max|diff| %.3g of max|ref| %.3g\n", d, mx);
        if (getenv("DFS_TEST_VERBOSE")) printf("  cifar10 architecture: max|diff|/max|ref| = %.2e\n", d / mx);
        dfs_free(out);
        dfs_npy_free(&x);
        dfs_npy_free(&t);
        dfs_npy_free(&e);
    }
    dfs_model_free(m);
    dfs_json_free(cfg);
    dfs_json_free(index);
    dfs_ctx_free(ctx);
    return test_summary("cifar_arch");
}
