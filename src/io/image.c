/* Model space to pixels, and grids. */
#include <math.h>
#include <string.h>

#include "io/image.h"

void dfs_image_to_u8(const float *x, int C, int H, int W, uint8_t *pixels) {
    const size_t plane = (size_t)H * W;
    for (int c = 0; c < C; c++)
        for (size_t i = 0; i < plane; i++) {
            float v = x[(size_t)c * plane + i] / 2.0f + 0.5f;
            v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; /* NaN stays NaN and maps to 0 below */
            const float r = nearbyintf(v * 255.0f);
            pixels[i * (size_t)C + (size_t)c] = r >= 0.0f && r <= 255.0f ? (uint8_t)r : 0;
        }
}

dfs_status dfs_grid_init(dfs_ctx *ctx, dfs_grid *g, int rows, int cols, int C, int H, int W, int gap) {
    memset(g, 0, sizeof *g);
    if (rows < 1 || cols < 1 || (C != 1 && C != 3))
        return dfs_fail(ctx, DFS_ERR_ARG, "cannot make a picture of %d-channel images (1 or 3 are shown)", C);
    g->rows = rows;
    g->cols = cols;
    g->C = C;
    g->H = H;
    g->W = W;
    g->gap = gap;
    g->width = cols * W + (cols + 1) * gap;
    g->height = rows * H + (rows + 1) * gap;
    const size_t n = (size_t)g->width * g->height * C;
    g->pixels = dfs_malloc(n);
    if (!g->pixels) return dfs_fail(ctx, DFS_ERR_NOMEM, "out of memory for a %dx%d picture", g->width, g->height);
    memset(g->pixels, 24, n); /* dark grey between tiles */
    return DFS_OK;
}

void dfs_grid_put(dfs_grid *g, int row, int col, const float *x) {
    uint8_t tile[4096];
    const size_t tile_n = (size_t)g->H * g->W * g->C;
    uint8_t *buf = tile_n <= sizeof tile ? tile : dfs_malloc(tile_n);
    if (!buf) return;
    dfs_image_to_u8(x, g->C, g->H, g->W, buf);
    const int x0 = g->gap + col * (g->W + g->gap), y0 = g->gap + row * (g->H + g->gap);
    for (int y = 0; y < g->H; y++)
        memcpy(g->pixels + (((size_t)(y0 + y) * g->width + x0) * g->C), buf + (size_t)y * g->W * g->C,
               (size_t)g->W * g->C);
    if (buf != tile) dfs_free(buf);
}

void dfs_grid_free(dfs_grid *g) {
    dfs_free(g->pixels);
    g->pixels = NULL;
}
