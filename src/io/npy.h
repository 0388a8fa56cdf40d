/* NumPy .npy files (format versions 1.0, 2.0 and 3.0), little-endian, C order. */
#ifndef DFS_IO_NPY_H
#define DFS_IO_NPY_H

#include "core/internal.h"
#include "io/tensor.h"

#define DFS_NPY_MAX_DIMS 8

typedef struct dfs_npy {
    dfs_dtype dtype;
    int ndim;
    int64_t shape[DFS_NPY_MAX_DIMS];
    size_t numel;
    void *data; /* owned (dfs_malloc) */
} dfs_npy;

/* Reads a whole array. Accepted dtypes: <f4 <f8 <f2 <i8 <i4 <i2 |i1 |u1 |b1 (and '=' byte order);
 * big-endian data, Fortran order, object arrays and files whose size does not match the header
 * are refused with a message naming the file. */
dfs_status dfs_npy_read(dfs_ctx *ctx, const char *path, dfs_npy *out);
void dfs_npy_free(dfs_npy *a); /* frees the data; the struct may be zero-initialised */

/* Writes a version 1.0 .npy (header padded to 64 bytes, as numpy does) atomically. */
dfs_status dfs_npy_write(dfs_ctx *ctx, const char *path, dfs_dtype dtype, int ndim, const int64_t *shape, const void *data);

#endif
