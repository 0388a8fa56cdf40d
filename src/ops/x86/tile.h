/* The store shared by the AVX-512 micro-kernels: an nm × (16·nv) tile of accumulators (nm <= 8)
 * into C, rows past mr and columns past nr left alone, added to C when add is set. Inlined into
 * each kernel, so nm and nv are constants there and acc stays in registers. */
#ifndef DFS_OPS_X86_TILE_H
#define DFS_OPS_X86_TILE_H

#include <immintrin.h>
#include <stddef.h>

#include "ops/x86/lanes.h"

__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) void
dfs_tile_store(int nm, int nv, __m512 acc[8][3], float *c, size_t ldc, int mr, int nr, int add) {
#pragma GCC unroll 3
    for (int v = 0; v < nv; v++) {
        const int cols = nr - 16 * v;
        if (cols <= 0) break;
        const __mmask16 m = dfs_first16(cols);
#pragma GCC unroll 8
        for (int i = 0; i < nm; i++) {
            if (i >= mr) break;
            float *cp = c + (size_t)i * ldc + 16 * v;
            _mm512_mask_storeu_ps(cp, m, add ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, cp), acc[i][v]) : acc[i][v]);
        }
    }
}

#endif
