/* AVX2 versions of F(4×4, 3×3)'s tile transforms (winograd.h): the tiles of a run go eight at a
 * time, one to a lane. Each tile's rows are read with masked loads (nothing outside the plane is
 * touched) and turned into one vector per column by an 8×8 or in-lane 4×4 transpose; the outputs
 * go back the same way. The same additions and fused multiply-adds in the same order as the
 * portable versions in winograd.c, so the same bits. Only called when cpuid reports AVX2 and FMA. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "ops/winograd.h"
#include "ops/x86/lanes.h"

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE TARGET static inline __attribute__((always_inline))

/* The first n lanes (n <= 4) of a 128-bit mask. */
INLINE __m128i first4(int n) { return _mm_cmpgt_epi32(_mm_set1_epi32(n), _mm_setr_epi32(0, 1, 2, 3)); }

/* Lanes 0 .. n − 1 of v to p (lanes.h: no masked stores). */
INLINE void store_lanes(float *p, __m256 v, int n) {
    if (n == 8) _mm256_storeu_ps(p, v);
    else dfs_store_first8(p, v, n);
}

static int min_int(int a, int b) { return a < b ? a : b; }

/* Where a run's tiles lie, eight to a half (h = 0, 1), tile j0 + l of a half in lane l (n[h]
 * lanes live):
 * - in_off[h][i][l], in_mask[h][i][l]: row i of lane l's 6×6 input tile is a masked load at plane
 *   + in_off (relative to the run's first plane) under in_mask, the lanes of its columns inside
 *   the plane; rows outside the plane, and lanes past n, have an empty mask and offset 0. A tile
 *   in the first column starts one left of its block, in the padding: its rows are loaded from
 *   one before the row's start with that lane masked off (a masked-off lane is never read).
 * - out_off[h][r][l]: row r of lane l's 4×4 block, or −1 outside the plane; cols[h][l] of its
 *   columns inside the plane; q[h][l] its image, counted from the run's first.
 * Every channel of a strip has the same runs, so each thread keeps the last run's plan and
 * reuses it while the geometry is the same: the channels then only load, transform and store. */
typedef struct run_plan {
    int H, W, ty, tx, len;
    size_t istride;
    int n[2];
    ptrdiff_t in_off[2][6][8], out_off[2][4][8];
    __m256i in_mask[2][6][8];
    int cols[2][8], q[2][8];
} run_plan;

static _Thread_local run_plan last_plan = {.len = -1};

TARGET static const run_plan *plan_of(size_t istride, int H, int W, int ty, int tx, int len) {
    run_plan *p = &last_plan;
    if (p->len == len && p->H == H && p->W == W && p->ty == ty && p->tx == tx && p->istride == istride) return p;
    *p = (run_plan){.H = H, .W = W, .ty = ty, .tx = tx, .len = len, .istride = istride};
    const int TW = (W + 3) / 4, T = (H + 3) / 4 * TW, g = ty * TW + tx;
    int q = g / T, y = g % T / TW * 4, x = g % TW * 4; /* then tile by tile, no division */
    for (int h = 0; h < 2; h++) {
        p->n[h] = len - 8 * h < 0 ? 0 : min_int(len - 8 * h, 8);
        for (int l = 0; l < 8; l++) {
            const int live = l < p->n[h], x0 = x - 1;
            const ptrdiff_t img = (ptrdiff_t)q * (ptrdiff_t)istride;
            for (int i = 0; i < 6; i++) {
                const int row = y - 1 + i, in = live && row >= 0 && row < H;
                p->in_off[h][i][l] = in ? img + (ptrdiff_t)row * W + x0 : 0;
                p->in_mask[h][i][l] = in ? _mm256_andnot_si256(dfs_first8(-x0), dfs_first8(min_int(6, W - x0))) : dfs_first8(0);
            }
            for (int r = 0; r < 4; r++) p->out_off[h][r][l] = live && y + r < H ? img + (ptrdiff_t)(y + r) * W + x : -1;
            p->cols[h][l] = live ? min_int(W - x, 4) : 0;
            p->q[h][l] = live ? q : 0;
            if (live && (x += 4) >= W) {
                x = 0;
                if ((y += 4) >= H) y = 0, q++;
            }
        }
    }
    return p;
}

/* In-lane 4×4 transposes: r[j] holds tile j's four values in its low half and tile j + 4's in
 * its high half; c[k] lane l = tile l's value k. Its own inverse. */
INLINE void transpose4x2(__m256 c[4], const __m256 r[4]) {
    const __m256 u0 = _mm256_unpacklo_ps(r[0], r[1]), u1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 u2 = _mm256_unpacklo_ps(r[2], r[3]), u3 = _mm256_unpackhi_ps(r[2], r[3]);
    c[0] = _mm256_shuffle_ps(u0, u2, 0x44);
    c[1] = _mm256_shuffle_ps(u0, u2, 0xEE);
    c[2] = _mm256_shuffle_ps(u1, u3, 0x44);
    c[3] = _mm256_shuffle_ps(u1, u3, 0xEE);
}

INLINE __m256 fma_k(float k, __m256 a, __m256 b) { return _mm256_fmadd_ps(_mm256_set1_ps(k), a, b); }

/* bt6, at6 and a6 of winograd.c on vectors: o[k·os] from d[k·ds]. */
INLINE void bt6v(__m256 *o, int os, const __m256 *d, int ds) {
    const __m256 d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds], d5 = d[5 * ds];
    const __m256 e = _mm256_sub_ps(d4, d2);
    o[0] = _mm256_add_ps(fma_k(1.5f, d3, fma_k(-2.0f, d2, fma_k(-1.5f, d1, d0))), d4);
    o[os] = fma_k(0.5f, d3, fma_k(-2.5f, d2, _mm256_add_ps(d1, d4)));
    o[2 * os] = fma_k(2.5f, d3, fma_k(0.5f, d2, _mm256_sub_ps(d4, d1)));
    o[3 * os] = fma_k(2.0f, _mm256_sub_ps(d3, d1), e);
    o[4 * os] = fma_k(0.5f, _mm256_sub_ps(d1, d3), e);
    o[5 * os] = _mm256_add_ps(fma_k(1.5f, d4, fma_k(-2.0f, d3, fma_k(-1.5f, d2, d1))), d5);
}

INLINE void at6v(__m256 *o, int os, const __m256 *a, int as) {
    const __m256 a0 = a[0], a1 = a[as], a2 = a[2 * as], a3 = a[3 * as], a4 = a[4 * as], a5 = a[5 * as];
    const __m256 p = _mm256_add_ps(a1, a2), m = _mm256_sub_ps(a2, a1);
    o[0] = _mm256_add_ps(_mm256_add_ps(a0, p), _mm256_add_ps(a3, a4));
    o[os] = fma_k(-2.0f, a4, fma_k(0.5f, a3, m));
    o[2 * os] = fma_k(4.0f, a4, fma_k(0.25f, a3, p));
    o[3 * os] = _mm256_add_ps(fma_k(-8.0f, a4, fma_k(0.125f, a3, m)), a5);
}

INLINE void a6v(__m256 *z, int zs, const __m256 *y, int ys) {
    const __m256 y0 = y[0], y1 = y[ys], y2 = y[2 * ys], y3 = y[3 * ys];
    const __m256 e = _mm256_add_ps(y0, y2), o = _mm256_add_ps(y1, y3);
    z[0] = y0;
    z[zs] = _mm256_sub_ps(e, o);
    z[2 * zs] = _mm256_add_ps(e, o);
    z[3 * zs] = fma_k(0.125f, y3, fma_k(0.25f, y2, fma_k(0.5f, y1, y0)));
    z[4 * zs] = fma_k(-8.0f, y3, fma_k(4.0f, y2, fma_k(-2.0f, y1, y0)));
    z[5 * zs] = y3;
}

/* c[k] lane l = value k of the (up to) four values at dy + off[l] inside its plane (cols[l] of
 * them; an offset below 0 is a row outside the plane): one output-gradient row of eight blocks. */
INLINE void block_row(__m256 c[4], const float *dy, const ptrdiff_t off[8], const int cols[8]) {
    __m128 half[8];
#pragma GCC unroll 8
    for (int l = 0; l < 8; l++) half[l] = off[l] < 0 ? _mm_setzero_ps() : _mm_maskload_ps(dy + off[l], first4(cols[l]));
    __m256 pairs[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) pairs[j] = _mm256_set_m128(half[j + 4], half[j]);
    transpose4x2(c, pairs);
}

/* F(2×2, 3×3): a run stays in one image, its tiles in raster order over at most
 * dfs_wg_run_rows(W) tile rows (winograd.h). Lane l of half h: row i of its 4×4 input tile is a
 * 128-bit masked load at plane + off[h][i][l] under mask[h][i][l] (empty outside the plane and
 * past the run; a tile in the first column starts one before its row, in the padding, that lane
 * masked off); out_off[h][r][l] is row r of its 2×2 output block (−1 outside the plane), cols[h][l]
 * that block's columns inside it. Kept per thread like run_plan. */
typedef struct run_plan2 {
    int H, W, ty, tx, len;
    int n[2], cols[2][8];
    ptrdiff_t off[2][4][8], out_off[2][2][8];
    __m128i mask[2][4][8];
} run_plan2;

static _Thread_local run_plan2 last_plan2 = {.len = -1};

TARGET static const run_plan2 *plan2_of(int H, int W, int ty, int tx, int len) {
    run_plan2 *p = &last_plan2;
    if (p->len == len && p->H == H && p->W == W && p->ty == ty && p->tx == tx) return p;
    *p = (run_plan2){.H = H, .W = W, .ty = ty, .tx = tx, .len = len};
    const int TW = (W + 1) / 2;
    int y = ty * 2, x = tx * 2;
    for (int h = 0; h < 2; h++) {
        p->n[h] = len - 8 * h < 0 ? 0 : min_int(len - 8 * h, 8);
        for (int l = 0; l < 8; l++) {
            const int live = l < p->n[h], x0 = x - 1;
            for (int i = 0; i < 4; i++) {
                const int row = y - 1 + i, in = live && row >= 0 && row < H;
                p->off[h][i][l] = in ? (ptrdiff_t)row * W + x0 : 0;
                p->mask[h][i][l] = in ? _mm_andnot_si128(first4(-x0), first4(min_int(4, W - x0))) : first4(0);
            }
            for (int r = 0; r < 2; r++) p->out_off[h][r][l] = live && y + r < H ? (ptrdiff_t)(y + r) * W + x : -1;
            p->cols[h][l] = live ? min_int(W - x, 2) : 0;
            if (live && (x += 2) >= 2 * TW) x = 0, y += 2;
        }
    }
    return p;
}

TARGET void dfs_wg_in_avx2(float *v, size_t xs, const float *plane, size_t istride, int H, int W, int ty, int tx,
                           int len) {
    const run_plan2 *p = plan2_of(H, W, ty, tx, len);
    for (int h = 0; h < 2 && p->n[h]; h++) {
        __m256 d[4][4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            __m128 r[8];
#pragma GCC unroll 8
            for (int l = 0; l < 8; l++) r[l] = _mm_maskload_ps(plane + p->off[h][i][l], p->mask[h][i][l]);
            __m256 pairs[4];
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) pairs[j] = _mm256_set_m128(r[j + 4], r[j]);
            transpose4x2(d[i], pairs);
        }
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) { /* Bᵀ d, column k */
            const __m256 d0 = d[0][k], d1 = d[1][k], d2 = d[2][k], d3 = d[3][k];
            d[0][k] = _mm256_sub_ps(d0, d2);
            d[1][k] = _mm256_add_ps(d1, d2);
            d[2][k] = _mm256_sub_ps(d2, d1);
            d[3][k] = _mm256_sub_ps(d1, d3);
        }
        const int n = p->n[h];
        float *o = v + 8 * h;
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) { /* (Bᵀ d) B, row i */
            store_lanes(o + (size_t)(4 * i + 0) * xs, _mm256_sub_ps(d[i][0], d[i][2]), n);
            store_lanes(o + (size_t)(4 * i + 1) * xs, _mm256_add_ps(d[i][1], d[i][2]), n);
            store_lanes(o + (size_t)(4 * i + 2) * xs, _mm256_sub_ps(d[i][2], d[i][1]), n);
            store_lanes(o + (size_t)(4 * i + 3) * xs, _mm256_sub_ps(d[i][1], d[i][3]), n);
        }
    }
}

TARGET void dfs_wg_out_avx2(float *o, size_t istride, int H, int W, const float *m, size_t xs, int ty, int tx, int len,
                            float bias, const float *bias2, size_t b2stride, int accumulate) {
    const run_plan2 *p = plan2_of(H, W, ty, tx, len);
    const __m256 bv = _mm256_set1_ps(bias), b2v = _mm256_set1_ps(bias2 ? bias2[0] : 0.0f); /* a run in one image */
    for (int h = 0; h < 2 && p->n[h]; h++) {
        const int n = p->n[h];
        const __m256i live = dfs_first8(n);
        __m256 a[16], s[2][4];
#pragma GCC unroll 16
        for (int x = 0; x < 16; x++) a[x] = _mm256_maskload_ps(m + (size_t)x * xs + 8 * h, live);
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) { /* Aᵀ M */
            s[0][k] = _mm256_add_ps(_mm256_add_ps(a[k], a[4 + k]), a[8 + k]);
            s[1][k] = _mm256_sub_ps(_mm256_sub_ps(a[4 + k], a[8 + k]), a[12 + k]);
        }
        for (int r = 0; r < 2; r++) { /* (Aᵀ M) A, plus the biases */
            const __m256 y0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s[r][0], s[r][1]), s[r][2]), bv), b2v);
            const __m256 y1 = _mm256_add_ps(_mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s[r][1], s[r][2]), s[r][3]), bv), b2v);
            /* tile l's two columns: lanes 2 (l mod 2), 2 (l mod 2) + 1 of lo (l mod 4 < 2) or hi, low or high half */
            const __m256 lo = _mm256_unpacklo_ps(y0, y1), hi = _mm256_unpackhi_ps(y0, y1);
#pragma GCC unroll 8
            for (int l = 0; l < n; l++) {
                if (p->out_off[h][r][l] < 0) continue;
                const __m256 pr = (l >> 1) & 1 ? hi : lo;
                __m128 val = l >> 2 ? _mm256_extractf128_ps(pr, 1) : _mm256_castps256_ps128(pr);
                if (l & 1) val = _mm_movehl_ps(val, val);
                float *row = o + p->out_off[h][r][l];
                if (p->cols[h][l] == 2) {
                    if (accumulate) val = _mm_add_ps(_mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)row), val);
                    _mm_storel_pi((__m64 *)row, val);
                } else {
                    if (accumulate) val = _mm_add_ss(_mm_load_ss(row), val);
                    _mm_store_ss(row, val);
                }
            }
        }
    }
}

TARGET void dfs_wg_grad_avx2(float *z, size_t xs, const float *dy, size_t istride, int H, int W, int ty, int tx,
                             int len) {
    const run_plan2 *p = plan2_of(H, W, ty, tx, len);
    for (int h = 0; h < 2 && p->n[h]; h++) {
        __m256 y[2][2], t[4][2];
#pragma GCC unroll 2
        for (int r = 0; r < 2; r++) { /* the blocks' row r (two values a block) */
            __m256 c[4];
            block_row(c, dy, p->out_off[h][r], p->cols[h]);
            y[r][0] = c[0], y[r][1] = c[1];
        }
#pragma GCC unroll 2
        for (int k = 0; k < 2; k++) { /* A' dY */
            t[0][k] = y[0][k];
            t[1][k] = _mm256_add_ps(y[0][k], y[1][k]);
            t[2][k] = _mm256_sub_ps(y[0][k], y[1][k]);
            t[3][k] = y[1][k];
        }
        const int n = p->n[h];
        float *o = z + 8 * h;
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) { /* (A' dY) A'ᵀ */
            store_lanes(o + (size_t)(4 * i + 0) * xs, t[i][0], n);
            store_lanes(o + (size_t)(4 * i + 1) * xs, _mm256_add_ps(t[i][0], t[i][1]), n);
            store_lanes(o + (size_t)(4 * i + 2) * xs, _mm256_sub_ps(t[i][0], t[i][1]), n);
            store_lanes(o + (size_t)(4 * i + 3) * xs, t[i][1], n);
        }
    }
}

/* The input transform. A tile's six columns start one left of its block: for a tile in the first
 * column that one is padding, masked off in its row loads (run_plan). */
TARGET void dfs_wg_in4_avx2(float *v, size_t xs, const float *plane, size_t istride, int H, int W, int ty, int tx,
                            int len) {
    const run_plan *p = plan_of(istride, H, W, ty, tx, len);
    for (int h = 0; h < 2 && p->n[h]; h++) {
        __m256 d[36], e[36];
        for (int i = 0; i < 6; i++) {
            __m256 r[8];
#pragma GCC unroll 8
            for (int l = 0; l < 8; l++) r[l] = _mm256_maskload_ps(plane + p->in_off[h][i][l], p->in_mask[h][i][l]);
            dfs_transpose8(r); /* r[k] = column k of the eight tiles' row i */
#pragma GCC unroll 6
            for (int k = 0; k < 6; k++) d[6 * i + k] = r[k];
        }
#pragma GCC unroll 6
        for (int k = 0; k < 6; k++) bt6v(e + k, 6, d + k, 6); /* Bᵀ d */
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) { /* (Bᵀ d) B */
            __m256 o[6];
            bt6v(o, 1, e + 6 * i, 1);
#pragma GCC unroll 6
            for (int k = 0; k < 6; k++) store_lanes(v + (size_t)(6 * i + k) * xs + 8 * h, o[k], p->n[h]);
        }
    }
}

TARGET void dfs_wg_out4_avx2(float *o, size_t istride, int H, int W, const float *m, size_t xs, int ty, int tx, int len,
                             float bias, const float *bias2, size_t b2stride, int accumulate) {
    const run_plan *p = plan_of(istride, H, W, ty, tx, len);
    for (int h = 0; h < 2 && p->n[h]; h++) {
        const int n = p->n[h];
        const __m256i live = dfs_first8(n);
        float b2[8] = {0};
        for (int l = 0; l < n && bias2; l++) b2[l] = bias2[(size_t)p->q[h][l] * b2stride];
        __m256 s[24], y[16];
#pragma GCC unroll 6
        for (int k = 0; k < 6; k++) { /* Aᵀ M */
            __m256 a[6];
#pragma GCC unroll 6
            for (int i = 0; i < 6; i++) a[i] = _mm256_maskload_ps(m + (size_t)(6 * i + k) * xs + 8 * h, live);
            at6v(s + k, 6, a, 1);
        }
        const __m256 bv = _mm256_set1_ps(bias), b2v = _mm256_loadu_ps(b2);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) { /* (Aᵀ M) A, plus the biases */
            at6v(y + 4 * r, 1, s + 6 * r, 1);
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) y[4 * r + k] = _mm256_add_ps(_mm256_add_ps(y[4 * r + k], bv), b2v);
        }
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            __m256 rows[4];
            transpose4x2(rows, y + 4 * r);
#pragma GCC unroll 8
            for (int l = 0; l < n; l++) {
                if (p->out_off[h][r][l] < 0) continue;
                float *out = o + p->out_off[h][r][l];
                const int cols = p->cols[h][l];
                __m128 val = l < 4 ? _mm256_castps256_ps128(rows[l]) : _mm256_extractf128_ps(rows[l - 4], 1);
                if (cols == 4) {
                    if (accumulate) val = _mm_add_ps(_mm_loadu_ps(out), val);
                    _mm_storeu_ps(out, val);
                } else {
                    if (accumulate) val = _mm_add_ps(_mm_maskload_ps(out, first4(cols)), val);
                    dfs_store_first4(out, val, cols);
                }
            }
        }
    }
}

TARGET void dfs_wg_grad4_avx2(float *z, size_t xs, const float *dy, size_t istride, int H, int W, int ty, int tx,
                              int len) {
    const run_plan *p = plan_of(istride, H, W, ty, tx, len);
    for (int h = 0; h < 2 && p->n[h]; h++) {
        __m256 y[16], u[24];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) block_row(y + 4 * r, dy, p->out_off[h][r], p->cols[h]); /* the blocks' row r */
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) a6v(u + k, 4, y + k, 4); /* A dY */
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) { /* (A dY) Aᵀ */
            __m256 out[6];
            a6v(out, 1, u + 4 * i, 1);
#pragma GCC unroll 6
            for (int k = 0; k < 6; k++) store_lanes(z + (size_t)(6 * i + k) * xs + 8 * h, out[k], p->n[h]);
        }
    }
}
#endif
