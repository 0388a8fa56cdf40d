/* The schedule core: config parsing with each class's defaults, betas and ᾱ built the way
 * diffusers builds them, timestep spacing, and dispatch to the sampler families. */
#include <math.h>
#include <string.h>

#include "sched/sched_internal.h"

static const struct {
    const char *class_name;
    dfs_sched_kind kind;
    const dfs_sched_ops *ops;
} classes[] = {
    {"DDPMScheduler", DFS_SCHED_DDPM, &dfs_sched_ddpm_ops},
    {"DDIMScheduler", DFS_SCHED_DDIM, &dfs_sched_ddim_ops},
    {"PNDMScheduler", DFS_SCHED_PNDM, &dfs_sched_pndm_ops},
    {"DPMSolverMultistepScheduler", DFS_SCHED_DPMPP, &dfs_sched_dpmpp_ops},
    {"EulerDiscreteScheduler", DFS_SCHED_EULER, &dfs_sched_euler_ops},
    {"EulerAncestralDiscreteScheduler", DFS_SCHED_EULER_A, &dfs_sched_euler_a_ops},
    {"HeunDiscreteScheduler", DFS_SCHED_HEUN, &dfs_sched_heun_ops},
    {"LMSDiscreteScheduler", DFS_SCHED_LMS, &dfs_sched_lms_ops},
    {"UniPCMultistepScheduler", DFS_SCHED_UNIPC, &dfs_sched_unipc_ops},
};
#define N_CLASSES (sizeof classes / sizeof *classes)

static const dfs_sched_ops *ops_of(const dfs_sched *s) {
    for (size_t i = 0; i < N_CLASSES; i++)
        if (classes[i].kind == s->cfg.kind) return classes[i].ops;
    return NULL;
}

const char *dfs_sched_name(const dfs_sched *s) {
    for (size_t i = 0; i < N_CLASSES; i++)
        if (classes[i].kind == s->cfg.kind) return classes[i].class_name;
    return "?";
}

const dfs_sched_config *dfs_sched_get_config(const dfs_sched *s) { return &s->cfg; }
const float *dfs_sched_alphas_cumprod(const dfs_sched *s) { return s->alphas_cumprod; }

void dfs_sched_set_eta(dfs_sched *s, double eta, int use_clipped_model_output) {
    s->cfg.eta = eta;
    s->cfg.use_clipped_model_output = use_clipped_model_output;
}

/* ---- config ---- */

typedef struct reader { dfs_ctx *ctx; const dfs_json *j; const char *what; } reader;

static const dfs_json *get(const reader *r, const char *key) {
    const dfs_json *v = r->j ? dfs_json_get(r->j, key) : NULL;
    return v && v->type != DFS_JSON_NULL ? v : NULL;
}

static dfs_status bad(const reader *r, const char *key, const char *why) {
    return dfs_fail(r->ctx, DFS_ERR_FORMAT, "%s: scheduler field '%s' %s", r->what, key, why);
}

/* A number, also accepting the strings "-Infinity", "Infinity" and "NaN" that some writers use. */
static dfs_status get_num(const reader *r, const char *key, double *out) {
    const dfs_json *v = get(r, key);
    if (!v) return DFS_OK;
    if (v->type == DFS_JSON_NUMBER) *out = v->number;
    else if (v->type == DFS_JSON_STRING && strcmp(v->string, "-Infinity") == 0) *out = -INFINITY;
    else if (v->type == DFS_JSON_STRING && strcmp(v->string, "Infinity") == 0) *out = INFINITY;
    else return bad(r, key, "must be a number");
    return DFS_OK;
}

static dfs_status get_int(const reader *r, const char *key, int lo, int hi, int *out) {
    const dfs_json *v = get(r, key);
    if (!v) return DFS_OK;
    if (!dfs_json_is_int(v) || v->number < lo || v->number > hi)
        return dfs_fail(r->ctx, DFS_ERR_FORMAT, "%s: scheduler field '%s' must be an integer in [%d, %d]", r->what, key,
                        lo, hi);
    *out = (int)v->number;
    return DFS_OK;
}

static dfs_status get_bool(const reader *r, const char *key, int *out) {
    const dfs_json *v = get(r, key);
    if (!v) return DFS_OK;
    if (v->type != DFS_JSON_BOOL) return bad(r, key, "must be true or false");
    *out = v->boolean;
    return DFS_OK;
}

/* A string field that must be one of names[]; *out is its index, unchanged when missing. */
static dfs_status get_enum(const reader *r, const char *key, const char *const *names, int n, int *out) {
    const dfs_json *v = get(r, key);
    if (!v) return DFS_OK;
    if (v->type != DFS_JSON_STRING) return bad(r, key, "must be a string");
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], v->string) == 0) {
            *out = i;
            return DFS_OK;
        }
    return dfs_fail(r->ctx, DFS_ERR_UNSUPPORTED, "%s: scheduler field '%s' = \"%s\" is not supported", r->what, key,
                    v->string);
}

static void defaults(dfs_sched_config *c, dfs_sched_kind kind) {
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->num_train_timesteps = 1000;
    c->beta_start = 0.0001;
    c->beta_end = 0.02;
    c->beta_schedule = DFS_BETA_LINEAR;
    c->prediction_type = DFS_PRED_EPSILON;
    c->timestep_spacing = DFS_SPACING_LINSPACE;
    c->variance_type = DFS_VAR_FIXED_SMALL;
    c->clip_sample_range = 1.0;
    c->dynamic_thresholding_ratio = 0.995;
    c->sample_max_value = 1.0;
    c->solver_order = 2;
    c->lower_order_final = 1;
    c->final_sigmas_zero = 1;
    c->lambda_min_clipped = -INFINITY;
    c->predict_x0 = 1;
    switch (kind) {
    case DFS_SCHED_DDPM: c->clip_sample = 1; c->timestep_spacing = DFS_SPACING_LEADING; break;
    case DFS_SCHED_DDIM:
        c->clip_sample = 1;
        c->set_alpha_to_one = 1;
        c->timestep_spacing = DFS_SPACING_LEADING;
        break;
    case DFS_SCHED_PNDM: c->timestep_spacing = DFS_SPACING_LEADING; break;
    case DFS_SCHED_HEUN: c->beta_start = 0.00085; c->beta_end = 0.012; break;
    default: break;
    }
}

static dfs_status parse(dfs_ctx *ctx, const dfs_json *j, const char *what, dfs_sched_config *c) {
    reader r = {ctx, j, what};
    dfs_status st;
    static const char *const schedules[] = {"linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid"};
    static const char *const preds[] = {"epsilon", "v_prediction", "sample"};
    static const char *const spacings[] = {"leading", "trailing", "linspace"};
    static const char *const variances[] = {"fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log",
                                            "learned", "learned_range"};
    /* names past the second are diffusers' aliases, renamed as its constructors do: "deis" is
     * dpmsolver++; DPM-Solver reads bh1/bh2/logrho as midpoint, UniPC reads midpoint/heun/logrho
     * as bh2 (so a config converts from one class to the other) */
    static const char *const algos[] = {"dpmsolver++", "dpmsolver", "deis"};
    static const char *const dpm_solvers[] = {"midpoint", "heun", "logrho", "bh1", "bh2"};
    static const char *const unipc_solvers[] = {"bh2", "bh1", "midpoint", "heun", "logrho"};
    static const char *const finals[] = {"sigma_min", "zero"};
    static const char *const interps[] = {"linear"};
    static const char *const ttypes[] = {"discrete"};
    int e = (int)c->beta_schedule, p = (int)c->prediction_type, sp = (int)c->timestep_spacing, v = (int)c->variance_type;
    int alg = c->algorithm_dpmsolver, fin = c->final_sigmas_zero, dummy = 0;
    if ((st = get_int(&r, "num_train_timesteps", 1, 100000, &c->num_train_timesteps)) ||
        (st = get_num(&r, "beta_start", &c->beta_start)) || (st = get_num(&r, "beta_end", &c->beta_end)) ||
        (st = get_enum(&r, "beta_schedule", schedules, 4, &e)) || (st = get_enum(&r, "prediction_type", preds, 3, &p)) ||
        (st = get_enum(&r, "timestep_spacing", spacings, 3, &sp)) ||
        (st = get_int(&r, "steps_offset", 0, 100000, &c->steps_offset)) ||
        (st = get_bool(&r, "rescale_betas_zero_snr", &c->rescale_betas_zero_snr)) ||
        (st = get_bool(&r, "clip_sample", &c->clip_sample)) ||
        (st = get_num(&r, "clip_sample_range", &c->clip_sample_range)) ||
        (st = get_bool(&r, "thresholding", &c->thresholding)) ||
        (st = get_num(&r, "dynamic_thresholding_ratio", &c->dynamic_thresholding_ratio)) ||
        (st = get_num(&r, "sample_max_value", &c->sample_max_value)) ||
        (st = get_bool(&r, "set_alpha_to_one", &c->set_alpha_to_one)) ||
        (st = get_bool(&r, "skip_prk_steps", &c->skip_prk_steps)) ||
        (st = get_bool(&r, "use_karras_sigmas", &c->use_karras_sigmas)) ||
        (st = get_int(&r, "solver_order", 1, 3, &c->solver_order)) ||
        (st = get_enum(&r, "algorithm_type", algos, 3, &alg)) ||
        (st = get_bool(&r, "lower_order_final", &c->lower_order_final)) ||
        (st = get_bool(&r, "euler_at_final", &c->euler_at_final)) ||
        (st = get_enum(&r, "final_sigmas_type", finals, 2, &fin)) ||
        (st = get_num(&r, "lambda_min_clipped", &c->lambda_min_clipped)) ||
        (st = get_bool(&r, "predict_x0", &c->predict_x0)) ||
        (st = get_enum(&r, "interpolation_type", interps, 1, &dummy)) ||
        (st = get_enum(&r, "timestep_type", ttypes, 1, &dummy)))
        return st;
    if (c->kind == DFS_SCHED_DDPM && (st = get_enum(&r, "variance_type", variances, 6, &v))) return st;
    int solver = c->kind == DFS_SCHED_UNIPC ? c->unipc_bh1 : c->solver_heun;
    if ((st = get_enum(&r, "solver_type", c->kind == DFS_SCHED_UNIPC ? unipc_solvers : dpm_solvers, 5, &solver))) return st;
    if (solver > 1) solver = 0;
    const int deis = alg == 2;
    if (deis) alg = 0;
    if (c->kind == DFS_SCHED_UNIPC) c->unipc_bh1 = solver;
    else c->solver_heun = solver;
    static const char *const unsupported_true[] = {"use_exponential_sigmas", "use_beta_sigmas", "use_flow_sigmas",
                                                   "use_dynamic_shifting", "use_lu_lambdas"};
    for (size_t k = 0; k < sizeof unsupported_true / sizeof *unsupported_true; k++) {
        int flag = 0;
        if ((st = get_bool(&r, unsupported_true[k], &flag))) return st;
        if (flag)
            return dfs_fail(ctx, DFS_ERR_UNSUPPORTED, "%s: scheduler field '%s' = true is not supported", what,
                            unsupported_true[k]);
    }
    const dfs_json *dc = get(&r, "disable_corrector"), *sp_ = get(&r, "solver_p");
    if ((dc && (dc->type != DFS_JSON_ARRAY || dc->n_items > 0)) || sp_)
        return dfs_fail(ctx, DFS_ERR_UNSUPPORTED, "%s: UniPC's disable_corrector and solver_p are not supported", what);
    c->beta_schedule = (dfs_beta_schedule)e;
    c->prediction_type = (dfs_pred)p;
    c->timestep_spacing = (dfs_spacing)sp;
    c->variance_type = (dfs_variance)v;
    c->algorithm_dpmsolver = alg;
    c->final_sigmas_zero = fin;
    if (c->kind == DFS_SCHED_DPMPP && (c->algorithm_dpmsolver || deis) && c->final_sigmas_zero)
        return dfs_fail(ctx, DFS_ERR_UNSUPPORTED, "%s: final_sigmas_type \"zero\" does not work with algorithm_type "
                        "\"%s\" (diffusers refuses it too): use \"sigma_min\"", what, deis ? "deis" : "dpmsolver");
    if (!(c->beta_start > 0 && c->beta_end > 0 && c->beta_start < 1 && c->beta_end < 1))
        return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: beta_start and beta_end must be in (0, 1)", what);
    const dfs_json *tb = get(&r, "trained_betas");
    if (tb) {
        if (tb->type != DFS_JSON_ARRAY || (int)tb->n_items != c->num_train_timesteps)
            return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: trained_betas must be a list of num_train_timesteps (%d) numbers", what,
                            c->num_train_timesteps);
        c->trained_betas = dfs_malloc(sizeof(float) * tb->n_items);
        if (!c->trained_betas) return dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory", what);
        for (size_t i = 0; i < tb->n_items; i++) {
            const double b = tb->items[i].number;
            if (tb->items[i].type != DFS_JSON_NUMBER || !(b > 0 && b < 1))
                return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: trained_betas[%zu] must be a number in (0, 1)", what, i);
            c->trained_betas[i] = (float)b;
        }
        c->beta_schedule = DFS_BETA_TRAINED;
    }
    return DFS_OK;
}

/* ---- betas ---- */

/* torch.linspace(a, b, N) in float32, as the ATen kernel of PyTorch 1.13 (which made the
 * reference fixtures) computes it: vectors of 8 starting at start + step·i (or, past the middle,
 * end − step·(N − 1 − i)), that base computed with a fused multiply-add, then base + j·step. */
static void torch_linspace(float *out, double a, double b, int N) {
    const float start = (float)a, end = (float)b;
    if (N == 1) {
        out[0] = start;
        return;
    }
    const float step = (end - start) / (float)(N - 1);
    const int half = N / 2, full = N / 8 * 8;
    for (int i0 = 0; i0 < full; i0 += 8) {
        const float base = i0 < half ? fmaf(step, (float)i0, start) : fmaf(-step, (float)(N - i0 - 1), end);
        for (int j = 0; j < 8; j++) out[i0 + j] = base + (float)j * step;
    }
    for (int i = full; i < N; i++) out[i] = i < half ? start + step * (float)i : end - step * (float)(N - i - 1);
}

static double alpha_bar_cos(double t) {
    const double c = cos((t + 0.008) / 1.008 * 3.14159265358979323846 / 2);
    return c * c;
}

/* Rescales betas to zero terminal SNR (Lin et al. 2023), in float32 as diffusers does. */
static void rescale_zero_snr(float *betas, int T) {
    float *sq = dfs_malloc(sizeof(float) * (size_t)T);
    if (!sq) return;
    double acc = 1.0;
    for (int i = 0; i < T; i++) {
        acc *= (double)(1.0f - betas[i]);
        sq[i] = sqrtf((float)acc);
    }
    const float s0 = sq[0], sT = sq[T - 1];
    for (int i = 0; i < T; i++) {
        sq[i] = sq[i] - sT;
        sq[i] = sq[i] * (s0 / (s0 - sT));
    }
    float prev = 0;
    for (int i = 0; i < T; i++) {
        const float ab = sq[i] * sq[i];
        const float alpha = i == 0 ? ab : ab / prev;
        betas[i] = 1.0f - alpha;
        prev = ab;
    }
    dfs_free(sq);
}

static dfs_status build_tables(dfs_ctx *ctx, dfs_sched *s) {
    const dfs_sched_config *c = &s->cfg;
    const int T = c->num_train_timesteps;
    s->betas = dfs_malloc(sizeof(float) * (size_t)T);
    s->alphas = dfs_malloc(sizeof(float) * (size_t)T);
    s->alphas_cumprod = dfs_malloc(sizeof(float) * (size_t)T);
    if (!s->betas || !s->alphas || !s->alphas_cumprod) return dfs_fail(ctx, DFS_ERR_NOMEM, "scheduler: out of memory");
    switch (c->beta_schedule) {
    case DFS_BETA_LINEAR: torch_linspace(s->betas, c->beta_start, c->beta_end, T); break;
    case DFS_BETA_SCALED_LINEAR:
        torch_linspace(s->betas, sqrt(c->beta_start), sqrt(c->beta_end), T);
        for (int i = 0; i < T; i++) s->betas[i] = s->betas[i] * s->betas[i];
        break;
    case DFS_BETA_SQUAREDCOS_CAP_V2:
        for (int i = 0; i < T; i++) {
            const double b = 1 - alpha_bar_cos((double)(i + 1) / T) / alpha_bar_cos((double)i / T);
            s->betas[i] = (float)(b < 0.999 ? b : 0.999);
        }
        break;
    case DFS_BETA_SIGMOID:
        torch_linspace(s->betas, -6.0, 6.0, T);
        for (int i = 0; i < T; i++)
            s->betas[i] = 1.0f / (1.0f + expf(-s->betas[i])) * (float)(c->beta_end - c->beta_start) + (float)c->beta_start;
        break;
    case DFS_BETA_TRAINED: memcpy(s->betas, c->trained_betas, sizeof(float) * (size_t)T); break;
    }
    /* PNDM, Heun and LMS have no rescale_betas_zero_snr in diffusers: a config carrying it loads
     * with the key dropped, so it is ignored for them too */
    const dfs_sched_kind k = c->kind;
    const int zero_snr = c->rescale_betas_zero_snr && k != DFS_SCHED_PNDM && k != DFS_SCHED_HEUN && k != DFS_SCHED_LMS;
    if (zero_snr) rescale_zero_snr(s->betas, T);
    /* torch.cumprod accumulates float32 products in double */
    double acc = 1.0;
    for (int i = 0; i < T; i++) {
        s->alphas[i] = 1.0f - s->betas[i];
        acc *= (double)s->alphas[i];
        s->alphas_cumprod[i] = (float)acc;
    }
    /* the sigma-based samplers keep the last alpha_bar at 2^-24 (float16's smallest subnormal), as
     * diffusers does, so that the first sigma is large but finite */
    if (zero_snr && (k == DFS_SCHED_DPMPP || k == DFS_SCHED_EULER || k == DFS_SCHED_EULER_A || k == DFS_SCHED_UNIPC))
        s->alphas_cumprod[T - 1] = 0x1p-24f;
    s->final_alpha_cumprod = c->set_alpha_to_one ? 1.0f : s->alphas_cumprod[0];
    return DFS_OK;
}

/* ---- construction ---- */

dfs_status dfs_sched_from_config(dfs_ctx *ctx, const dfs_json *config, const char *what, int kind_override,
                                 dfs_sched **out) {
    *out = NULL;
    if (config && config->type != DFS_JSON_OBJECT)
        return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: a scheduler config must be a JSON object", what);
    dfs_sched_kind kind = DFS_SCHED_DDIM;
    if (kind_override >= 0) {
        kind = (dfs_sched_kind)kind_override;
    } else {
        const dfs_json *cls = config ? dfs_json_get(config, "_class_name") : NULL;
        if (cls && cls->type == DFS_JSON_STRING) {
            size_t i = 0;
            while (i < N_CLASSES && strcmp(classes[i].class_name, cls->string) != 0) i++;
            if (i == N_CLASSES)
                return dfs_fail(ctx, DFS_ERR_UNSUPPORTED, "%s: scheduler class '%s' is not supported", what, cls->string);
            kind = classes[i].kind;
        }
    }
    dfs_sched *s = dfs_calloc(1, sizeof *s);
    if (!s) return dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory", what);
    defaults(&s->cfg, kind);
    dfs_status st = parse(ctx, config, what, &s->cfg);
    if (!st) st = build_tables(ctx, s);
    if (st) {
        dfs_sched_free(s);
        return st;
    }
    *out = s;
    return DFS_OK;
}

static const struct {
    const char *name;
    dfs_sched_kind kind;
    int order; /* solver_order override, or 0 */
} names[] = {
    {"ddpm", DFS_SCHED_DDPM, 0},     {"ddim", DFS_SCHED_DDIM, 0},      {"pndm", DFS_SCHED_PNDM, 0},
    {"dpmpp-2m", DFS_SCHED_DPMPP, 2}, {"dpmpp-3m", DFS_SCHED_DPMPP, 3}, {"euler", DFS_SCHED_EULER, 0},
    {"euler-a", DFS_SCHED_EULER_A, 0}, {"heun", DFS_SCHED_HEUN, 0},    {"lms", DFS_SCHED_LMS, 0},
    {"unipc", DFS_SCHED_UNIPC, 0},
};

dfs_status dfs_sched_from_name(dfs_ctx *ctx, const char *name, const dfs_json *base, const char *what, dfs_sched **out) {
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if (strcmp(names[i].name, name) != 0) continue;
        dfs_status st = dfs_sched_from_config(ctx, base, what, (int)names[i].kind, out);
        if (!st && names[i].order) (*out)->cfg.solver_order = names[i].order;
        return st;
    }
    return dfs_fail(ctx, DFS_ERR_ARG,
                    "unknown scheduler '%s' (choose ddpm, ddim, pndm, dpmpp-2m, dpmpp-3m, euler, euler-a, heun, lms, unipc)",
                    name);
}

void dfs_sched_free(dfs_sched *s) {
    if (!s) return;
    dfs_free(s->cfg.trained_betas);
    dfs_free(s->betas);
    dfs_free(s->alphas);
    dfs_free(s->alphas_cumprod);
    dfs_free(s->timesteps);
    dfs_free(s->ts_int);
    dfs_free(s->sigmas);
    for (int i = 0; i < DFS_SCHED_HISTORY; i++) dfs_free(s->hist[i]);
    for (int i = 0; i < 3; i++) dfs_free(s->tmp[i]);
    dfs_free(s);
}

/* ---- timesteps ---- */

dfs_status dfs_sched_alloc_steps(dfs_ctx *ctx, dfs_sched *s, int n_steps, int with_sigmas) {
    dfs_free(s->timesteps);
    dfs_free(s->ts_int);
    dfs_free(s->sigmas);
    s->sigmas = NULL;
    s->n_steps = n_steps;
    s->timesteps = dfs_calloc((size_t)n_steps + 1, sizeof(float));
    s->ts_int = dfs_calloc((size_t)n_steps + 1, sizeof(int));
    if (with_sigmas) s->sigmas = dfs_calloc((size_t)n_steps + 2, sizeof(float));
    if (!s->timesteps || !s->ts_int || (with_sigmas && !s->sigmas))
        return dfs_fail(ctx, DFS_ERR_NOMEM, "scheduler: out of memory");
    return DFS_OK;
}

dfs_status dfs_sched_int_timesteps(dfs_ctx *ctx, dfs_sched *s, int n, int *out) {
    const int T = s->cfg.num_train_timesteps;
    switch (s->cfg.timestep_spacing) {
    case DFS_SPACING_LINSPACE:
        for (int i = 0; i < n; i++) {
            const double v = n == 1 ? 0.0 : (double)(T - 1) * i / (n - 1); /* np.linspace */
            out[n - 1 - i] = (int)nearbyint(v);                          /* round half to even */
        }
        break;
    case DFS_SPACING_LEADING: {
        const int ratio = T / n;
        for (int i = 0; i < n; i++) out[n - 1 - i] = i * ratio + s->cfg.steps_offset;
        break;
    }
    case DFS_SPACING_TRAILING: {
        const double ratio = (double)T / n;
        int k = 0;
        for (double v = T; v > 0 && k < n; v -= ratio) out[k++] = (int)nearbyint(v) - 1;
        if (k != n) return dfs_fail(ctx, DFS_ERR_INTERNAL, "scheduler: trailing spacing produced %d of %d steps", k, n);
        break;
    }
    }
    return DFS_OK;
}

dfs_status dfs_sched_set_timesteps(dfs_ctx *ctx, dfs_sched *s, int n) {
    if (n < 1 || n > s->cfg.num_train_timesteps)
        return dfs_fail(ctx, DFS_ERR_ARG, "steps must be from 1 to num_train_timesteps (%d), not %d",
                        s->cfg.num_train_timesteps, n);
    s->num_inference_steps = n;
    s->init_noise_sigma = 1.0f;
    return ops_of(s)->set_timesteps(ctx, s, n);
}

dfs_status dfs_sched_prepare(dfs_ctx *ctx, dfs_sched *s, size_t n) {
    if (s->n != n) {
        for (int i = 0; i < DFS_SCHED_HISTORY; i++) {
            dfs_free(s->hist[i]);
            s->hist[i] = dfs_calloc(n ? n : 1, sizeof(float));
        }
        for (int i = 0; i < 3; i++) {
            dfs_free(s->tmp[i]);
            s->tmp[i] = dfs_calloc(n ? n : 1, sizeof(float));
        }
        s->n = n;
        for (int i = 0; i < DFS_SCHED_HISTORY; i++)
            if (!s->hist[i]) return dfs_fail(ctx, DFS_ERR_NOMEM, "scheduler: out of memory for %zu values", n);
        for (int i = 0; i < 3; i++)
            if (!s->tmp[i]) return dfs_fail(ctx, DFS_ERR_NOMEM, "scheduler: out of memory for %zu values", n);
    }
    s->lower_order_nums = 0;
    return DFS_OK;
}

int dfs_sched_num_steps(const dfs_sched *s) { return s->n_steps; }
float dfs_sched_timestep(const dfs_sched *s, int i) { return s->timesteps[i]; }
float dfs_sched_init_noise_sigma(const dfs_sched *s) { return s->init_noise_sigma; }
float dfs_sched_sigma(const dfs_sched *s, int i) { return s->sigmas ? s->sigmas[i] : NAN; }

void dfs_sched_scale_model_input(const dfs_sched *s, int i, const float *x, float *x_in, size_t n) {
    const dfs_sched_ops *ops = ops_of(s);
    if (ops->scale_input) ops->scale_input(s, i, x, x_in, n);
    else if (x_in != x) memcpy(x_in, x, n * sizeof(float));
}

int dfs_sched_step_needs_noise(const dfs_sched *s, int i) {
    const dfs_sched_ops *ops = ops_of(s);
    return ops->needs_noise ? ops->needs_noise(s, i) : 0;
}

dfs_status dfs_sched_step(dfs_ctx *ctx, dfs_sched *s, int i, const float *mo, const float *x, const float *noise,
                          float *prev, float *pred_x0, size_t n, int B) {
    if (i < 0 || i >= s->n_steps) return dfs_fail(ctx, DFS_ERR_ARG, "scheduler step %d out of range", i);
    if (n != s->n) return dfs_fail(ctx, DFS_ERR_ARG, "scheduler prepared for %zu values, stepped with %zu", s->n, n);
    return ops_of(s)->step(ctx, s, i, mo, x, noise, prev, pred_x0, n, B);
}

/* ---- shared pieces ---- */

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

void dfs_sched_clip_x0(const dfs_sched *s, float *x0, size_t n, int B) {
    const dfs_sched_config *c = &s->cfg;
    if (c->thresholding) {
        /* dynamic thresholding (Imagen): per image, s = quantile(|x0|, ratio) clamped to
         * [1, sample_max_value]; x0 = clamp(x0, −s, s) / s. torch.quantile interpolates linearly. */
        const size_t per = n / (size_t)B;
        float *abs_sorted = s->tmp[2];
        for (int b = 0; b < B; b++) {
            float *v = x0 + (size_t)b * per;
            for (size_t k = 0; k < per; k++) abs_sorted[k] = fabsf(v[k]);
            qsort(abs_sorted, per, sizeof(float), cmp_float);
            const double pos = c->dynamic_thresholding_ratio * (double)(per - 1);
            const size_t lo = (size_t)floor(pos), hi = lo + 1 < per ? lo + 1 : lo;
            const float frac = (float)(pos - (double)lo);
            float q = abs_sorted[lo] + frac * (abs_sorted[hi] - abs_sorted[lo]);
            const float smax = (float)c->sample_max_value;
            q = q < 1.0f ? 1.0f : q > smax ? smax : q;
            for (size_t k = 0; k < per; k++) {
                const float y = v[k] < -q ? -q : v[k] > q ? q : v[k];
                v[k] = y / q;
            }
        }
    } else if (c->clip_sample) {
        const float r = (float)c->clip_sample_range;
        for (size_t k = 0; k < n; k++) x0[k] = x0[k] < -r ? -r : x0[k] > r ? r : x0[k];
    }
}

void dfs_sched_add_noise(const dfs_sched *s, const float *x0, const float *noise, const int *t, int B, size_t per,
                         float *out) {
    for (int b = 0; b < B; b++) {
        const float ab = s->alphas_cumprod[t[b]];
        const float sa = sqrtf(ab), sb = sqrtf(1.0f - ab);
        for (size_t k = 0; k < per; k++) {
            const size_t i = (size_t)b * per + k;
            out[i] = sa * x0[i] + sb * noise[i];
        }
    }
}

void dfs_sched_velocity(const dfs_sched *s, const float *x0, const float *noise, const int *t, int B, size_t per,
                        float *out) {
    for (int b = 0; b < B; b++) {
        const float ab = s->alphas_cumprod[t[b]];
        const float sa = sqrtf(ab), sb = sqrtf(1.0f - ab);
        for (size_t k = 0; k < per; k++) {
            const size_t i = (size_t)b * per + k;
            out[i] = sa * noise[i] - sb * x0[i];
        }
    }
}
