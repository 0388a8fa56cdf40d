/* DEFLATE decoder with each wrapper (the first byte chooses). */
#include "core/internal.h"
#include "io/inflate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n < 1) return 0;
    dfs_ctx *ctx = dfs_ctx_new();
    uint8_t *out = NULL;
    size_t len = 0;
    if (dfs_inflate(ctx, "fuzz", data + 1, n - 1, 1 << 20, data[0] % 3, &out, &len) == DFS_OK) dfs_free(out);
    dfs_ctx_free(ctx);
    return 0;
}
