/* diffuse train: train a UNet2DModel on Fashion-MNIST-style idx data. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "core/internal.h"
#include "io/image.h"
#include "io/png.h"
#include "train/train.h"

static const cli_opt opts[] = {
    {"--data", NULL, "SPEC", "fashion-mnist (Debian's dataset-fashion-mnist), idx files, or a directory of PNGs (class sub-directories)"},
    {"--random-flip", NULL, NULL, "flip training images horizontally at random"},
    {"--out", "-o", "DIR", "output: a DDPMPipeline directory with the EMA weights, and checkpoints (required)"},
    {"--unet-config", NULL, "FILE", "UNet2DModel config.json (default: a built-in 28x28 model)"},
    {"--scheduler-config", NULL, "FILE", "scheduler_config.json (default: DDPM, linear betas, epsilon, x0 clipped to [-1, 1] when sampling)"},
    {"--max-steps", NULL, "N", "optimisation steps (default 10000)"},
    {"--batch-size", NULL, "B", "images per step (default 16)"},
    {"--lr", NULL, "X", "peak learning rate (default 1e-4)"},
    {"--warmup-steps", NULL, "N", "linear warm-up steps (default 500), then cosine decay"},
    {"--constant-lr", NULL, NULL, "keep the learning rate constant after warm-up"},
    {"--weight-decay", NULL, "X", "AdamW weight decay (default 1e-6)"},
    {"--conditional", NULL, NULL, "class-conditional with classifier-free guidance dropout"},
    {"--p-uncond", NULL, "P", "probability of training a label as 'no class' (default 0.1)"},
    {"--snr-gamma", NULL, "G", "min-SNR-gamma loss weighting (default off)"},
    {"--resume", NULL, NULL, "continue from the checkpoint in --out"},
    {"--checkpoint-every", NULL, "N", "steps between checkpoints (default 500)"},
    {"--sample-every", NULL, "N", "steps between sample grids in OUT/samples/ (default: every checkpoint; 0: never)"},
    {"--f16", NULL, NULL, "store the exported weights as float16"},
    {"--seed", NULL, "S", "seed for initialisation, data order, timesteps and noise (default 0)"},
    {"--max-memory", NULL, "MB", "refuse to start when activations would need more (default: free memory)"},
    {"--threads", NULL, "N", "worker threads (default: all cores)"},
    {"--skip-nan", NULL, NULL, "skip an update whose loss or gradients are NaN or infinite (default: stop)"},
    {"--quiet", "-q", NULL, "no progress output"},
};
#define N_OPTS (int)(sizeof opts / sizeof *opts)

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { stop_requested = sig; }

typedef struct cli_state {
    int quiet, tty, sample_every, conditional;
    const char *out;
    int threads;
} cli_state;

static int on_progress(void *user, const dfs_train_progress *p) {
    const cli_state *s = user;
    if (s->quiet) return 0;
    /* the rate of this run's steps: after a resume, the earlier ones took no time here */
    const int done = p->step - p->start_step;
    const double eta = done > 0 && p->elapsed_s > 0 ? (double)(p->max_steps - p->step) * p->elapsed_s / done : 0;
    const int h = (int)(eta / 3600), m = (int)(eta / 60) % 60, sec = (int)eta % 60;
    char skipped[48] = "";
    if (p->skipped) snprintf(skipped, sizeof skipped, "  %d update%s skipped (NaN/inf)", p->skipped, p->skipped == 1 ? "" : "s");
    fprintf(stderr, "%sstep %d/%d  loss %.5f  lr %.2e  %.1f img/s  %.0f s elapsed  ETA %d:%02d:%02d%s%s", s->tty ? "\r" : "",
            p->step, p->max_steps, p->loss, p->lr, p->images_per_s, p->elapsed_s, h, m, sec, skipped, s->tty ? "   " : "\n");
    return 0;
}

static int should_stop(void *user) { return stop_requested != 0; }

/* A grid of samples from the checkpoint's EMA weights: one row per class, or a 4x4 grid. */
static void on_checkpoint(void *user, const char *dir, int step) {
    const cli_state *s = user;
    if (s->sample_every <= 0 || step % s->sample_every != 0) return;
    dfs_ctx *ctx = dfs_ctx_new();
    dfs_model_params mp;
    dfs_model_params_default(&mp);
    mp.path = dir;
    dfs_model *m = NULL;
    float *out = NULL;
    int64_t labels[100];
    if (!ctx || dfs_model_load(ctx, &mp, &m)) goto done;
    dfs_ctx_set_threads(ctx, s->threads);
    dfs_model_info info;
    dfs_model_get_info(m, &info);
    dfs_sample_params sp;
    dfs_sample_params_default(&sp);
    sp.scheduler = "dpmpp-2m";
    sp.steps = 20;
    int rows = 4, cols = 4;
    if (info.num_class_embeds > 1) {
        rows = info.num_class_embeds - 1 < 10 ? info.num_class_embeds - 1 : 10;
        cols = 8;
        for (int i = 0; i < rows * cols; i++) labels[i] = i / cols;
        sp.class_labels = labels;
        sp.guidance_scale = 2.0;
    }
    sp.num_images = rows * cols;
    int C, H, W;
    if (dfs_sample_shape(ctx, m, &sp, &C, &H, &W)) goto done;
    out = dfs_malloc(sizeof(float) * (size_t)sp.num_images * C * H * W);
    if (!out || dfs_sample(ctx, m, &sp, out)) goto done;
    char path[1024];
    snprintf(path, sizeof path, "%s/samples", s->out);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/samples/step_%07d.png", s->out, step);
    dfs_grid g;
    if (dfs_grid_init(ctx, &g, rows, cols, C, H, W, 2) == DFS_OK) {
        for (int i = 0; i < sp.num_images; i++) dfs_grid_put(&g, i / cols, i % cols, out + (size_t)i * C * H * W);
        if (dfs_png_write(ctx, path, g.pixels, g.width, g.height, C) == DFS_OK && !s->quiet)
            fprintf(stderr, "%ssamples: %s\n", s->tty ? "\n" : "", path);
        dfs_grid_free(&g);
    }
done:
    if (ctx && dfs_errmsg(ctx)[0] && strcmp(dfs_errmsg(ctx), "no error") != 0 && !s->quiet)
        fprintf(stderr, "diffuse train: sample grid skipped: %s\n", dfs_errmsg(ctx));
    dfs_free(out);
    dfs_model_free(m);
    dfs_ctx_free(ctx);
}

int cmd_train(int argc, char **argv) {
    cli_args a;
    if (cli_parse("train", opts, N_OPTS, argc, argv, 2, &a)) return 2;
    if (a.help) {
        cli_usage(stdout, "diffuse train --data SPEC --out DIR [options]",
                  "Trains a UNet2DModel to predict the noise added to training images (or v, or x0, per the\n"
                  "scheduler's prediction_type), with AdamW, warm-up then cosine learning rate, gradient\n"
                  "clipping at norm 1 and an EMA of the weights (diffusers' train_unconditional defaults).\n"
                  "DIR becomes a DDPMPipeline directory (model_index.json, unet/, scheduler/) holding the EMA\n"
                  "weights, loadable by diffusers and by 'diffuse sample'; DIR/train_state.safetensors lets\n"
                  "--resume continue exactly. Ctrl-C writes a checkpoint and stops.",
                  opts, N_OPTS);
        return 0;
    }
#define OPT(name) cli_get(&a, opts, N_OPTS, name)
    dfs_train_params tp;
    dfs_train_params_default(&tp);
    const char *v;
    long l, threads = sysconf(_SC_NPROCESSORS_ONLN), sample_every = -1;
    double d;
    if (threads < 1) threads = 1;
    tp.out_dir = OPT("--out");
    if (!tp.out_dir) {
        fprintf(stderr, "diffuse train: --out DIR is required\n");
        return 2;
    }
    if ((v = OPT("--data"))) tp.data = v;
    tp.unet_config = OPT("--unet-config");
    tp.scheduler_config = OPT("--scheduler-config");
    if ((v = OPT("--max-steps"))) { if (cli_int("train", "--max-steps", v, 1, 100000000, &l)) return 2; tp.max_steps = (int)l; }
    if ((v = OPT("--batch-size"))) { if (cli_int("train", "--batch-size", v, 1, 4096, &l)) return 2; tp.batch_size = (int)l; }
    if ((v = OPT("--warmup-steps"))) { if (cli_int("train", "--warmup-steps", v, 0, 100000000, &l)) return 2; tp.warmup_steps = (int)l; }
    if ((v = OPT("--checkpoint-every"))) { if (cli_int("train", "--checkpoint-every", v, 1, 100000000, &l)) return 2; tp.checkpoint_every = (int)l; }
    if ((v = OPT("--sample-every")) && cli_int("train", "--sample-every", v, 0, 100000000, &sample_every)) return 2;
    if ((v = OPT("--threads")) && cli_int("train", "--threads", v, 1, 1024, &threads)) return 2;
    if ((v = OPT("--lr"))) { if (cli_float("train", "--lr", v, 0, 10, &d)) return 2; tp.lr = d; }
    if ((v = OPT("--weight-decay"))) { if (cli_float("train", "--weight-decay", v, 0, 10, &d)) return 2; tp.weight_decay = d; }
    if ((v = OPT("--p-uncond"))) { if (cli_float("train", "--p-uncond", v, 0, 1, &d)) return 2; tp.p_uncond = d; }
    if ((v = OPT("--snr-gamma"))) { if (cli_float("train", "--snr-gamma", v, 0, 1e6, &d)) return 2; tp.snr_gamma = d; }
    if ((v = OPT("--seed"))) {
        char *end;
        tp.seed = strtoull(v, &end, 10);
        if (*end || !*v || v[0] == '-') {
            fprintf(stderr, "diffuse train: --seed must be a non-negative integer, not '%s'\n", v);
            return 2;
        }
    }
    tp.conditional = OPT("--conditional") != NULL;
    tp.random_flip = OPT("--random-flip") != NULL;
    tp.skip_nonfinite = OPT("--skip-nan") != NULL;
    tp.resume = OPT("--resume") != NULL;
    tp.lr_cosine = OPT("--constant-lr") == NULL;
    tp.f16_weights = OPT("--f16") != NULL;
    cli_state cs = {OPT("--quiet") != NULL, isatty(2), (int)(sample_every < 0 ? tp.checkpoint_every : sample_every),
                    tp.conditional, tp.out_dir, (int)threads};
    tp.on_progress = on_progress;
    tp.on_checkpoint = on_checkpoint;
    tp.should_stop = should_stop;
    tp.user = &cs;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    dfs_ctx *ctx = dfs_ctx_new();
    if (!ctx) return 1;
    dfs_ctx_set_threads(ctx, (int)threads);
    if (cli_get(&a, opts, N_OPTS, "--max-memory")) {
        long mb = 0;
        if (cli_int("train", "--max-memory", cli_get(&a, opts, N_OPTS, "--max-memory"), 1, 1L << 30, &mb)) {
            dfs_ctx_free(ctx);
            return 2;
        }
        dfs_ctx_set_max_memory(ctx, (size_t)mb << 20);
    }
    if (!cs.quiet) fprintf(stderr, "diffuse: training on %s into %s, %d steps at batch %d\n", tp.data, tp.out_dir, tp.max_steps, tp.batch_size);
    dfs_status st = dfs_train(ctx, &tp);
    int rc = 0;
    if (st) rc = cli_fail("train", ctx, st);
    else if (!cs.quiet) fprintf(stderr, "%sdiffuse: %s (checkpoint in %s)\n", cs.tty ? "\n" : "", stop_requested ? "stopped" : "done", tp.out_dir);
    dfs_ctx_free(ctx);
    return rc;
#undef OPT
}
