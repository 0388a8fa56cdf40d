/* AVX-512 GEMM micro-kernel: an 8×48 tile of C in 24 zmm registers. Per k it loads three
 * vectors of B and broadcasts eight values of A straight from memory into the FMAs. Tiles of at
 * most 32 or 16 columns (the last strip of a product, 32 output channels) take a 2- or 1-vector
 * version instead of computing columns that are dropped, and tiles of at most 4, 2 or 1 rows
 * (a convolution with 1 or 3 output channels) a version with that many rows. Only called when
 * cpuid reports AVX-512F. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ops/gemm.h"
#include "ops/x86/tile.h"
#include "ops/x86/lanes.h"

#define NR 48
#define TARGET __attribute__((target("avx512f,fma")))

/* The tile with nm rows (at most 8) and nv vectors (16 columns each) per row; both are constants
 * in each caller, so the unrolled loops keep acc in registers. */
TARGET static inline __attribute__((always_inline)) void tile(int nm, int nv, int kc, const float *a, size_t lda,
                                                              const float *b, size_t ldb, float *c, size_t ldc, int mr,
                                                              int nr, int add) {
    __m512 acc[8][3];
#pragma GCC unroll 8
    for (int i = 0; i < nm; i++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) acc[i][v] = _mm512_setzero_ps();
    /* rows past mr repeat the last valid row: computed, never stored */
    const float *ar[8];
#pragma GCC unroll 8
    for (int i = 0; i < nm; i++) ar[i] = a + (size_t)(i < mr ? i : mr - 1) * lda;
    for (int k = 0; k < kc; k++) {
        __m512 bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) bv[v] = _mm512_loadu_ps(b + 16 * v);
        b += ldb;
#pragma GCC unroll 8
        for (int i = 0; i < nm; i++) {
            const __m512 x = _mm512_set1_ps(ar[i][k]);
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) acc[i][v] = _mm512_fmadd_ps(x, bv[v], acc[i][v]);
        }
    }
    dfs_tile_store(nm, nv, acc, c, ldc, mr, nr, add);
}

typedef void kernel_fn(int kc, const float *a, size_t lda, const float *b, size_t ldb, float *c, size_t ldc, int mr,
                       int nr, int add);
#define TILE(NM, NV)                                                                                                 \
    TARGET static void tile_##NM##x##NV(int kc, const float *a, size_t lda, const float *b, size_t ldb, float *c,  \
                                          size_t ldc, int mr, int nr, int add) {                                   \
        tile(NM, NV, kc, a, lda, b, ldb, c, ldc, mr, nr, add);                                                     \
    }
TILE(1, 1) TILE(1, 2) TILE(1, 3) TILE(2, 1) TILE(2, 2) TILE(2, 3)
TILE(4, 1) TILE(4, 2) TILE(4, 3) TILE(8, 1) TILE(8, 2) TILE(8, 3)
static kernel_fn *const tiles[4][3] = {{tile_1x1, tile_1x2, tile_1x3},
                                       {tile_2x1, tile_2x2, tile_2x3},
                                       {tile_4x1, tile_4x2, tile_4x3},
                                       {tile_8x1, tile_8x2, tile_8x3}};

static void kernel(int kc, const float *a, size_t lda, const float *b, size_t ldb, float *c, size_t ldc, int mr, int nr,
                   int add) {
    const int rows = mr <= 1 ? 0 : mr <= 2 ? 1 : mr <= 4 ? 2 : 3, vectors = nr <= 16 ? 0 : nr <= 32 ? 1 : 2;
    tiles[rows][vectors](kc, a, lda, b, ldb, c, ldc, mr, nr, add);
}

/* A 16×16 block transposed in registers: pairs of rows interleaved at 1, 2, 4 and 8 floats. */
TARGET static void transpose(float *dst, size_t ldd, const float *src, size_t lds, int rows, int cols) {
    const __mmask16 in = dfs_first16(rows), out = dfs_first16(cols);
    __m512 r[16], t[16];
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) r[j] = j < cols ? _mm512_maskz_loadu_ps(in, src + (size_t)j * lds) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int j = 0; j < 16; j += 2) {
        t[j] = _mm512_unpacklo_ps(r[j], r[j + 1]);
        t[j + 1] = _mm512_unpackhi_ps(r[j], r[j + 1]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 16; j += 4) {
        r[j] = _mm512_shuffle_ps(t[j], t[j + 2], 0x44);
        r[j + 1] = _mm512_shuffle_ps(t[j], t[j + 2], 0xEE);
        r[j + 2] = _mm512_shuffle_ps(t[j + 1], t[j + 3], 0x44);
        r[j + 3] = _mm512_shuffle_ps(t[j + 1], t[j + 3], 0xEE);
    }
#pragma GCC unroll 2
    for (int j = 0; j < 16; j += 8)
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            t[j + k] = _mm512_shuffle_f32x4(r[j + k], r[j + k + 4], 0x88);
            t[j + k + 4] = _mm512_shuffle_f32x4(r[j + k], r[j + k + 4], 0xDD);
        }
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
        r[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xDD);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        if (i < rows) _mm512_mask_storeu_ps(dst + (size_t)i * ldd, out, r[i]);
}

/* dfs_phase_plane_fn: 16 values of a row at a time, each from a masked load (stride 1), or two of
 * the 32 image columns they span and a permute that picks the even ones (stride 2). */
TARGET static void phase_plane(float *dst, int Hp, int Wp, const float *src, int H, int W, int oy, int ox, int s) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (int X0 = 0; X0 < Wp; X0 += 16) {
        const int x = s * X0 + ox; /* the first column read */
        const __mmask16 m0 = dfs_inside16(x, W), m1 = dfs_inside16(x + 16, W), st = dfs_first16(Wp - X0);
        for (int Y = 0; Y < Hp; Y++) {
            const int y = s * Y + oy;
            __m512 v = _mm512_setzero_ps();
            if (y >= 0 && y < H) {
                const float *r = src + (ptrdiff_t)y * W + x;
                v = _mm512_maskz_loadu_ps(m0, r);
                if (s == 2) v = _mm512_permutex2var_ps(v, even, _mm512_maskz_loadu_ps(m1, r + 16));
            }
            _mm512_mask_storeu_ps(dst + (size_t)Y * Wp + X0, st, v);
        }
    }
}

const dfs_gemm_impl dfs_gemm_avx512 = {"avx512", NR, kernel, transpose, phase_plane};
#endif
