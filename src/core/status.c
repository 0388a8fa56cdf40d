/* Error state: every failing library call records a one-line message on its dfs_ctx. */
#include <stdarg.h>
#include <string.h>

#include "internal.h"
#include "ctx.h"
#include <unistd.h>

dfs_ctx *dfs_ctx_new(void) {
    dfs_ctx *ctx = dfs_calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->n_threads = 1;
    return ctx;
}

void dfs_ctx_free(dfs_ctx *ctx) { dfs_free(ctx); }

void dfs_ctx_set_threads(dfs_ctx *ctx, int n_threads) { ctx->n_threads = n_threads > 0 ? n_threads : 1; }

int dfs_ctx_threads(const dfs_ctx *ctx) { return ctx ? ctx->n_threads : 1; }

void dfs_ctx_set_max_memory(dfs_ctx *ctx, size_t bytes) { ctx->max_memory = bytes; }

double dfs_memory_limit(const dfs_ctx *ctx, const char **source) {
    double limit = ctx && ctx->max_memory ? (double)ctx->max_memory : 0;
    if (source) *source = "--max-memory";
    if (!limit) {
        const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        if (pages > 0 && page > 0) limit = (double)pages * (double)page;
        if (source) *source = "the memory this machine has free";
    }
    return limit;
}

dfs_status dfs_check_memory(dfs_ctx *ctx, double bytes, const char *what) {
    const char *source;
    const double limit = dfs_memory_limit(ctx, &source);
    if (limit && bytes > limit)
        return dfs_fail(ctx, DFS_ERR_NOMEM, "%s needs %.0f MiB, more than %s (%.0f MiB): use a smaller batch or size", what,
                        bytes / 1048576.0, source, limit / 1048576.0);
    return DFS_OK;
}

const char *dfs_errmsg(const dfs_ctx *ctx) {
    if (!ctx) return "out of memory (no context)";
    return ctx->err[0] ? ctx->err : "no error";
}

const char *dfs_status_str(dfs_status s) {
    switch (s) {
    case DFS_OK: return "ok";
    case DFS_ERR_NOMEM: return "out of memory";
    case DFS_ERR_IO: return "i/o error";
    case DFS_ERR_FORMAT: return "bad format";
    case DFS_ERR_SHAPE: return "shape mismatch";
    case DFS_ERR_ARG: return "bad argument";
    case DFS_ERR_UNSUPPORTED: return "unsupported";
    case DFS_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

dfs_status dfs_fail(dfs_ctx *ctx, dfs_status code, const char *fmt, ...) {
    if (ctx) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
        va_end(ap);
        /* Messages are single lines: a newline smuggled in through a file name or JSON string
         * would break that promise. */
        for (char *p = ctx->err; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
    }
    return code;
}

void dfs_assert_fail(const char *cond, const char *file, int line) {
    fprintf(stderr, "diffuse: internal assertion failed: %s (%s:%d)\n", cond, file, line);
    abort();
}
