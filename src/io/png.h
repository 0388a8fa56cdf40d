/* PNG output for generated images. */
#ifndef DFS_IO_PNG_H
#define DFS_IO_PNG_H

#include "core/internal.h"

/* Writes an 8-bit PNG atomically. pixels: (H, W, channels) row-major; channels 1 (grey) or 3 (RGB).
 * The image data is deflate-compressed (LZ77 with fixed Huffman codes). */
dfs_status dfs_png_write(dfs_ctx *ctx, const char *path, const uint8_t *pixels, int W, int H, int channels);

/* Encodes the PNG into a new buffer (for tests and callers that write elsewhere). */
dfs_status dfs_png_encode(dfs_ctx *ctx, const uint8_t *pixels, int W, int H, int channels, uint8_t **out, size_t *len);

uint32_t dfs_crc32(uint32_t crc, const uint8_t *p, size_t n);
uint32_t dfs_adler32(uint32_t a, const uint8_t *p, size_t n);

#endif
