/* The generation loop of diffusers' DDPMPipeline / DDIMPipeline, for any sampler: draw x_T for
 * the batch, scale it by init_noise_sigma, then for each timestep: scale the input, run the
 * network (twice as wide with classifier-free guidance), and step. */
#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "io/file.h"
#include "io/json.h"
#include "model/model.h"
#include "sched/sched.h"

#define SCHED_CONFIG_MAX_BYTES (1u << 20)

void dfs_sample_params_default(dfs_sample_params *p) {
    memset(p, 0, sizeof *p);
    p->steps = 50;
    p->num_images = 1;
    p->guidance_scale = 1.0;
}

/* The scheduler config: the given file, else the model's scheduler/scheduler_config.json. */
static dfs_status load_sched_config(dfs_ctx *ctx, const dfs_model *m, const dfs_sample_params *p, dfs_json **cfg,
                                    char *what, size_t what_size) {
    *cfg = NULL;
    snprintf(what, what_size, "%s", "default scheduler");
    if (p->scheduler_config) {
        snprintf(what, what_size, "%s", p->scheduler_config);
        return dfs_json_load_file(ctx, p->scheduler_config, SCHED_CONFIG_MAX_BYTES, cfg);
    }
    const char *dirs[2] = {m->root, m->dir};
    for (int i = 0; i < 2; i++) {
        char *sub = dfs_path_join(dirs[i], "scheduler/scheduler_config.json");
        if (!sub) return dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
        if (dfs_path_exists(sub)) {
            snprintf(what, what_size, "%s", sub);
            dfs_status st = dfs_json_load_file(ctx, sub, SCHED_CONFIG_MAX_BYTES, cfg);
            dfs_free(sub);
            return st;
        }
        dfs_free(sub);
    }
    return DFS_OK;
}

static dfs_status make_sched(dfs_ctx *ctx, const dfs_model *m, const dfs_sample_params *p, dfs_sched **out) {
    dfs_json *cfg = NULL;
    char what[512];
    dfs_status st = load_sched_config(ctx, m, p, &cfg, what, sizeof what);
    if (st) return st;
    if (p->scheduler) st = dfs_sched_from_name(ctx, p->scheduler, cfg, what, out);
    else st = dfs_sched_from_config(ctx, cfg, what, cfg ? -1 : DFS_SCHED_DDIM, out);
    dfs_json_free(cfg);
    return st;
}

dfs_status dfs_sample_scheduler_info(dfs_ctx *ctx, const dfs_model *m, const dfs_sample_params *p, char *buf, size_t size,
                                     int *n_steps) {
    dfs_sched *s = NULL;
    dfs_status st = make_sched(ctx, m, p, &s);
    if (!st) st = dfs_sched_set_timesteps(ctx, s, p->steps);
    if (!st) {
        snprintf(buf, size, "%s", dfs_sched_name(s));
        *n_steps = dfs_sched_num_steps(s);
    }
    dfs_sched_free(s);
    return st;
}

dfs_status dfs_sample_shape(dfs_ctx *ctx, const dfs_model *m, const dfs_sample_params *p, int *C, int *H, int *W) {
    dfs_model_info info;
    dfs_model_get_info(m, &info);
    *C = info.in_channels;
    *H = p->height ? p->height : info.sample_h;
    *W = p->width ? p->width : info.sample_w;
    if (!*H || !*W)
        return dfs_fail(ctx, DFS_ERR_ARG, "the model's config has no sample_size: give the height and width");
    return dfs_model_check_size(ctx, m, *H, *W);
}

dfs_status dfs_sample(dfs_ctx *ctx, dfs_model *m, const dfs_sample_params *p, float *out) {
    dfs_model_info info;
    dfs_model_get_info(m, &info);
    int C, H, W;
    dfs_status st = dfs_sample_shape(ctx, m, p, &C, &H, &W);
    if (st) return st;
    if (p->num_images < 1) return dfs_fail(ctx, DFS_ERR_ARG, "the number of images must be at least 1");
    const int bs = p->batch_size > 0 && p->batch_size < p->num_images ? p->batch_size : p->num_images;
    if (info.out_channels != C && info.out_channels != 2 * C)
        return dfs_fail(ctx, DFS_ERR_UNSUPPORTED, "the model maps %d channels to %d: not a denoiser diffuse can sample",
                        C, info.out_channels);
    if (info.needs_class_labels && !p->class_labels)
        return dfs_fail(ctx, DFS_ERR_ARG, "the model is class-conditional: give a class label");
    if (!info.needs_class_labels && p->class_labels)
        return dfs_fail(ctx, DFS_ERR_ARG, "a class label was given, but the model is unconditional");
    const int cfg_on = p->class_labels && p->guidance_scale != 1.0;
    if (cfg_on && info.num_class_embeds < 2)
        return dfs_fail(ctx, DFS_ERR_ARG, "classifier-free guidance needs a class-embedding table with a 'no class' row");
    if (p->class_labels) {
        /* with guidance, the last row of the table is the unconditional ("no class") label */
        const int n_real = info.num_class_embeds ? info.num_class_embeds - (cfg_on ? 1 : 0) : 0;
        for (int i = 0; i < p->num_images && info.num_class_embeds; i++)
            if (p->class_labels[i] < 0 || p->class_labels[i] >= n_real)
                return dfs_fail(ctx, DFS_ERR_ARG, "class label %lld is outside [0, %d)", (long long)p->class_labels[i], n_real);
    }
    dfs_sched *s = NULL;
    if ((st = make_sched(ctx, m, p, &s))) return st;
    dfs_sched_set_eta(s, p->eta, 0);
    dfs_model_set_schedule(m, dfs_sched_alphas_cumprod(s), dfs_sched_get_config(s)->num_train_timesteps,
                           (int)dfs_sched_get_config(s)->prediction_type);
    const size_t per = (size_t)C * H * W, n_max = per * (size_t)bs, wide = cfg_on ? 2 : 1;
    float *x = NULL, *xin = NULL, *mo = NULL, *eps = NULL, *noise = NULL, *x0 = NULL, *tt = NULL;
    int64_t *labels = NULL;
    dfs_rng *rng = dfs_rng_new(p->seed);
    if ((st = dfs_sched_set_timesteps(ctx, s, p->steps))) goto done;
    x = dfs_malloc(n_max * sizeof(float));
    xin = dfs_malloc(n_max * wide * sizeof(float));
    mo = dfs_malloc((size_t)bs * wide * info.out_channels * H * W * sizeof(float));
    eps = dfs_malloc((size_t)bs * info.out_channels * H * W * sizeof(float));
    noise = dfs_malloc(n_max * sizeof(float));
    x0 = dfs_malloc(n_max * sizeof(float));
    tt = dfs_malloc((size_t)bs * wide * sizeof(float));
    labels = dfs_malloc((size_t)bs * wide * sizeof(int64_t));
    if (!rng || !x || !xin || !mo || !eps || !noise || !x0 || !tt || !labels) {
        st = dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory for a batch of %d images", bs);
        goto done;
    }
    const int n_steps = dfs_sched_num_steps(s);
    const size_t per_out = (size_t)info.out_channels * H * W;
    for (int first = 0; first < p->num_images; first += bs) {
        const int B = p->num_images - first < bs ? p->num_images - first : bs;
        const size_t n = per * (size_t)B;
        if ((st = dfs_sched_prepare(ctx, s, n))) goto done;
        if (p->init_noise) memcpy(x, p->init_noise + (size_t)first * per, n * sizeof(float));
        else dfs_rng_randn(rng, x, n);
        const float sigma0 = dfs_sched_init_noise_sigma(s);
        if (sigma0 != 1.0f)
            for (size_t k = 0; k < n; k++) x[k] = x[k] * sigma0;
        if (p->callback && p->callback(p->user, first, B, -1, n_steps, 0.0f, x, x)) {
            st = dfs_fail(ctx, DFS_ERR_ARG, "sampling stopped");
            goto done;
        }
        for (int i = 0; i < n_steps; i++) {
            const float t = dfs_sched_timestep(s, i);
            dfs_sched_scale_model_input(s, i, x, xin, n);
            for (int b = 0; b < B; b++) {
                tt[b] = t;
                if (p->class_labels) labels[b] = p->class_labels[first + b];
            }
            if (cfg_on) {
                memcpy(xin + n, xin, n * sizeof(float));
                for (int b = 0; b < B; b++) {
                    tt[B + b] = t;
                    labels[B + b] = info.num_class_embeds - 1;
                }
            }
            if ((st = dfs_model_forward(ctx, m, xin, (int)(B * wide), H, W, tt, p->class_labels ? labels : NULL, mo))) goto done;
            const float *model_out = mo;
            if (cfg_on) {
                /* ε = ε_uncond + w·(ε_cond − ε_uncond), as diffusers' guided pipelines compute it */
                const float w = (float)p->guidance_scale;
                const size_t total = per_out * (size_t)B;
                for (size_t k = 0; k < total; k++) eps[k] = mo[total + k] + w * (mo[k] - mo[total + k]);
                model_out = eps;
            }
            if (dfs_sched_step_needs_noise(s, i)) dfs_rng_randn(rng, noise, n);
            if ((st = dfs_sched_step(ctx, s, i, model_out, x, noise, x, x0, n, B))) goto done;
            for (size_t k = 0; k < n; k++)
                if (!isfinite(x[k])) {
                    st = dfs_fail(ctx, DFS_ERR_INTERNAL, "the sample became NaN or infinite at step %d of %d (timestep %g)",
                                  i + 1, n_steps, (double)t);
                    goto done;
                }
            if (p->callback && p->callback(p->user, first, B, i, n_steps, t, x, x0)) {
                st = dfs_fail(ctx, DFS_ERR_ARG, "sampling stopped");
                goto done;
            }
        }
        memcpy(out + (size_t)first * per, x, n * sizeof(float));
    }
done:
    dfs_model_set_schedule(m, NULL, 0, 0); /* the schedule dies with s */
    dfs_free(x);
    dfs_free(xin);
    dfs_free(mo);
    dfs_free(eps);
    dfs_free(noise);
    dfs_free(x0);
    dfs_free(tt);
    dfs_free(labels);
    dfs_rng_free(rng);
    dfs_sched_free(s);
    return st;
}
