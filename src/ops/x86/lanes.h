/* Lane masks shared by the x86 files: for AVX-512 the first n lanes of a vector and the lanes of
 * a load at column x that fall inside a row of W values (plain integer code, usable in any
 * function); for AVX2 the first n lanes as an integer vector, and stores of the first n lanes. */
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

/* AVX2 (and AVX) vectors: the mask of lanes 0 .. n − 1 for masked loads (n clamped to 0 .. 8). */
__attribute__((target("avx2"))) static inline __m256i dfs_first8(ptrdiff_t n) {
    const int k = n >= 8 ? 8 : n <= 0 ? 0 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Transposes the 8×8 block r in place (r[i] lane j becomes r[j] lane i): rows interleaved at 1, 2
 * and 4 floats. */
__attribute__((target("avx"))) static inline __attribute__((always_inline)) void dfs_transpose8(__m256 r[8]) {
    __m256 t[8];
#pragma GCC unroll 4
    for (int j = 0; j < 8; j += 2) {
        t[j] = _mm256_unpacklo_ps(r[j], r[j + 1]);
        t[j + 1] = _mm256_unpackhi_ps(r[j], r[j + 1]);
    }
#pragma GCC unroll 2
    for (int j = 0; j < 8; j += 4) {
        r[j] = _mm256_shuffle_ps(t[j], t[j + 2], 0x44);
        r[j + 1] = _mm256_shuffle_ps(t[j], t[j + 2], 0xEE);
        r[j + 2] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0x44);
        r[j + 3] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0xEE);
    }
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        t[k] = _mm256_permute2f128_ps(r[k], r[k + 4], 0x20);
        t[k + 4] = _mm256_permute2f128_ps(r[k], r[k + 4], 0x31);
    }
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) r[k] = t[k];
}

/* p[i] = lane i of v for i < n (n <= 8, or <= 4 for the 128-bit one): 4, 2 and 1 lanes at a time
 * from the register. Not a masked store: on AMD's Zen, VMASKMOVPS to memory is microcoded, about
 * 14 cycles where a plain store takes one. */
__attribute__((target("avx"))) static inline void dfs_store_first4(float *p, __m128 v, int n) {
    if (n >= 4) {
        _mm_storeu_ps(p, v);
        return;
    }
    if (n & 2) {
        _mm_storel_pi((__m64 *)p, v); /* a builtin: no alignment needed */
        v = _mm_movehl_ps(v, v);
        p += 2;
    }
    if (n & 1) _mm_store_ss(p, v);
}
__attribute__((target("avx"))) static inline void dfs_store_first8(float *p, __m256 v, int n) {
    if (n >= 8) {
        _mm256_storeu_ps(p, v);
        return;
    }
    __m128 half = _mm256_castps256_ps128(v);
    if (n >= 4) {
        _mm_storeu_ps(p, half);
        half = _mm256_extractf128_ps(v, 1);
        p += 4;
        n -= 4;
    }
    dfs_store_first4(p, half, n);
}

#endif
