/* Model and scheduler configs: parse, build the network's tree and plan a small forward pass;
 * read a scheduler and choose timesteps. */
#include "core/internal.h"
#include "io/json.h"
#include "model/unet.h"
#include "sched/sched.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    dfs_ctx *ctx = dfs_ctx_new();
    dfs_json *j = NULL;
    if (dfs_json_parse(ctx, (const char *)data, n, "config.json", &j) == DFS_OK) {
        dfs_unet_config cfg;
        dfs_unet *u = NULL;
        if (dfs_unet_config_parse(ctx, j, "config.json", &cfg) == DFS_OK &&
            (size_t)cfg.block_out_channels[0] * cfg.n_blocks < 4096 && dfs_unet_build(ctx, &cfg, "config.json", &u) == DFS_OK) {
            if (u->n_floats < ((size_t)1 << 26) && dfs_unet_check_size(ctx, u, 8, 8) == DFS_OK) (void)dfs_unet_plan_forward(u, 1, 8, 8);
            dfs_unet_free(u);
        }
        dfs_sched *s = NULL;
        if (dfs_sched_from_config(ctx, j, "scheduler_config.json", -1, &s) == DFS_OK) {
            if (dfs_sched_set_timesteps(ctx, s, 1 + (int)(n % 50)) == DFS_OK) (void)dfs_sched_prepare(ctx, s, 4);
            dfs_sched_free(s);
        }
        dfs_json_free(j);
    }
    dfs_ctx_free(ctx);
    return 0;
}
