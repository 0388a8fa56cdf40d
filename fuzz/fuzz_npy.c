/* .npy reader. */
#include "core/internal.h"
#include "fuzz_common.h"
#include "io/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const char *path = fuzz_to_file(data, n, ".npy");
    dfs_ctx *ctx = dfs_ctx_new();
    dfs_npy a;
    if (dfs_npy_read(ctx, path, &a) == DFS_OK) dfs_npy_free(&a);
    dfs_ctx_free(ctx);
    return 0;
}
