/* idx dataset loading (MNIST and Fashion-MNIST format). */
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "io/file.h"
#include "io/inflate.h"
#include "io/png.h"
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

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_png_name(const char *n) {
    size_t l = strlen(n);
    return l > 4 && (strcmp(n + l - 4, ".png") == 0 || strcmp(n + l - 4, ".PNG") == 0);
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Sorted names in dir that are PNG files (want_dirs 0) or subdirectories (1). */
static dfs_status list_dir(dfs_ctx *ctx, const char *dir, int want_dirs, char ***out, int *n) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return dfs_fail(ctx, DFS_ERR_IO, "%s: cannot open the directory", dir);
    int cap = 0;
    struct dirent *e;
    dfs_status st = DFS_OK;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *full = dfs_path_join(dir, e->d_name);
        if (!full) {
            st = dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
            break;
        }
        const int ok = want_dirs ? is_dir(full) : (is_png_name(e->d_name) && !is_dir(full));
        if (!ok) {
            dfs_free(full);
            continue;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **q = dfs_realloc(*out, sizeof(char *) * (size_t)cap);
            if (!q) {
                dfs_free(full);
                st = dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
                break;
            }
            *out = q;
        }
        (*out)[(*n)++] = full;
    }
    closedir(d);
    if (*n) qsort(*out, (size_t)*n, sizeof(char *), cmp_str);
    return st;
}

static void free_list(char **l, int n) {
    for (int i = 0; i < n; i++) dfs_free(l[i]);
    dfs_free(l);
}

/* Bilinear sample of channel c at (y, x) in pixel coordinates (half-pixel centres). */
static float sample_bilinear(const dfs_image *im, int c, float y, float x) {
    y = y < 0 ? 0 : y > im->height - 1 ? (float)(im->height - 1) : y;
    x = x < 0 ? 0 : x > im->width - 1 ? (float)(im->width - 1) : x;
    const int y0 = (int)y, x0 = (int)x, y1 = y0 + 1 < im->height ? y0 + 1 : y0, x1 = x0 + 1 < im->width ? x0 + 1 : x0;
    const float fy = y - y0, fx = x - x0;
    const uint8_t *p = im->pixels;
    const int C = im->channels, W = im->width;
    const float a = p[((size_t)y0 * W + x0) * C + c], b = p[((size_t)y0 * W + x1) * C + c];
    const float d = p[((size_t)y1 * W + x0) * C + c], e = p[((size_t)y1 * W + x1) * C + c];
    return (a * (1 - fx) + b * fx) * (1 - fy) + (d * (1 - fx) + e * fx) * fy;
}

/* Resizes so the image covers H × W (bilinear), centre-crops, converts to C channels, into out
 * (H, W, C) uint8: what diffusers' training example does with Resize + CenterCrop. */
static void fit_image(const dfs_image *im, int C, int H, int W, uint8_t *out) {
    const float scale = (float)H / im->height > (float)W / im->width ? (float)H / im->height : (float)W / im->width;
    const float oy = (im->height * scale - H) / 2, ox = (im->width * scale - W) / 2;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const float sy = (y + oy + 0.5f) / scale - 0.5f, sx = (x + ox + 0.5f) / scale - 0.5f;
            float v[3];
            for (int c = 0; c < im->channels; c++) v[c] = sample_bilinear(im, c, sy, sx);
            uint8_t *o = out + ((size_t)y * W + x) * C;
            if (C == im->channels) {
                for (int c = 0; c < C; c++) o[c] = (uint8_t)(v[c] + 0.5f);
            } else if (C == 1) { /* RGB to grey, as Pillow's "L" */
                o[0] = (uint8_t)((v[0] * 299 + v[1] * 587 + v[2] * 114) / 1000 + 0.5f);
            } else {
                o[0] = o[1] = o[2] = (uint8_t)(v[0] + 0.5f);
            }
        }
}

dfs_status dfs_dataset_load_png_dir(dfs_ctx *ctx, const char *dir, int C, int H, int W, dfs_dataset *ds) {
    memset(ds, 0, sizeof *ds);
    if ((C != 1 && C != 3) || H < 1 || W < 1) return dfs_fail(ctx, DFS_ERR_ARG, "%s: images train models of 1 or 3 channels", dir);
    char **classes = NULL, **files = NULL;
    int n_classes = 0, n_files = 0, cap = 0;
    int *labels = NULL;
    dfs_status st = list_dir(ctx, dir, 1, &classes, &n_classes);
    /* sub-directories are classes (sorted names → labels 0, 1, ...); else the PNGs in dir */
    for (int k = 0; !st && k < (n_classes ? n_classes : 1); k++) {
        char **f = NULL;
        int nf = 0;
        if ((st = list_dir(ctx, n_classes ? classes[k] : dir, 0, &f, &nf))) break;
        if (n_files + nf > cap) {
            cap = 2 * (n_files + nf) + 16;
            char **q = dfs_realloc(files, sizeof(char *) * (size_t)cap);
            int *ql = dfs_realloc(labels, sizeof(int) * (size_t)cap);
            if (q) files = q;
            if (ql) labels = ql;
            if (!q || !ql) {
                free_list(f, nf);
                st = dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory");
                break;
            }
        }
        for (int i = 0; i < nf; i++) {
            files[n_files] = f[i];
            labels[n_files++] = k;
        }
        dfs_free(f);
    }
    if (!st && n_files == 0) st = dfs_fail(ctx, DFS_ERR_FORMAT, "%s: no .png images found (in it or in class sub-directories)", dir);
    if (!st) {
        ds->pixels = dfs_malloc((size_t)n_files * H * W * C);
        ds->labels = dfs_malloc(sizeof(int) * (size_t)n_files);
        if (!ds->pixels || !ds->labels) st = dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory for %d images", dir, n_files);
    }
    for (int i = 0; !st && i < n_files; i++) {
        dfs_image im;
        if ((st = dfs_png_read(ctx, files[i], &im))) break;
        fit_image(&im, C, H, W, ds->pixels + (size_t)i * H * W * C);
        ds->labels[i] = labels[i];
        dfs_image_free(&im);
    }
    if (!st) {
        ds->n = n_files;
        ds->C = C;
        ds->H = H;
        ds->W = W;
        ds->n_classes = n_classes ? n_classes : 1;
    }
    free_list(classes, n_classes);
    free_list(files, n_files);
    dfs_free(labels);
    if (st) dfs_dataset_free(ds);
    return st;
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
    return dfs_fail(ctx, DFS_ERR_IO, "%s: no idx training files (train-images-idx3-ubyte[.gz]) or PNG directory", spec);
}

dfs_status dfs_dataset_open_for(dfs_ctx *ctx, const char *spec, int C, int H, int W, dfs_dataset *ds) {
    char probe[1024];
    const int has_idx = strcmp(spec, "fashion-mnist") == 0 || strstr(spec, "images-idx3") ||
                        file_exists(spec, "train-images-idx3-ubyte.gz", probe, sizeof probe) ||
                        file_exists(spec, "train-images-idx3-ubyte", probe, sizeof probe);
    if (!has_idx && is_dir(spec)) return dfs_dataset_load_png_dir(ctx, spec, C, H, W, ds);
    return dfs_dataset_open(ctx, spec, ds);
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
