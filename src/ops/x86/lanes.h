/* Lane masks shared by the AVX-512 files: the first n lanes of a vector, and the lanes of a load
 * at column x that fall inside a row of W values. Plain integer code, usable in any function. */
#ifndef DFS_OPS_X86_LANES_H
#define DFS_OPS_X86_LANES_H

#include <immintrin.h>
#include <stddef.h>

/* Lanes 0 .. n − 1 (none for n <= 0, all 16 for n >= 16). */
static inline __mmask16 dfs_first16(ptrdiff_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* The lanes l of a 16-value load at column x with 0 <= x + l < W. */
static inline __mmask16 dfs_inside16(int x, int W) {
    return (__mmask16)(dfs_first16((ptrdiff_t)W - x) & ~dfs_first16(-(ptrdiff_t)x));
}

#endif
