/* Every sampler against trajectories computed by diffusers (tests/fixtures/sched, and
 * tests/fixtures/sched_extra from tools/gen_sched_extra.py for the options those lack): for each
 * case, the timesteps, sigmas and init_noise_sigma, and every step's model input and sample,
 * replaying the recorded model outputs and noise. Each step starts from diffusers' previous sample
 * (the recorded model outputs belong to it) and is compared within
 * max(1e-5, 1e-6·sqrt(1 + σ_t²))·(1 + max|x|) (tests/fixtures/README.md). Also the beta
 * schedules, add_noise and bad configs. */
#include <string.h>

#include "core/internal.h"
#include "io/json.h"
#include "sched/sched.h"
#include "test.h"

static double worst_rel;

static void fill(const dfs_json *arr, float *out, size_t n) {
    for (size_t i = 0; i < n && arr && i < arr->n_items; i++) out[i] = (float)arr->items[i].number;
}

static int close_enough(const float *got, const dfs_json *ref, size_t n, double sigma) {
    double m = 0, d = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(ref->items[i].number));
    for (size_t i = 0; i < n; i++) {
        const double r = ref->items[i].type == DFS_JSON_NUMBER ? ref->items[i].number : NAN;
        if (isnan(r) && isnan(got[i])) continue; /* diffusers gives NaN there too (bh1 with a final σ of 0) */
        double e = fabs(got[i] - r);
        d = isnan(got[i]) || isnan(r) ? INFINITY : fmax(d, e);
    }
    const double tol = fmax(1e-5, 1e-6 * sqrt(1 + sigma * sigma)) * (1 + m);
    if (d / (1 + m) > worst_rel && d <= tol) worst_rel = d / (1 + m);
    return d <= tol;
}

static void run_case(dfs_ctx *ctx, const dfs_json *c) {
    const char *id = dfs_json_get(c, "id")->string;
    dfs_sched *s = NULL;
    if (!TEST_CHECK(dfs_sched_from_config(ctx, dfs_json_get(c, "config"), id, -1, &s) == DFS_OK)) {
        fprintf(stderr, "  %s: %s\n", id, dfs_errmsg(ctx));
        return;
    }
    const dfs_json *kw = dfs_json_get(c, "step_kwargs");
    const dfs_json *eta = dfs_json_get(kw, "eta"), *clipped = dfs_json_get(kw, "use_clipped_model_output");
    dfs_sched_set_eta(s, eta ? eta->number : 0.0, clipped && clipped->boolean);
    const int N = (int)dfs_json_get(c, "num_inference_steps")->number;
    const dfs_json *ts = dfs_json_get(c, "timesteps"), *sig = dfs_json_get(c, "sigmas"), *steps = dfs_json_get(c, "steps");
    const size_t n = 16;
    float x[16], xin[16], mo[32], noise[16], x0[16];
    int ok = dfs_sched_set_timesteps(ctx, s, N) == DFS_OK && dfs_sched_prepare(ctx, s, n) == DFS_OK;
    ok = ok && dfs_sched_num_steps(s) == (int)ts->n_items;
    /* exact, except that Karras timesteps come from numpy's vectorised pow and log (an ulp apart
     * from libm's) through _sigma_to_t: those within 1e-7 relative */
    for (size_t i = 0; ok && i < ts->n_items; i++)
        ok &= dfs_sched_get_config(s)->use_karras_sigmas
                  ? fabs(dfs_sched_timestep(s, (int)i) - ts->items[i].number) <= 1e-7 * fabs(ts->items[i].number)
                  : dfs_sched_timestep(s, (int)i) == (float)ts->items[i].number;
    if (!TEST_CHECK(ok)) {
        fprintf(stderr, "  %s: timesteps differ (%d steps, first %g vs %g)\n", id, dfs_sched_num_steps(s),
                dfs_sched_num_steps(s) ? dfs_sched_timestep(s, 0) : -1.0, ts->items[0].number);
        dfs_sched_free(s);
        return;
    }
    if (sig && sig->type == DFS_JSON_ARRAY) {
        int same = 1;
        for (size_t i = 0; i < sig->n_items; i++)
            same &= fabs(dfs_sched_sigma(s, (int)i) - sig->items[i].number) <= 1e-6 * fabs(sig->items[i].number);
        if (!TEST_CHECK(same)) fprintf(stderr, "  %s: sigmas differ\n", id);
    }
    TEST_NEAR(dfs_sched_init_noise_sigma(s), dfs_json_get(c, "init_noise_sigma")->number,
              1e-6 * fabs(dfs_json_get(c, "init_noise_sigma")->number));
    fill(dfs_json_get(c, "x_init"), x, n);
    const float *ac = dfs_sched_alphas_cumprod(s);
    for (size_t j = 0; steps && j < steps->n_items; j++) {
        const dfs_json *st = &steps->items[j];
        const int i = (int)dfs_json_get(st, "i")->number;
        const dfs_json *mi = dfs_json_get(st, "model_input"), *nz = dfs_json_get(st, "noise");
        const dfs_json *mo_ref = dfs_json_get(st, "model_output"), *prev = dfs_json_get(st, "prev_sample");
        double sigma = dfs_sched_sigma(s, i);
        if (isnan(sigma)) {
            const float a = ac[(int)dfs_sched_timestep(s, i)];
            sigma = sqrt((1.0 - a) / a);
        }
        dfs_sched_scale_model_input(s, i, x, xin, n);
        if (mi && !TEST_CHECK(close_enough(xin, mi, n, sigma))) fprintf(stderr, "  %s step %d: model input differs\n", id, i);
        memset(noise, 0, sizeof noise);
        if (nz) fill(nz, noise, n);
        TEST_CHECK(!!nz == dfs_sched_step_needs_noise(s, i));
        fill(mo_ref, mo, mo_ref->n_items);
        if (!TEST_CHECK(dfs_sched_step(ctx, s, i, mo, x, noise, x, x0, n, 1) == DFS_OK)) break;
        if (!TEST_CHECK(close_enough(x, prev, n, sigma))) {
            double worst = 0;
            for (size_t k = 0; k < n; k++) worst = fmax(worst, fabs(x[k] - prev->items[k].number));
            fprintf(stderr, "  %s step %d (t=%g): prev_sample differs by up to %.3g (first %.9g vs %.9g)\n", id, i,
                    dfs_sched_timestep(s, i), worst, x[0], prev->items[0].number);
            break;
        }
        fill(prev, x, n);
    }
    dfs_sched_free(s);
}

static void run_variant(dfs_ctx *ctx, const char *file, int *n_cases) {
    char p[256];
    snprintf(p, sizeof p, "tests/fixtures/%s", file);
    dfs_json *j = NULL;
    if (!TEST_CHECK(dfs_json_load_file(ctx, p, 16 << 20, &j) == DFS_OK)) return;
    const dfs_json *cases = dfs_json_get(j, "cases");
    for (size_t i = 0; cases && i < cases->n_items; i++, (*n_cases)++) run_case(ctx, &cases->items[i]);
    dfs_json_free(j);
}

static void test_tables(dfs_ctx *ctx) {
    dfs_json *j = NULL;
    if (!TEST_CHECK(dfs_json_load_file(ctx, "tests/fixtures/sched/common.json", 16 << 20, &j) == DFS_OK)) return;
    const dfs_json *bs = dfs_json_get(j, "beta_schedules");
    for (size_t k = 0; bs && k < bs->n_items; k++) {
        dfs_sched *s = NULL;
        if (!TEST_CHECK(dfs_sched_from_config(ctx, dfs_json_get(&bs->items[k], "config"), "common", DFS_SCHED_DDPM, &s) == DFS_OK))
            continue;
        const dfs_json *ac = dfs_json_get(&bs->items[k], "alphas_cumprod");
        int same = 1;
        for (size_t i = 0; i < ac->n_items; i++) same &= dfs_sched_alphas_cumprod(s)[i] == (float)ac->items[i].number;
        if (!TEST_CHECK(same)) fprintf(stderr, "  %s: alphas_cumprod differ\n", bs->items[k].key);
        dfs_sched_free(s);
    }
    const dfs_json *an = dfs_json_get(j, "add_noise");
    for (size_t k = 0; an && k < an->n_items; k++) {
        const dfs_json *a = &an->items[k];
        dfs_sched *s = NULL;
        const dfs_json *cfg = dfs_json_get(dfs_json_get(bs, dfs_json_get(a, "beta_schedule")->string), "config");
        if (!TEST_CHECK(cfg && dfs_sched_from_config(ctx, cfg, "add_noise", DFS_SCHED_DDPM, &s) == DFS_OK)) continue;
        const dfs_json *tt = dfs_json_get(a, "timesteps");
        const int B = (int)tt->n_items;
        const size_t total = dfs_json_get(a, "original_samples")->n_items, per = total / (size_t)B;
        float *x0 = dfs_malloc(total * 4), *e = dfs_malloc(total * 4), *out = dfs_malloc(total * 4);
        int t[16];
        for (int b = 0; b < B; b++) t[b] = (int)tt->items[b].number;
        fill(dfs_json_get(a, "original_samples"), x0, total);
        fill(dfs_json_get(a, "noise"), e, total);
        dfs_sched_add_noise(s, x0, e, t, B, per, out);
        TEST_CHECK(close_enough(out, dfs_json_get(a, "noisy"), total, 0));
        dfs_sched_velocity(s, x0, e, t, B, per, out);
        TEST_CHECK(close_enough(out, dfs_json_get(a, "velocity"), total, 0));
        dfs_free(x0);
        dfs_free(e);
        dfs_free(out);
        dfs_sched_free(s);
    }
    dfs_json_free(j);
}

static void test_bad_configs(dfs_ctx *ctx) {
    const char *bad[] = {
        "{\"_class_name\": \"DDIMScheduler\", \"beta_schedule\": \"wavy\"}",
        "{\"_class_name\": \"DDIMScheduler\", \"prediction_type\": \"noise\"}",
        "{\"_class_name\": \"DDIMScheduler\", \"num_train_timesteps\": -5}",
        "{\"_class_name\": \"DDPMScheduler\", \"num_train_timesteps\": 3, \"trained_betas\": [0.1, 0.2]}",
        "{\"_class_name\": \"DDPMScheduler\", \"beta_start\": \"small\"}",
        "{\"_class_name\": \"FancyScheduler\"}",
        "{\"_class_name\": \"DDPMScheduler\", \"timestep_spacing\": \"random\"}",
        /* diffusers refuses these two as well */
        "{\"_class_name\": \"DPMSolverMultistepScheduler\", \"algorithm_type\": \"deis\"}",
        "{\"_class_name\": \"UniPCMultistepScheduler\", \"solver_type\": \"euler\"}",
        "[1, 2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dfs_json *j = NULL;
        dfs_sched *s = NULL;
        TEST_CHECK(dfs_json_parse(ctx, bad[i], strlen(bad[i]), "bad.json", &j) == DFS_OK);
        dfs_status st = dfs_sched_from_config(ctx, j, "bad.json", -1, &s);
        if (!TEST_CHECK(st != DFS_OK && s == NULL && strstr(dfs_errmsg(ctx), "bad.json"))) fprintf(stderr, "  accepted: %s\n", bad[i]);
        dfs_sched_free(s);
        dfs_json_free(j);
    }
    dfs_sched *s = NULL;
    TEST_CHECK(dfs_sched_from_name(ctx, "ddim", NULL, "cli", &s) == DFS_OK);
    TEST_CHECK(s && dfs_sched_set_timesteps(ctx, s, 0) == DFS_ERR_ARG);
    TEST_CHECK(s && dfs_sched_set_timesteps(ctx, s, 1001) == DFS_ERR_ARG);
    dfs_sched_free(s);
    TEST_CHECK(dfs_sched_from_name(ctx, "warp-drive", NULL, "cli", &s) == DFS_ERR_ARG);
}

int main(void) {
    dfs_ctx *ctx = dfs_ctx_new();
    static const char *variants[] = {"sched/ddpm.json",  "sched/ddim.json",          "sched/euler.json",
                                     "sched/euler_ancestral.json", "sched/dpmpp_2m.json", "sched/heun.json",
                                     "sched/pndm.json", "sched/lms.json", "sched/unipc.json", "sched_extra/extra.json", "sched_extra/more.json"};
    int n_cases = 0;
    for (size_t i = 0; i < sizeof variants / sizeof *variants; i++) run_variant(ctx, variants[i], &n_cases);
    TEST_CHECK(n_cases >= 200);
    test_tables(ctx);
    test_bad_configs(ctx);
    if (getenv("DFS_TEST_VERBOSE")) printf("  %d cases, worst relative step error %.3g\n", n_cases, worst_rel);
    dfs_ctx_free(ctx);
    return test_summary("sched");
}
