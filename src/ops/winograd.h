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

/* The tile transforms work on runs: len <= 16 tiles of one H × W plane taken in row-major order
 * from tile (ty, tx) (tiles are 2×2 output blocks, TW = (W + 1) / 2 to a tile row), spanning at
 * most dfs_wg_run_rows(W) tile rows: the tiles of narrow images fill a vector from several rows.
 * in_run: tile j's 4×4 input tile has its top left corner at row 2y − 1, column 2x − 1, where
 *   (y, x) is its tile row and column; rows and columns outside the plane (its one pixel of
 *   padding, and the last tile's overhang for odd sizes) count as zero. Writes V_ξ[j] =
 *   v[ξ·xs + j] for the 16 positions ξ.
 * out_run: m holds M_ξ[j] = m[ξ·xs + j]; writes each tile's 2×2 output block (the part inside
 *   the plane) into plane o: (value + bias) + bias2, added to o when accumulate is set.
 * grad_run: the reverse of out_run's last step for the weight gradient: reads each tile's 2×2
 *   block of output gradient from plane dy (zero outside it) and writes Z_ξ[j] = z[ξ·xs + j] =
 *   (A' dY A'ᵀ)_ξ, where A' is A with its last row negated (the sign comes back in
 *   dfs_conv3x3_winograd_dw's last transform). */
static inline int dfs_wg_run_rows(int W) { return W <= 8 ? 4 : W <= 16 ? 2 : 1; }

/* The transforms of F(4×4, 3×3) take runs of len <= 16 tiles of 4×4 outputs (TW = (W + 3) / 4 to a
 * tile row, T = (H + 3) / 4 · TW to an image) from tile (ty, tx) of the plane at `plane` on, into
 * the next images' planes (istride floats apart) after its last tile.
 * in4_run: tile j's 6×6 input tile has its top left corner at row 4y − 1, column 4x − 1 of its
 *   image, zero outside it; writes V_ξ[j] = v[ξ·xs + j] = (Bᵀ d B)_ξ for the 36 positions ξ.
 * out4_run: m holds M_ξ[j] = m[ξ·xs + j]; writes each tile's 4×4 output block (Aᵀ M A, the part
 *   inside the plane) as (value + bias) + bias2, bias2 = bias2[q·b2stride] for a tile of the
 *   run's image q (counted from the first), 0 when bias2 is NULL; added when accumulate is set.
 * The matrices are in winograd.c. */
/* F(4×4, 3×3)'s G (winograd.c) is D G' with G' of small integers: D_i. */
static inline double dfs_wg4_scale(int i) {
    static const double d[6] = {1.0, -1.0 / 3.0, 1.0 / 3.0, -4.0 / 15.0, 1.0 / 15.0, 1.0};
    return d[i];
}

typedef struct dfs_wg_impl {
    const char *name;
    void (*in_run)(float *v, size_t xs, const float *plane, int H, int W, int ty, int tx, int len);
    void (*out_run)(float *o, int H, int W, const float *m, size_t xs, int ty, int tx, int len, float bias, float bias2,
                    int accumulate);
    void (*grad_run)(float *z, size_t xs, const float *dy, int H, int W, int ty, int tx, int len);
    void (*in4_run)(float *v, size_t xs, const float *plane, size_t istride, int H, int W, int ty, int tx, int len);
    void (*out4_run)(float *o, size_t istride, int H, int W, const float *m, size_t xs, int ty, int tx, int len, float bias,
                     const float *bias2, size_t b2stride, int accumulate);
    /* u[ξ·n + c] = (G g_c Gᵀ)_ξ of F(4×4, 3×3) for the count <= 16 kernels g_c = g[9c .. 9c + 9) */
    void (*weights4)(float *u, size_t n, const float *g, int count);
    /* for the weight gradient: tile j's 4×4 block of output gradient from dy (zero outside the
     * plane) into Z_ξ[j] = z[ξ·xs + j] = (A dY Aᵀ)_ξ, the runs as in4_run's */
    void (*grad4_run)(float *z, size_t xs, const float *dy, size_t istride, int H, int W, int ty, int tx, int len);
    /* dw[9c .. 9c + 9) += Gᵀ u_c G for the count <= 16 gradients u_c: u[ξ·n + c], ξ < 36 */
    void (*dw4)(float *dw, const float *u, size_t n, int count);
} dfs_wg_impl;

/* The versions this CPU runs, fastest first, the portable one last (for tests); returns the count. */
int dfs_winograd_available(const dfs_wg_impl **out, int max);

#if defined(__x86_64__) || defined(__i386__)
extern const dfs_wg_impl dfs_wg_avx512;
#endif

#endif
