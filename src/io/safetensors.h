/* safetensors files: a little-endian u64 header length, a JSON header describing each tensor
 * (dtype, shape, byte range), then the raw bytes. The reader treats the file as hostile: every
 * length, offset, dtype and shape is checked before any tensor is touched. */
#ifndef DFS_IO_SAFETENSORS_H
#define DFS_IO_SAFETENSORS_H

#include "core/internal.h"
#include "io/tensor.h"

#define DFS_ST_MAX_DIMS 8
#define DFS_ST_MAX_HEADER (100u << 20)

typedef struct dfs_st_tensor {
    const char *name;
    dfs_dtype dtype;
    int ndim;
    int64_t shape[DFS_ST_MAX_DIMS];
    size_t numel;
    const void *data; /* (borrowed from the mapping; may be unaligned) */
    size_t nbytes;
} dfs_st_tensor;

typedef struct dfs_safetensors dfs_safetensors;

/* Maps the file read-only and validates it: header length within the file, header a JSON
 * object, known dtypes, shapes of at most 8 non-negative dims, byte ranges inside the data that
 * match the shapes, do not overlap and leave no gaps, no duplicate names. */
dfs_status dfs_safetensors_open(dfs_ctx *ctx, const char *path, dfs_safetensors **out);
size_t dfs_safetensors_count(const dfs_safetensors *st);
const dfs_st_tensor *dfs_safetensors_at(const dfs_safetensors *st, size_t i); /* in data order */
const dfs_st_tensor *dfs_safetensors_find(const dfs_safetensors *st, const char *name); /* NULL if absent */
const char *dfs_safetensors_metadata(const dfs_safetensors *st, const char *key);      /* NULL if absent */
void dfs_safetensors_close(dfs_safetensors *st);

/* Converts an F32, F16 or BF16 tensor to float32 (exactly); other dtypes: DFS_ERR_UNSUPPORTED. */
dfs_status dfs_st_tensor_to_f32(dfs_ctx *ctx, const dfs_st_tensor *t, float *out);

typedef struct dfs_st_entry {
    const char *name;
    dfs_dtype dtype;
    int ndim;
    int64_t shape[DFS_ST_MAX_DIMS];
    const void *data; /* numel · dtype size bytes */
} dfs_st_entry;

/* Writes a safetensors file atomically (temporary file, fsync, rename). The header is padded
 * with spaces to a multiple of 8 bytes, as the reference implementation does. metadata_kv: NULL,
 * or key, value, key, value, ..., NULL. */
dfs_status dfs_safetensors_write(dfs_ctx *ctx, const char *path, const dfs_st_entry *entries, size_t n,
                                 const char *const *metadata_kv);

#endif
