/* Error state: every failing library call records a one-line message on its dfs_ctx. */
#include <stdarg.h>
#include <string.h>

#include "internal.h"
#include "ctx.h"

dfs_ctx *dfs_ctx_new(void) {
    dfs_ctx *ctx = dfs_calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->n_threads = 1;
    return ctx;
}

void dfs_ctx_free(dfs_ctx *ctx) { dfs_free(ctx); }

void dfs_ctx_set_threads(dfs_ctx *ctx, int n_threads) { ctx->n_threads = n_threads > 0 ? n_threads : 1; }

int dfs_ctx_threads(const dfs_ctx *ctx) { return ctx ? ctx->n_threads : 1; }

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
