/* PNG decoder. */
#include "core/internal.h"
#include "fuzz_common.h"
#include "io/png.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const char *path = fuzz_to_file(data, n, ".png");
    dfs_ctx *ctx = dfs_ctx_new();
    dfs_image im;
    if (dfs_png_read(ctx, path, &im) == DFS_OK) dfs_image_free(&im);
    dfs_ctx_free(ctx);
    return 0;
}
