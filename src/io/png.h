/* PNG output for generated images. */
#ifndef DFS_IO_PNG_H
#define DFS_IO_PNG_H

#include "core/internal.h"

/* Writes an 8-bit PNG atomically. pixels: (H, W, channels) row-major; channels 1 (grey) or 3 (RGB).
 * The image data is deflate-compressed (LZ77 with fixed Huffman codes). */
dfs_status dfs_png_write(dfs_ctx *ctx, const char *path, const uint8_t *pixels, int W, int H, int channels);

/* Encodes the PNG into a new buffer (for tests and callers that write elsewhere). */
dfs_status dfs_png_encode(dfs_ctx *ctx, const uint8_t *pixels, int W, int H, int channels, uint8_t **out, size_t *len);

/* A decoded picture: 8-bit, grey (channels 1) or RGB (3), row-major (height, width, channels). */
typedef struct dfs_image {
    int width, height, channels;
    uint8_t *pixels; /* owned */
} dfs_image;

/* Reads a PNG (8-bit grey/RGB with or without alpha, palette, or 1/2/4-bit grey and palette;
 * alpha is dropped). Everything is checked: chunk lengths and CRCs, the declared size against the
 * data, filter types, palette indices. */
dfs_status dfs_png_read(dfs_ctx *ctx, const char *path, dfs_image *img);
void dfs_image_free(dfs_image *img);

uint32_t dfs_crc32(uint32_t crc, const uint8_t *p, size_t n);
uint32_t dfs_adler32(uint32_t a, const uint8_t *p, size_t n);

#endif
