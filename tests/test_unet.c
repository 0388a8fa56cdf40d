/* The whole network against outputs computed by diffusers itself (tests/fixtures/unet*): every
 * model directory found there, every case, max |diff| <= 1e-4 · max |reference|. Also the
 * parameter counts diffusers reported, the sinusoidal embedding on its own, and bit-identical
 * results with 1 and 2 threads. */
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "io/json.h"
#include "io/npy.h"
#include "model/model.h"
#include "ops/ops.h"
#include "ops/winograd.h"
#include "test.h"

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static dfs_status read_npy(dfs_ctx *ctx, const char *dir, const char *name, dfs_npy *a) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return dfs_npy_read(ctx, p, a);
}

static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

static void run_case(dfs_ctx *ctx, dfs_model *m, const char *model_name, const char *dir) {
    dfs_npy x = {0}, t = {0}, y = {0}, e = {0};
    char yp[1024];
    snprintf(yp, sizeof yp, "%s/class_labels.npy", dir);
    int has_y = access(yp, F_OK) == 0;
    if (!TEST_CHECK(read_npy(ctx, dir, "sample.npy", &x) == DFS_OK && read_npy(ctx, dir, "timesteps.npy", &t) == DFS_OK &&
                    read_npy(ctx, dir, "expected.npy", &e) == DFS_OK && (!has_y || read_npy(ctx, dir, "class_labels.npy", &y) == DFS_OK))) {
        fprintf(stderr, "  %s: %s\n", dir, dfs_errmsg(ctx));
        goto done;
    }
    const int B = (int)x.shape[0], H = (int)x.shape[2], W = (int)x.shape[3];
    float ts[64];
    int64_t labels[64];
    TEST_CHECK(B <= 64);
    for (int b = 0; b < B && b < 64; b++) {
        size_t k = t.numel == 1 ? 0 : (size_t)b;
        ts[b] = t.dtype == DFS_DTYPE_I64 ? (float)((int64_t *)t.data)[k] : ((float *)t.data)[k];
        if (has_y) labels[b] = y.dtype == DFS_DTYPE_I64 ? ((int64_t *)y.data)[y.numel == 1 ? 0 : b] : 0;
    }
    float *out1 = dfs_malloc(e.numel * sizeof(float)), *out2 = dfs_malloc(e.numel * sizeof(float));
    dfs_ctx_set_threads(ctx, 1);
    dfs_status s1 = dfs_model_forward(ctx, m, x.data, B, H, W, ts, has_y ? labels : NULL, out1);
    dfs_ctx_set_threads(ctx, 2);
    dfs_status s2 = dfs_model_forward(ctx, m, x.data, B, H, W, ts, has_y ? labels : NULL, out2);
    if (TEST_CHECK(s1 == DFS_OK && s2 == DFS_OK)) {
        const float *ref = e.data;
        double d = 0;
        for (size_t i = 0; i < e.numel; i++) d = fmax(d, fabs((double)out1[i] - ref[i]));
        if (isnan(max_abs(out1, e.numel))) d = INFINITY;
        double rel = d / max_abs(ref, e.numel);
        if (!TEST_CHECK(rel <= 1e-4)) fprintf(stderr, "  %s %s: max|diff| %.3g = %.3g of max|ref|\n", model_name, dir, d, rel);
        if (getenv("DFS_TEST_VERBOSE")) printf("  %s: max|diff|/max|ref| = %.2e\n", dir, rel);
        TEST_CHECK(memcmp(out1, out2, e.numel * sizeof(float)) == 0);
    } else {
        fprintf(stderr, "  %s: %s\n", dir, dfs_errmsg(ctx));
    }
    dfs_free(out1);
    dfs_free(out2);
done:
    dfs_npy_free(&x);
    dfs_npy_free(&t);
    dfs_npy_free(&y);
    dfs_npy_free(&e);
}

/* Every model directory under root (root/<name>/model with root/<name>/cases/<case>/). */
static int run_fixture_dir(dfs_ctx *ctx, const char *root) {
    DIR *d = opendir(root);
    if (!d) return 0;
    int n_models = 0;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        if (ent->d_name[0] == '.') continue;
        char model[1024], cases[1024];
        snprintf(model, sizeof model, "%s/%s/model", root, ent->d_name);
        snprintf(cases, sizeof cases, "%s/%s/cases", root, ent->d_name);
        if (!is_dir(model) || !is_dir(cases)) continue;
        dfs_model_params mp;
        dfs_model_params_default(&mp);
        mp.path = model;
        dfs_model *m = NULL;
        if (!TEST_CHECK(dfs_model_load(ctx, &mp, &m) == DFS_OK)) {
            fprintf(stderr, "  %s: %s\n", model, dfs_errmsg(ctx));
            continue;
        }
        n_models++;
        DIR *cd = opendir(cases);
        struct dirent *ce;
        while (cd && (ce = readdir(cd))) {
            if (ce->d_name[0] == '.') continue;
            char dir[1024];
            snprintf(dir, sizeof dir, "%s/%s", cases, ce->d_name);
            if (is_dir(dir)) run_case(ctx, m, ent->d_name, dir);
        }
        if (cd) closedir(cd);
        dfs_model_free(m);
    }
    closedir(d);
    return n_models;
}

/* Parameter counts as diffusers reported them (index.json n_params). */
static void check_param_counts(dfs_ctx *ctx, const char *root) {
    char p[1024];
    snprintf(p, sizeof p, "%s/index.json", root);
    dfs_json *j = NULL;
    if (!TEST_CHECK(dfs_json_load_file(ctx, p, 1 << 20, &j) == DFS_OK)) return;
    for (size_t i = 0; i < j->n_items; i++) {
        const dfs_json *np = dfs_json_get(&j->items[i], "n_params");
        if (!np) continue;
        snprintf(p, sizeof p, "%s/%s/model", root, j->items[i].key);
        dfs_model_params mp;
        dfs_model_params_default(&mp);
        mp.path = p;
        dfs_model *m = NULL;
        if (dfs_model_load(ctx, &mp, &m) != DFS_OK) continue;
        dfs_model_info info;
        dfs_model_get_info(m, &info);
        TEST_CHECK(info.n_params == (int64_t)np->number);
        dfs_model_free(m);
    }
    dfs_json_free(j);
}

/* The sinusoidal projection against the one diffusers used (time_proj.npy). */
static void check_time_proj(dfs_ctx *ctx, const char *case_dir, int dim) {
    dfs_npy t = {0}, tp = {0};
    if (TEST_CHECK(read_npy(ctx, case_dir, "timesteps.npy", &t) == DFS_OK && read_npy(ctx, case_dir, "time_proj.npy", &tp) == DFS_OK)) {
        const int N = (int)tp.shape[0];
        float ts[8], e[8 * 256];
        for (int b = 0; b < N && b < 8; b++) {
            size_t k = t.numel == 1 ? 0 : (size_t)b;
            ts[b] = t.dtype == DFS_DTYPE_I64 ? (float)((int64_t *)t.data)[k] : ((float *)t.data)[k];
        }
        dfs_timestep_embedding(e, ts, N, dim, 1, 0.0f);
        double d = 0;
        for (size_t i = 0; i < tp.numel; i++) d = fmax(d, fabs(e[i] - ((float *)tp.data)[i]));
        TEST_CHECK(d < 5e-5); /* torch's float32 exp/sin are not correctly rounded: a few ulps at t≈1000 */
    }
    dfs_npy_free(&t);
    dfs_npy_free(&tp);
}

/* The tiny fixture's case b2_int_t10_t999 loaded twice: a for passes with prepared weights, b
 * under a memory limit that leaves no room for them (ctx and tight). */
typedef struct tiny_case {
    dfs_ctx *ctx, *tight;
    dfs_model *a, *b;
    dfs_npy x, t, e;
    int B, H, W;
    float ts[2];
} tiny_case;

static int tiny_open(tiny_case *c, int threads) {
    const char *dir = "tests/fixtures/unet/tiny/cases/b2_int_t10_t999";
    memset(c, 0, sizeof *c);
    c->ctx = dfs_ctx_new(), c->tight = dfs_ctx_new();
    dfs_model_params mp;
    dfs_model_params_default(&mp);
    mp.path = "tests/fixtures/unet/tiny/model";
    if (!TEST_CHECK(dfs_model_load(c->ctx, &mp, &c->a) == DFS_OK && dfs_model_load(c->ctx, &mp, &c->b) == DFS_OK &&
                    read_npy(c->ctx, dir, "sample.npy", &c->x) == DFS_OK && read_npy(c->ctx, dir, "timesteps.npy", &c->t) == DFS_OK &&
                    read_npy(c->ctx, dir, "expected.npy", &c->e) == DFS_OK && c->t.dtype == DFS_DTYPE_I64 && c->t.numel == 2)) {
        fprintf(stderr, "  tiny case: %s\n", dfs_errmsg(c->ctx));
        return 0;
    }
    c->B = (int)c->x.shape[0], c->H = (int)c->x.shape[2], c->W = (int)c->x.shape[3];
    c->ts[0] = (float)((int64_t *)c->t.data)[0], c->ts[1] = (float)((int64_t *)c->t.data)[1];
    dfs_ctx_set_threads(c->ctx, threads), dfs_ctx_set_threads(c->tight, threads);
    dfs_ops_set_threads(threads); /* the plan's scratch depends on the thread count */
    const dfs_unet_plan plan = dfs_unet_plan_forward(c->b->unet, c->B, c->H, c->W);
    dfs_ctx_set_max_memory(c->tight, (plan.arena_floats + plan.prep_floats) * sizeof(float) - 1);
    return 1;
}

static void tiny_close(tiny_case *c) {
    dfs_npy_free(&c->x), dfs_npy_free(&c->t), dfs_npy_free(&c->e);
    dfs_model_free(c->a), dfs_model_free(c->b);
    dfs_ctx_free(c->ctx), dfs_ctx_free(c->tight);
}

/* The weights a model prepares for inference change no bit: its first pass (preparing them), its
 * second (using them) and a model that had no room for them under --max-memory agree exactly. */
static void check_prepared(void) {
    tiny_case c;
    float *o[3] = {NULL, NULL, NULL};
    if (tiny_open(&c, 1)) {
        for (int i = 0; i < 3; i++) o[i] = dfs_malloc(c.x.numel * sizeof(float));
        TEST_CHECK(dfs_model_forward(c.ctx, c.a, c.x.data, c.B, c.H, c.W, c.ts, NULL, o[0]) == DFS_OK);
        TEST_CHECK(dfs_model_forward(c.ctx, c.a, c.x.data, c.B, c.H, c.W, c.ts, NULL, o[1]) == DFS_OK && c.a->prep &&
                   c.a->prep_ready);
        TEST_CHECK(dfs_model_forward(c.tight, c.b, c.x.data, c.B, c.H, c.W, c.ts, NULL, o[2]) == DFS_OK && !c.b->prep &&
                   c.b->prep_skipped);
        TEST_CHECK(memcmp(o[0], o[1], c.x.numel * sizeof(float)) == 0 && memcmp(o[0], o[2], c.x.numel * sizeof(float)) == 0);
    }
    for (int i = 0; i < 3; i++) dfs_free(o[i]);
    tiny_close(&c);
}

/* The bf16 compute type: within 3e-2 of diffusers' float32 output (bfloat16 keeps 8 significant
 * bits), not the float32 result (the BF16 products did run), the same bits with 1 and 2 threads;
 * without room for the prepared weights, the float32 result. Unknown types are refused. */
static void check_bf16(void) {
    tiny_case c;
    float *o[4] = {NULL, NULL, NULL, NULL};
    if (tiny_open(&c, 2)) {
        const size_t n = c.x.numel;
        for (int i = 0; i < 4; i++) o[i] = dfs_malloc(n * sizeof(float));
        TEST_CHECK(dfs_model_set_compute(c.ctx, c.a, "fp16") == DFS_ERR_ARG && strstr(dfs_errmsg(c.ctx), "fp16"));
        TEST_CHECK(dfs_model_set_compute(c.ctx, c.a, "bf16") == DFS_OK && dfs_model_set_compute(c.tight, c.b, "bf16") == DFS_OK);
        TEST_CHECK(dfs_model_forward(c.ctx, c.a, c.x.data, c.B, c.H, c.W, c.ts, NULL, o[0]) == DFS_OK);
        dfs_ctx_set_threads(c.ctx, 1);
        TEST_CHECK(dfs_model_forward(c.ctx, c.a, c.x.data, c.B, c.H, c.W, c.ts, NULL, o[1]) == DFS_OK);
        TEST_CHECK(memcmp(o[0], o[1], n * sizeof(float)) == 0);
        double d = 0;
        for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)o[0][i] - ((float *)c.e.data)[i]));
        const double rel = d / max_abs(c.e.data, n);
        if (!TEST_CHECK(rel <= 3e-2 && rel > 1e-4)) fprintf(stderr, "  bf16: max|diff| = %.3g of max|ref|\n", rel);
        dfs_ctx_set_threads(c.ctx, 2);
        TEST_CHECK(dfs_model_set_compute(c.ctx, c.a, "f32") == DFS_OK &&
                   dfs_model_forward(c.ctx, c.a, c.x.data, c.B, c.H, c.W, c.ts, NULL, o[2]) == DFS_OK);
        TEST_CHECK(dfs_model_forward(c.tight, c.b, c.x.data, c.B, c.H, c.W, c.ts, NULL, o[3]) == DFS_OK && !c.b->prep);
        TEST_CHECK(memcmp(o[2], o[3], n * sizeof(float)) == 0);
    }
    for (int i = 0; i < 4; i++) dfs_free(o[i]);
    tiny_close(&c);
}

/* Batches large enough for F(4×4, 3×3) at every level (winograd.h): the fashion fixture's two
 * images 16 times each. Every copy gives the same bits, within 1e-4 of diffusers (its error is
 * printed with DFS_TEST_VERBOSE); the batch of 2 between (a new plan, prepared again for
 * F(2×2, 3×3) at 7×7, and at 14×14 for the AVX-512 kernel's wider strips) matches diffusers too,
 * and the batch of 32 after it gives the same bits as before. */
static void check_small_image_tiles(dfs_ctx *ctx) {
    const char *dir = "tests/fixtures/unet/fashion/cases/b2_int_t10_t999";
    dfs_model_params mp;
    dfs_model_params_default(&mp);
    mp.path = "tests/fixtures/unet/fashion/model";
    dfs_model *m = NULL;
    dfs_npy x = {0}, t = {0}, e = {0};
    if (!TEST_CHECK(dfs_model_load(ctx, &mp, &m) == DFS_OK && read_npy(ctx, dir, "sample.npy", &x) == DFS_OK &&
                    read_npy(ctx, dir, "timesteps.npy", &t) == DFS_OK && read_npy(ctx, dir, "expected.npy", &e) == DFS_OK &&
                    x.shape[0] == 2 && t.dtype == DFS_DTYPE_I64 && t.numel == 2)) {
        fprintf(stderr, "  %s: %s\n", dir, dfs_errmsg(ctx));
        dfs_model_free(m), dfs_npy_free(&x), dfs_npy_free(&t), dfs_npy_free(&e);
        return;
    }
    enum { COPIES = 16, B = 2 * COPIES };
    const int H = (int)x.shape[2], W = (int)x.shape[3];
    const size_t img = x.numel / 2;
    TEST_CHECK(dfs_winograd_tile(B, 64, 64, 7, 7, 0) == 4 && dfs_winograd_tile(B, 64, 64, 14, 14, 0) == 4 &&
               dfs_winograd_tile(2, 64, 64, 7, 7, 0) == 2 && H == 28 &&
               W == 28);
    float *xs = dfs_malloc(B * img * sizeof(float)), *o1 = dfs_malloc(B * img * sizeof(float));
    float *o2 = dfs_malloc(B * img * sizeof(float)), *o3 = dfs_malloc(2 * img * sizeof(float)), ts[B];
    for (int b = 0; b < B; b++) {
        memcpy(xs + b * img, (float *)x.data + (b % 2) * img, img * sizeof(float));
        ts[b] = (float)((int64_t *)t.data)[b % 2];
    }
    dfs_ctx_set_threads(ctx, 2);
    if (TEST_CHECK(dfs_model_forward(ctx, m, xs, B, H, W, ts, NULL, o1) == DFS_OK &&
                   dfs_model_forward(ctx, m, xs, 2, H, W, ts, NULL, o3) == DFS_OK &&
                   dfs_model_forward(ctx, m, xs, B, H, W, ts, NULL, o2) == DFS_OK)) {
        const double scale = max_abs(e.data, e.numel);
        double d = 0, d2 = 0;
        int copies_same = 1;
        for (int b = 0; b < B; b++) {
            copies_same &= memcmp(o1 + b * img, o1 + (b % 2) * img, img * sizeof(float)) == 0;
            for (size_t i = 0; i < img; i++) d = fmax(d, fabs((double)o1[b * img + i] - ((float *)e.data)[(b % 2) * img + i]));
        }
        for (size_t i = 0; i < 2 * img; i++) d2 = fmax(d2, fabs((double)o3[i] - ((float *)e.data)[i]));
        TEST_CHECK(copies_same);
        if (!TEST_CHECK(d / scale <= 1e-4 && d2 / scale <= 1e-4))
            fprintf(stderr, "  F(4x4, 3x3) batch: %.3g, batch of 2: %.3g of max|ref|\n", d / scale, d2 / scale);
        if (getenv("DFS_TEST_VERBOSE")) printf("  F(4x4, 3x3) batch: max|diff|/max|ref| = %.2e (batch of 2: %.2e)\n", d / scale, d2 / scale);
        TEST_CHECK(memcmp(o1, o2, B * img * sizeof(float)) == 0);
        TEST_CHECK(memcmp(o1, o3, 2 * img * sizeof(float)) != 0); /* the batch of 32 did take F(4×4, 3×3) */
    } else {
        fprintf(stderr, "  %s\n", dfs_errmsg(ctx));
    }
    dfs_free(xs), dfs_free(o1), dfs_free(o2), dfs_free(o3);
    dfs_model_free(m), dfs_npy_free(&x), dfs_npy_free(&t), dfs_npy_free(&e);
}

int main(void) {
    dfs_ctx *ctx = dfs_ctx_new();
    int n = run_fixture_dir(ctx, "tests/fixtures/unet");
    TEST_CHECK(n == 2);
    TEST_CHECK(run_fixture_dir(ctx, "tests/fixtures/unet_extra") == 12);
    check_param_counts(ctx, "tests/fixtures/unet");
    check_param_counts(ctx, "tests/fixtures/unet_extra");
    check_time_proj(ctx, "tests/fixtures/unet/tiny/cases/b2_int_t10_t999", 32);
    check_time_proj(ctx, "tests/fixtures/unet/tiny/cases/b2_float_t0.5_t537.25", 32);
    check_prepared();
    check_bf16();
    check_small_image_tiles(ctx);
    dfs_ctx_free(ctx);
    return test_summary("unet");
}
