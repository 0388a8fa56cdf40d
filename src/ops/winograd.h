/* 3×3 "same" convolutions by Winograd F(2×2, 3×3), or F(4×4, 3×3) for small images (see
 * winograd.c); conv2d.c chooses them. */
#ifndef DFS_OPS_WINOGRAD_H
#define DFS_OPS_WINOGRAD_H

#include <stddef.h>
#include <stdint.h>

/* Whether a convolution of this shape takes the Winograd path. */
int dfs_winograd_applies(int B, int KH, int KW, int stride, int pad_t, int pad_l, int H, int W, int OH, int OW);
/* The side m of the output tiles, 2 or 4, that dfs_conv3x3_winograd takes for B images of H × W,
 * C channels in and OC out (its products in BF16 when bf16 is set). */
int dfs_winograd_tile(int B, int C, int OC, int H, int W, int bf16);
/* Floats of workspace it needs (64-byte aligned), for the current thread count. */
size_t dfs_winograd_workspace(int B, int C, int OC, int H, int W);
/* U (dfs_winograd_weights_floats(C, OC, m) floats) = the transformed weights for tiles of side m:
 * what dfs_conv3x3_winograd computes on every call unless given them. */
size_t dfs_winograd_weights_floats(int C, int OC, int m);
void dfs_winograd_weights(float *U, const float *w, int C, int OC, int m);
/* The same in BF16 for the products in BF16 (gemm.h): Ub ([ξ][oc][c/2] pairs, at most as many
 * as U's floats). */
void dfs_winograd_weights_bf16(uint32_t *Ub, const float *w, int C, int OC);
/* out (+)= (conv(inp, w) + bias) + bias_img: bias (OC) and bias_img (B, OC) may each be NULL;
 * added to out when accumulate is set. U: w transformed by dfs_winograd_weights for the tile side
 * dfs_winograd_tile(B, C, OC, H, W, 0), or NULL to transform w here. Ub: w transformed by
 * dfs_winograd_weights_bf16, or NULL: when given, the 16 products run in BF16 (the transforms and
 * sums stay in float) and U is not used. */
void dfs_conv3x3_winograd(float *out, float *ws, const float *inp, const float *w, const float *U, const uint32_t *Ub,
                          const float *bias, const float *bias_img, int B, int C, int H, int W, int OC, int accumulate);
/* The weight gradient of the same convolution: dw (OC, C, 3, 3) += Σ over images and pixels of
 * dout · the input patch, as dw = Gᵀ [Σ_tiles (A dY Aᵀ) ⊙ (Bᵀ d B)] G: 16 GEMMs that reduce over
 * tiles, 4/9 of the direct product's multiplications. Workspace: dfs_winograd_dw_workspace. */
size_t dfs_winograd_dw_workspace(int B, int C, int OC, int H, int W);
void dfs_conv3x3_winograd_dw(float *dw, float *ws, const float *dout, const float *inp, int B, int C, int H, int W,
                             int OC);

/* The tile transforms work on runs of len <= 16 tiles of an H × W plane in row-major order from
 * tile (ty, tx) of the plane at `plane`. The tiles of F(2×2, 3×3) are 2×2 output blocks
 * (TW = (W + 1) / 2 to a tile row); its runs stay in one image and span at most
 * dfs_wg_run_rows(W) tile rows, so the tiles of narrow images fill a vector from several rows.
 * The tiles of F(4×4, 3×3) are 4×4 blocks (TW = (W + 3) / 4, T = (H + 3) / 4 · TW to an image);
 * its runs go on into the next images' planes (istride floats apart) after an image's last tile.
 * q below is the image of a tile, counted from the run's first (always 0 for F(2×2, 3×3)).
 * in: tile j's input tile (4×4 or 6×6) has its top left corner at row m·y − 1, column m·x − 1 of
 *   its image, where (y, x) is its tile row and column and m its side; rows and columns outside
 *   the plane (its one pixel of padding, and the last tile's overhang) count as zero. Writes
 *   V_ξ[j] = v[ξ·xs + j] = (Bᵀ d B)_ξ for the 16 or 36 positions ξ.
 * out: m holds M_ξ[j] = m[ξ·xs + j]; writes each tile's output block (Aᵀ M A, the part inside
 *   the plane) as (value + bias) + b2, b2 = bias2[q·b2stride] (0 when bias2 is NULL), added to
 *   the plane when accumulate is set.
 * grad: for the weight gradient, reads each tile's output-gradient block from plane dy (zero
 *   outside it) and writes Z_ξ[j] = z[ξ·xs + j]: (A' dY A'ᵀ)_ξ for F(2×2, 3×3), where A' is A with
 *   its last row negated (the sign comes back in dfs_conv3x3_winograd_dw's last transform), and
 *   (A dY Aᵀ)_ξ for F(4×4, 3×3).
 * The matrices are in winograd.c. */
static inline int dfs_wg_run_rows(int W) { return W <= 8 ? 4 : W <= 16 ? 2 : 1; }

/* F(4×4, 3×3)'s G (winograd.c) is D G' with G' of small integers: D_i. */
static inline double dfs_wg4_scale(int i) {
    static const double d[6] = {1.0, -1.0 / 3.0, 1.0 / 3.0, -4.0 / 15.0, 1.0 / 15.0, 1.0};
    return d[i];
}

typedef void dfs_wg_in_fn(float *v, size_t xs, const float *plane, size_t istride, int H, int W, int ty, int tx, int len);
typedef void dfs_wg_out_fn(float *o, size_t istride, int H, int W, const float *m, size_t xs, int ty, int tx, int len,
                           float bias, const float *bias2, size_t b2stride, int accumulate);
typedef void dfs_wg_grad_fn(float *z, size_t xs, const float *dy, size_t istride, int H, int W, int ty, int tx, int len);

typedef struct dfs_wg_impl {
    const char *name;
    dfs_wg_in_fn *in_run, *in4_run; /* F(2×2, 3×3), F(4×4, 3×3) */
    dfs_wg_out_fn *out_run, *out4_run;
    dfs_wg_grad_fn *grad_run, *grad4_run;
    /* u[ξ·n + c] = (G g_c Gᵀ)_ξ of F(4×4, 3×3) for the count <= 16 kernels g_c = g[9c .. 9c + 9) */
    void (*weights4)(float *u, size_t n, const float *g, int count);
    /* dw[9c .. 9c + 9) += Gᵀ u_c G of F(4×4, 3×3) for the count <= 16 gradients u_c: u[ξ·n + c], ξ < 36 */
    void (*dw4)(float *dw, const float *u, size_t n, int count);
} dfs_wg_impl;

/* The versions this CPU runs, fastest first, the portable one last (for tests); returns the count. */
int dfs_winograd_available(const dfs_wg_impl **out, int max);

#if defined(__x86_64__) || defined(__i386__)
extern const dfs_wg_impl dfs_wg_avx512;
/* The AVX2 versions of the tile transforms (x86/winograd_avx2.c); the weight transforms stay
 * portable on AVX2. */
dfs_wg_in_fn dfs_wg_in_avx2, dfs_wg_in4_avx2;
dfs_wg_out_fn dfs_wg_out_avx2, dfs_wg_out4_avx2;
dfs_wg_grad_fn dfs_wg_grad_avx2, dfs_wg_grad4_avx2;
#endif

#endif
