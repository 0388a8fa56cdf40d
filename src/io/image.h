/* Turning model-space samples into 8-bit pictures, and tiling pictures into grids. */
#ifndef DFS_IO_IMAGE_H
#define DFS_IO_IMAGE_H

#include "core/internal.h"

/* x (C, H, W) in model space → pixels (H, W, C) as diffusers post-processes:
 * clamp(x/2 + 0.5, 0, 1) · 255, rounded half to even (numpy's round). */
void dfs_image_to_u8(const float *x, int C, int H, int W, uint8_t *pixels);

/* A canvas of rows × cols tiles of H × W with a `gap`-pixel border between tiles. */
typedef struct dfs_grid {
    int rows, cols, H, W, C, gap;
    int width, height; /* of the canvas */
    uint8_t *pixels;   /* (height, width, C), owned */
} dfs_grid;

dfs_status dfs_grid_init(dfs_ctx *ctx, dfs_grid *g, int rows, int cols, int C, int H, int W, int gap);
/* Puts the sample x (C, H, W) in model space at tile (row, col). */
void dfs_grid_put(dfs_grid *g, int row, int col, const float *x);
void dfs_grid_free(dfs_grid *g);

#endif
