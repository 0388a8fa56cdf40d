/* Whole-file reads and atomic writes. */
#ifndef DFS_IO_FILE_H
#define DFS_IO_FILE_H

#include "core/internal.h"

/* Reads all of path into a new NUL-terminated buffer (*len excludes the NUL). Files larger than
 * max_bytes are refused. */
dfs_status dfs_file_read_all(dfs_ctx *ctx, const char *path, size_t max_bytes, char **out, size_t *len);

/* An output file written atomically: bytes go to a temporary file in the same directory, and
 * commit() fsyncs it and renames it over path. abort() removes the temporary file, so a failure
 * never leaves a half-written or missing file behind. */
typedef struct dfs_out_file {
    FILE *f;
    char *path;
    char *tmp_path;
} dfs_out_file;

dfs_status dfs_out_open(dfs_ctx *ctx, const char *path, dfs_out_file *of);
dfs_status dfs_out_write(dfs_ctx *ctx, dfs_out_file *of, const void *data, size_t n);
dfs_status dfs_out_commit(dfs_ctx *ctx, dfs_out_file *of);
void dfs_out_abort(dfs_out_file *of);

/* dir + "/" + name in a new string, or NULL when out of memory. */
char *dfs_path_join(const char *dir, const char *name);
int dfs_path_exists(const char *path);

#endif
