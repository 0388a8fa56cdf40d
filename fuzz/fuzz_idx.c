/* idx dataset files: the first two bytes give where the image file ends and the label file starts. */
#include <stdio.h>
#include <unistd.h>

#include "core/internal.h"
#include "fuzz_common.h"
#include "train/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n < 2) return 0;
    size_t cut = ((size_t)data[0] << 8 | data[1]) % (n - 1);
    char a[128], b[128];
    snprintf(a, sizeof a, "%s/diffuse-fuzz-images.%d", fuzz_tmp_dir(), (int)getpid());
    snprintf(b, sizeof b, "%s/diffuse-fuzz-labels.%d", fuzz_tmp_dir(), (int)getpid());
    fuzz_write(a, data + 2, cut);
    fuzz_write(b, data + 2 + cut, n - 2 - cut);
    dfs_ctx *ctx = dfs_ctx_new();
    dfs_dataset ds;
    if (dfs_dataset_load_idx(ctx, a, b, &ds) == DFS_OK) dfs_dataset_free(&ds);
    dfs_ctx_free(ctx);
    return 0;
}
