/* Training data: images as uint8 grey or RGB pixels with integer labels. */
#ifndef DFS_TRAIN_DATA_H
#define DFS_TRAIN_DATA_H

#include "core/internal.h"

typedef struct dfs_dataset {
    int n, C, H, W;
    int n_classes;   /* 1 + the largest label */
    uint8_t *pixels; /* (n, H, W, C), owned */
    int *labels;     /* (n), owned */
} dfs_dataset;

/* Loads MNIST-style idx files (gzip-compressed or not): images (magic 0x803, n × H × W) and
 * labels (magic 0x801, n). Everything is validated before use. */
dfs_status dfs_dataset_load_idx(dfs_ctx *ctx, const char *images, const char *labels, dfs_dataset *ds);

/* `spec` is "fashion-mnist" (Debian's dataset-fashion-mnist package), a directory holding
 * train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz], or the images file itself. */
dfs_status dfs_dataset_open(dfs_ctx *ctx, const char *spec, dfs_dataset *ds);

/* A directory of PNG images (any size, grey or colour), or of class sub-directories holding them
 * (labels by sorted name): each resized to cover H × W (bilinear), centre-cropped, converted to C
 * channels, as diffusers' training example prepares images. Unreadable images fail here, before
 * training starts. */
dfs_status dfs_dataset_load_png_dir(dfs_ctx *ctx, const char *dir, int C, int H, int W, dfs_dataset *ds);

/* dfs_dataset_open for idx data, else a PNG directory fitted to C × H × W. */
dfs_status dfs_dataset_open_for(dfs_ctx *ctx, const char *spec, int C, int H, int W, dfs_dataset *ds);
void dfs_dataset_free(dfs_dataset *ds);

/* Sample i scaled to [-1, 1] as float (C, H, W), as diffusers' training example normalises. */
void dfs_dataset_get(const dfs_dataset *ds, int i, float *out);

#endif
