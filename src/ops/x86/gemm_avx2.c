/* AVX2+FMA GEMM micro-kernel for strips of 16 columns. AVX2 has 16 ymm registers: an 8×16 tile
 * of C would need all 16 for its sums and leave none for B and A, so the compiler would keep the
 * sums in memory. The kernel therefore takes an 8-row tile as two passes of 4×16 (8 sums, B's two
 * vectors and one broadcast of A in registers; B's panel is read twice, from L1), and a tile of at
 * most 8 columns as one 8×8 pass. Each element of C is still one chain of FMAs over k ascending
 * from zero, added to C (or stored) at the end. Only called when cpuid reports AVX2 and FMA. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ops/gemm.h"
#include "ops/x86/lanes.h"

#define NR 16
#define TARGET __attribute__((target("avx2,fma")))
#define INLINE TARGET static inline __attribute__((always_inline))

/* Columns [0, cols) of one row of C from v (8 columns), added to C when add is set. */
INLINE void store8(float *cp, __m256 v, int cols, int add) {
    if (cols >= 8) {
        _mm256_storeu_ps(cp, add ? _mm256_add_ps(_mm256_loadu_ps(cp), v) : v);
    } else if (cols > 0) {
        dfs_store_first8(cp, add ? _mm256_add_ps(_mm256_maskload_ps(cp, dfs_first8(cols)), v) : v, cols);
    }
}

/* The nm × (8·nv) tile (nm <= 8, nv <= 2, nm·nv <= 8 sums): constants in each caller, so the
 * unrolled loops keep acc in registers. Rows past mr repeat the last valid row: computed, never
 * stored. */
INLINE void tile(int nm, int nv, int kc, const float *a, size_t lda, const float *b, size_t ldb, float *c, size_t ldc,
                 int mr, int nr, int add) {
    __m256 acc[8][2];
    const float *ar[8];
#pragma GCC unroll 8
    for (int i = 0; i < nm; i++) {
        ar[i] = a + (size_t)(i < mr ? i : mr - 1) * lda;
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) acc[i][v] = _mm256_setzero_ps();
    }
    for (int k = 0; k < kc; k++) {
        __m256 bv[2];
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) bv[v] = _mm256_loadu_ps(b + 8 * v);
        b += ldb;
#pragma GCC unroll 8
        for (int i = 0; i < nm; i++) {
            const __m256 x = _mm256_broadcast_ss(ar[i] + k);
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++) acc[i][v] = _mm256_fmadd_ps(x, bv[v], acc[i][v]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < nm; i++) {
        if (i >= mr) break;
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) store8(c + (size_t)i * ldc + 8 * v, acc[i][v], nr - 8 * v, add);
    }
}

typedef void kernel_fn(int kc, const float *a, size_t lda, const float *b, size_t ldb, float *c, size_t ldc, int mr,
                       int nr, int add);
#define TILE(NM, NV)                                                                                                \
    TARGET static void tile_##NM##x##NV(int kc, const float *a, size_t lda, const float *b, size_t ldb, float *c, \
                                          size_t ldc, int mr, int nr, int add) {                                  \
        tile(NM, NV, kc, a, lda, b, ldb, c, ldc, mr, nr, add);                                                    \
    }
TILE(1, 1) TILE(2, 1) TILE(4, 1) TILE(8, 1) TILE(1, 2) TILE(2, 2) TILE(4, 2)

TARGET static void kernel(int kc, const float *a, size_t lda, const float *b, size_t ldb, float *c, size_t ldc, int mr,
                          int nr, int add) {
    static kernel_fn *const narrow[4] = {tile_1x1, tile_2x1, tile_4x1, tile_8x1};
    static kernel_fn *const wide[3] = {tile_1x2, tile_2x2, tile_4x2};
    if (nr <= 8) {
        narrow[mr > 4 ? 3 : mr > 2 ? 2 : mr - 1](kc, a, lda, b, ldb, c, ldc, mr, nr, add);
        return;
    }
    for (int i0 = 0; i0 < mr; i0 += 4) { /* full passes inlined here: a call each cost 4% of the products */
        const int rows = mr - i0 < 4 ? mr - i0 : 4;
        if (rows == 4) tile(4, 2, kc, a + (size_t)i0 * lda, lda, b, ldb, c + (size_t)i0 * ldc, ldc, 4, nr, add);
        else wide[rows > 2 ? 2 : rows - 1](kc, a + (size_t)i0 * lda, lda, b, ldb, c + (size_t)i0 * ldc, ldc, rows, nr, add);
    }
}

/* dst[i·ldd + j] = r[j] lane i for the 8×8 block r, rows i < rows and columns j < cols stored. */
INLINE void transpose8(float *dst, size_t ldd, __m256 r[8], int rows, int cols) {
    dfs_transpose8(r);
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        if (i >= rows) break;
        if (cols == 8) _mm256_storeu_ps(dst + (size_t)i * ldd, r[i]);
        else dfs_store_first8(dst + (size_t)i * ldd, r[i], cols);
    }
}

/* The 16×16 block as four 8×8 blocks transposed in registers: rows interleaved at 1, 2 and 4
 * floats. */
TARGET static void transpose(float *dst, size_t ldd, const float *src, size_t lds, int rows, int cols) {
    for (int i0 = 0; i0 < rows; i0 += 8)
        for (int j0 = 0; j0 < cols; j0 += 8) {
            const int nr = rows - i0 < 8 ? rows - i0 : 8, nc = cols - j0 < 8 ? cols - j0 : 8;
            const __m256i in = dfs_first8(nr);
            __m256 r[8];
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                r[j] = j < nc ? _mm256_maskload_ps(src + (size_t)(j0 + j) * lds + i0, in) : _mm256_setzero_ps();
            transpose8(dst + (size_t)i0 * ldd + j0, ldd, r, nr, nc);
        }
}

/* dfs_phase_plane_fn: 8 values of a row at a time, from one load (stride 1) or from two over the
 * 16 image columns they span, the even ones picked by a shuffle and a permute (stride 2). Blocks
 * that reach past either side of the image go value by value. */
TARGET static void phase_plane(float *dst, int Hp, int Wp, const float *src, int H, int W, int oy, int ox, int s) {
    for (int X0 = 0; X0 < Wp; X0 += 8) {
        const int x = s * X0 + ox, n = Wp - X0 < 8 ? Wp - X0 : 8; /* the first column read; values stored */
        const int inside = x >= 0 && x + 8 * s <= W;
        for (int Y = 0; Y < Hp; Y++) {
            const int y = s * Y + oy;
            float *d = dst + (size_t)Y * Wp + X0;
            if (y < 0 || y >= H) {
                for (int k = 0; k < n; k++) d[k] = 0.0f;
            } else if (!inside) {
                const float *r = src + (size_t)y * W;
                for (int k = 0; k < n; k++) d[k] = x + s * k >= 0 && x + s * k < W ? r[x + s * k] : 0.0f;
            } else {
                const float *r = src + (size_t)y * W + x;
                __m256 v = _mm256_loadu_ps(r);
                if (s == 2) {
                    const __m256 even = _mm256_shuffle_ps(v, _mm256_loadu_ps(r + 8), 0x88);
                    v = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), 0xD8));
                }
                if (n == 8) _mm256_storeu_ps(d, v);
                else dfs_store_first8(d, v, n);
            }
        }
    }
}

const dfs_gemm_impl dfs_gemm_avx2 = {"avx2", NR, kernel, transpose, phase_plane};
#endif
