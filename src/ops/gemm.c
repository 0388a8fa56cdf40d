/* Choosing a GEMM micro-kernel, the portable one, and the general strided GEMM driver. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "ops/gemm.h"
#include "ops/ops.h"

#define SCALAR_NR 16

static void kernel_scalar(int kc, const float *a, size_t lda, const float *b, size_t ldb, float *c, size_t ldc, int mr,
                          int nr, int add) {
    float acc[DFS_GEMM_MR][SCALAR_NR] = {{0}};
    for (int i = 0; i < mr; i++) {
        const float *ar = a + (size_t)i * lda;
        for (int k = 0; k < kc; k++) {
            const float av = ar[k];
            const float *br = b + (size_t)k * ldb;
            for (int j = 0; j < SCALAR_NR; j++) acc[i][j] += av * br[j];
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) c[(size_t)i * ldc + j] = add ? c[(size_t)i * ldc + j] + acc[i][j] : acc[i][j];
}

void dfs_gemm_transpose_scalar(float *dst, size_t ldd, const float *src, size_t lds, int rows, int cols) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) dst[(size_t)i * ldd + j] = src[(size_t)j * lds + i];
}

void dfs_gemm_phase_plane_scalar(float *dst, int Hp, int Wp, const float *src, int H, int W, int oy, int ox, int s) {
    for (int Y = 0; Y < Hp; Y++) {
        const int y = s * Y + oy;
        for (int X = 0; X < Wp; X++) {
            const int x = s * X + ox;
            dst[(size_t)Y * Wp + X] = y >= 0 && y < H && x >= 0 && x < W ? src[(size_t)y * W + x] : 0.0f;
        }
    }
}

const dfs_gemm_impl dfs_gemm_scalar = {"scalar", SCALAR_NR, kernel_scalar, dfs_gemm_transpose_scalar,
                                       dfs_gemm_phase_plane_scalar};

int dfs_gemm_available(const dfs_gemm_impl **out, int max) {
    int n = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (n < max && __builtin_cpu_supports("avx512f")) out[n++] = &dfs_gemm_avx512;
    if (n < max && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) out[n++] = &dfs_gemm_avx2;
#endif
    if (n < max) out[n++] = &dfs_gemm_scalar;
    return n;
}

const dfs_gemm_impl *dfs_gemm_best(void) {
    const dfs_gemm_impl *impls[4];
    const int n = dfs_gemm_available(impls, 4);
    for (int i = 0; i < n - 1; i++)
        if (dfs_isa_permits(impls[i]->name)) return impls[i];
    return impls[n - 1];
}

uint16_t dfs_bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);   /* zero and denormals */
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN, made quiet */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static float bf16_value(uint32_t h) {
    const uint32_t u = (h & 0xffffu) << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* acc + x·y with x·y exact (two bfloat16 values), rounded, a denormal result flushed to zero */
static float bf16_step(float acc, float x, float y) {
    const float r = fmaf(x, y, acc);
    return fabsf(r) < FLT_MIN ? copysignf(0.0f, r) : r;
}

static void bf16_kernel_scalar(int kc2, const uint32_t *a, size_t lda, const uint32_t *b, size_t ldb, float *c,
                               size_t ldc, int mr, int nr, int add) {
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float acc = 0.0f;
            for (int k = 0; k < kc2; k++) {
                const uint32_t x = a[(size_t)i * lda + k], y = b[(size_t)k * ldb + j];
                acc = bf16_step(acc, bf16_value(x >> 16), bf16_value(y >> 16));
                acc = bf16_step(acc, bf16_value(x), bf16_value(y));
            }
            float *cp = c + (size_t)i * ldc + j;
            *cp = add ? *cp + acc : acc;
        }
}

static void bf16_pack_scalar(uint32_t *dst, const float *lo, const float *hi, int n) {
    for (int j = 0; j < n; j++) dst[j] = dfs_bf16_round(lo[j]) | (uint32_t)(hi ? dfs_bf16_round(hi[j]) : 0) << 16;
}

const dfs_gemm_bf16_impl dfs_gemm_bf16_scalar = {"scalar", bf16_kernel_scalar, bf16_pack_scalar};

int dfs_gemm_bf16_available(const dfs_gemm_bf16_impl **out, int max) {
    int n = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (n < max && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw"))
        out[n++] = &dfs_gemm_bf16_avx512;
#endif
    if (n < max) out[n++] = &dfs_gemm_bf16_scalar;
    return n;
}

const dfs_gemm_bf16_impl *dfs_gemm_bf16_best(void) {
    const dfs_gemm_bf16_impl *impls[2];
    const int n = dfs_gemm_bf16_available(impls, 2);
    return n > 1 && dfs_isa_permits("avx512") ? impls[0] : impls[n - 1];
}

#define CHUNK_M 64 /* rows of C per tile: a packed B strip is reused by CHUNK_M / MR kernel calls */
#define MAX_NR 64

/* Rows [0, rows) and columns [0, cols) of a matrix stored transposed (element (i, j) at
 * src[j·lds + i]) into dst (leading dimension ldd), 16×16 blocks at a time. */
void dfs_gemm_transpose_blocks(const dfs_gemm_impl *g, float *dst, size_t ldd, const float *src, size_t lds, int rows,
                               int cols) {
    for (int i0 = 0; i0 < rows; i0 += 16)
        for (int j0 = 0; j0 < cols; j0 += 16)
            g->transpose(dst + (size_t)i0 * ldd + j0, ldd, src + (size_t)j0 * lds + i0, lds, rows - i0 < 16 ? rows - i0 : 16,
                         cols - j0 < 16 ? cols - j0 : 16);
}

/* B rows [k0, k0+kc), columns [j0, j0+cols) as one strip [k][NR], zero-padded. */
static void pack_b(const dfs_gemm_impl *g, float *dst, int NR, const float *b, size_t b_rs, size_t b_cs, int k0, int kc,
                   int j0, int cols) {
    if (b_rs == 1) { /* B stored transposed */
        dfs_gemm_transpose_blocks(g, dst, (size_t)NR, b + (size_t)j0 * b_cs + k0, b_cs, kc, cols);
        for (int k = 0; k < kc; k++)
            for (int j = cols; j < NR; j++) dst[(size_t)k * NR + j] = 0.0f;
        return;
    }
    if (b_cs == 1) { /* rows of at most NR floats: a loop the compiler vectorises beats a memcpy call each */
        for (int k = 0; k < kc; k++) {
            float *d = dst + (size_t)k * NR;
            const float *src = b + (size_t)(k0 + k) * b_rs + j0;
#pragma omp simd
            for (int j = 0; j < cols; j++) d[j] = src[j];
            for (int j = cols; j < NR; j++) d[j] = 0.0f;
        }
        return;
    }
    for (int j = 0; j < cols; j++) {
        const float *src = b + (size_t)(j0 + j) * b_cs + (size_t)k0 * b_rs;
        for (int k = 0; k < kc; k++) dst[(size_t)k * NR + j] = src[(size_t)k * b_rs];
    }
    for (int k = 0; k < kc; k++)
        for (int j = cols; j < NR; j++) dst[(size_t)k * NR + j] = 0.0f;
}

/* Tile t of C: rows [m0, m0+chunk) of strips [s0, s0+spt) (spt strips a tile, the last tile's
 * fewer). A chunk of more than CHUNK_M rows needs A read in place (a_cs = 1); a packed A block
 * serves every strip of the tile. */
static void gemm_tile(const dfs_gemm_impl *g, long t, int n_groups, int spt, int chunk, int M, int N, int K,
                      const float *a, size_t a_rs, size_t a_cs, const float *b, size_t b_rs, size_t b_cs, float *c,
                      size_t ldc) {
    static _Thread_local _Alignas(64) float bp[DFS_GEMM_KC * MAX_NR], ap[CHUNK_M * DFS_GEMM_KC];
    const int NR = g->nr, m0 = (int)(t / n_groups) * chunk, j_begin = (int)(t % n_groups) * spt * NR;
    const int rows = M - m0 < chunk ? M - m0 : chunk, j_end = N - j_begin < spt * NR ? N : j_begin + spt * NR;
    for (int k0 = 0; k0 < K; k0 += DFS_GEMM_KC) {
        const int kc = K - k0 < DFS_GEMM_KC ? K - k0 : DFS_GEMM_KC;
        const float *ar = a + (size_t)m0 * a_rs + (size_t)k0 * a_cs;
        size_t lda = a_rs;
        if (a_cs != 1) {
            if (a_rs == 1) /* A stored transposed */
                dfs_gemm_transpose_blocks(g, ap, DFS_GEMM_KC, ar, a_cs, rows, kc);
            else
                for (int k = 0; k < kc; k++)
                    for (int i = 0; i < rows; i++) ap[(size_t)i * DFS_GEMM_KC + k] = ar[(size_t)i * a_rs + (size_t)k * a_cs];
            ar = ap;
            lda = DFS_GEMM_KC;
        }
        for (int j0 = j_begin; j0 < j_end; j0 += NR) {
            const int cols = j_end - j0 < NR ? j_end - j0 : NR;
            pack_b(g, bp, NR, b, b_rs, b_cs, k0, kc, j0, cols);
            for (int i0 = 0; i0 < rows; i0 += DFS_GEMM_MR) {
                const int mr = rows - i0 < DFS_GEMM_MR ? rows - i0 : DFS_GEMM_MR;
                g->kernel(kc, ar + (size_t)i0 * lda, lda, bp, (size_t)NR, c + (size_t)(m0 + i0) * ldc + j0, ldc, mr, cols,
                          1);
            }
        }
    }
}

/* With A read in place, tiles are one strip wide and as tall as sharing them out allows (at least
 * two per thread): each packs its B panels once for all its rows instead of once per CHUNK_M rows.
 * A packed A (a_cs != 1) is packed once for as many strips as sharing out allows, all of them when
 * there are chunks enough for the threads: the dense layer's weight gradient (A = dYᵀ) packed
 * once instead of once per strip. */
void dfs_gemm(int M, int N, int K, const float *a, size_t a_rs, size_t a_cs, const float *b, size_t b_rs,
              size_t b_cs, float *c, size_t ldc) {
    const dfs_gemm_impl *g = dfs_gemm_best();
    const int n_strips = (N + g->nr - 1) / g->nr, threads = dfs_ops_max_threads();
    int chunk = CHUNK_M, groups = 1;
    if (a_cs == 1) {
        int parts = 1;
        while (parts * n_strips < 2 * threads && parts < M) parts++;
        chunk = (M + parts - 1) / parts;
        chunk = (chunk + DFS_GEMM_MR - 1) / DFS_GEMM_MR * DFS_GEMM_MR;
        groups = n_strips; /* a strip a tile */
    }
    const int n_chunks = (M + chunk - 1) / chunk;
    while (a_cs != 1 && n_chunks * groups < threads && groups < n_strips) groups++;
    const int spt = (n_strips + groups - 1) / groups, n_groups = (n_strips + spt - 1) / spt;
    DFS_ASSERT(g->nr <= MAX_NR);
    if (M <= 0 || N <= 0 || K <= 0) return;
#pragma omp parallel for schedule(static)
    for (long t = 0; t < (long)n_chunks * n_groups; t++)
        gemm_tile(g, t, n_groups, spt, chunk, M, N, K, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc);
}

void dfs_gemm_1t(int M, int N, int K, const float *a, size_t a_rs, size_t a_cs, const float *b, size_t b_rs,
                 size_t b_cs, float *c, size_t ldc) {
    const dfs_gemm_impl *g = dfs_gemm_best();
    const int n_strips = (N + g->nr - 1) / g->nr, n_chunks = (M + CHUNK_M - 1) / CHUNK_M;
    const int spt = a_cs == 1 ? 1 : n_strips, n_groups = (n_strips + spt - 1) / spt;
    if (M <= 0 || N <= 0 || K <= 0) return;
    for (long t = 0; t < (long)n_chunks * n_groups; t++)
        gemm_tile(g, t, n_groups, spt, CHUNK_M, M, N, K, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc);
}
