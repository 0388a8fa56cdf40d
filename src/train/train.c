/* The training loop of diffusers' train_unconditional example, in C: sample a batch, t uniform
 * over the training timesteps, ε ~ N(0, I), x_t = add_noise(x0, ε, t), loss = mean((f(x_t, t) −
 * target)²) with target ε, v or x0, optional min-SNR-γ weights; backward, gradient-norm
 * clipping, AdamW, EMA. Checkpoints hold everything a resumed run needs to continue bit for bit. */
#include <dirent.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/rng.h"
#include "io/file.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "ops/vmath.h"
#include "sched/sched.h"
#include "train/data.h"
#include "train/train.h"

static const char default_unet[] =
    "{\"_class_name\": \"UNet2DModel\", \"sample_size\": 28, \"in_channels\": 1, \"out_channels\": 1,"
    " \"layers_per_block\": 1, \"block_out_channels\": [32, 64, 128],"
    " \"down_block_types\": [\"DownBlock2D\", \"DownBlock2D\", \"AttnDownBlock2D\"],"
    " \"up_block_types\": [\"AttnUpBlock2D\", \"UpBlock2D\", \"UpBlock2D\"],"
    " \"norm_num_groups\": 8, \"attention_head_dim\": 32}";

/* DDPM with x0 clipped to [-1, 1] while sampling: clip_sample for DDPM and DDIM, and thresholding
 * with sample_max_value 1 (which clips the same way) for the samplers that read it instead, as
 * diffusers recommends for pixel-space models with DPM-Solver++: without it, 20-step DPM-Solver++
 * turns many samples of a partly trained model into saturated noise. */
static const char default_scheduler[] =
    "{\n  \"_class_name\": \"DDPMScheduler\",\n  \"_diffusers_version\": \"0.38.0\",\n  \"beta_end\": 0.02,\n"
    "  \"beta_schedule\": \"linear\",\n  \"beta_start\": 0.0001,\n  \"clip_sample\": true,\n"
    "  \"num_train_timesteps\": 1000,\n  \"prediction_type\": \"epsilon\",\n  \"sample_max_value\": 1.0,\n"
    "  \"thresholding\": true,\n  \"variance_type\": \"fixed_small\"\n}\n";

void dfs_train_params_default(dfs_train_params *p) {
    memset(p, 0, sizeof *p);
    p->data = "fashion-mnist";
    p->max_steps = 10000;
    p->batch_size = 16;
    p->lr = 1e-4;
    p->warmup_steps = 500;
    p->lr_cosine = 1;
    p->adam_beta1 = 0.95;
    p->adam_beta2 = 0.999;
    p->adam_eps = 1e-8;
    p->weight_decay = 1e-6;
    p->max_grad_norm = 1.0;
    p->ema_max_decay = 0.9999;
    p->ema_inv_gamma = 1.0;
    p->ema_power = 0.75;
    p->p_uncond = 0.1;
    p->checkpoint_every = 500;
    p->progress_every = 20;
}

typedef struct trainer {
    dfs_model *m;
    dfs_sched *sched;
    dfs_dataset ds;
    float *G, *adam_m, *adam_v, *ema;
    float *arena, *garena, *scratch;
    dfs_tape_op *tape;
    size_t n_tape, arena_floats;
    dfs_rng *rng;
    int *perm;
    int step, epoch, cursor;
    char *sched_json;
    int null_label;
} trainer;

/* The data order of an epoch: a Fisher-Yates shuffle seeded by (seed, epoch), so a resumed run
 * sees the same images in the same order. */
static void shuffle(trainer *t, uint64_t seed) {
    dfs_rng *r = dfs_rng_new(seed * 1000003u + (uint64_t)t->epoch);
    for (int i = 0; i < t->ds.n; i++) t->perm[i] = i;
    for (int i = t->ds.n - 1; r && i > 0; i--) {
        const int j = (int)(dfs_rng_u32(r) % (uint32_t)(i + 1));
        const int tmp = t->perm[i];
        t->perm[i] = t->perm[j];
        t->perm[j] = tmp;
    }
    dfs_rng_free(r);
}

static double lr_at(const dfs_train_params *p, int step) {
    if (step < p->warmup_steps) return p->lr * (double)step / (p->warmup_steps > 0 ? p->warmup_steps : 1);
    if (!p->lr_cosine) return p->lr;
    const double progress = (double)(step - p->warmup_steps) / (double)(p->max_steps - p->warmup_steps > 0 ? p->max_steps - p->warmup_steps : 1);
    return p->lr * 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
}

static dfs_status save_state(dfs_ctx *ctx, trainer *t, const dfs_train_params *p) {
    const size_t n = t->m->unet->n_floats;
    dfs_status st = dfs_model_save_params(ctx, t->m, t->ema, p->out_dir, p->f16_weights, t->sched_json);
    if (st) return st;
    uint32_t rng_words[DFS_RNG_STATE_WORDS];
    dfs_rng_save(t->rng, rng_words);
    dfs_st_entry e[5] = {
        {"params", DFS_DTYPE_F32, 1, {(int64_t)n}, t->m->params},
        {"adam_m", DFS_DTYPE_F32, 1, {(int64_t)n}, t->adam_m},
        {"adam_v", DFS_DTYPE_F32, 1, {(int64_t)n}, t->adam_v},
        {"ema", DFS_DTYPE_F32, 1, {(int64_t)n}, t->ema},
        {"rng", DFS_DTYPE_I32, 1, {DFS_RNG_STATE_WORDS}, rng_words},
    };
    char step[32], epoch[32], cursor[32];
    snprintf(step, sizeof step, "%d", t->step);
    snprintf(epoch, sizeof epoch, "%d", t->epoch);
    snprintf(cursor, sizeof cursor, "%d", t->cursor);
    const char *meta[] = {"step", step, "epoch", epoch, "cursor", cursor, NULL};
    char *path = dfs_path_join(p->out_dir, "train_state.safetensors");
    if (!path) return dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
    st = dfs_safetensors_write(ctx, path, e, 5, meta);
    dfs_free(path);
    return st;
}

static int meta_int(const dfs_safetensors *st, const char *key, int *out) {
    const char *v = dfs_safetensors_metadata(st, key);
    if (!v) return 0;
    char *end;
    const long x = strtol(v, &end, 10);
    if (*end || x < 0 || x > 1 << 30) return 0;
    *out = (int)x;
    return 1;
}

static dfs_status load_state(dfs_ctx *ctx, trainer *t, const dfs_train_params *p) {
    char *path = dfs_path_join(p->out_dir, "train_state.safetensors");
    if (!path) return dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
    dfs_safetensors *st = NULL;
    dfs_status s = dfs_safetensors_open(ctx, path, &st);
    const size_t n = t->m->unet->n_floats;
    float *dst[4] = {t->m->params, t->adam_m, t->adam_v, t->ema};
    static const char *const names[4] = {"params", "adam_m", "adam_v", "ema"};
    for (int i = 0; !s && i < 4; i++) {
        const dfs_st_tensor *x = dfs_safetensors_find(st, names[i]);
        if (!x || x->dtype != DFS_DTYPE_F32 || x->numel != n)
            s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: '%s' missing or not %zu float32 values (another model's state?)", path,
                         names[i], n);
        else memcpy(dst[i], x->data, n * sizeof(float));
    }
    t->m->prep_ready = 0;
    if (!s) {
        const dfs_st_tensor *r = dfs_safetensors_find(st, "rng");
        uint32_t words[DFS_RNG_STATE_WORDS];
        if (!r || r->dtype != DFS_DTYPE_I32 || r->numel != DFS_RNG_STATE_WORDS) {
            s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: no valid RNG state", path);
        } else {
            memcpy(words, r->data, sizeof words);
            if (!dfs_rng_load(t->rng, words)) s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: corrupt RNG state", path);
        }
    }
    if (!s && (!meta_int(st, "step", &t->step) || !meta_int(st, "epoch", &t->epoch) || !meta_int(st, "cursor", &t->cursor) ||
               t->cursor > t->ds.n))
        s = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: missing or bad step/epoch/cursor", path);
    dfs_safetensors_close(st);
    dfs_free(path);
    return s;
}

/* A run killed while writing leaves its temporary files (name.tmp.XXXXXX): the finished files
 * are whole, the temporaries are garbage. Removes them from dir. */
static void remove_stale_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, ".tmp.");
        if (!t || strlen(t) != 11) continue;
        char *p = dfs_path_join(dir, e->d_name);
        if (p) unlink(p);
        dfs_free(p);
    }
    closedir(d);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One optimisation step on a batch; returns the loss. */
/* The optimisation step proper on a given batch: x_t from x0, noise and the integer timesteps,
 * the loss against the target of the prediction type, backward, clipping, AdamW, EMA. */
static double optimize(trainer *t, const dfs_train_params *p, const float *x0, const float *noise, const int *ts,
                       const int64_t *labels, float *xt, float *target, float *tf);

static double train_step(trainer *t, const dfs_train_params *p, float *x0, float *noise, float *xt, float *target,
                         int *ts, float *tf, int64_t *labels) {
    const int B = p->batch_size, H = t->ds.H, W = t->ds.W;
    const size_t per = (size_t)t->ds.C * H * W, n = per * (size_t)B;
    const int T = dfs_sched_get_config(t->sched)->num_train_timesteps;
    for (int b = 0; b < B; b++) {
        if (t->cursor >= t->ds.n) {
            t->epoch++;
            t->cursor = 0;
            shuffle(t, p->seed);
        }
        const int idx = t->perm[t->cursor++];
        float *img = x0 + (size_t)b * per;
        dfs_dataset_get(&t->ds, idx, img);
        labels[b] = t->ds.labels[idx];
        if (p->random_flip && (dfs_rng_u32(t->rng) & 1)) /* horizontal flip, each image with probability 1/2 */
            for (int c = 0; c < t->ds.C; c++)
                for (int y = 0; y < H; y++) {
                    float *row = img + ((size_t)c * H + y) * W;
                    for (int x = 0; x < W / 2; x++) {
                        const float tmp = row[x];
                        row[x] = row[W - 1 - x];
                        row[W - 1 - x] = tmp;
                    }
                }
    }
    for (int b = 0; b < B; b++) {
        ts[b] = (int)(dfs_rng_u32(t->rng) % (uint32_t)T);
        tf[b] = (float)ts[b];
        if (p->conditional && (double)(dfs_rng_u32(t->rng) >> 8) / 16777216.0 < p->p_uncond) labels[b] = t->null_label;
    }
    dfs_rng_randn(t->rng, noise, n);
    return optimize(t, p, x0, noise, ts, labels, xt, target, tf);
}

static double optimize(trainer *t, const dfs_train_params *p, const float *x0, const float *noise, const int *ts,
                       const int64_t *labels, float *xt, float *target, float *tf) {
    const dfs_unet *u = t->m->unet;
    const int B = p->batch_size, H = t->ds.H, W = t->ds.W;
    const size_t per = (size_t)t->ds.C * H * W, n = per * (size_t)B;
    for (int b = 0; b < B; b++) tf[b] = (float)ts[b];
    dfs_sched_add_noise(t->sched, x0, noise, ts, B, per, xt);
    const dfs_pred pred = dfs_sched_get_config(t->sched)->prediction_type;
    if (pred == DFS_PRED_EPSILON) memcpy(target, noise, n * sizeof(float));
    else if (pred == DFS_PRED_SAMPLE) memcpy(target, x0, n * sizeof(float));
    else dfs_sched_velocity(t->sched, x0, noise, ts, B, per, target);

    dfs_unet_train_io io = dfs_unet_forward_train(u, t->m->params, t->arena, t->tape, xt, B, H, W, tf,
                                                  p->conditional ? labels : NULL, NULL);
    const float *out = t->arena + io.out_off;
    float *dout = t->garena + io.out_off;
    const float *ac = dfs_sched_alphas_cumprod(t->sched);
    double loss = 0;
    for (int b = 0; b < B; b++) {
        double w = 1.0;
        if (p->snr_gamma > 0) { /* min-SNR-γ (Hang et al. 2023) */
            const double snr = ac[ts[b]] / (1.0 - ac[ts[b]]);
            w = fmin(snr, p->snr_gamma) / (pred == DFS_PRED_EPSILON ? snr : pred == DFS_PRED_V ? snr + 1 : 1.0);
        }
        double lb = 0;
        for (size_t k = 0; k < per; k++) {
            const size_t i = (size_t)b * per + k;
            const double d = (double)out[i] - target[i];
            lb += d * d;
            dout[i] = (float)(2.0 * d * w / (double)n);
        }
        loss += w * lb / (double)n;
    }
    dfs_zero(t->G, u->n_floats);
    dfs_unet_backward(u, t->m->params, t->G, t->arena, t->garena, io, 0, t->tape, t->n_tape, t->scratch, B, tf,
                      p->conditional ? labels : NULL);
    /* gradient-norm clipping, as torch.nn.utils.clip_grad_norm_; Σ g² in vectorised blocks (vmath.h) */
    const double norm = sqrt(dfs_vmath_best()->sumsq(t->G, u->n_floats, 0.0f));
    if (!isfinite(loss) || !isfinite(norm)) return NAN; /* no update: the weights stay finite */
    /* clipping scales the gradient as AdamW reads it, and the EMA follows in the same pass */
    const float clip = p->max_grad_norm > 0 && norm > p->max_grad_norm ? (float)(p->max_grad_norm / (norm + 1e-6)) : 1.0f;
    t->step++;
    const float decay = (float)dfs_ema_decay(t->step, p->ema_max_decay, p->ema_inv_gamma, p->ema_power);
    dfs_adamw_step(t->m->params, t->G, t->adam_m, t->adam_v, u->n_floats, t->step, lr_at(p, t->step - 1), p->adam_beta1,
                   p->adam_beta2, p->adam_eps, p->weight_decay, clip, t->ema, decay);
    t->m->prep_ready = 0;
    return loss;
}

dfs_status dfs_train(dfs_ctx *ctx, const dfs_train_params *p) {
    trainer t;
    memset(&t, 0, sizeof t);
    dfs_json *ucfg = NULL, *scfg = NULL;
    float *x0 = NULL, *noise = NULL, *xt = NULL, *target = NULL, *tf = NULL;
    int *ts = NULL;
    int64_t *labels = NULL;
    dfs_status st;
    if (!p->out_dir) return dfs_fail(ctx, DFS_ERR_ARG, "no output directory given");
    if (p->batch_size < 1 || p->max_steps < 1) return dfs_fail(ctx, DFS_ERR_ARG, "batch size and steps must be at least 1");
    if (p->unet_config) st = dfs_json_load_file(ctx, p->unet_config, 1 << 20, &ucfg);
    else st = dfs_json_parse(ctx, default_unet, strlen(default_unet), "built-in UNet config", &ucfg);
    if (st) goto done;
    {
        /* the data is fitted to the model's input (PNG directories are resized and cropped) */
        dfs_unet_config uc;
        if ((st = dfs_unet_config_parse(ctx, ucfg, p->unet_config ? p->unet_config : "built-in UNet config", &uc))) goto done;
        if ((st = dfs_dataset_open_for(ctx, p->data, uc.in_channels, uc.sample_h ? uc.sample_h : 32,
                                       uc.sample_w ? uc.sample_w : 32, &t.ds)))
            goto done;
    }
    if (p->scheduler_config) {
        char *text = NULL;
        size_t len = 0;
        if ((st = dfs_file_read_all(ctx, p->scheduler_config, 1 << 20, &text, &len))) goto done;
        t.sched_json = text;
    } else {
        t.sched_json = dfs_strdup(default_scheduler);
        if (!t.sched_json) {
            st = dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    if ((st = dfs_json_parse(ctx, t.sched_json, strlen(t.sched_json), p->scheduler_config ? p->scheduler_config : "built-in scheduler", &scfg)) ||
        (st = dfs_sched_from_config(ctx, scfg, "scheduler", DFS_SCHED_DDPM, &t.sched)))
        goto done;
    /* conditional: the class table gets one extra "no class" row for guidance */
    if (p->conditional) {
        const dfs_json *nce = dfs_json_get(ucfg, "num_class_embeds");
        if (!nce || nce->type == DFS_JSON_NULL) {
            char text[4096];
            const char *src = p->unet_config ? NULL : default_unet;
            if (!src) {
                st = dfs_fail(ctx, DFS_ERR_ARG, "%s: --conditional needs num_class_embeds (classes + 1) in the config",
                              p->unet_config);
                goto done;
            }
            snprintf(text, sizeof text, "%.*s, \"num_class_embeds\": %d}", (int)(strlen(src) - 1), src, t.ds.n_classes + 1);
            dfs_json_free(ucfg);
            ucfg = NULL;
            if ((st = dfs_json_parse(ctx, text, strlen(text), "built-in UNet config", &ucfg))) goto done;
        }
    }
    if ((st = dfs_model_create(ctx, ucfg, p->unet_config ? p->unet_config : "built-in UNet config", p->seed, &t.m))) goto done;
    const dfs_unet *u = t.m->unet;
    if (u->cfg.in_channels != t.ds.C || u->cfg.out_channels != t.ds.C || (u->cfg.sample_h && (u->cfg.sample_h != t.ds.H || u->cfg.sample_w != t.ds.W))) {
        st = dfs_fail(ctx, DFS_ERR_SHAPE, "%s: %dx%dx%d images do not fit the model (%d channels, sample size %dx%d)", p->data,
                      t.ds.C, t.ds.H, t.ds.W, u->cfg.in_channels, u->cfg.sample_h, u->cfg.sample_w);
        goto done;
    }
    if ((st = dfs_model_check_size(ctx, t.m, t.ds.H, t.ds.W))) goto done;
    if (p->conditional) {
        if (u->cfg.class_embed_type != DFS_CLASS_EMB_TABLE || u->cfg.num_class_embeds < t.ds.n_classes + 1) {
            st = dfs_fail(ctx, DFS_ERR_ARG, "--conditional needs num_class_embeds >= %d (classes + 1 'no class' row)", t.ds.n_classes + 1);
            goto done;
        }
        t.null_label = u->cfg.num_class_embeds - 1;
    } else if (u->cfg.class_embed_type != DFS_CLASS_EMB_NONE) {
        st = dfs_fail(ctx, DFS_ERR_ARG, "the model config is class-conditional: train it with --conditional");
        goto done;
    }
    const int B = p->batch_size;
    dfs_ops_set_threads(dfs_ctx_threads(ctx));
    dfs_unet_plan plan = dfs_unet_plan_train(u, B, t.ds.H, t.ds.W);
    t.arena_floats = plan.arena_floats;
    t.n_tape = plan.n_tape;
    const size_t nf = u->n_floats, per = (size_t)t.ds.C * t.ds.H * t.ds.W;
    {
        char what[96];
        snprintf(what, sizeof what, "training at batch %d", B);
        if ((st = dfs_check_memory(ctx, (double)plan.arena_floats * 8.0 + (double)nf * 20.0, what))) goto done;
    }
    t.arena = dfs_malloc(plan.arena_floats * sizeof(float));
    t.garena = dfs_malloc(plan.arena_floats * sizeof(float));
    t.tape = dfs_calloc(plan.n_tape, dfs_unet_tape_op_size());
    t.G = dfs_calloc(nf, sizeof(float));
    t.adam_m = dfs_calloc(nf, sizeof(float));
    t.adam_v = dfs_calloc(nf, sizeof(float));
    t.ema = dfs_malloc(nf * sizeof(float));
    t.perm = dfs_malloc(sizeof(int) * (size_t)t.ds.n);
    t.rng = dfs_rng_new(p->seed);
    x0 = dfs_malloc(per * B * sizeof(float));
    noise = dfs_malloc(per * B * sizeof(float));
    xt = dfs_malloc(per * B * sizeof(float));
    target = dfs_malloc(per * B * sizeof(float));
    tf = dfs_malloc(B * sizeof(float));
    ts = dfs_malloc(B * sizeof(int));
    labels = dfs_malloc(B * sizeof(int64_t));
    if (!t.arena || !t.garena || !t.tape || !t.G || !t.adam_m || !t.adam_v || !t.ema || !t.perm || !t.rng || !x0 || !noise ||
        !xt || !target || !tf || !ts || !labels) {
        st = dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory for training at batch %d (%.0f MiB of activations)", B,
                      plan.arena_floats * 8.0 / 1048576);
        goto done;
    }
    memcpy(t.ema, t.m->params, nf * sizeof(float));
    {
        static const char *const subdirs[] = {"", "unet", "scheduler"};
        for (int k = 0; k < 3; k++) {
            char *sd = dfs_path_join(p->out_dir, subdirs[k]);
            if (sd) remove_stale_temporaries(sd);
            dfs_free(sd);
        }
    }
    if (p->resume) {
        char *sp = dfs_path_join(p->out_dir, "train_state.safetensors");
        const int have = sp && dfs_path_exists(sp);
        dfs_free(sp);
        if (have && (st = load_state(ctx, &t, p))) goto done;
    }
    shuffle(&t, p->seed);
    /* the backward scratch depends on the tape: record it once with a real forward pass */
    dfs_dataset_get(&t.ds, 0, x0);
    for (int b = 1; b < B; b++) memcpy(x0 + (size_t)b * per, x0, per * sizeof(float));
    for (int b = 0; b < B; b++) {
        tf[b] = 0;
        labels[b] = 0;
    }
    dfs_unet_forward_train(u, t.m->params, t.arena, t.tape, x0, B, t.ds.H, t.ds.W, tf, p->conditional ? labels : NULL, NULL);
    t.scratch = dfs_malloc((dfs_unet_backward_scratch(u, t.tape, t.n_tape, B) + 16) * sizeof(float));
    if (!t.scratch) {
        st = dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
        goto done;
    }
    double t0 = now(), loss_acc = 0, last_t = t0;
    int loss_n = 0, last_step = t.step, skipped = 0, skipped_in_a_row = 0;
    const int first_step = t.step;
    while (t.step < p->max_steps) {
        const double loss = train_step(&t, p, x0, noise, xt, target, ts, tf, labels);
        if (isnan(loss)) {
            if (!p->skip_nonfinite) {
                st = dfs_fail(ctx, DFS_ERR_INTERNAL,
                              "the loss or the gradients became NaN or infinite at step %d: stopped before updating "
                              "(the last checkpoint, if any, stands)", t.step + 1);
                goto done;
            }
            skipped++;
            if (++skipped_in_a_row == 100) {
                st = dfs_fail(ctx, DFS_ERR_INTERNAL,
                              "100 updates in a row skipped at step %d: the loss or the gradients stay NaN or infinite "
                              "(the last checkpoint, if any, stands)", t.step + 1);
                goto done;
            }
            continue;
        }
        skipped_in_a_row = 0;
        loss_acc += loss;
        loss_n++;
        const int stop = (p->should_stop && p->should_stop(p->user)) || (p->stop_after > 0 && t.step - first_step >= p->stop_after);
        if (p->on_progress && (t.step % p->progress_every == 0 || t.step == p->max_steps || stop)) {
            const double tn = now();
            dfs_train_progress pr = {t.step, p->max_steps, loss_acc / loss_n, lr_at(p, t.step - 1),
                                     (double)(t.step - last_step) * B / (tn - last_t > 1e-9 ? tn - last_t : 1e-9), tn - t0,
                                     skipped, first_step};
            last_t = tn;
            last_step = t.step;
            loss_acc = 0;
            loss_n = 0;
            if (p->on_progress(p->user, &pr)) {
                st = save_state(ctx, &t, p);
                goto done;
            }
        }
        if (stop || t.step % p->checkpoint_every == 0 || t.step == p->max_steps) {
            if ((st = save_state(ctx, &t, p))) goto done;
            if (p->on_checkpoint) p->on_checkpoint(p->user, p->out_dir, t.step);
            if (stop) break;
        }
    }
done:
    dfs_json_free(ucfg);
    dfs_json_free(scfg);
    dfs_free(x0);
    dfs_free(noise);
    dfs_free(xt);
    dfs_free(target);
    dfs_free(tf);
    dfs_free(ts);
    dfs_free(labels);
    dfs_free(t.arena);
    dfs_free(t.garena);
    dfs_free(t.scratch);
    dfs_free(t.tape);
    dfs_free(t.G);
    dfs_free(t.adam_m);
    dfs_free(t.adam_v);
    dfs_free(t.ema);
    dfs_free(t.perm);
    dfs_free(t.sched_json);
    dfs_rng_free(t.rng);
    dfs_sched_free(t.sched);
    dfs_model_free(t.m);
    dfs_dataset_free(&t.ds);
    return st;
}

dfs_status dfs_train_steps(dfs_ctx *ctx, dfs_model *m, const dfs_json *scheduler_config, const dfs_train_params *p,
                           const float *x0, const float *noise, const int *ts, const int64_t *labels, int n_steps,
                           double *loss, double *seconds) {
    trainer t;
    memset(&t, 0, sizeof t);
    if (!m->unet) return dfs_fail(ctx, DFS_ERR_ARG, "only UNet models can be trained");
    const dfs_unet *u = m->unet;
    const int B = p->batch_size, C = u->cfg.in_channels, H = u->cfg.sample_h, W = u->cfg.sample_w;
    dfs_status st = dfs_sched_from_config(ctx, scheduler_config, "scheduler", DFS_SCHED_DDPM, &t.sched);
    if (st) return st;
    t.m = m;
    t.ds.C = C;
    t.ds.H = H;
    t.ds.W = W;
    dfs_ops_set_threads(dfs_ctx_threads(ctx));
    const dfs_unet_plan plan = dfs_unet_plan_train(u, B, H, W);
    const size_t nf = u->n_floats, n = (size_t)B * C * H * W;
    t.arena_floats = plan.arena_floats;
    t.n_tape = plan.n_tape;
    t.arena = dfs_malloc(plan.arena_floats * sizeof(float));
    t.garena = dfs_malloc(plan.arena_floats * sizeof(float));
    t.tape = dfs_calloc(plan.n_tape, dfs_unet_tape_op_size());
    t.G = dfs_calloc(nf, sizeof(float));
    t.adam_m = dfs_calloc(nf, sizeof(float));
    t.adam_v = dfs_calloc(nf, sizeof(float));
    t.ema = dfs_malloc(nf * sizeof(float));
    float *xt = dfs_malloc(n * sizeof(float)), *target = dfs_malloc(n * sizeof(float)), *tf = dfs_malloc(B * sizeof(float));
    if (!t.arena || !t.garena || !t.tape || !t.G || !t.adam_m || !t.adam_v || !t.ema || !xt || !target || !tf) {
        st = dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
    } else {
        memcpy(t.ema, m->params, nf * sizeof(float));
        /* record the tape once to size the backward scratch */
        for (int b = 0; b < B; b++) tf[b] = (float)ts[b];
        dfs_unet_forward_train(u, m->params, t.arena, t.tape, x0, B, H, W, tf, labels, NULL);
        t.scratch = dfs_malloc((dfs_unet_backward_scratch(u, t.tape, t.n_tape, B) + 16) * sizeof(float));
        if (!t.scratch) st = dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
        else
            for (int i = 0; i < n_steps; i++) {
                const double t0 = now();
                const double l = optimize(&t, p, x0, noise, ts, labels, xt, target, tf);
                if (i == 0) *loss = l;
                if (seconds) seconds[i] = now() - t0;
            }
    }
    dfs_free(xt);
    dfs_free(target);
    dfs_free(tf);
    dfs_free(t.arena);
    dfs_free(t.garena);
    dfs_free(t.scratch);
    dfs_free(t.tape);
    dfs_free(t.G);
    dfs_free(t.adam_m);
    dfs_free(t.adam_v);
    dfs_free(t.ema);
    dfs_sched_free(t.sched);
    return st;
}
