/* AVX-512 attention core for images of at most 64 positions (attn.h), one head at a time. Kᵀ is
 * copied into a buffer of 64 lanes a row (the lanes past HW hold whatever was there: their scores
 * are computed and never read). Blocks of six query rows keep their scores (up to four vectors a
 * row) in registers while they walk the head's values d, and turn them into probabilities there:
 * the maximum and exp_sum of the blocked version done lane by lane as vec.h's dfs_max and
 * vmath.h's exp_sum do them. Then blocks of six rows of P·V keep up to four vectors of the output
 * a row while they walk the keys. Every sum runs in the same order as the micro-kernel's (from
 * zero, index ascending, one FMA a term, then added to the zeroed C), so the results are the
 * blocked version's bits. Only called when cpuid reports AVX-512F. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <math.h>

#include "ops/attn.h"
#include "ops/gemm.h"
#include "ops/vmath.h"
#include "ops/x86/exp16.h"
#include "ops/x86/lanes.h"

#define TARGET __attribute__((target("avx512f,fma")))
#define INLINE TARGET static inline __attribute__((always_inline))

#define ROWS 6                 /* query rows per register block */
#define LD DFS_ATTN_SMALL_HW   /* floats per row of the key and score buffers */

/* One row's probabilities from its scores s (nv vectors, HW of them used) into P (stored whole),
 * 1/sum into inv and, when stats is given, the row's maximum and sum: the blocked version's first
 * and only key block, with dfs_max and exp_sum done lane by lane in their orders. */
INLINE void probabilities(float *P, __m512 *s, int HW, int nv, float scale, float *inv, float *stats) {
    const int full = HW / 16, tail = HW % 16;
    __m512 mv = _mm512_set1_ps(_mm512_cvtss_f32(s[0]));
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++)
        if (v < full) mv = _mm512_max_ps(s[v], mv); /* x > m ? x : m, lane by lane */
    float lanes[16], t[16];
    _mm512_storeu_ps(lanes, mv);
    if (tail) {
        _mm512_storeu_ps(t, s[full]);
        for (int i = 0; i < tail; i++) lanes[0] = t[i] > lanes[0] ? t[i] : lanes[0];
    }
    float mx = lanes[0];
    for (int k = 1; k < 16; k++) mx = lanes[k] > mx ? lanes[k] : mx;
    float m = -INFINITY, l = 0.0f;
    const float mnew = m > mx * scale ? m : mx * scale, corr = expf(m - mnew);
    const __m512 vs = _mm512_set1_ps(scale), vm = _mm512_set1_ps(-mnew);
    __m512 sum = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) {
        const __m512 e = dfs_exp16(_mm512_fmadd_ps(s[v], vs, vm));
        _mm512_store_ps(P + 16 * v, e);
        sum = _mm512_mask_add_ps(sum, dfs_first16(HW - 16 * v), sum, e); /* the tail's lanes[i % 16] += x[i] */
    }
    _mm512_storeu_ps(lanes, sum);
    l = l * corr + dfs_lanes_sum(lanes);
    *inv = 1.0f / l;
    if (stats) stats[0] = mnew, stats[1] = l;
}

/* acc[r][v] = Σ_k a_r[k]·b[k·ldb + 16v] (from zero, k ascending, one FMA a term) for the ROWS rows
 * a_r = a + min(r, nr − 1)·lda (rows past nr repeat the last, computed and dropped) and nv vectors. */
INLINE void rows_product(__m512 acc[ROWS][4], const float *a, size_t lda, int nr, const float *b, size_t ldb, int n_k,
                         int nv) {
    const float *ar[ROWS];
#pragma GCC unroll 6
    for (int r = 0; r < ROWS; r++) {
        ar[r] = a + (size_t)(r < nr ? r : nr - 1) * lda;
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) acc[r][v] = _mm512_setzero_ps();
    }
    for (int k = 0; k < n_k; k++) {
        __m512 bv[4];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) bv[v] = _mm512_loadu_ps(b + (size_t)k * ldb + 16 * v);
#pragma GCC unroll 6
        for (int r = 0; r < ROWS; r++) {
            const __m512 x = _mm512_set1_ps(ar[r][k]);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++) acc[r][v] = _mm512_fmadd_ps(x, bv[v], acc[r][v]);
        }
    }
}

/* Rows r < nr of a block: their scores 0 + Σ_d q_r[d]·kt[d·LD + j] for 16·nv keys, then
 * probabilities(). */
INLINE void score_block(float *S, const float *q, int inner, const float *kt, int dh, int nr, int nv, int HW, float scale,
                        float *inv, float *stats) {
    __m512 acc[ROWS][4];
    rows_product(acc, q, (size_t)inner, nr, kt, LD, dh, nv);
#pragma GCC unroll 6
    for (int r = 0; r < ROWS; r++) {
        if (r >= nr) break;
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) acc[r][v] = _mm512_add_ps(_mm512_setzero_ps(), acc[r][v]);
        probabilities(S + r * LD, acc[r], HW, nv, scale, inv + r, stats ? stats + 2 * r : NULL);
    }
}

/* o_r[16u ..] = (0 + Σ_j P_r[j]·v[j·inner + 16u ..])·inv[r] for rows r < nr of the block and nu
 * vectors of output columns. */
INLINE void pv_block(float *o, int inner, const float *P, const float *v, int HW, const float *inv, int nr, int nu) {
    __m512 acc[ROWS][4];
    rows_product(acc, P, LD, nr, v, (size_t)inner, HW, nu);
#pragma GCC unroll 6
    for (int r = 0; r < ROWS; r++) {
        if (r >= nr) break;
#pragma GCC unroll 4
        for (int u = 0; u < nu; u++)
            _mm512_storeu_ps(o + (size_t)r * inner + 16 * u,
                             _mm512_mul_ps(_mm512_add_ps(_mm512_setzero_ps(), acc[r][u]), _mm512_set1_ps(inv[r])));
    }
}

/* The block functions with their vector counts as constants, so the accumulators stay in
 * registers. */
TARGET static void scores(float *S, const float *q, int inner, const float *kt, int dh, int nr, int nv, int HW, float scale,
                          float *inv, float *stats) {
    switch (nv) {
    case 1: score_block(S, q, inner, kt, dh, nr, 1, HW, scale, inv, stats); break;
    case 2: score_block(S, q, inner, kt, dh, nr, 2, HW, scale, inv, stats); break;
    case 3: score_block(S, q, inner, kt, dh, nr, 3, HW, scale, inv, stats); break;
    default: score_block(S, q, inner, kt, dh, nr, 4, HW, scale, inv, stats); break;
    }
}

TARGET static void values(float *o, int inner, const float *P, const float *v, int HW, const float *inv, int nr, int nu) {
    switch (nu) {
    case 1: pv_block(o, inner, P, v, HW, inv, nr, 1); break;
    case 2: pv_block(o, inner, P, v, HW, inv, nr, 2); break;
    case 3: pv_block(o, inner, P, v, HW, inv, nr, 3); break;
    default: pv_block(o, inner, P, v, HW, inv, nr, 4); break;
    }
}

TARGET static void head(float *O, float *stats, const float *Q, const float *K, size_t k_rs, size_t k_cs, const float *V,
                        int HW, int inner, int dh, float scale) {
    static _Thread_local _Alignas(64) float kt[DFS_ATTN_SMALL_DH * LD], S[LD * LD];
    float inv[LD];
    const int nv = (HW + 15) / 16;
    if (k_rs == 1) /* K as rows: transposed 16 × 16 at a time */
        dfs_gemm_transpose_blocks(dfs_gemm_best(), kt, LD, K, k_cs, dh, HW);
    else
        for (int d = 0; d < dh; d++)
            for (int j = 0; j < HW; j++) kt[d * LD + j] = K[(size_t)d * k_rs + (size_t)j * k_cs];
    for (int i0 = 0; i0 < HW; i0 += ROWS)
        scores(S + i0 * LD, Q + (size_t)i0 * inner, inner, kt, dh, HW - i0 < ROWS ? HW - i0 : ROWS, nv, HW, scale, inv + i0,
               stats ? stats + 2 * i0 : NULL);
    for (int i0 = 0; i0 < HW; i0 += ROWS)
        for (int c0 = 0; c0 < dh; c0 += 64)
            values(O + (size_t)i0 * inner + c0, inner, S + i0 * LD, V + c0, HW, inv + i0, HW - i0 < ROWS ? HW - i0 : ROWS,
                   dh - c0 < 64 ? (dh - c0) / 16 : 4);
}

const dfs_attn_impl dfs_attn_avx512 = {"avx512", 1, head};
#endif
