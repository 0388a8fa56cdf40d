/* JSON parser: any bytes. */
#include "core/internal.h"
#include "io/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    dfs_ctx *ctx = dfs_ctx_new();
    dfs_json *j = NULL;
    if (dfs_json_parse(ctx, (const char *)data, n, "fuzz.json", &j) == DFS_OK) {
        (void)dfs_json_get(j, "a");
        dfs_json_free(j);
    }
    dfs_ctx_free(ctx);
    return 0;
}
