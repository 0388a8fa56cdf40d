/* The core of attention for one head (attn.c): O = softmax(Q Kᵀ·scale) V over every query row
 * and key of an image, with the rows of Q, V and O inner floats apart and key position j's value
 * d at K[d·k_rs + j·k_cs] (pointers already at the head's first column, stats at its first row);
 * stats (HW, 2) receives each row's maximum and sum when not NULL.
 * The blocked version (attn.c) takes any size: score blocks and P·V as GEMMs on the micro-kernel.
 * Small images, whose 49 or 64 keys make poor GEMM shapes (a 48-column strip and a 1-column one),
 * have a vector version that keeps a row block's scores in registers: it sums the same products
 * in the same order and calls the same max and exp_sum, so it gives the same bits. */
#ifndef DFS_OPS_ATTN_H
#define DFS_OPS_ATTN_H

#include <stddef.h>

#define DFS_ATTN_SMALL_HW 64  /* positions the vector version takes at most */
#define DFS_ATTN_SMALL_DH 256 /* and head size (a multiple of 16) */

typedef void dfs_attn_head_fn(float *O, float *stats, const float *Q, const float *K, size_t k_rs, size_t k_cs,
                              const float *V, int HW, int inner, int dh, float scale);

typedef struct dfs_attn_impl {
    const char *name; /* "avx512", "blocks" */
    int small_only;   /* takes only HW <= DFS_ATTN_SMALL_HW and dh a multiple of 16 up to DFS_ATTN_SMALL_DH */
    dfs_attn_head_fn *head;
} dfs_attn_impl;

/* The implementations this CPU runs, the blocked one last (for tests); returns the count. */
int dfs_attn_available(const dfs_attn_impl **out, int max);
/* The one to use for a head of HW positions and dh values. */
dfs_attn_head_fn *dfs_attn_head_for(int HW, int dh);

extern const dfs_attn_impl dfs_attn_avx512;

#endif
