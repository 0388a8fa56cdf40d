/* idx dataset loading (MNIST and Fashion-MNIST format). */
#include <string.h>

#include "io/file.h"
#include "io/inflate.h"
#include "train/data.h"

#define IDX_MAX_BYTES ((size_t)1 << 31)

static dfs_status read_maybe_gz(dfs_ctx *ctx, const char *path, uint8_t **out, size_t *len) {
    char *raw = NULL;
    size_t n = 0;
    dfs_status st = dfs_file_read_all(ctx, path, IDX_MAX_BYTES, &raw, &n);
    if (st) return st;
    if (n >= 2 && (uint8_t)raw[0] == 0x1F && (uint8_t)raw[1] == 0x8B) {
        st = dfs_inflate(ctx, path, (const uint8_t *)raw, n, IDX_MAX_BYTES, DFS_INFLATE_GZIP, out, len);
        dfs_free(raw);
        return st;
    }
    *out = (uint8_t *)raw;
    *len = n;
    return DFS_OK;
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

dfs_status dfs_dataset_load_idx(dfs_ctx *ctx, const char *images, const char *labels, dfs_dataset *ds) {
    memset(ds, 0, sizeof *ds);
    uint8_t *im = NULL, *lb = NULL;
    size_t ni = 0, nl = 0;
    dfs_status st = read_maybe_gz(ctx, images, &im, &ni);
    if (!st) st = read_maybe_gz(ctx, labels, &lb, &nl);
    if (st) goto done;
    if (ni < 16 || be32(im) != 0x803) {
        st = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: not an idx image file (magic 0x803, 3 dimensions)", images);
        goto done;
    }
    if (nl < 8 || be32(lb) != 0x801) {
        st = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: not an idx label file (magic 0x801)", labels);
        goto done;
    }
    const uint32_t n = be32(im + 4), H = be32(im + 8), W = be32(im + 12), nlab = be32(lb + 4);
    if (n == 0 || H == 0 || W == 0 || H > 4096 || W > 4096 || n > (1u << 26)) {
        st = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: implausible size %u images of %ux%u", images, n, H, W);
        goto done;
    }
    if ((size_t)n * H * W != ni - 16) {
        st = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: header says %u images of %ux%u (%zu bytes), the file has %zu", images, n, H,
                      W, (size_t)n * H * W, ni - 16);
        goto done;
    }
    if (nlab != n || nl - 8 != n) {
        st = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: %u labels (%zu bytes) for %u images", labels, nlab, nl - 8, n);
        goto done;
    }
    ds->pixels = dfs_malloc((size_t)n * H * W);
    ds->labels = dfs_malloc(sizeof(int) * n);
    if (!ds->pixels || !ds->labels) {
        st = dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory", images);
        goto done;
    }
    memcpy(ds->pixels, im + 16, (size_t)n * H * W);
    for (uint32_t i = 0; i < n; i++) {
        ds->labels[i] = lb[8 + i];
        if (ds->labels[i] + 1 > ds->n_classes) ds->n_classes = ds->labels[i] + 1;
    }
    ds->n = (int)n;
    ds->C = 1;
    ds->H = (int)H;
    ds->W = (int)W;
done:
    dfs_free(im);
    dfs_free(lb);
    if (st) dfs_dataset_free(ds);
    return st;
}

static int file_exists(const char *dir, const char *name, char *out, size_t size) {
    snprintf(out, size, "%s/%s", dir, name);
    return dfs_path_exists(out);
}

dfs_status dfs_dataset_open(dfs_ctx *ctx, const char *spec, dfs_dataset *ds) {
    char images[1024], labels[1024];
    const char *dir = strcmp(spec, "fashion-mnist") == 0 ? "/usr/share/datasets/fashion-mnist" : spec;
    if (file_exists(dir, "train-images-idx3-ubyte.gz", images, sizeof images) ||
        file_exists(dir, "train-images-idx3-ubyte", images, sizeof images)) {
        if (!file_exists(dir, "train-labels-idx1-ubyte.gz", labels, sizeof labels) &&
            !file_exists(dir, "train-labels-idx1-ubyte", labels, sizeof labels))
            return dfs_fail(ctx, DFS_ERR_IO, "%s: no train-labels-idx1-ubyte[.gz] beside the images", dir);
        return dfs_dataset_load_idx(ctx, images, labels, ds);
    }
    const char *hit = strstr(spec, "images-idx3");
    if (hit && dfs_path_exists(spec)) {
        snprintf(labels, sizeof labels, "%.*slabels-idx1%s", (int)(hit - spec), spec, hit + strlen("images-idx3"));
        return dfs_dataset_load_idx(ctx, spec, labels, ds);
    }
    if (strcmp(spec, "fashion-mnist") == 0)
        return dfs_fail(ctx, DFS_ERR_IO,
                        "fashion-mnist: %s not found (install Debian's dataset-fashion-mnist package)", dir);
    return dfs_fail(ctx, DFS_ERR_IO, "%s: no idx training files found (want train-images-idx3-ubyte[.gz])", spec);
}

void dfs_dataset_free(dfs_dataset *ds) {
    dfs_free(ds->pixels);
    dfs_free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

void dfs_dataset_get(const dfs_dataset *ds, int i, float *out) {
    const size_t plane = (size_t)ds->H * ds->W;
    const uint8_t *p = ds->pixels + (size_t)i * plane * ds->C;
    for (int c = 0; c < ds->C; c++)
        for (size_t k = 0; k < plane; k++) out[(size_t)c * plane + k] = (float)p[k * ds->C + c] / 127.5f - 1.0f;
}
