/* The whole network's gradients against PyTorch (tests/fixtures/grad, made by
 * tools/gen_grad_fixtures.py in float64): for L = Σ upstream ⊙ unet(x, t, y), dL/dx and dL/dθ for
 * every parameter, within 1e-4 of each tensor's largest reference value. Also: the training
 * forward gives the inference output, and gradients do not depend on the thread count. */
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "test.h"

typedef struct grads_run {
    float *arena, *garena, *scratch, *G;
    dfs_tape_op *tape;
    dfs_unet_train_io io;
} grads_run;

static void run_grads(const dfs_model *m, const dfs_npy *x, const float *t, const int64_t *y, const float *up, int threads,
                      int input_grad, grads_run *gr) {
    const dfs_unet *u = m->unet;
    const int B = (int)x->shape[0], H = (int)x->shape[2], W = (int)x->shape[3];
    dfs_ops_set_threads(threads);
    dfs_unet_plan plan = dfs_unet_plan_train(u, B, H, W);
    gr->arena = dfs_calloc(plan.arena_floats, sizeof(float));
    gr->garena = dfs_malloc(plan.arena_floats * sizeof(float));
    for (size_t i = 0; i < plan.arena_floats; i++) gr->garena[i] = NAN; /* the backward must not read what it did not write */
    gr->tape = dfs_calloc(plan.n_tape, dfs_unet_tape_op_size());
    gr->G = dfs_calloc(u->n_floats, sizeof(float));
    gr->io = dfs_unet_forward_train(u, m->params, gr->arena, gr->tape, x->data, B, H, W, t, y, NULL);
    gr->scratch = dfs_calloc(dfs_unet_backward_scratch(u, gr->tape, plan.n_tape, B) + 16, sizeof(float));
    const size_t n_out = (size_t)B * u->cfg.out_channels * H * W;
    memcpy(gr->garena + gr->io.out_off, up, n_out * sizeof(float));
    dfs_unet_backward(u, m->params, gr->G, gr->arena, gr->garena, gr->io, input_grad, gr->tape, plan.n_tape, gr->scratch, B, t, y);
}

static void free_grads(grads_run *gr) {
    dfs_free(gr->arena);
    dfs_free(gr->garena);
    dfs_free(gr->scratch);
    dfs_free(gr->G);
    dfs_free(gr->tape);
}

/* max |a − ref| / max |ref| */
static double rel_diff(const float *a, const float *ref, size_t n) {
    double d = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - ref[i]));
        if (isnan(a[i])) d = INFINITY;
        m = fmax(m, fabs(ref[i]));
    }
    return d / m;
}

static void check_fixture(dfs_ctx *ctx, const char *dir) {
    char p[512];
    snprintf(p, sizeof p, "%s/model", dir);
    dfs_model_params mp;
    dfs_model_params_default(&mp);
    mp.path = p;
    dfs_model *m = NULL;
    if (!TEST_CHECK(dfs_model_load(ctx, &mp, &m) == DFS_OK)) {
        fprintf(stderr, "  %s\n", dfs_errmsg(ctx));
        return;
    }
    dfs_npy x, tn, yn = {0}, up, expected, gx;
    snprintf(p, sizeof p, "%s/class_labels.npy", dir);
    int has_y = access(p, F_OK) == 0;
    char q[6][512];
    const char *names[6] = {"sample", "timesteps", "upstream", "expected", "grad_sample", "class_labels"};
    for (int i = 0; i < 6; i++) snprintf(q[i], sizeof q[i], "%s/%s.npy", dir, names[i]);
    TEST_CHECK(dfs_npy_read(ctx, q[0], &x) == DFS_OK && dfs_npy_read(ctx, q[1], &tn) == DFS_OK &&
               dfs_npy_read(ctx, q[2], &up) == DFS_OK && dfs_npy_read(ctx, q[3], &expected) == DFS_OK &&
               dfs_npy_read(ctx, q[4], &gx) == DFS_OK && (!has_y || dfs_npy_read(ctx, q[5], &yn) == DFS_OK));
    const int B = (int)x.shape[0];
    float t[16];
    for (int b = 0; b < B; b++) t[b] = (float)((int64_t *)tn.data)[b];
    const int64_t *y = has_y ? yn.data : NULL;

    grads_run g2, g1;
    run_grads(m, &x, t, y, up.data, 2, 1, &g2);
    double e = rel_diff(g2.arena + g2.io.out_off, expected.data, expected.numel);
    if (!TEST_CHECK(e < 1e-5)) fprintf(stderr, "  %s: training forward output off by %.3g\n", dir, e);
    e = rel_diff(g2.garena + g2.io.in_off, gx.data, gx.numel);
    if (!TEST_CHECK(e < 1e-4)) fprintf(stderr, "  %s: d sample off by %.3g\n", dir, e);

    dfs_safetensors *st = NULL;
    snprintf(p, sizeof p, "%s/grads.safetensors", dir);
    TEST_CHECK(dfs_safetensors_open(ctx, p, &st) == DFS_OK);
    const dfs_unet *u = m->unet;
    double worst = 0, key_bias = 0, largest = 0;
    const char *worst_name = "";
    int found = 0;
    for (size_t i = 0; st && i < u->n_params; i++) {
        const dfs_param *prm = &u->params[i];
        const dfs_st_tensor *ref = dfs_safetensors_find(st, prm->name);
        if (!ref) continue; /* no gradient in torch: not trainable (fourier weights) */
        found++;
        float *r = dfs_malloc(ref->numel * sizeof(float));
        dfs_st_tensor_to_f32(ctx, ref, r);
        for (size_t k = 0; k < ref->numel; k++) largest = fmax(largest, fabs(r[k]));
        double d = rel_diff(g2.G + prm->off, r, ref->numel);
        if (strstr(prm->name, "to_k.bias")) {
            /* zero in exact arithmetic (softmax ignores a constant added to a row): only the size
             * of the rounding noise is checked, below */
            for (size_t k = 0; k < ref->numel; k++) key_bias = fmax(key_bias, fabs(g2.G[prm->off + k]));
            d = 0;
        }
        if (d > worst) {
            worst = d;
            worst_name = prm->name;
        }
        dfs_free(r);
    }
    if (!TEST_CHECK(worst < 1e-4)) fprintf(stderr, "  %s: worst parameter gradient %s off by %.3g\n", dir, worst_name, worst);
    TEST_CHECK(key_bias < 1e-5 * largest);
    TEST_CHECK(st && (size_t)found == dfs_safetensors_count(st));
    if (getenv("DFS_TEST_VERBOSE")) printf("  %s: worst parameter gradient error %.2e (%s)\n", dir, worst, worst_name);
    dfs_safetensors_close(st);

    /* one thread, and without the input's gradient (as training runs): the same bits */
    run_grads(m, &x, t, y, up.data, 1, 0, &g1);
    TEST_CHECK(memcmp(g1.G, g2.G, u->n_floats * sizeof(float)) == 0);
    free_grads(&g1);
    free_grads(&g2);
    dfs_npy_free(&x);
    dfs_npy_free(&tn);
    dfs_npy_free(&yn);
    dfs_npy_free(&up);
    dfs_npy_free(&expected);
    dfs_npy_free(&gx);
    dfs_model_free(m);
}

int main(void) {
    dfs_ctx *ctx = dfs_ctx_new();
    check_fixture(ctx, "tests/fixtures/grad/cond");
    check_fixture(ctx, "tests/fixtures/grad/shift");
    dfs_ctx_free(ctx);
    return test_summary("unet_grad");
}
