/* e^x in 16 lanes, vmath.h's algorithm (the same bits as dfs_exp1), shared by the AVX-512 files
 * that need it inlined. */
#ifndef DFS_OPS_X86_EXP16_H
#define DFS_OPS_X86_EXP16_H

#include <immintrin.h>

#include "ops/vmath.h"

__attribute__((target("avx512f,fma"))) static inline __m512 dfs_exp16(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(DFS_EXP_LO), x); /* NaN in x passes through */
    x = _mm512_min_ps(_mm512_set1_ps(DFS_EXP_HI), x);
    const __m512 magic = _mm512_set1_ps(DFS_EXP_MAGIC);
    const __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(DFS_EXP_LOG2E), magic), n = _mm512_sub_ps(t, magic);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-DFS_EXP_LN2_HI), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(-DFS_EXP_LN2_LO), r);
    __m512 y = _mm512_fmadd_ps(_mm512_set1_ps(DFS_EXP_P0), r, _mm512_set1_ps(DFS_EXP_P1));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(DFS_EXP_P2));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(DFS_EXP_P3));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(DFS_EXP_P4));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(DFS_EXP_P5));
    y = _mm512_add_ps(_mm512_fmadd_ps(y, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    const __m512i bits = _mm512_slli_epi32(
        _mm512_add_epi32(_mm512_sub_epi32(_mm512_castps_si512(t), _mm512_castps_si512(magic)), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(bits));
}

#endif
