/* Analytic denoisers as ground truth: with Gaussian data N(0.3, 0.5²), DDPM and DDIM at 1000
 * steps reproduce the data's mean and standard deviation within 2% over 10^4 samples; with a
 * two-component mixture, the samples split between the components by their weights. Also the
 * closed form itself against the Gaussian's own formula, and bad configs. */
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "model/model.h"
#include "test.h"

static char dir[256];

static dfs_model *load(dfs_ctx *ctx, const char *config) {
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    fputs(config, f);
    fclose(f);
    dfs_model_params mp;
    dfs_model_params_default(&mp);
    mp.path = dir;
    dfs_model *m = NULL;
    dfs_status st = dfs_model_load(ctx, &mp, &m);
    return st ? NULL : m;
}

static void moments(const float *x, size_t n, double *mean, double *sd) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    *mean = s / n;
    for (size_t i = 0; i < n; i++) s2 += (x[i] - *mean) * (x[i] - *mean);
    *sd = sqrt(s2 / n);
}

int main(void) {
    dfs_ctx *ctx = dfs_ctx_new();
    snprintf(dir, sizeof dir, "/tmp/diffuse-analytic.%d", (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    TEST_CHECK(system(cmd) == 0);
    const int N = 10000;
    float *out = dfs_malloc(sizeof(float) * 4 * N);
    dfs_model *m = load(ctx, "{\"_class_name\": \"AnalyticGaussian\", \"mean\": 0.3, \"std\": 0.5, \"sample_shape\": [1, 2, 2]}");
    if (TEST_CHECK(m != NULL)) {
        static const char *const scheds[] = {"ddpm", "ddim"};
        for (int k = 0; k < 2; k++) {
            dfs_sample_params sp;
            dfs_sample_params_default(&sp);
            sp.scheduler = scheds[k];
            sp.steps = 1000;
            sp.num_images = N;
            sp.seed = 3;
            char cfg[256];
            snprintf(cfg, sizeof cfg, "%s/sched.json", dir);
            FILE *f = fopen(cfg, "w");
            fputs("{\"clip_sample\": false}", f); /* clipping would bias a N(0.3, 0.5²) sample */
            fclose(f);
            sp.scheduler_config = cfg;
            if (!TEST_CHECK(dfs_sample(ctx, m, &sp, out) == DFS_OK)) {
                fprintf(stderr, "  %s\n", dfs_errmsg(ctx));
                continue;
            }
            double mean, sd;
            moments(out, 4 * (size_t)N, &mean, &sd);
            if (!TEST_CHECK(fabs(mean - 0.3) < 0.02 * 0.5 && fabs(sd - 0.5) < 0.02 * 0.5))
                fprintf(stderr, "  %s: mean %.4f (0.3), std %.4f (0.5)\n", scheds[k], mean, sd);
            if (getenv("DFS_TEST_VERBOSE")) printf("  %s, 1000 steps: mean %.4f, std %.4f\n", scheds[k], mean, sd);
        }
        /* the closed form at t = 500.5: ᾱ interpolated, ε̂ = sqrt(1−ᾱ)(x − sqrt(ᾱ)μ)/(ᾱs² + 1 − ᾱ) */
        float ac[1000], x[4] = {1.0f, -0.5f, 0.0f, 2.0f}, e[4], t = 500.5f;
        for (int i = 0; i < 1000; i++) ac[i] = 1.0f - (float)i / 1000.0f;
        dfs_model_set_schedule(m, ac, 1000, 0);
        TEST_CHECK(dfs_model_forward(ctx, m, x, 1, 2, 2, &t, NULL, e) == DFS_OK);
        const double a = 0.5 * ((double)ac[500] + ac[501]);
        double worst = 0;
        for (int i = 0; i < 4; i++) worst = fmax(worst, fabs(e[i] - sqrt(1 - a) * (x[i] - sqrt(a) * 0.3) / (a * 0.25 + 1 - a)));
        TEST_CHECK(worst < 1e-6);
        dfs_model_set_schedule(m, NULL, 0, 0);
        dfs_model_free(m);
    }
    m = load(ctx, "{\"_class_name\": \"AnalyticGaussianMixture\", \"means\": [-1, 1], \"stds\": [0.2, 0.2],"
                  " \"weights\": [0.3, 0.7], \"sample_shape\": [1, 2, 2]}");
    if (TEST_CHECK(m != NULL)) {
        dfs_sample_params sp;
        dfs_sample_params_default(&sp);
        sp.scheduler = "dpmpp-2m";
        sp.steps = 50;
        sp.num_images = N;
        TEST_CHECK(dfs_sample(ctx, m, &sp, out) == DFS_OK);
        int pos = 0;
        for (int i = 0; i < N; i++) pos += out[4 * i] > 0;
        if (!TEST_CHECK(fabs(pos / (double)N - 0.7) < 0.02)) fprintf(stderr, "  mixture: %.3f positive (0.7)\n", pos / (double)N);
        dfs_model_free(m);
    }
    const char *bad[] = {
        "{\"_class_name\": \"AnalyticGaussian\", \"mean\": 0.3, \"std\": -1, \"sample_shape\": [1, 2, 2]}",
        "{\"_class_name\": \"AnalyticGaussian\", \"mean\": [1, 2], \"std\": 1, \"sample_shape\": [1, 2, 2]}",
        "{\"_class_name\": \"AnalyticGaussian\", \"mean\": 0, \"std\": 1, \"sample_shape\": [1, 2]}",
        "{\"_class_name\": \"AnalyticGaussianMixture\", \"means\": [0, 1], \"stds\": [1], \"weights\": [1, 1], \"sample_shape\": [1, 1, 1]}",
        "{\"_class_name\": \"AnalyticGaussianMixture\", \"means\": [0], \"stds\": [1], \"weights\": [0], \"sample_shape\": [1, 1, 1]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dfs_model *b = load(ctx, bad[i]);
        if (!TEST_CHECK(b == NULL && strstr(dfs_errmsg(ctx), "config.json"))) fprintf(stderr, "  accepted: %s\n", bad[i]);
        dfs_model_free(b);
    }
    dfs_free(out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    TEST_CHECK(system(cmd) == 0);
    dfs_ctx_free(ctx);
    return test_summary("analytic");
}
