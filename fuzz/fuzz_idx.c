/* idx dataset files: the first two bytes give where the image file ends and the label file starts. */
#include <stdio.h>
#include <unistd.h>

#include "core/internal.h"
#include "train/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n < 2) return 0;
    size_t cut = ((size_t)data[0] << 8 | data[1]) % (n - 1);
    char a[128], b[128];
    snprintf(a, sizeof a, "/tmp/diffuse-fuzz-images.%d", (int)getpid());
    snprintf(b, sizeof b, "/tmp/diffuse-fuzz-labels.%d", (int)getpid());
    FILE *f = fopen(a, "wb");
    fwrite(data + 2, 1, cut, f);
    fclose(f);
    f = fopen(b, "wb");
    fwrite(data + 2 + cut, 1, n - 2 - cut, f);
    fclose(f);
    dfs_ctx *ctx = dfs_ctx_new();
    dfs_dataset ds;
    if (dfs_dataset_load_idx(ctx, a, b, &ds) == DFS_OK) dfs_dataset_free(&ds);
    dfs_ctx_free(ctx);
    return 0;
}
