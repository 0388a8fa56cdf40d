/* How fast each deterministic sampler converges to the exact probability-flow ODE solution, with
 * Gaussian data N(μ, s²) where that solution is known: the flow keeps
 * z = (x_t − sqrt(ᾱ_t)·μ)/sqrt(ᾱ_t·s² + 1 − ᾱ_t) fixed, so from the sampler's own starting point the
 * exact endpoint is x̂0* = μ + s·z. The ᾱ-indexed samplers (DDIM, PNDM) use leading spacing with
 * set_alpha_to_one; the σ-indexed ones (Euler, Heun, DPM-Solver++) use Karras sigmas, whose last
 * interval shrinks with the step count (with linear spacing the final Euler step to σ = 0 would
 * make every sampler first order). Prints a markdown table of the RMS error in units of s against
 * the number of steps, and the observed order between 20 and 100 steps.
 * usage: build/bench/sampler_convergence > table.md */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/rng.h"
#include "io/json.h"
#include "model/analytic.h"
#include "sched/sched.h"

#define N_IMG 2000
#define D 16

int main(void) {
    const double mu = 0.3, s = 0.5;
    static const char *const names[] = {"ddim", "euler", "heun", "dpmpp-2m", "dpmpp-3m", "unipc", "pndm"};
    static const int steps[] = {5, 10, 20, 50, 100, 200};
    const int n_steps = sizeof steps / sizeof *steps;
    dfs_ctx *ctx = dfs_ctx_new();
    const char *vp_text = "{\"timestep_spacing\": \"leading\", \"set_alpha_to_one\": true, \"clip_sample\": false, \"skip_prk_steps\": true}";
    const char *ve_text = "{\"use_karras_sigmas\": true}";
    dfs_json *vp = NULL, *ve = NULL;
    dfs_json_parse(ctx, vp_text, strlen(vp_text), "cfg", &vp);
    dfs_json_parse(ctx, ve_text, strlen(ve_text), "cfg", &ve);
    const char *an_text = "{\"_class_name\": \"AnalyticGaussian\", \"mean\": 0.3, \"std\": 0.5, \"sample_shape\": [1, 4, 4]}";
    dfs_json *aj = NULL;
    dfs_analytic *an = NULL;
    dfs_json_parse(ctx, an_text, strlen(an_text), "analytic", &aj);
    dfs_analytic_parse(ctx, aj, "analytic", &an);
    static float x[N_IMG * D], xin[N_IMG * D], mo[N_IMG * D], x0[N_IMG * D], tt[N_IMG], noise[N_IMG * D];
    printf("| sampler | model calls at 20 steps |");
    for (int k = 0; k < n_steps; k++) printf(" %d steps |", steps[k]);
    printf(" observed order |\n|---|---|");
    for (int k = 0; k <= n_steps; k++) printf("---|");
    printf("\n");
    for (size_t q = 0; q < sizeof names / sizeof *names; q++) {
        double err[16];
        int calls = 1;
        for (int k = 0; k < n_steps; k++) {
            dfs_sched *sc = NULL;
            const int alpha_indexed = strcmp(names[q], "ddim") == 0 || strcmp(names[q], "pndm") == 0;
            if (dfs_sched_from_name(ctx, names[q], alpha_indexed ? vp : ve, "cfg", &sc) || dfs_sched_set_timesteps(ctx, sc, steps[k]) ||
                dfs_sched_prepare(ctx, sc, (size_t)N_IMG * D)) {
                fprintf(stderr, "%s: %s\n", names[q], dfs_errmsg(ctx));
                return 1;
            }
            an->alphas_cumprod = dfs_sched_alphas_cumprod(sc);
            an->T = dfs_sched_get_config(sc)->num_train_timesteps;
            an->prediction = dfs_sched_get_config(sc)->prediction_type;
            dfs_rng *r = dfs_rng_new(0);
            dfs_rng_randn(r, x, (size_t)N_IMG * D);
            dfs_rng_free(r);
            const float init = dfs_sched_init_noise_sigma(sc);
            for (size_t i = 0; i < (size_t)N_IMG * D; i++) x[i] *= init;
            /* the starting point in VP terms: Euler and Heun keep x in σ (VE) scale */
            double a0;
            const float sg0 = dfs_sched_sigma(sc, 0);
            if (!isnan(sg0)) a0 = 1.0 / (1.0 + (double)sg0 * sg0);
            else a0 = an->alphas_cumprod[(int)dfs_sched_timestep(sc, 0)];
            const dfs_sched_kind kind = dfs_sched_get_config(sc)->kind;
            const double vp_scale = kind == DFS_SCHED_EULER || kind == DFS_SCHED_HEUN ? sqrt(a0) : 1.0;
            const int K = dfs_sched_num_steps(sc);
            if (steps[k] == 20) calls = K;
            double e2 = 0;
            static float start[N_IMG * D];
            memcpy(start, x, sizeof start);
            for (int i = 0; i < K; i++) {
                dfs_sched_scale_model_input(sc, i, x, xin, (size_t)N_IMG * D);
                for (int b = 0; b < N_IMG; b++) tt[b] = dfs_sched_timestep(sc, i);
                dfs_analytic_forward(an, xin, N_IMG, tt, mo);
                dfs_sched_step(ctx, sc, i, mo, x, noise, x, x0, (size_t)N_IMG * D, N_IMG);
            }
            for (size_t i = 0; i < (size_t)N_IMG * D; i++) {
                const double xv = start[i] * vp_scale;
                const double z = (xv - sqrt(a0) * mu) / sqrt(a0 * s * s + 1 - a0);
                const double d = (x[i] - (mu + s * z)) / s;
                e2 += d * d;
            }
            err[k] = sqrt(e2 / ((double)N_IMG * D));
            dfs_sched_free(sc);
        }
        printf("| %s | %d |", names[q], calls);
        for (int k = 0; k < n_steps; k++) printf(" %.2e |", err[k]);
        printf(" %.2f |\n", log(err[2] / err[4]) / log(5.0));
    }
    dfs_analytic_free(an);
    dfs_json_free(aj);
    dfs_json_free(vp);
    dfs_json_free(ve);
    dfs_ctx_free(ctx);
    return 0;
}
