/* The torch.randn-compatible generator against PyTorch itself:
 *  - tests/fixtures/rng/randn.json (tools/gen_rng_ref.py): for several seeds (up to 2^63 + 12345)
 *    and tensor sizes 1, 15, 16, 17, 1000 and 12288, the first 10^6 numbers of repeated
 *    torch.randn(size) calls, by digest, bit for bit;
 *  - the noise diffusers' DDPMPipeline drew with torch 1.13.1 (tests/fixtures/pipeline/ddpm_10):
 *    the initial (2, 3, 16, 16) noise and each step's noise, in the pipeline's order. */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/rng.h"
#include "io/json.h"
#include "io/npy.h"
#include "test.h"

static uint64_t fnv1a64(const float *v, size_t n) {
    uint64_t h = 0xCBF29CE484222325ull;
    const unsigned char *p = (const unsigned char *)v;
    for (size_t i = 0; i < n * 4; i++) {
        h ^= p[i];
        h *= 0x100000001B3ull;
    }
    return h;
}

static void test_streams(dfs_ctx *ctx) {
    dfs_json *j = NULL;
    if (!TEST_CHECK(dfs_json_load_file(ctx, "tests/fixtures/rng/randn.json", 1 << 20, &j) == DFS_OK)) return;
    const dfs_json *cases = dfs_json_get(j, "cases");
    TEST_CHECK(cases && cases->n_items >= 30);
    dfs_rng *r = dfs_rng_new(0);
    float *buf = dfs_malloc(sizeof(float) * (1000000 + 20000));
    for (size_t c = 0; cases && c < cases->n_items; c++) {
        const dfs_json *k = &cases->items[c];
        const uint64_t seed = strtoull(dfs_json_get(k, "seed")->string, NULL, 10);
        const size_t size = (size_t)dfs_json_get(k, "size")->number, count = (size_t)dfs_json_get(k, "count")->number;
        dfs_rng_seed(r, seed);
        size_t got = 0;
        while (got < count) {
            dfs_rng_randn(r, buf + got, size);
            got += size;
        }
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fnv1a64(buf, count));
        const dfs_json *first = dfs_json_get(k, "first");
        int same = strcmp(hex, dfs_json_get(k, "fnv1a64")->string) == 0;
        for (size_t i = 0; first && i < first->n_items; i++) same &= buf[i] == (float)first->items[i].number;
        if (!TEST_CHECK(same)) fprintf(stderr, "  seed %llu size %zu: stream differs from torch\n", (unsigned long long)seed, size);
    }
    dfs_free(buf);
    dfs_rng_free(r);
    dfs_json_free(j);
}

static void test_pipeline_noise(dfs_ctx *ctx) {
    dfs_npy init, steps;
    if (!TEST_CHECK(dfs_npy_read(ctx, "tests/fixtures/pipeline/ddpm_10/initial_noise.npy", &init) == DFS_OK &&
                    dfs_npy_read(ctx, "tests/fixtures/pipeline/ddpm_10/step_noise.npy", &steps) == DFS_OK))
        return;
    dfs_rng *r = dfs_rng_new(0);
    float *buf = dfs_malloc(init.numel * sizeof(float));
    dfs_rng_randn(r, buf, init.numel);
    TEST_CHECK(memcmp(buf, init.data, init.numel * 4) == 0);
    const size_t per = init.numel, n_steps = steps.numel / per;
    int all = 1;
    for (size_t s = 0; s < n_steps; s++) {
        dfs_rng_randn(r, buf, per);
        all &= memcmp(buf, (float *)steps.data + s * per, per * 4) == 0;
    }
    TEST_CHECK(n_steps == 9 && all);
    dfs_free(buf);
    dfs_rng_free(r);
    dfs_npy_free(&init);
    dfs_npy_free(&steps);
}

/* A uniform of exactly 0 in the first half of a block of 16 makes the Box-Muller radius −0;
 * torch's x·std + mean returns +0 there. Build the state whose next output is 0 (tempering maps
 * 0 to 0) and check the sign. */
static void test_zero_uniform(void) {
    dfs_rng *r = dfs_rng_new(1);
    uint32_t w[DFS_RNG_STATE_WORDS];
    dfs_rng_save(r, w);
    w[0] = 0;
    w[624] = 0; /* the next output is word 0, untwisted */
    TEST_CHECK(dfs_rng_load(r, w));
    float out[16];
    dfs_rng_randn(r, out, 16);
    TEST_CHECK(out[0] == 0.0f && !signbit(out[0]) && out[8] == 0.0f && !signbit(out[8]));
    dfs_rng_free(r);
}

int main(void) {
    dfs_ctx *ctx = dfs_ctx_new();
    test_zero_uniform();
    test_streams(ctx);
    test_pipeline_noise(ctx);
    dfs_ctx_free(ctx);
    return test_summary("rng");
}
