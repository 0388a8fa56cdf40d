/* File helpers: bounded whole-file reads and temporary-file-then-rename writes. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

#include "io/file.h"

dfs_status dfs_file_read_all(dfs_ctx *ctx, const char *path, size_t max_bytes, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return dfs_fail(ctx, DFS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return dfs_fail(ctx, DFS_ERR_IO, "%s: not a regular file", path);
    }
    if ((unsigned long long)sb.st_size > max_bytes) {
        fclose(f);
        return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: file is %lld bytes, more than the %zu allowed", path,
                        (long long)sb.st_size, max_bytes);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = dfs_malloc(n + 1);
    if (!buf) {
        fclose(f);
        return dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (got != n || err) {
        dfs_free(buf);
        return dfs_fail(ctx, DFS_ERR_IO, "%s: read failed", path);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return DFS_OK;
}

dfs_status dfs_out_open(dfs_ctx *ctx, const char *path, dfs_out_file *of) {
    memset(of, 0, sizeof *of);
    size_t n = strlen(path);
    of->path = dfs_strdup(path);
    of->tmp_path = dfs_malloc(n + 16);
    if (!of->path || !of->tmp_path) {
        dfs_out_abort(of);
        return dfs_fail(ctx, DFS_ERR_NOMEM, "%s: out of memory", path);
    }
    /* mkstemp gives a fresh name that no concurrent writer can share. */
    snprintf(of->tmp_path, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(of->tmp_path);
    if (fd < 0) {
        dfs_status st = dfs_fail(ctx, DFS_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        dfs_free(of->tmp_path);
        of->tmp_path = NULL;
        dfs_out_abort(of);
        return st;
    }
    fchmod(fd, 0644);
    of->f = fdopen(fd, "wb");
    if (!of->f) {
        close(fd);
        dfs_out_abort(of);
        return dfs_fail(ctx, DFS_ERR_IO, "%s: cannot open for writing", path);
    }
    return DFS_OK;
}

dfs_status dfs_out_write(dfs_ctx *ctx, dfs_out_file *of, const void *data, size_t n) {
    if (n && fwrite(data, 1, n, of->f) != n)
        return dfs_fail(ctx, DFS_ERR_IO, "%s: write failed: %s", of->path, strerror(errno));
    return DFS_OK;
}

dfs_status dfs_out_commit(dfs_ctx *ctx, dfs_out_file *of) {
    int ok = fflush(of->f) == 0 && fsync(fileno(of->f)) == 0;
    int err = errno;
    ok = (fclose(of->f) == 0) && ok;
    of->f = NULL;
    if (!ok || rename(of->tmp_path, of->path) != 0) {
        if (ok) err = errno;
        dfs_status st = dfs_fail(ctx, DFS_ERR_IO, "%s: write failed: %s", of->path, strerror(err));
        dfs_out_abort(of);
        return st;
    }
    dfs_free(of->tmp_path);
    dfs_free(of->path);
    memset(of, 0, sizeof *of);
    return DFS_OK;
}

void dfs_out_abort(dfs_out_file *of) {
    if (of->f) fclose(of->f);
    if (of->tmp_path) unlink(of->tmp_path);
    dfs_free(of->tmp_path);
    dfs_free(of->path);
    memset(of, 0, sizeof *of);
}

char *dfs_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = dfs_malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t n = a;
    if (a && dir[a - 1] != '/') p[n++] = '/';
    memcpy(p + n, name, b + 1);
    return p;
}

int dfs_path_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}
