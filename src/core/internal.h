/* Internal helpers shared by every part of the library: error reporting, allocation, assertions.
 * Nothing here is public; include/diffuse.h is the public surface. */
#ifndef DFS_CORE_INTERNAL_H
#define DFS_CORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "diffuse.h"

#if defined(__GNUC__)
#define DFS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DFS_PRINTF(a, b)
#endif

/* Records a formatted message on ctx (if not NULL) and returns code, so a failing path reads
 * `return dfs_fail(ctx, DFS_ERR_FORMAT, "%s: ...", path);`. */
dfs_status dfs_fail(dfs_ctx *ctx, dfs_status code, const char *fmt, ...) DFS_PRINTF(3, 4);

/* Refuses, with a message giving the number, to allocate `bytes` for `what` when that exceeds the
 * context's memory limit or, without one, the machine's free memory. */
dfs_status dfs_check_memory(dfs_ctx *ctx, double bytes, const char *what);
/* The bytes dfs_check_memory allows (--max-memory, else free memory; 0: unknown), and which. */
double dfs_memory_limit(const dfs_ctx *ctx, const char **source);

/* Programmer errors (our own functions called wrongly) abort with file:line. Data errors never do. */
#define DFS_ASSERT(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) dfs_assert_fail(#cond, __FILE__, __LINE__);                                   \
    } while (0)
void dfs_assert_fail(const char *cond, const char *file, int line);

/* All allocation goes through these: they count live bytes and let tests make the n-th allocation
 * fail (see dfs_alloc_fail_at in diffuse.h). dfs_malloc returns 64-byte aligned memory. */
void *dfs_malloc(size_t size);
void *dfs_calloc(size_t n, size_t size);
void *dfs_realloc(void *p, size_t size);
char *dfs_strdup(const char *s);
void dfs_free(void *p);

/* a*b for sizes, or SIZE_MAX on overflow (callers then fail the allocation). */
static inline size_t dfs_mul_size(size_t a, size_t b) {
    if (a != 0 && b > SIZE_MAX / a) return SIZE_MAX;
    return a * b;
}

#endif
