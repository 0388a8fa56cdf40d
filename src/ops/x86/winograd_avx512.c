/* AVX-512 tile transforms of winograd.c: the 16 tiles of a run are the 16 lanes. In a run within
 * one tile row, columns 2j + k of a row are split out of two loads by even/odd permutes, and
 * outputs are interleaved back the same way. A run over several tile rows of a narrow image
 * (winograd.h) loads its rows into the slots of a register pair (8 or 16 lanes each) and
 * gathers each lane's values from them with one permute. The same additions in the same order
 * as the portable version, so the same bits. Only called when cpuid reports AVX-512F. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ops/winograd.h"
#include "ops/x86/lanes.h"

#define TARGET __attribute__((target("avx512f")))
#define INLINE TARGET static inline __attribute__((always_inline))


/* A run over several tile rows (W <= 16): for lane l, tile tx + l of the run's first row, the tile
 * row q it falls in (from the run's first) and its column c. (tx + l < 32 and TW <= 8, so the
 * division by TW is a product by ⌈2¹⁶/TW⌉ and a shift, exactly.) Rows sit in slots of 2^shift
 * lanes of a register pair: 8 when a run may span dfs_wg_run_rows(W) = 4 tile rows, else 16. */
typedef struct rows_geom {
    __m512i q, c;
    int shift;
} rows_geom;

INLINE rows_geom geom(int W, int tx) {
    const int TW = (W + 1) / 2;
    rows_geom g;
    g.shift = dfs_wg_run_rows(W) == 4 ? 3 : 4;
    const __m512i t = _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                       _mm512_set1_epi32(tx));
    g.q = _mm512_srli_epi32(_mm512_mullo_epi32(t, _mm512_set1_epi32((65536 + TW - 1) / TW)), 16);
    g.c = _mm512_sub_epi32(t, _mm512_mullo_epi32(g.q, _mm512_set1_epi32(TW)));
    return g;
}

/* Row y of an H × W plane in the first W lanes; zero outside the plane. */
INLINE __m512 row_of(const float *plane, int H, int W, int y) {
    const int in = y >= 0 && y < H;
    return _mm512_maskz_loadu_ps(in ? dfs_first16(W) : 0, plane + (ptrdiff_t)(in ? y : 0) * W);
}

/* For i < n (at most 4): the register pair lo[i], hi[i] whose slot q holds row y0 + i + 2q, the
 * row that tile row q of the run needs at position i (W <= 16). */
INLINE void load_pairs(__m512 *lo, __m512 *hi, int n, const float *plane, int H, int W, int y0) {
    if (dfs_wg_run_rows(W) == 4) { /* four slots of 8 lanes */
        __m512 r[10];
#pragma GCC unroll 10
        for (int k = 0; k < n + 6; k++) r[k] = row_of(plane, H, W, y0 + k);
#pragma GCC unroll 4
        for (int i = 0; i < n; i++) {
            lo[i] = _mm512_shuffle_f32x4(r[i], r[i + 2], 0x44);
            hi[i] = _mm512_shuffle_f32x4(r[i + 4], r[i + 6], 0x44);
        }
    } else { /* two slots of 16 lanes */
        __m512 r[6];
#pragma GCC unroll 6
        for (int k = 0; k < n + 2; k++) r[k] = row_of(plane, H, W, y0 + k);
#pragma GCC unroll 4
        for (int i = 0; i < n; i++) lo[i] = r[i], hi[i] = r[i + 2];
    }
}

/* Which lane of a register pair filled by load_pairs each lane l takes: column 2c + col0 of its
 * tile row's slot, or zero where that column is outside the plane or l >= len. */
typedef struct pick {
    __m512i idx;
    __mmask16 keep;
} pick;

INLINE pick pick_of(const rows_geom *g, int col0, int W, int len) {
    const __m512i col = _mm512_add_epi32(_mm512_slli_epi32(g->c, 1), _mm512_set1_epi32(col0));
    pick p;
    p.keep = _mm512_cmpge_epi32_mask(col, _mm512_setzero_si512()) & _mm512_cmplt_epi32_mask(col, _mm512_set1_epi32(W)) &
             dfs_first16(len);
    p.idx = _mm512_add_epi32(_mm512_sllv_epi32(g->q, _mm512_set1_epi32(g->shift)), col);
    return p;
}

INLINE __m512 gather(pick p, __m512 lo, __m512 hi) { return _mm512_maskz_permutex2var_ps(p.keep, lo, p.idx, hi); }

/* V = Bᵀ d B from the 16 vectors of d, stored for the first len lanes. */
INLINE void in_finish(float *v, size_t xs, __m512 d[4][4], int len) {
    const __mmask16 mask = dfs_first16(len);
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) { /* Bᵀ d, column k */
        const __m512 d0 = d[0][k], d1 = d[1][k], d2 = d[2][k], d3 = d[3][k];
        d[0][k] = _mm512_sub_ps(d0, d2);
        d[1][k] = _mm512_add_ps(d1, d2);
        d[2][k] = _mm512_sub_ps(d2, d1);
        d[3][k] = _mm512_sub_ps(d1, d3);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) { /* (Bᵀ d) B, row i */
        _mm512_mask_storeu_ps(v + (4 * i + 0) * xs, mask, _mm512_sub_ps(d[i][0], d[i][2]));
        _mm512_mask_storeu_ps(v + (4 * i + 1) * xs, mask, _mm512_add_ps(d[i][1], d[i][2]));
        _mm512_mask_storeu_ps(v + (4 * i + 2) * xs, mask, _mm512_sub_ps(d[i][2], d[i][1]));
        _mm512_mask_storeu_ps(v + (4 * i + 3) * xs, mask, _mm512_sub_ps(d[i][1], d[i][3]));
    }
}

TARGET static void in_run(float *v, size_t xs, const float *plane, size_t istride, int H, int W, int ty, int tx, int len) {
    __m512 d[4][4]; /* the loops are unrolled so that these stay in registers */
    if (tx + len <= (W + 1) / 2) { /* one tile row */
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
        const int y0 = 2 * ty - 1, x0 = 2 * tx - 1;
        const __mmask16 ma = dfs_inside16(x0, W), mb = dfs_inside16(x0 + 16, W), mc = dfs_inside16(x0 + 2, W), me = dfs_inside16(x0 + 18, W);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            /* masked loads read nothing outside the plane: a row outside it loads no lane */
            const int in = y0 + i >= 0 && y0 + i < H;
            const float *r = plane + ((ptrdiff_t)(in ? y0 + i : 0) * W + x0);
            const __m512 a = _mm512_maskz_loadu_ps(in ? ma : 0, r), b = _mm512_maskz_loadu_ps(in ? mb : 0, r + 16);
            const __m512 c = _mm512_maskz_loadu_ps(in ? mc : 0, r + 2), e = _mm512_maskz_loadu_ps(in ? me : 0, r + 18);
            d[i][0] = _mm512_permutex2var_ps(a, even, b);
            d[i][1] = _mm512_permutex2var_ps(a, odd, b);
            d[i][2] = _mm512_permutex2var_ps(c, even, e);
            d[i][3] = _mm512_permutex2var_ps(c, odd, e);
        }
    } else {
        const rows_geom g = geom(W, tx);
        pick p[4];
        __m512 lo[4], hi[4];
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) p[k] = pick_of(&g, k - 1, W, len);
        load_pairs(lo, hi, 4, plane, H, W, 2 * ty - 1);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) d[i][k] = gather(p[k], lo[i], hi[i]);
    }
    in_finish(v, xs, d, len);
}

/* y[r][k] = the output of row r, column k of each lane's 2×2 block: (Aᵀ M A) from M's 16 rows. */
INLINE void out_core(__m512 y[2][2], const float *m, size_t xs, int len) {
    const __mmask16 mask = dfs_first16(len);
    __m512 a[4][4], s[2][4];
#pragma GCC unroll 16
    for (int x = 0; x < 16; x++) a[x / 4][x % 4] = _mm512_maskz_loadu_ps(mask, m + x * xs);
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) { /* Aᵀ M */
        s[0][k] = _mm512_add_ps(_mm512_add_ps(a[0][k], a[1][k]), a[2][k]);
        s[1][k] = _mm512_sub_ps(_mm512_sub_ps(a[1][k], a[2][k]), a[3][k]);
    }
#pragma GCC unroll 2
    for (int r = 0; r < 2; r++) { /* (Aᵀ M) A */
        y[r][0] = _mm512_add_ps(_mm512_add_ps(s[r][0], s[r][1]), s[r][2]);
        y[r][1] = _mm512_sub_ps(_mm512_sub_ps(s[r][1], s[r][2]), s[r][3]);
    }
}

/* row[lane] (+)= (value + bias) + bias2 for the lanes in mask. */
INLINE void out_store(float *row, __mmask16 mask, __m512 value, __m512 vb, __m512 vb2, int accumulate) {
    value = _mm512_add_ps(_mm512_add_ps(value, vb), vb2);
    if (accumulate) value = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, row), value);
    _mm512_mask_storeu_ps(row, mask, value);
}

TARGET static void out_run(float *o, size_t istride, int H, int W, const float *m, size_t xs, int ty, int tx, int len,
                           float bias, const float *bias2, size_t b2stride, int accumulate) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 vb = _mm512_set1_ps(bias), vb2 = _mm512_set1_ps(bias2 ? bias2[0] : 0.0f); /* a run in one image */
    __m512 y[2][2];
    out_core(y, m, xs, len);
    if (tx + len <= (W + 1) / 2) { /* one tile row: interleaved back into a row of 2·len outputs */
        const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
        const int cols = W - 2 * tx < 2 * len ? W - 2 * tx : 2 * len, rows = H - 2 * ty < 2 ? H - 2 * ty : 2;
        const __mmask16 m0 = dfs_first16(cols), m1 = dfs_first16(cols - 16 > 0 ? cols - 16 : 0);
#pragma GCC unroll 2
        for (int r = 0; r < rows; r++) {
            float *row = o + (size_t)(2 * ty + r) * W + 2 * tx;
            out_store(row, m0, _mm512_permutex2var_ps(y[r][0], lo, y[r][1]), vb, vb2, accumulate);
            out_store(row + 16, m1, _mm512_permutex2var_ps(y[r][0], hi, y[r][1]), vb, vb2, accumulate);
        }
        return;
    }
    /* lane p of an output row (W <= 16 columns) is column k = p mod 2 of tile column p / 2 */
    const int TW = (W + 1) / 2, n_rows = (tx + len - 1) / TW + 1;
    const __m512i half = _mm512_srli_epi32(lane, 1), k16 = _mm512_slli_epi32(_mm512_and_si512(lane, _mm512_set1_epi32(1)), 4);
    for (int q = 0; q < n_rows; q++) {
        /* the run's lane holding tile column c of tile row q is q·TW + c − tx */
        const __m512i l = _mm512_add_epi32(half, _mm512_set1_epi32(q * TW - tx));
        const __mmask16 mask = _mm512_cmpge_epi32_mask(l, _mm512_setzero_si512()) &
                               _mm512_cmplt_epi32_mask(l, _mm512_set1_epi32(len)) & dfs_first16(W);
        const __m512i idx = _mm512_add_epi32(k16, l);
        for (int r = 0; r < 2 && 2 * (ty + q) + r < H; r++)
            out_store(o + (size_t)(2 * (ty + q) + r) * W, mask, _mm512_permutex2var_ps(y[r][0], idx, y[r][1]), vb, vb2,
                      accumulate);
    }
}

TARGET static void grad_run(float *z, size_t xs, const float *dy, size_t istride, int H, int W, int ty, int tx, int len) {
    const __mmask16 mask = dfs_first16(len);
    __m512 y[2][2];
    if (tx + len <= (W + 1) / 2) { /* one tile row */
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
        const int cols = W - 2 * tx < 2 * len ? W - 2 * tx : 2 * len, rows = H - 2 * ty < 2 ? H - 2 * ty : 2;
        const __mmask16 m0 = dfs_first16(cols), m1 = dfs_first16(cols - 16 > 0 ? cols - 16 : 0);
#pragma GCC unroll 2
        for (int r = 0; r < 2; r++) {
            const __mmask16 k0 = r < rows ? m0 : 0, k1 = r < rows ? m1 : 0;
            const float *row = dy + (size_t)(2 * ty + (r < rows ? r : 0)) * W + 2 * tx;
            const __m512 a = _mm512_maskz_loadu_ps(k0, row), b = _mm512_maskz_loadu_ps(k1, row + 16);
            y[r][0] = _mm512_permutex2var_ps(a, even, b);
            y[r][1] = _mm512_permutex2var_ps(a, odd, b);
        }
    } else {
        const rows_geom g = geom(W, tx);
        const pick p0 = pick_of(&g, 0, W, len), p1 = pick_of(&g, 1, W, len);
        __m512 lo[2], hi[2];
        load_pairs(lo, hi, 2, dy, H, W, 2 * ty);
#pragma GCC unroll 2
        for (int r = 0; r < 2; r++) {
            y[r][0] = gather(p0, lo[r], hi[r]);
            y[r][1] = gather(p1, lo[r], hi[r]);
        }
    }
    __m512 t[4][2];
#pragma GCC unroll 2
    for (int k = 0; k < 2; k++) { /* A' dY */
        t[0][k] = y[0][k];
        t[1][k] = _mm512_add_ps(y[0][k], y[1][k]);
        t[2][k] = _mm512_sub_ps(y[0][k], y[1][k]);
        t[3][k] = y[1][k];
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) { /* (A' dY) A'ᵀ */
        _mm512_mask_storeu_ps(z + (4 * i + 0) * xs, mask, t[i][0]);
        _mm512_mask_storeu_ps(z + (4 * i + 1) * xs, mask, _mm512_add_ps(t[i][0], t[i][1]));
        _mm512_mask_storeu_ps(z + (4 * i + 2) * xs, mask, _mm512_sub_ps(t[i][0], t[i][1]));
        _mm512_mask_storeu_ps(z + (4 * i + 3) * xs, mask, t[i][1]);
    }
}

/* F(4×4, 3×3) (winograd.h): lane l is tile t = ty·TW + tx + l counted from the run's first image,
 * which may lie in a later image: its image q, tile row y and column x come from products by
 * ⌈2¹⁶/T⌉ and ⌈2¹⁶/TW⌉ and a shift, exact while (T + 16)·T < 2¹⁶ (images of up to 32 × 32, the
 * largest that winograd.c gives F(4×4, 3×3)). Images of fewer than three tiles a row (at most 8
 * wide) have their values gathered from their planes (and the outputs scattered); wider ones go
 * by segments (below). Either way the same operations in the same order as the portable version. */
typedef struct geom4 {
    __m512i q, y, x;
} geom4;

INLINE geom4 geom4_of(int H, int W, int ty, int tx) {
    const int TW = (W + 3) / 4, T = (H + 3) / 4 * TW;
    const __m512i t = _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                       _mm512_set1_epi32(ty * TW + tx));
    geom4 g;
    g.q = _mm512_srli_epi32(_mm512_mullo_epi32(t, _mm512_set1_epi32((65536 + T - 1) / T)), 16);
    const __m512i tt = _mm512_sub_epi32(t, _mm512_mullo_epi32(g.q, _mm512_set1_epi32(T)));
    g.y = _mm512_srli_epi32(_mm512_mullo_epi32(tt, _mm512_set1_epi32((65536 + TW - 1) / TW)), 16);
    g.x = _mm512_sub_epi32(tt, _mm512_mullo_epi32(g.y, _mm512_set1_epi32(TW)));
    return g;
}

/* The lanes whose v lies in lo .. hi − 1. */
INLINE __mmask16 within(__m512i v, int lo, int hi) {
    return _mm512_cmpge_epi32_mask(v, _mm512_set1_epi32(lo)) & _mm512_cmplt_epi32_mask(v, _mm512_set1_epi32(hi));
}

#define FMA(c, x, y) _mm512_fmadd_ps(_mm512_set1_ps(c), x, y)
#define ADD _mm512_add_ps
#define SUB _mm512_sub_ps

/* o[k] = (Bᵀ d)_k, as bt6 in winograd.c. */
INLINE void bt6v(__m512 *o, size_t os, const __m512 *d, size_t ds) {
    const __m512 d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds], d5 = d[5 * ds], e = SUB(d4, d2);
    o[0] = ADD(FMA(1.5f, d3, FMA(-2.0f, d2, FMA(-1.5f, d1, d0))), d4);
    o[os] = FMA(0.5f, d3, FMA(-2.5f, d2, ADD(d1, d4)));
    o[2 * os] = FMA(2.5f, d3, FMA(0.5f, d2, SUB(d4, d1)));
    o[3 * os] = FMA(2.0f, SUB(d3, d1), e);
    o[4 * os] = FMA(0.5f, SUB(d1, d3), e);
    o[5 * os] = ADD(FMA(1.5f, d4, FMA(-2.0f, d3, FMA(-1.5f, d2, d1))), d5);
}

/* o[k] = (Aᵀ a)_k, as at6 in winograd.c. */
INLINE void at6v(__m512 *o, size_t os, const __m512 *a, size_t as) {
    const __m512 a0 = a[0], a1 = a[as], a2 = a[2 * as], a3 = a[3 * as], a4 = a[4 * as], a5 = a[5 * as];
    const __m512 p = ADD(a1, a2), m = SUB(a2, a1);
    o[0] = ADD(ADD(a0, p), ADD(a3, a4));
    o[os] = FMA(-2.0f, a4, FMA(0.5f, a3, m));
    o[2 * os] = FMA(4.0f, a4, FMA(0.25f, a3, p));
    o[3 * os] = ADD(FMA(-8.0f, a4, FMA(0.125f, a3, m)), a5);
}

/* d[n·i + k] = pixel (4y + off + i, 4x + off + k) of each lane's tile's image, zero outside it
 * (those lanes are not read), for i, k < n. */
INLINE void gather_block(__m512 *d, int n, int off, const float *plane, size_t istride, int H, int W, geom4 g,
                         __mmask16 live) {
    const __m512i y0 = _mm512_add_epi32(_mm512_slli_epi32(g.y, 2), _mm512_set1_epi32(off));
    const __m512i x0 = _mm512_add_epi32(_mm512_slli_epi32(g.x, 2), _mm512_set1_epi32(off));
    const __m512i base = _mm512_add_epi32(_mm512_mullo_epi32(g.q, _mm512_set1_epi32((int)istride)),
                                          _mm512_add_epi32(_mm512_mullo_epi32(y0, _mm512_set1_epi32(W)), x0));
#pragma GCC unroll 6
    for (int i = 0; i < n; i++) {
        const __mmask16 rows = live & within(_mm512_add_epi32(y0, _mm512_set1_epi32(i)), 0, H);
#pragma GCC unroll 6
        for (int k = 0; k < n; k++)
            d[n * i + k] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), rows & within(_mm512_add_epi32(x0, _mm512_set1_epi32(k)), 0, W),
                                                    _mm512_add_epi32(base, _mm512_set1_epi32(i * W + k)), plane, 4);
    }
}

/* V = Bᵀ d B from the 36 vectors of d, stored for the live lanes. */
INLINE void in4_finish(float *v, size_t xs, const __m512 *d, __mmask16 live) {
    __m512 e[36];
#pragma GCC unroll 6
    for (int k = 0; k < 6; k++) bt6v(e + k, 6, d + k, 6); /* Bᵀ d */
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) { /* (Bᵀ d) B */
        __m512 r[6];
        bt6v(r, 1, e + 6 * i, 1);
#pragma GCC unroll 6
        for (int k = 0; k < 6; k++) _mm512_mask_storeu_ps(v + (6 * i + k) * xs, live, r[k]);
    }
}

TARGET static void in4_gather(float *v, size_t xs, const float *plane, size_t istride, int H, int W, int ty, int tx,
                              int len) {
    const __mmask16 live = dfs_first16(len);
    __m512 d[36];
    gather_block(d, 6, -1, plane, istride, H, W, geom4_of(H, W, ty, tx), live);
    in4_finish(v, xs, d, live);
}

/* s = Aᵀ M (4 × 6 vectors) from the live lanes of the 36 rows of m. */
INLINE void out4_start(__m512 *s, const float *m, size_t xs, __mmask16 live) {
    __m512 a[36];
#pragma GCC unroll 36
    for (int x = 0; x < 36; x++) a[x] = _mm512_maskz_loadu_ps(live, m + x * xs);
#pragma GCC unroll 6
    for (int k = 0; k < 6; k++) at6v(s + k, 6, a + k, 6);
}

TARGET static void out4_scatter(float *o, size_t istride, int H, int W, const float *m, size_t xs, int ty, int tx,
                                int len, float bias, const float *bias2, size_t b2stride, int accumulate) {
    const geom4 g = geom4_of(H, W, ty, tx);
    const __mmask16 live = dfs_first16(len);
    __m512 s[24], y[4];
    out4_start(s, m, xs, live); /* Aᵀ M */
    const __m512 vb = _mm512_set1_ps(bias);
    const __m512 vb2 = bias2 ? _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live,
                                                        _mm512_mullo_epi32(g.q, _mm512_set1_epi32((int)b2stride)), bias2, 4)
                             : _mm512_setzero_ps();
    const __m512i y0 = _mm512_slli_epi32(g.y, 2), x0 = _mm512_slli_epi32(g.x, 2);
    const __m512i base = _mm512_add_epi32(_mm512_mullo_epi32(g.q, _mm512_set1_epi32((int)istride)),
                                          _mm512_add_epi32(_mm512_mullo_epi32(y0, _mm512_set1_epi32(W)), x0));
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        const __mmask16 rows = live & within(_mm512_add_epi32(y0, _mm512_set1_epi32(r)), 0, H);
        at6v(y, 1, s + 6 * r, 1); /* (Aᵀ M) A, row r */
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            const __mmask16 mask = rows & within(_mm512_add_epi32(x0, _mm512_set1_epi32(c)), 0, W);
            const __m512i idx = _mm512_add_epi32(base, _mm512_set1_epi32(r * W + c));
            __m512 val = ADD(ADD(y[c], vb), vb2);
            if (accumulate) val = ADD(_mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, idx, o, 4), val);
            _mm512_mask_i32scatter_ps(o, mask, idx, val, 4);
        }
    }
}

/* z[i] = (A y)_i, as a6 in winograd.c. */
INLINE void a6v(__m512 *z, size_t zs, const __m512 *y, size_t ys) {
    const __m512 y0 = y[0], y1 = y[ys], y2 = y[2 * ys], y3 = y[3 * ys], e = ADD(y0, y2), o = ADD(y1, y3);
    z[0] = y0;
    z[zs] = SUB(e, o);
    z[2 * zs] = ADD(e, o);
    z[3 * zs] = FMA(0.125f, y3, FMA(0.25f, y2, FMA(0.5f, y1, y0)));
    z[4 * zs] = FMA(-8.0f, y3, FMA(4.0f, y2, FMA(-2.0f, y1, y0)));
    z[5 * zs] = y3;
}

/* Z = A dY Aᵀ from the 16 vectors of dY, stored for the live lanes. */
INLINE void grad4_finish(float *z, size_t xs, const __m512 *y, __mmask16 live) {
    __m512 t[24];
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) a6v(t + k, 4, y + k, 4); /* A dY */
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) { /* (A dY) Aᵀ */
        __m512 r[6];
        a6v(r, 1, t + 4 * i, 1);
#pragma GCC unroll 6
        for (int k = 0; k < 6; k++) _mm512_mask_storeu_ps(z + (6 * i + k) * xs, live, r[k]);
    }
}

TARGET static void grad4_gather(float *z, size_t xs, const float *dy, size_t istride, int H, int W, int ty, int tx,
                                int len) {
    const __mmask16 live = dfs_first16(len);
    __m512 y[16];
    gather_block(y, 4, 0, dy, istride, H, W, geom4_of(H, W, ty, tx), live);
    grad4_finish(z, xs, y, live);
}

/* Runs over images of three or more tiles a row go by segments: the pieces of the run in one tile
 * row of one image, of at most SEG_TILES tiles, whose rows span at most 4·7 + 2 = 30 columns, two
 * loads. A segment's tiles are lanes j .. j + n − 1; each of its rows is loaded once and every
 * lane's values picked out of the two loads by a permute (the tile's columns are 4 apart), and
 * each output row is interleaved from the four column vectors by permutes and stored whole. */
#define SEG_TILES 7

typedef struct seg {
    int j, n, q, y, x; /* first lane, tiles, image (from the run's first), tile row, tile column */
} seg;

static int segments_of(seg *sg, int H, int W, int ty, int tx, int len) {
    const int TW = (W + 3) / 4, TH = (H + 3) / 4;
    int n = 0, q = 0, y = ty, x = tx;
    for (int j = 0; j < len;) {
        int k = TW - x < len - j ? TW - x : len - j;
        if (k > SEG_TILES) k = SEG_TILES;
        sg[n++] = (seg){j, k, q, y, x};
        j += k, x += k;
        if (x == TW) {
            x = 0;
            if (++y == TH) y = 0, q++;
        }
    }
    return n;
}

/* Lane l of the result: 4·(l − j) for the segment's lanes (the others are not used). */
INLINE __m512i seg_columns(int j) {
    return _mm512_sub_epi32(_mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60),
                            _mm512_set1_epi32(4 * j));
}

INLINE __mmask16 seg_lanes(const seg *g) { return (__mmask16)(dfs_first16(g->j + g->n) & ~dfs_first16(g->j)); }

/* d[n·i + k] (n = 6 from column off = −1, n = 4 from column 0) for the segment's lanes: pixel
 * (4y + off + i, 4x + off + k) of its image; rows outside the image leave d as it is. */
INLINE void seg_rows(__m512 *d, int n, int off, const seg *g, const float *plane, size_t istride, int H, int W) {
    const __mmask16 lanes = seg_lanes(g);
    const __m512i cols = seg_columns(g->j);
    const int c0 = 4 * g->x + off;
    const __mmask16 m0 = dfs_inside16(c0, W), m1 = dfs_inside16(c0 + 16, W);
    const float *img = plane + (size_t)g->q * istride;
#pragma GCC unroll 6
    for (int i = 0; i < n; i++) {
        const int y = 4 * g->y + off + i;
        if (y < 0 || y >= H) continue;
        const float *r = img + ((ptrdiff_t)y * W + c0);
        const __m512 lo = _mm512_maskz_loadu_ps(m0, r), hi = _mm512_maskz_loadu_ps(m1, r + 16);
#pragma GCC unroll 6
        for (int k = 0; k < n; k++)
            d[n * i + k] = _mm512_mask_mov_ps(d[n * i + k], lanes,
                                              _mm512_permutex2var_ps(lo, _mm512_add_epi32(cols, _mm512_set1_epi32(k)), hi));
    }
}

/* Whether runs over images W wide go by segments (three or more tiles a row), else by gathers. The
 * output transform goes by segments from two tiles a row (images of 5 to 8 columns): there a
 * masked store per output row beats a scatter per output column (7×7 128→128 at batch 64: 1.49–1.51
 * → 1.47 ms), where for the input transform the gathers beat the segments' loads and permutes (1.46
 * against 1.51–1.62 ms). */
static int by_segments(int W) { return (W + 3) / 4 >= 3; }
static int out_by_segments(int W) { return (W + 3) / 4 >= 2; }

/* d[n·i + k] for every lane of a run, segment by segment (zero outside the image and past len). */
INLINE void seg_block(__m512 *d, int n, int off, const float *plane, size_t istride, int H, int W, int ty, int tx, int len) {
    seg sg[16];
    const int ns = segments_of(sg, H, W, ty, tx, len);
#pragma GCC unroll 36
    for (int x = 0; x < n * n; x++) d[x] = _mm512_setzero_ps();
    for (int i = 0; i < ns; i++) seg_rows(d, n, off, &sg[i], plane, istride, H, W);
}

TARGET static void in4_run(float *v, size_t xs, const float *plane, size_t istride, int H, int W, int ty, int tx, int len) {
    if (!by_segments(W)) {
        in4_gather(v, xs, plane, istride, H, W, ty, tx, len);
        return;
    }
    __m512 d[36];
    seg_block(d, 6, -1, plane, istride, H, W, ty, tx, len);
    in4_finish(v, xs, d, dfs_first16(len));
}

TARGET static void grad4_run(float *z, size_t xs, const float *dy, size_t istride, int H, int W, int ty, int tx, int len) {
    if (!by_segments(W)) {
        grad4_gather(z, xs, dy, istride, H, W, ty, tx, len);
        return;
    }
    __m512 y[16];
    seg_block(y, 4, 0, dy, istride, H, W, ty, tx, len);
    grad4_finish(z, xs, y, dfs_first16(len));
}

TARGET static void out4_run(float *o, size_t istride, int H, int W, const float *m, size_t xs, int ty, int tx, int len,
                            float bias, const float *bias2, size_t b2stride, int accumulate) {
    if (!out_by_segments(W)) {
        out4_scatter(o, istride, H, W, m, xs, ty, tx, len, bias, bias2, b2stride, accumulate);
        return;
    }
    seg sg[16];
    const int ns = segments_of(sg, H, W, ty, tx, len);
    __m512 s[24], y[16];
    out4_start(s, m, xs, dfs_first16(len)); /* Aᵀ M */
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) at6v(y + 4 * r, 1, s + 6 * r, 1); /* (Aᵀ M) A: y[4r + c], row r, column c */
    /* output column e of a segment's row is column e mod 4 of lane j + e/4: from the first
     * source of a permute for even e mod 4, the second for odd; columns e mod 4 >= 2 from the
     * pair (y[4r + 2], y[4r + 3]) */
    const __m512i pick = _mm512_setr_epi32(0, 16, 0, 16, 1, 17, 1, 17, 2, 18, 2, 18, 3, 19, 3, 19);
    const __m512 vb = _mm512_set1_ps(bias);
    for (int i = 0; i < ns; i++) {
        const seg *g = &sg[i];
        const __m512 vb2 = _mm512_set1_ps(bias2 ? bias2[(size_t)g->q * b2stride] : 0.0f);
        const int c0 = 4 * g->x, cols = W - c0 < 4 * g->n ? W - c0 : 4 * g->n;
        const __mmask16 m0 = dfs_first16(cols), m1 = dfs_first16(cols - 16 > 0 ? cols - 16 : 0);
        const __m512i lo_idx = _mm512_add_epi32(pick, _mm512_set1_epi32(g->j)), hi_idx = _mm512_add_epi32(lo_idx, _mm512_set1_epi32(4));
        float *img = o + (size_t)g->q * istride;
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const int row = 4 * g->y + r;
            if (row >= H) break;
            float *dst = img + (size_t)row * W + c0;
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                const __mmask16 mask = h ? m1 : m0;
                if (!mask) continue;
                const __m512i idx = h ? hi_idx : lo_idx;
                const __m512 v01 = _mm512_permutex2var_ps(y[4 * r], idx, y[4 * r + 1]);
                const __m512 v23 = _mm512_permutex2var_ps(y[4 * r + 2], idx, y[4 * r + 3]);
                __m512 val = ADD(ADD(_mm512_mask_blend_ps(0xCCCC, v01, v23), vb), vb2);
                if (accumulate) val = ADD(_mm512_maskz_loadu_ps(mask, dst + 16 * h), val);
                _mm512_mask_storeu_ps(dst + 16 * h, mask, val);
            }
        }
    }
}

#undef FMA
#undef ADD
#undef SUB

/* The 16 kernels' weight transforms as weight_tile4 in winograd.c computes them one at a time, in
 * double: eight kernels to a vector. */
INLINE void g6d(__m512d o[6], __m512d a, __m512d b, __m512d c) {
    o[0] = a;
    o[1] = _mm512_add_pd(_mm512_sub_pd(a, b), c);
    o[2] = _mm512_add_pd(_mm512_add_pd(a, b), c);
    o[3] = _mm512_add_pd(_mm512_add_pd(_mm512_mul_pd(_mm512_set1_pd(4.0), a), _mm512_mul_pd(_mm512_set1_pd(2.0), b)), c);
    o[4] = _mm512_add_pd(_mm512_sub_pd(a, _mm512_mul_pd(_mm512_set1_pd(2.0), b)), _mm512_mul_pd(_mm512_set1_pd(4.0), c));
    o[5] = c;
}

INLINE void weights4_half(__m256 out[36], const __m512d g[9]) {
    __m512d t[6][3], r[6];
#pragma GCC unroll 3
    for (int j = 0; j < 3; j++) {
        g6d(r, g[j], g[3 + j], g[6 + j]);
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) t[i][j] = r[i];
    }
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) {
        g6d(r, t[i][0], t[i][1], t[i][2]);
#pragma GCC unroll 6
        for (int k = 0; k < 6; k++) out[6 * i + k] = _mm512_cvtpd_ps(_mm512_mul_pd(r[k], _mm512_set1_pd(dfs_wg4_scale(i) * dfs_wg4_scale(k))));
    }
}

TARGET static void weights4(float *u, size_t n, const float *g, int count) {
    const __mmask16 live = dfs_first16(count);
    const __m512i at = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                          _mm512_set1_epi32(9));
    __m512d lo[9], hi[9];
    __m256 olo[36], ohi[36];
#pragma GCC unroll 9
    for (int r = 0; r < 9; r++) {
        const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live, _mm512_add_epi32(at, _mm512_set1_epi32(r)), g, 4);
        lo[r] = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        hi[r] = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    }
    weights4_half(olo, lo);
    weights4_half(ohi, hi);
#pragma GCC unroll 36
    for (int x = 0; x < 36; x++) {
        const __m512 both = _mm512_castpd_ps(
            _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(olo[x])), _mm256_castps_pd(ohi[x]), 1));
        _mm512_mask_storeu_ps(u + x * n, live, both);
    }
}

/* dw4 as dw_transform4 in winograd.c computes it one gradient at a time: eight to a vector. */
INLINE void dw4_half(__m256 out[9], const __m512d u[36]) {
    const __m512d two = _mm512_set1_pd(2.0), four = _mm512_set1_pd(4.0);
    __m512d t[3][6];
#pragma GCC unroll 6
    for (int k = 0; k < 6; k++) {
        __m512d v[6];
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) v[i] = _mm512_mul_pd(u[6 * i + k], _mm512_set1_pd(dfs_wg4_scale(i) * dfs_wg4_scale(k)));
        t[0][k] = _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(_mm512_add_pd(v[0], v[1]), v[2]), _mm512_mul_pd(four, v[3])), v[4]);
        t[1][k] = _mm512_sub_pd(_mm512_add_pd(_mm512_sub_pd(v[2], v[1]), _mm512_mul_pd(two, v[3])), _mm512_mul_pd(two, v[4]));
        t[2][k] = _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(_mm512_add_pd(v[1], v[2]), v[3]), _mm512_mul_pd(four, v[4])), v[5]);
    }
#pragma GCC unroll 3
    for (int a = 0; a < 3; a++) {
        const __m512d *r = t[a];
        out[3 * a + 0] = _mm512_cvtpd_ps(
            _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(_mm512_add_pd(r[0], r[1]), r[2]), _mm512_mul_pd(four, r[3])), r[4]));
        out[3 * a + 1] = _mm512_cvtpd_ps(
            _mm512_sub_pd(_mm512_add_pd(_mm512_sub_pd(r[2], r[1]), _mm512_mul_pd(two, r[3])), _mm512_mul_pd(two, r[4])));
        out[3 * a + 2] = _mm512_cvtpd_ps(
            _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(_mm512_add_pd(r[1], r[2]), r[3]), _mm512_mul_pd(four, r[4])), r[5]));
    }
}

TARGET static void dw4(float *dw, const float *u, size_t n, int count) {
    const __mmask16 live = dfs_first16(count);
    __m512d lo[36], hi[36];
    __m256 olo[9], ohi[9];
    _Alignas(64) float res[9][16];
#pragma GCC unroll 36
    for (int x = 0; x < 36; x++) {
        const __m512 v = _mm512_maskz_loadu_ps(live, u + x * n);
        lo[x] = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        hi[x] = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    }
    dw4_half(olo, lo);
    dw4_half(ohi, hi);
#pragma GCC unroll 9
    for (int r = 0; r < 9; r++)
        _mm512_store_ps(res[r], _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(olo[r])),
                                                                   _mm256_castps_pd(ohi[r]), 1)));
    for (int c = 0; c < count; c++)
        for (int r = 0; r < 9; r++) dw[9 * c + r] += res[r][c];
}

const dfs_wg_impl dfs_wg_avx512 = {"avx512", in_run, in4_run, out_run, out4_run, grad_run, grad4_run, weights4, dw4};
#endif
