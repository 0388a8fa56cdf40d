/* DEFLATE decoding with gzip / zlib wrappers. */
#ifndef DFS_IO_INFLATE_H
#define DFS_IO_INFLATE_H

#include "core/internal.h"

enum { DFS_INFLATE_RAW, DFS_INFLATE_ZLIB, DFS_INFLATE_GZIP };

/* Decompresses in[0..n) into a new buffer (*out, *out_len; NULL when empty), refusing more than
 * max_out bytes of output. The gzip wrapper's CRC and length, and zlib's Adler-32, are checked.
 * `what` names the source in errors. */
dfs_status dfs_inflate(dfs_ctx *ctx, const char *what, const uint8_t *in, size_t n, size_t max_out, int wrapper,
                       uint8_t **out, size_t *out_len);

#endif
