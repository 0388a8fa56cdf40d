/* diffuse sample: generate images with a model and a sampler. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "core/internal.h"
#include "io/image.h"
#include "io/npy.h"
#include "io/png.h"

static const cli_opt opts[] = {
    {"--model", "-m", "DIR", "diffusers model or pipeline directory (required)"},
    {"--scheduler", NULL, "NAME", "ddpm, ddim, pndm, euler, euler-a, heun, lms, dpmpp-2m, dpmpp-3m, unipc (default: the model's scheduler, else ddim)"},
    {"--scheduler-config", NULL, "FILE", "a diffusers scheduler_config.json overriding the model's"},
    {"--steps", NULL, "N", "sampler steps (default 50)"},
    {"--eta", NULL, "X", "DDIM eta: 0 deterministic (default), 1 like DDPM"},
    {"--seed", NULL, "S", "random seed, as torch.manual_seed(S) (default 0)"},
    {"--num-images", "-n", "N", "images to generate (default 1; with --class all: per class)"},
    {"--batch-size", NULL, "B", "images per network call (default: all at once)"},
    {"--class", NULL, "K|all", "class label for class-conditional models; 'all': one row per class"},
    {"--guidance-scale", NULL, "W", "classifier-free guidance weight (default 1: off)"},
    {"--size", NULL, "HxW", "sample size (default: the config's sample_size)"},
    {"--init-noise", NULL, "X.npy", "standard-normal x_T, float32 (N, C, H, W), instead of drawing it"},
    {"--output", "-o", "OUT.png", "a grid of the images"},
    {"--output-npy", NULL, "OUT.npy", "the final samples, float32 (N, C, H, W), before clamping"},
    {"--save-trajectory", NULL, "FILE.png", "x_t (top) and predicted x0 (bottom) of the first image every few steps"},
    {"--save-trajectory-npy", NULL, "FILE.npy", "float32 (K, N, C, H, W): the samples after each of the K steps"},
    {"--max-memory", NULL, "MB", "refuse to start when activations would need more (default: free memory)"},
    {"--dtype", NULL, "T", "f32 (default) or bf16: bfloat16 operands for the 3x3 convolutions' products (less exact; its speed depends on the CPU: docs/performance.md)"},
    {"--threads", NULL, "N", "worker threads (default: all cores)"},
    {"--quiet", "-q", NULL, "no progress output"},
};
#define N_OPTS (int)(sizeof opts / sizeof *opts)

typedef struct progress {
    int quiet, tty;
    int n_images, done_images;
    long steps_total, steps_done;
    double t0, last_print;
    /* trajectory capture */
    float *traj;      /* (K, N, C, H, W) or NULL */
    size_t per;       /* values per image */
    int K;
    float *strip_x, *strip_x0; /* first image: x_t and x0 at every step (K, per) */
} progress;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int on_step(void *user, int first, int batch, int step, int n_steps, float t, const float *x, const float *x0) {
    progress *p = user;
    if (step < 0) return 0;
    if (p->traj)
        memcpy(p->traj + ((size_t)step * p->n_images + (size_t)first) * p->per, x, sizeof(float) * p->per * (size_t)batch);
    if (p->strip_x && first == 0) {
        memcpy(p->strip_x + (size_t)step * p->per, x, sizeof(float) * p->per);
        memcpy(p->strip_x0 + (size_t)step * p->per, x0, sizeof(float) * p->per);
    }
    p->steps_done++;
    if (p->quiet) return 0;
    const double el = now() - p->t0, rate = p->steps_done / (el > 1e-9 ? el : 1e-9);
    const double eta = (p->steps_total - p->steps_done) / (rate > 0 ? rate : 1);
    const int last = p->steps_done == p->steps_total;
    if (p->tty) {
        const int width = 24, fill = (int)(width * p->steps_done / p->steps_total);
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\rsampling [%s] step %d/%d, images %d-%d of %d, %.1f s, %.2f steps/s, ETA %.0f s ", bar, step + 1,
                n_steps, first + 1, first + batch, p->n_images, el, rate, eta);
        if (last) fputc('\n', stderr);
    } else if (last || el - p->last_print >= 5.0 || step + 1 == n_steps) {
        fprintf(stderr, "sampling: step %d/%d, images %d-%d of %d, %.1f s elapsed, %.2f steps/s, ETA %.0f s\n", step + 1,
                n_steps, first + 1, first + batch, p->n_images, el, rate, eta);
        p->last_print = el;
    }
    return 0;
}

static int parse_size(const char *s, long *h, long *w) {
    char *end;
    *h = strtol(s, &end, 10);
    *w = *h;
    if (*end == 'x') *w = strtol(end + 1, &end, 10);
    return !*end && *h >= 1 && *w >= 1 && *h <= 16384 && *w <= 16384;
}

/* Writes the trajectory strip: x_t on the top row, predicted x0 below, up to 10 columns. */
static dfs_status write_strip(dfs_ctx *ctx, const char *path, const progress *p, int C, int H, int W) {
    const int cols = p->K < 10 ? p->K : 10;
    dfs_grid g;
    dfs_status st = dfs_grid_init(ctx, &g, 2, cols, C, H, W, 2);
    if (st) return st;
    for (int c = 0; c < cols; c++) {
        const int k = cols == 1 ? p->K - 1 : (int)((long)c * (p->K - 1) / (cols - 1));
        dfs_grid_put(&g, 0, c, p->strip_x + (size_t)k * p->per);
        dfs_grid_put(&g, 1, c, p->strip_x0 + (size_t)k * p->per);
    }
    st = dfs_png_write(ctx, path, g.pixels, g.width, g.height, C);
    dfs_grid_free(&g);
    return st;
}

int cmd_sample(int argc, char **argv) {
    cli_args a;
    if (cli_parse("sample", opts, N_OPTS, argc, argv, 2, &a)) return 2;
    if (a.help) {
        cli_usage(stdout, "diffuse sample -m DIR [-o OUT.png] [--output-npy OUT.npy] [options]",
                  "Generates images: starts from Gaussian noise and runs the sampler, asking the network for\n"
                  "the noise at every step. With the same seed, DDPM and DDIM give the numbers diffusers'\n"
                  "DDPMPipeline and DDIMPipeline give with generator=torch.manual_seed(seed) on the CPU.\n"
                  "Images are written as diffusers post-processes them: clamp(x/2 + 0.5, 0, 1) · 255, rounded.\n"
                  "Outputs are written only when sampling succeeded.",
                  opts, N_OPTS);
        return 0;
    }
#define OPT(name) cli_get(&a, opts, N_OPTS, name)
    const char *model = OPT("--model"), *png = OPT("--output"), *npy = OPT("--output-npy");
    const char *traj_png = OPT("--save-trajectory"), *traj_npy = OPT("--save-trajectory-npy"), *v;
    if (!model) {
        fprintf(stderr, "diffuse sample: --model DIR is required\n");
        return 2;
    }
    if (!png && !npy) {
        fprintf(stderr, "diffuse sample: give -o OUT.png and/or --output-npy OUT.npy\n");
        return 2;
    }
    dfs_sample_params sp;
    dfs_sample_params_default(&sp);
    long steps = 50, n = 1, bs = 0, threads = sysconf(_SC_NPROCESSORS_ONLN), h = 0, w = 0;
    double eta = 0, gs = 1;
    unsigned long long seed = 0;
    if (threads < 1) threads = 1;
    if ((v = OPT("--steps")) && cli_int("sample", "--steps", v, 1, 100000, &steps)) return 2;
    if (cli_dtype("sample", OPT("--dtype"))) return 2;
    if ((v = OPT("--num-images")) && cli_int("sample", "--num-images", v, 1, 100000, &n)) return 2;
    if ((v = OPT("--batch-size")) && cli_int("sample", "--batch-size", v, 1, 100000, &bs)) return 2;
    if ((v = OPT("--threads")) && cli_int("sample", "--threads", v, 1, 1024, &threads)) return 2;
    if ((v = OPT("--eta")) && cli_float("sample", "--eta", v, 0, 1e6, &eta)) return 2;
    if ((v = OPT("--guidance-scale")) && cli_float("sample", "--guidance-scale", v, -1e6, 1e6, &gs)) return 2;
    if ((v = OPT("--seed"))) {
        char *end;
        seed = strtoull(v, &end, 10);
        if (*end || !*v || v[0] == '-') {
            fprintf(stderr, "diffuse sample: --seed must be a non-negative integer, not '%s'\n", v);
            return 2;
        }
    }
    if ((v = OPT("--size")) && !parse_size(v, &h, &w)) {
        fprintf(stderr, "diffuse sample: --size must be N or HxW with sides from 1 to 16384, not '%s'\n", v);
        return 2;
    }
    const char *cls = OPT("--class");
    long label = -1;
    const int all_classes = cls && strcmp(cls, "all") == 0;
    if (cls && !all_classes && cli_int("sample", "--class", cls, 0, 1 << 24, &label)) return 2;

    dfs_ctx *ctx = dfs_ctx_new();
    if (!ctx) return 1;
    dfs_ctx_set_threads(ctx, (int)threads);
    if (cli_get(&a, opts, N_OPTS, "--max-memory")) {
        long mb = 0;
        if (cli_int("sample", "--max-memory", cli_get(&a, opts, N_OPTS, "--max-memory"), 1, 1L << 30, &mb)) {
            dfs_ctx_free(ctx);
            return 2;
        }
        dfs_ctx_set_max_memory(ctx, (size_t)mb << 20);
    }
    dfs_model *m = NULL;
    dfs_npy init = {0};
    float *out = NULL;
    int64_t *labels = NULL;
    progress pr;
    memset(&pr, 0, sizeof pr);
    int rc = 0, rows = 1, cols = 1;
    dfs_status st;
    dfs_model_params mp;
    dfs_model_params_default(&mp);
    mp.path = model;
    if ((st = dfs_model_load(ctx, &mp, &m))) goto fail;
    if (OPT("--dtype") && (st = dfs_model_set_compute(ctx, m, OPT("--dtype")))) goto fail;
    dfs_model_info info;
    dfs_model_get_info(m, &info);
    sp.scheduler = OPT("--scheduler");
    sp.scheduler_config = OPT("--scheduler-config");
    sp.steps = (int)steps;
    sp.eta = eta;
    sp.seed = seed;
    sp.guidance_scale = gs;
    sp.height = (int)h;
    sp.width = (int)w;
    int n_classes = 1;
    if (all_classes) {
        if (info.num_class_embeds < 1) {
            st = dfs_fail(ctx, DFS_ERR_ARG, "--class all needs a model with a class-embedding table");
            goto fail;
        }
        n_classes = info.num_class_embeds - (gs != 1.0 ? 1 : 0);
    }
    sp.num_images = (int)(n * n_classes);
    sp.batch_size = (int)bs;
    if (cls) {
        labels = dfs_malloc(sizeof(int64_t) * (size_t)sp.num_images);
        if (!labels) {
            st = dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (int i = 0; i < sp.num_images; i++) labels[i] = all_classes ? i / n : label;
        sp.class_labels = labels;
    }
    int C, H, W;
    if ((st = dfs_sample_shape(ctx, m, &sp, &C, &H, &W))) goto fail;
    const size_t per = (size_t)C * H * W;
    if ((v = OPT("--init-noise"))) {
        if ((st = dfs_npy_read(ctx, v, &init))) goto fail;
        if (init.dtype != DFS_DTYPE_F32 || init.ndim != 4 || init.shape[0] != sp.num_images || init.shape[1] != C ||
            init.shape[2] != H || init.shape[3] != W) {
            st = dfs_fail(ctx, DFS_ERR_SHAPE, "%s: initial noise must be float32 (%d, %d, %d, %d)", v, sp.num_images, C, H, W);
            goto fail;
        }
        sp.init_noise = init.data;
    }
    if (png && C != 1 && C != 3) {
        st = dfs_fail(ctx, DFS_ERR_ARG, "%s: %d-channel samples cannot be shown as PNG (use --output-npy)", png, C);
        goto fail;
    }
    char sched_name[64];
    int K = 0;
    if ((st = dfs_sample_scheduler_info(ctx, m, &sp, sched_name, sizeof sched_name, &K))) goto fail;
    out = dfs_malloc(sizeof(float) * per * (size_t)sp.num_images);
    pr.per = per;
    pr.n_images = sp.num_images;
    pr.quiet = OPT("--quiet") != NULL;
    pr.tty = isatty(2);
    pr.t0 = now();
    if (!out) {
        st = dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory for %d images", sp.num_images);
        goto fail;
    }
    pr.K = K;
    const int n_batches = (sp.num_images + (sp.batch_size > 0 ? sp.batch_size : sp.num_images) - 1) /
                          (sp.batch_size > 0 ? sp.batch_size : sp.num_images);
    pr.steps_total = (long)K * n_batches;
    if (traj_npy || traj_png) {
        pr.traj = traj_npy ? dfs_malloc(sizeof(float) * per * (size_t)sp.num_images * (size_t)K) : NULL;
        pr.strip_x = dfs_malloc(sizeof(float) * per * (size_t)K);
        pr.strip_x0 = dfs_malloc(sizeof(float) * per * (size_t)K);
        if ((traj_npy && !pr.traj) || !pr.strip_x || !pr.strip_x0) {
            st = dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory for the trajectory");
            goto fail;
        }
    }
    if (!pr.quiet)
        fprintf(stderr, "diffuse: %d image%s of %dx%d with %s, %ld steps, seed %llu, %ld thread%s\n", sp.num_images,
                sp.num_images == 1 ? "" : "s", H, W, sched_name, steps, seed, threads, threads == 1 ? "" : "s");
    sp.callback = on_step;
    sp.user = &pr;
    if ((st = dfs_sample(ctx, m, &sp, out))) goto fail;
    const int64_t shape[4] = {sp.num_images, C, H, W};
    if (npy && (st = dfs_npy_write(ctx, npy, DFS_DTYPE_F32, 4, shape, out))) goto fail;
    if (png) {
        if (all_classes) {
            rows = n_classes;
            cols = (int)n;
        } else {
            cols = (int)ceil(sqrt((double)sp.num_images));
            rows = (sp.num_images + cols - 1) / cols;
        }
        dfs_grid g;
        if ((st = dfs_grid_init(ctx, &g, rows, cols, C, H, W, 2))) goto fail;
        for (int i = 0; i < sp.num_images; i++) dfs_grid_put(&g, i / cols, i % cols, out + (size_t)i * per);
        st = dfs_png_write(ctx, png, g.pixels, g.width, g.height, C);
        dfs_grid_free(&g);
        if (st) goto fail;
    }
    if (traj_npy) {
        const int64_t tshape[5] = {K, sp.num_images, C, H, W};
        if ((st = dfs_npy_write(ctx, traj_npy, DFS_DTYPE_F32, 5, tshape, pr.traj))) goto fail;
    }
    if (traj_png && (st = write_strip(ctx, traj_png, &pr, C, H, W))) goto fail;
    if (!pr.quiet) {
        fprintf(stderr, "diffuse: done in %.1f s:", now() - pr.t0);
        if (png) fprintf(stderr, " %s", png);
        if (npy) fprintf(stderr, " %s", npy);
        fprintf(stderr, "\n");
    }
    goto done;
fail:
    rc = cli_fail("sample", ctx, st);
done:
    dfs_free(out);
    dfs_free(labels);
    dfs_free(pr.traj);
    dfs_free(pr.strip_x);
    dfs_free(pr.strip_x0);
    dfs_npy_free(&init);
    dfs_model_free(m);
    dfs_ctx_free(ctx);
    return rc;
#undef OPT
}
