/* dfs_malloc and friends: 64-byte aligned blocks with a small header that records the size, so the
 * library can count live bytes, and tests can make the n-th allocation fail to exercise every
 * error path (SQLite-style fault injection). These two counters are the library's only
 * process-wide state; they are atomics so threads may allocate concurrently. */
#define _DEFAULT_SOURCE /* madvise */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define HEADER 64 /* keeps the payload 64-byte aligned; the size sits at its start */

static atomic_size_t live_bytes;
static atomic_long fail_countdown; /* 0 = never fail; n = the n-th next allocation fails */

void dfs_alloc_fail_at(long n) { atomic_store(&fail_countdown, n > 0 ? n : 0); }

size_t dfs_alloc_live_bytes(void) { return atomic_load(&live_bytes); }

static int should_fail(void) {
    long c = atomic_load(&fail_countdown);
    while (c > 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &c, c - 1)) return c == 1;
    }
    return 0;
}

/* Blocks of several MiB (weights, activations, workspaces) ask for transparent huge pages: the
 * convolutions read image planes kilobytes apart, and with 4 KiB pages nearly every row is a TLB
 * miss. Only a hint: where the kernel says no, nothing changes. */
#define HUGE_FROM ((size_t)8 << 20)
#define HUGE_PAGE ((uintptr_t)2 << 20)

static void advise_huge(void *p, size_t size) {
#ifdef MADV_HUGEPAGE
    if (size < HUGE_FROM) return;
    const uintptr_t lo = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1), hi = ((uintptr_t)p + size) & ~(HUGE_PAGE - 1);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#endif
}

void *dfs_malloc(size_t size) {
    if (size > SIZE_MAX - HEADER || should_fail()) return NULL;
    void *raw = NULL;
    if (posix_memalign(&raw, 64, size + HEADER) != 0) return NULL;
    advise_huge(raw, size + HEADER);
    memcpy(raw, &size, sizeof size);
    atomic_fetch_add(&live_bytes, size);
    return (char *)raw + HEADER;
}

void *dfs_calloc(size_t n, size_t size) {
    size_t total = dfs_mul_size(n, size);
    if (total == SIZE_MAX) return NULL;
    void *p = dfs_malloc(total);
    if (p) memset(p, 0, total);
    return p;
}

static size_t block_size(const void *p) {
    size_t size;
    memcpy(&size, (const char *)p - HEADER, sizeof size);
    return size;
}

void *dfs_realloc(void *p, size_t size) {
    if (!p) return dfs_malloc(size);
    void *q = dfs_malloc(size);
    if (!q) return NULL;
    size_t old = block_size(p);
    memcpy(q, p, old < size ? old : size);
    dfs_free(p);
    return q;
}

char *dfs_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = dfs_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void dfs_free(void *p) {
    if (!p) return;
    atomic_fetch_sub(&live_bytes, block_size(p));
    free((char *)p - HEADER);
}
