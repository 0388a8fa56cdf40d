/* End to end against diffusers' DDPMPipeline and DDIMPipeline (tests/fixtures/pipeline, 10 steps,
 * batch 2, generator = torch.manual_seed(0), the tiny UNet): the sample after every step and the
 * final sample, as ‖ours − reference‖ / ‖reference‖ <= 1e-4 (element-wise differences grow with
 * DDIM's 1/sqrt(ᾱ) at high noise: 1.6e-4 at most here, from UNet differences of 1.3e-6), and
 * the 8-bit images. */
#include <string.h>

#include "core/internal.h"
#include "io/npy.h"
#include "test.h"

typedef struct traj {
    float *steps; /* (10, 2·per) */
    size_t per;
    int n;
} traj;

static int on_step(void *user, int first, int batch, int step, int n_steps, float t, const float *x, const float *x0) {
    traj *tr = user;
    if (step >= 0 && step < 10) memcpy(tr->steps + (size_t)step * 2 * tr->per, x, sizeof(float) * tr->per * 2);
    tr->n += step >= 0;
    return 0;
}

static double norm_rel(const float *a, const float *b, size_t n) {
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    return sqrt(d / r);
}

static void check(dfs_ctx *ctx, dfs_model *m, const char *name, const char *sched_cfg) {
    char p[256];
    dfs_npy fin, prev, u8;
    snprintf(p, sizeof p, "tests/fixtures/pipeline/%s/final_sample_model_space.npy", name);
    TEST_CHECK(dfs_npy_read(ctx, p, &fin) == DFS_OK);
    snprintf(p, sizeof p, "tests/fixtures/pipeline/%s/prev_samples.npy", name);
    TEST_CHECK(dfs_npy_read(ctx, p, &prev) == DFS_OK);
    snprintf(p, sizeof p, "tests/fixtures/pipeline/%s/image_uint8.npy", name);
    TEST_CHECK(dfs_npy_read(ctx, p, &u8) == DFS_OK);
    const size_t per = 3 * 16 * 16;
    traj tr = {dfs_calloc(10 * 2 * per, sizeof(float)), per, 0};
    float *out = dfs_malloc(2 * per * sizeof(float));
    dfs_sample_params sp;
    dfs_sample_params_default(&sp);
    sp.scheduler_config = sched_cfg;
    sp.steps = 10;
    sp.num_images = 2;
    sp.seed = 0;
    sp.callback = on_step;
    sp.user = &tr;
    if (TEST_CHECK(dfs_sample(ctx, m, &sp, out) == DFS_OK)) {
        TEST_CHECK(tr.n == 10);
        double worst = 0;
        for (int s = 0; s < 10; s++)
            worst = fmax(worst, norm_rel(tr.steps + (size_t)s * 2 * per, (float *)prev.data + (size_t)s * 2 * per, 2 * per));
        if (!TEST_CHECK(worst <= 1e-4)) fprintf(stderr, "  %s: a step differs by %.3g\n", name, worst);
        const double e = norm_rel(out, fin.data, 2 * per);
        if (!TEST_CHECK(e <= 1e-4)) fprintf(stderr, "  %s: final sample differs by %.3g\n", name, e);
        /* 8-bit images: diffusers' post-processing; the few pixels on a rounding boundary may flip */
        size_t same = 0;
        const uint8_t *ref = u8.data; /* (N, H, W, C) */
        for (int b = 0; b < 2; b++)
            for (int c = 0; c < 3; c++)
                for (int i = 0; i < 256; i++) {
                    float v = out[(size_t)b * per + (size_t)c * 256 + i] / 2.0f + 0.5f;
                    v = v < 0 ? 0 : v > 1 ? 1 : v;
                    same += (uint8_t)nearbyintf(v * 255.0f) == ref[((size_t)b * 256 + i) * 3 + c];
                }
        TEST_CHECK(same >= 2 * per * 99 / 100);
        if (getenv("DFS_TEST_VERBOSE"))
            printf("  %s: worst step %.2e, final %.2e, %zu of %zu pixels identical\n", name, worst, e, same, 2 * per);
    } else {
        fprintf(stderr, "  %s\n", dfs_errmsg(ctx));
    }
    dfs_free(tr.steps);
    dfs_free(out);
    dfs_npy_free(&fin);
    dfs_npy_free(&prev);
    dfs_npy_free(&u8);
}

int main(void) {
    dfs_ctx *ctx = dfs_ctx_new();
    dfs_ctx_set_threads(ctx, 2);
    dfs_model_params mp;
    dfs_model_params_default(&mp);
    mp.path = "tests/fixtures/unet/tiny/model";
    dfs_model *m = NULL;
    if (TEST_CHECK(dfs_model_load(ctx, &mp, &m) == DFS_OK)) {
        check(ctx, m, "ddpm_10", "tests/fixtures/pipeline/ddpm_10/scheduler/scheduler_config.json");
        check(ctx, m, "ddim_10", "tests/fixtures/pipeline/ddim_10/scheduler/scheduler_config.json");
        /* bad arguments */
        dfs_sample_params sp;
        dfs_sample_params_default(&sp);
        float out[768];
        int64_t label = 3;
        sp.steps = 0;
        TEST_CHECK(dfs_sample(ctx, m, &sp, out) == DFS_ERR_ARG);
        sp.steps = 2000;
        TEST_CHECK(dfs_sample(ctx, m, &sp, out) == DFS_ERR_ARG);
        sp.steps = 5;
        sp.class_labels = &label;
        TEST_CHECK(dfs_sample(ctx, m, &sp, out) == DFS_ERR_ARG && strstr(dfs_errmsg(ctx), "unconditional"));
        sp.class_labels = NULL;
        sp.scheduler = "nonsense";
        TEST_CHECK(dfs_sample(ctx, m, &sp, out) == DFS_ERR_ARG && strstr(dfs_errmsg(ctx), "nonsense"));
        sp.scheduler = NULL;
        sp.height = 15;
        sp.width = 16;
        TEST_CHECK(dfs_sample(ctx, m, &sp, out) == DFS_ERR_SHAPE);
        /* the same seed gives the same bytes whatever the thread count */
        float a[768], b[768];
        sp.height = sp.width = 0;
        sp.scheduler = "euler-a";
        sp.steps = 4;
        dfs_ctx_set_threads(ctx, 1);
        TEST_CHECK(dfs_sample(ctx, m, &sp, a) == DFS_OK);
        dfs_ctx_set_threads(ctx, 2);
        TEST_CHECK(dfs_sample(ctx, m, &sp, b) == DFS_OK);
        TEST_CHECK(memcmp(a, b, sizeof a) == 0);
    }
    dfs_model_free(m);
    dfs_ctx_free(ctx);
    return test_summary("pipeline");
}
