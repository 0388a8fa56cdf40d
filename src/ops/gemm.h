/* The GEMM core behind convolutions and linear layers:
 *     C (M×N) += A (M×K) · B (K×N)
 * A is read in place (row-major, leading dimension lda: weights as they are stored); B is packed
 * by the caller into strips of NR columns ([strip][k][NR], zero-padded), which lets a
 * convolution pack its input patches one panel at a time instead of building a full im2col
 * matrix. The micro-kernel computes an MR×NR tile of C in registers. Each element of C is summed
 * in the same order (k ascending) whatever the thread count or the tiling of N. */
#ifndef DFS_OPS_GEMM_H
#define DFS_OPS_GEMM_H

#include <stddef.h>
#include <stdint.h>

#define DFS_GEMM_MR 8   /* rows of C per micro-kernel call */
#define DFS_GEMM_KC 256 /* depth of one packed panel */

/* C[i·ldc + j] += Σ_k a[i·lda + k] · b[k·ldb + j] for i < mr, j < nr, or = when add is 0 (C is then
 * not read, so it need not be zeroed first). Rows i >= mr are neither
 * read past A's last row nor stored. All NR columns of each B row are read (columns past nr
 * only reach C columns that are not stored): a packed strip has ldb = NR; a B read in place
 * needs NR − nr readable floats past its last row's nr-th column. */
typedef void (*dfs_gemm_kernel_fn)(int kc, const float *a, size_t lda, const float *b, size_t ldb, float *c, size_t ldc,
                                   int mr, int nr, int add);

/* dst[i·ldd + j] = src[j·lds + i] for i < rows, j < cols (both at most 16): packing transposed
 * operands a 16×16 block at a time. */
typedef void (*dfs_transpose_fn)(float *dst, size_t ldd, const float *src, size_t lds, int rows, int cols);

/* dst[Y·Wp + X] = src[(s·Y + oy)·W + s·X + ox] where that pixel lies in the H × W plane src, else
 * 0, for Y < Hp, X < Wp and a stride s of 1 or 2: one (phase) plane of a convolution's padded
 * image. */
typedef void (*dfs_phase_plane_fn)(float *dst, int Hp, int Wp, const float *src, int H, int W, int oy, int ox, int s);

typedef struct dfs_gemm_impl {
    const char *name; /* "avx512", "avx2", "scalar" */
    int nr;           /* columns per strip */
    dfs_gemm_kernel_fn kernel;
    dfs_transpose_fn transpose;
    dfs_phase_plane_fn phase_plane;
} dfs_gemm_impl;

/* The fastest implementation this CPU runs, chosen once from cpuid. */
const dfs_gemm_impl *dfs_gemm_best(void);
/* All implementations this CPU can run (for tests and benchmarks); returns the count. */
int dfs_gemm_available(const dfs_gemm_impl **out, int max);

/* C (M×N) += A (M×K) · B (K×N) for operands with any strides: A[i][k] = a[i·a_rs + k·a_cs],
 * B[k][j] = b[k·b_rs + j·b_cs]; C is row-major with leading dimension ldc. Both operands are
 * packed a block at a time into thread-local buffers, so transposed operands cost no extra
 * memory. Threads split C into (row chunk, strip) tiles: one writer per element, k ascending. */
void dfs_gemm(int M, int N, int K, const float *a, size_t a_rs, size_t a_cs, const float *b, size_t b_rs,
              size_t b_cs, float *c, size_t ldc);
/* The same product computed by the calling thread alone, for work already split among threads
 * (same tiles, same bits). */
void dfs_gemm_1t(int M, int N, int K, const float *a, size_t a_rs, size_t a_cs, const float *b, size_t b_rs,
                 size_t b_cs, float *c, size_t ldc);

/* BF16 products (inference with the bf16 compute type). Operands hold pairs of bfloat16 values in
 * 32 bits (the first of the pair in the low half), pairs taken along K:
 *     C[i·ldc + j] (+)= Σ_k2 a[i·lda + k2] ⊙ b[k2·ldb + j],   i < mr, j < nr <= 48,
 * where a pair times a pair adds the product of the high halves to the running sum, then that of
 * the low halves, each rounded to float with denormal results flushed to zero, and each element's
 * sum starts from zero before it is added to C (or stored when add is 0). That is what AVX-512
 * BF16's VDPBF16PS computes, so the portable version gives the same bits. Reads 16·⌈nr/16⌉ pairs
 * of each row of b. */
typedef void (*dfs_gemm_bf16_fn)(int kc2, const uint32_t *a, size_t lda, const uint32_t *b, size_t ldb, float *c,
                                  size_t ldc, int mr, int nr, int add);

typedef struct dfs_gemm_bf16_impl {
    const char *name; /* "avx512bf16", "scalar" */
    dfs_gemm_bf16_fn kernel;
    /* dst[j] = the pair (bf16(lo[j]), bf16(hi[j])) for j < n; hi NULL: zeros (see dfs_bf16_round) */
    void (*pack)(uint32_t *dst, const float *lo, const float *hi, int n);
} dfs_gemm_bf16_impl;

/* float → bfloat16 as the hardware converts for products: round to nearest even, denormals to
 * zero, NaN kept a (quiet) NaN. Not the same as storing weights in a file (src/io/tensor.c). */
uint16_t dfs_bf16_round(float f);
const dfs_gemm_bf16_impl *dfs_gemm_bf16_best(void);
int dfs_gemm_bf16_available(const dfs_gemm_bf16_impl **out, int max);

/* Implementations, each defined in its own file (src/ops/x86/ for the SIMD ones). */
void dfs_gemm_transpose_scalar(float *dst, size_t ldd, const float *src, size_t lds, int rows, int cols);
void dfs_gemm_phase_plane_scalar(float *dst, int Hp, int Wp, const float *src, int H, int W, int oy, int ox, int s);
/* The same as the transpose of an implementation, for any rows and cols: 16×16 blocks at a time. */
void dfs_gemm_transpose_blocks(const dfs_gemm_impl *g, float *dst, size_t ldd, const float *src, size_t lds, int rows,
                               int cols);
extern const dfs_gemm_impl dfs_gemm_scalar;
extern const dfs_gemm_bf16_impl dfs_gemm_bf16_scalar;
#if defined(__x86_64__) || defined(__i386__)
extern const dfs_gemm_bf16_impl dfs_gemm_bf16_avx512;
extern const dfs_gemm_impl dfs_gemm_avx2;
extern const dfs_gemm_impl dfs_gemm_avx512;
#endif

#endif
