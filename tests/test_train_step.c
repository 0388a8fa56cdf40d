/* One training step against PyTorch (tests/fixtures/train_step, tools/gen_train_step.py): the same
 * model, batch, timesteps and noise give the same loss, and after gradient clipping and one AdamW
 * step (eps 1e-3, see the tool) the same parameters: max |ours − torch| <= 1e-5 · max |param| for
 * every tensor. */
#include <string.h>

#include "core/internal.h"
#include "io/json.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "train/train.h"
#include "test.h"

int main(void) {
    dfs_ctx *ctx = dfs_ctx_new();
    const char *dir = "tests/fixtures/train_step";
    dfs_model_params mp;
    dfs_model_params_default(&mp);
    mp.path = "tests/fixtures/grad/cond/model";
    dfs_model *m = NULL;
    dfs_npy x0, noise, t, y, loss;
    char p[256];
    int ok = dfs_model_load(ctx, &mp, &m) == DFS_OK;
    const char *names[5] = {"x0", "noise", "timesteps", "labels", "loss"};
    dfs_npy *arrs[5] = {&x0, &noise, &t, &y, &loss};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s.npy", dir, names[i]);
        ok = ok && dfs_npy_read(ctx, p, arrs[i]) == DFS_OK;
    }
    if (!TEST_CHECK(ok)) {
        fprintf(stderr, "  %s\n", dfs_errmsg(ctx));
        return test_summary("train_step");
    }
    int ts[2] = {(int)((int64_t *)t.data)[0], (int)((int64_t *)t.data)[1]};
    dfs_train_params tp;
    dfs_train_params_default(&tp);
    tp.batch_size = 2;
    tp.lr = 1e-3;
    tp.adam_beta1 = 0.95;
    tp.adam_beta2 = 0.999;
    tp.weight_decay = 1e-2;
    tp.adam_eps = 1e-3; /* see tools/gen_train_step.py: keeps Adam from amplifying float32 gradient rounding */
    tp.warmup_steps = 0;
    tp.max_grad_norm = 1.0;
    tp.conditional = 1;
    const char *sched_json = "{\"_class_name\": \"DDPMScheduler\"}";
    dfs_json *sj = NULL;
    dfs_json_parse(ctx, sched_json, strlen(sched_json), "sched", &sj);
    double l = 0;
    dfs_ctx_set_threads(ctx, 2);
    TEST_CHECK(dfs_train_steps(ctx, m, sj, &tp, x0.data, noise.data, ts, y.data, 1, &l, NULL) == DFS_OK);
    const double ref_loss = ((double *)loss.data)[0];
    if (!TEST_CHECK(fabs(l - ref_loss) <= 1e-5 * ref_loss)) fprintf(stderr, "  loss %.9g vs %.9g\n", l, ref_loss);
    dfs_safetensors *st = NULL;
    snprintf(p, sizeof p, "%s/params_after.safetensors", dir);
    TEST_CHECK(dfs_safetensors_open(ctx, p, &st) == DFS_OK);
    double worst = 0;
    const char *worst_name = "";
    size_t found = 0;
    for (size_t i = 0; st && i < m->unet->n_params; i++) {
        const dfs_param *prm = &m->unet->params[i];
        const dfs_st_tensor *ref = dfs_safetensors_find(st, prm->name);
        if (!ref) continue;
        found++;
        float *r = dfs_malloc(ref->numel * sizeof(float));
        dfs_st_tensor_to_f32(ctx, ref, r);
        double d = 0, mx = 1e-12;
        for (size_t k = 0; k < ref->numel; k++) {
            d = fmax(d, fabs((double)m->params[prm->off + k] - r[k]));
            mx = fmax(mx, fabs(r[k]));
        }
        if (d / mx > worst) {
            worst = d / mx;
            worst_name = prm->name;
        }
        dfs_free(r);
    }
    if (!TEST_CHECK(found == m->unet->n_params && worst <= 1e-5))
        fprintf(stderr, "  updated parameters: worst %s off by %.3g\n", worst_name, worst);
    if (getenv("DFS_TEST_VERBOSE"))
        printf("  loss %.9g (torch %.9g), worst updated parameter %.2e (%s)\n", l, ref_loss, worst, worst_name);
    dfs_safetensors_close(st);
    for (int i = 0; i < 5; i++) dfs_npy_free(arrs[i]);
    dfs_json_free(sj);
    dfs_model_free(m);
    dfs_ctx_free(ctx);
    return test_summary("train_step");
}
