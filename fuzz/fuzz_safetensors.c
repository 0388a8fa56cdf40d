/* safetensors reader: open, walk every tensor, convert the floating ones. */
#include "core/internal.h"
#include "fuzz_common.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const char *path = fuzz_to_file(data, n, ".safetensors");
    dfs_ctx *ctx = dfs_ctx_new();
    dfs_safetensors *st = NULL;
    if (dfs_safetensors_open(ctx, path, &st) == DFS_OK) {
        for (size_t i = 0; i < dfs_safetensors_count(st); i++) {
            const dfs_st_tensor *t = dfs_safetensors_at(st, i);
            if (dfs_safetensors_find(st, t->name) != t) abort();
            float *buf = dfs_malloc(t->numel * sizeof(float) + 1);
            if (buf) dfs_st_tensor_to_f32(ctx, t, buf);
            dfs_free(buf);
        }
        (void)dfs_safetensors_metadata(st, "format");
        dfs_safetensors_close(st);
    }
    dfs_ctx_free(ctx);
    return 0;
}
