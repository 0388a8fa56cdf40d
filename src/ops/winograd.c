/* 3×3 stride-1 convolutions with one pixel of padding, by Winograd's minimal filtering
 * F(2×2, 3×3) (Lavin & Gray, 2015): each 2×2 block of outputs comes from a 4×4 input tile d as
 *     Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A,
 * 16 products per block where the direct sum needs 36. Summed over input channels, the product
 * becomes 16 independent GEMMs, M_ξ (OC × tiles) = U_ξ (OC × C) · V_ξ (C × tiles), one for each
 * position ξ of the transformed tile, run on the micro-kernel of gemm.h. The transforms only add,
 * subtract and halve, so results stay within a few rounding errors of the direct sum.
 * The tile transforms read the images in place: rows and columns outside an image (its one
 * pixel of padding, and the last tile's overhang for odd sizes) count as zero. Tiles of
 * all images are numbered together (tile g = image·T + tile), so small images still fill the
 * kernel's strips. A task is one strip of at most NR tiles (narrower when that evens out the
 * threads' shares) and a group of output channels: it transforms its tiles (or, when a strip is
 * split into several groups, finds them transformed once by all threads together), runs the
 * GEMMs over the channels in order and writes its outputs, so each output has one writer and the
 * same bits whatever the thread count. The tile transforms work on runs of up
 * to 16 neighbouring tiles of one image (several tile rows of a narrow one, winograd.h),
 * vectorised where the CPU allows; every version does the same additions in the same order.
 * Images of up to 32×32 in large enough batches take F(4×4, 3×3) instead (dfs_winograd_tile):
 * the same driver with 36 GEMMs of 6×6 tiles, whose runs go on into the next images. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "ops/gemm.h"
#include "ops/ops.h"
#include "ops/winograd.h"

#define OCB 64 /* output channels per block of M: 16 × OCB × NR floats */

static size_t lines(size_t n) { return (n + 15) / 16 * 16; }

int dfs_winograd_applies(int B, int KH, int KW, int stride, int pad_t, int pad_l, int H, int W, int OH, int OW) {
    const long tiles = (long)B * ((H + 1) / 2) * ((W + 1) / 2);
    return KH == 3 && KW == 3 && stride == 1 && pad_t == 1 && pad_l == 1 && OH == H && OW == W &&
           tiles >= 16; /* fewer tiles: the direct path is faster */
}

/* U (and dU in the weight gradient) is [ξ][oc][c], the 16 slabs one cache line further apart
 * than OC·C, a multiple of 1 KiB for most layers: else the 16 values of one weight tile would
 * all fall in the same L1 set. The BF16 pairs likewise. */
static size_t u_slab(int C, int OC) { return (size_t)OC * C + 16; }
static size_t ub_slab(int C, int OC) { return (size_t)OC * ((C + 1) / 2) + 16; }

/* Transformed values per tile of F(m×m, 3×3): (m + 2)². */
static int nx_of(int m) { return (m + 2) * (m + 2); }

size_t dfs_winograd_weights_floats(int C, int OC, int m) { return (size_t)nx_of(m) * u_slab(C, OC); }

/* F(4×4, 3×3) needs 36/16 transformed values per output where F(2×2, 3×3) needs 16/4: 1.78×
 * fewer products, and fewer tiles to transform. Up to WG4_SIDE on a side that makes whole 3×3
 * layers 1.2–1.6× faster (the UNets' 7×7 to 32×32 levels, forward and both gradients); on larger
 * images, whose F(2×2, 3×3) products already dominate, it gains nothing. Its rounding errors are
 * larger: a UNet's output moves about 2–3 times as far from the exact one as with torch's direct
 * sums, a few millionths of its scale (docs/performance.md). Below WG4_TILES tiles for the
 * AVX-512 kernel's strips of 48 (in proportion for narrower ones: 21 for AVX2's 16), too few to
 * fill the kernel's strips, F(2×2, 3×3) is faster. (Its vector transforms index a run's planes,
 * up to 17 images' worth, in 32 bits.) */
#define WG4_SIDE 32
#define WG4_TILES 64

int dfs_winograd_tile(int B, int C, int OC, int H, int W, int bf16) {
    const long tiles = (long)B * ((H + 3) / 4) * ((W + 3) / 4), least = WG4_TILES * dfs_gemm_best()->nr / 48;
    const size_t plane = (size_t)(C > OC ? C : OC) * H * W;
    return !bf16 && H <= WG4_SIDE && W <= WG4_SIDE && tiles >= least && plane <= INT_MAX / 32 ? 4 : 2;
}

/* V is [ξ][c][NR] and M [ξ][oc][NR]: each product reads its operand rows contiguously. One slab
 * per ξ, one cache line longer than its rows, so that the 16 values a tile transform writes (or
 * the output transform reads) do not all fall in the same L1 set, as they would with slabs a
 * power of two (times 3) apart. */
static size_t slab(int rows) { return (size_t)rows * dfs_gemm_best()->nr + 16; }
/* The same for V in BF16 pairs of channels ([ξ][c/2][NR] pairs, 32 bits each). */
static size_t pair_slab(int rows) { return (size_t)(rows + 1) / 2 * dfs_gemm_best()->nr + 16; }

size_t dfs_winograd_workspace(int B, int C, int OC, int H, int W) {
    const size_t threads = (size_t)dfs_ops_max_threads(), nx = (size_t)nx_of(dfs_winograd_tile(B, C, OC, H, W, 0));
    return lines(nx * u_slab(C, OC)) + 2 * threads * lines(nx * slab(C)) +
           2 * threads * lines(16 * pair_slab(C)) + threads * lines(nx * slab(OCB));
}

/* u[ξ·n] = (G g Gᵀ)_ξ for one 3×3 kernel g. */
static void weight_tile(float *u, size_t n, const float *g) {
    float t[4][3]; /* G g */
    for (int j = 0; j < 3; j++) {
        t[0][j] = g[j];
        t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
        t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
        t[3][j] = g[6 + j];
    }
    for (int i = 0; i < 4; i++) {
        u[(4 * i + 0) * n] = t[i][0];
        u[(4 * i + 1) * n] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
        u[(4 * i + 2) * n] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
        u[(4 * i + 3) * n] = t[i][2];
    }
}

/* F(4×4, 3×3) from the interpolation points 0, −1, 1, ½, −2 and ∞ (Cook–Toom): the input and
 * output transforms multiply only by small integers and powers of two,
 *     Bᵀ = [1 −3/2 −2 3/2 1 0; 0 1 −5/2 1/2 1 0; 0 −1 1/2 5/2 1 0; 0 −2 −1 2 1 0; 0 1/2 −1 −1/2 1 0; 0 1 −3/2 −2 3/2 1],
 *     G  = [1 0 0; −1/3 1/3 −1/3; 1/3 1/3 1/3; −16/15 −8/15 −4/15; 1/15 −2/15 4/15; 0 0 1],
 *     Aᵀ = [1 1 1 1 1 0; 0 −1 1 1/2 −2 0; 0 1 1 1/4 4 0; 0 −1 1 1/8 −8 1];
 * of the points tried on the UNets (also 0, ±1, ±2 and 0, ±1, ±½) these gave the smallest errors.
 * G = D G', with G' = [1 0 0; 1 −1 1; 1 1 1; 4 2 1; 1 −2 4; 0 0 1] and D = diag(1, −1/3, 1/3, −4/15,
 * 1/15, 1): u[ξ·n] = (G g Gᵀ)_ξ = D_i D_k (G' g G'ᵀ)_ik for ξ = 6i + k, the last product of small
 * integers and floats exact in double, so that u is rounded once, with no division. */
static void g6(double o[6], double a, double b, double c) {
    o[0] = a;
    o[1] = a - b + c;
    o[2] = a + b + c;
    o[3] = 4.0 * a + 2.0 * b + c;
    o[4] = a - 2.0 * b + 4.0 * c;
    o[5] = c;
}

static void weight_tile4(float *u, size_t n, const float *g) {
    double t[6][3], r[6]; /* G' g */
    for (int j = 0; j < 3; j++) {
        g6(r, g[j], g[3 + j], g[6 + j]);
        for (int i = 0; i < 6; i++) t[i][j] = r[i];
    }
    for (int i = 0; i < 6; i++) { /* (G' g) G'ᵀ, scaled */
        g6(r, t[i][0], t[i][1], t[i][2]);
        for (int k = 0; k < 6; k++) u[(6 * i + k) * n] = (float)(r[k] * (dfs_wg4_scale(i) * dfs_wg4_scale(k)));
    }
}

/* dw[0..9) += G'ᵀ u G' for one (oc, c); u holds the 16 values of dU at stride n. */
static void dw_transform(float *dw, const float *u, size_t n) {
    float t[3][4];
    for (int k = 0; k < 4; k++) { /* G'ᵀ u, column k */
        const float u0 = u[(0 + k) * n], u1 = u[(4 + k) * n], u2 = u[(8 + k) * n], u3 = u[(12 + k) * n];
        const float s = u1 + u2;
        t[0][k] = u0 + 0.5f * s;
        t[1][k] = 0.5f * (u1 - u2);
        t[2][k] = 0.5f * s - u3;
    }
    for (int i = 0; i < 3; i++) { /* (G'ᵀ u) G', row i */
        const float s = t[i][1] + t[i][2];
        dw[3 * i + 0] += t[i][0] + 0.5f * s;
        dw[3 * i + 1] += 0.5f * (t[i][1] - t[i][2]);
        dw[3 * i + 2] += 0.5f * s - t[i][3];
    }
}

/* dw[0..9) += Gᵀ u G of F(4×4, 3×3) for one (oc, c); u holds the 36 values of dU at stride n.
 * With G = D G' (weight_tile4): G'ᵀ (D u D) G', in double, rounded once. */
static void dw_transform4(float *dw, const float *u, size_t n) {
    double t[3][6]; /* G'ᵀ (D u D) */
    for (int k = 0; k < 6; k++) {
        double v[6];
        for (int i = 0; i < 6; i++) v[i] = (double)u[(6 * i + k) * n] * (dfs_wg4_scale(i) * dfs_wg4_scale(k));
        t[0][k] = v[0] + v[1] + v[2] + 4.0 * v[3] + v[4];
        t[1][k] = v[2] - v[1] + 2.0 * v[3] - 2.0 * v[4];
        t[2][k] = v[1] + v[2] + v[3] + 4.0 * v[4] + v[5];
    }
    for (int a = 0; a < 3; a++) { /* (G'ᵀ D u D) G' */
        const double *r = t[a];
        dw[3 * a + 0] += (float)(r[0] + r[1] + r[2] + 4.0 * r[3] + r[4]);
        dw[3 * a + 1] += (float)(r[2] - r[1] + 2.0 * r[3] - 2.0 * r[4]);
        dw[3 * a + 2] += (float)(r[1] + r[2] + r[3] + 4.0 * r[4] + r[5]);
    }
}

void dfs_winograd_weights_bf16(uint32_t *Ub, const float *w, int C, int OC) {
    const int C2 = (C + 1) / 2;
    const size_t n = ub_slab(C, OC);
#pragma omp parallel for schedule(static)
    for (int oc = 0; oc < OC; oc++)
        for (int c2 = 0; c2 < C2; c2++) {
            float u[2][16] = {{0}};
            for (int h = 0; h < 2 && 2 * c2 + h < C; h++) weight_tile(u[h], 1, w + ((size_t)oc * C + 2 * c2 + h) * 9);
            for (int x = 0; x < 16; x++)
                Ub[x * n + (size_t)oc * C2 + c2] = dfs_bf16_round(u[0][x]) | (uint32_t)dfs_bf16_round(u[1][x]) << 16;
        }
}

/* The strip's tiles as runs (winograd.h) of at most 16 neighbours in one image. */
typedef struct wg_run {
    int j, b, ty, tx, len; /* first column in the strip, image, tile row, first tile column, tiles */
} wg_run;

static int min_int(int a, int b) { return a < b ? a : b; }

/* Runs of tiles of side m (2 or 4): F(2×2, 3×3)'s within one image, over at most
 * dfs_wg_run_rows(W) tile rows (what its vector transforms take), F(4×4, 3×3)'s any 16 in a row,
 * over several images (winograd.h). */
static int runs_of(wg_run *runs, long g0, int nt, int T, int W, int m) {
    const int TW = (W + m - 1) / m, span = dfs_wg_run_rows(W) * TW;
    int n = 0;
    for (int j = 0; j < nt;) {
        const int t = (int)((g0 + j) % T), tx = t % TW;
        const int len = m == 4 ? min_int(nt - j, 16) : min_int(min_int(nt - j, T - t), min_int(span - tx, 16));
        runs[n++] = (wg_run){j, (int)((g0 + j) / T), t / TW, tx, len};
        j += len;
    }
    return n;
}

/* Tile j of a run from tile (ty, tx), TW tiles to a row: its tile row *y and column *x. */
static void run_tile(int TW, int ty, int tx, int j, int *y, int *x) {
    *y = ty + (tx + j) / TW;
    *x = (tx + j) % TW;
}

/* The portable tile transforms (the vector ones do the same operations in the same order). */
static void in_run_scalar(float *v, size_t xs, const float *plane, size_t istride, int H, int W, int ty, int tx,
                          int len) {
    for (int j = 0; j < len; j++) {
        float d[4][4], e[4][4];
        int yt, xt; /* the tile's row and column */
        run_tile((W + 1) / 2, ty, tx, j, &yt, &xt);
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < 4; k++) {
                const int y = 2 * yt - 1 + i, x = 2 * xt - 1 + k;
                d[i][k] = y >= 0 && y < H && x >= 0 && x < W ? plane[(size_t)y * W + x] : 0.0f;
            }
        for (int k = 0; k < 4; k++) { /* Bᵀ d */
            e[0][k] = d[0][k] - d[2][k];
            e[1][k] = d[1][k] + d[2][k];
            e[2][k] = d[2][k] - d[1][k];
            e[3][k] = d[1][k] - d[3][k];
        }
        for (int i = 0; i < 4; i++) { /* (Bᵀ d) B */
            v[(4 * i + 0) * xs + j] = e[i][0] - e[i][2];
            v[(4 * i + 1) * xs + j] = e[i][1] + e[i][2];
            v[(4 * i + 2) * xs + j] = e[i][2] - e[i][1];
            v[(4 * i + 3) * xs + j] = e[i][1] - e[i][3];
        }
    }
}

static void out_run_scalar(float *o, size_t istride, int H, int W, const float *m, size_t xs, int ty, int tx, int len,
                           float bias, const float *bias2, size_t b2stride, int accumulate) {
    const float b2 = bias2 ? bias2[0] : 0.0f; /* a run in one image */
    for (int j = 0; j < len; j++) {
        float a[4][4], s[2][4];
        int yt, xt;
        run_tile((W + 1) / 2, ty, tx, j, &yt, &xt);
        const int rows = min_int(H - 2 * yt, 2), cols = min_int(W - 2 * xt, 2);
        for (int x = 0; x < 16; x++) a[x / 4][x % 4] = m[x * xs + j];
        for (int k = 0; k < 4; k++) { /* Aᵀ M */
            s[0][k] = a[0][k] + a[1][k] + a[2][k];
            s[1][k] = a[1][k] - a[2][k] - a[3][k];
        }
        for (int r = 0; r < rows; r++) { /* (Aᵀ M) A */
            const float y[2] = {s[r][0] + s[r][1] + s[r][2], s[r][1] - s[r][2] - s[r][3]};
            float *row = o + (size_t)(2 * yt + r) * W + 2 * xt;
            for (int k = 0; k < cols; k++) {
                const float v = (y[k] + bias) + b2;
                row[k] = accumulate ? row[k] + v : v;
            }
        }
    }
}

static void grad_run_scalar(float *z, size_t xs, const float *dy, size_t istride, int H, int W, int ty, int tx, int len) {
    for (int j = 0; j < len; j++) {
        float y[2][2], t[4][2];
        int yt, xt;
        run_tile((W + 1) / 2, ty, tx, j, &yt, &xt);
        for (int r = 0; r < 2; r++)
            for (int k = 0; k < 2; k++) {
                const int row = 2 * yt + r, col = 2 * xt + k;
                y[r][k] = row < H && col < W ? dy[(size_t)row * W + col] : 0.0f;
            }
        for (int k = 0; k < 2; k++) { /* A' dY */
            t[0][k] = y[0][k];
            t[1][k] = y[0][k] + y[1][k];
            t[2][k] = y[0][k] - y[1][k];
            t[3][k] = y[1][k];
        }
        for (int i = 0; i < 4; i++) { /* (A' dY) A'ᵀ */
            z[(4 * i + 0) * xs + j] = t[i][0];
            z[(4 * i + 1) * xs + j] = t[i][0] + t[i][1];
            z[(4 * i + 2) * xs + j] = t[i][0] - t[i][1];
            z[(4 * i + 3) * xs + j] = t[i][1];
        }
    }
}

/* o[k·os] = (Bᵀ d)_k for d[k·ds], k < 6. The F(4×4, 3×3) transforms take their multiples with
 * fused multiply-adds (fewer operations and roundings); every version uses the same ones, in the
 * same order. */
static inline __attribute__((always_inline)) void bt6(float *o, size_t os, const float *d, size_t ds) {
    const float d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds], d5 = d[5 * ds], e = d4 - d2;
    o[0] = fmaf(1.5f, d3, fmaf(-2.0f, d2, fmaf(-1.5f, d1, d0))) + d4;
    o[os] = fmaf(0.5f, d3, fmaf(-2.5f, d2, d1 + d4));
    o[2 * os] = fmaf(2.5f, d3, fmaf(0.5f, d2, d4 - d1));
    o[3 * os] = fmaf(2.0f, d3 - d1, e);
    o[4 * os] = fmaf(0.5f, d1 - d3, e);
    o[5 * os] = fmaf(1.5f, d4, fmaf(-2.0f, d3, fmaf(-1.5f, d2, d1))) + d5;
}

/* o[k·os] = (Aᵀ a)_k for a[k·as], k < 4. */
static inline __attribute__((always_inline)) void at6(float *o, size_t os, const float *a, size_t as) {
    const float a0 = a[0], a1 = a[as], a2 = a[2 * as], a3 = a[3 * as], a4 = a[4 * as], a5 = a[5 * as];
    const float p = a1 + a2, m = a2 - a1;
    o[0] = (a0 + p) + (a3 + a4);
    o[os] = fmaf(-2.0f, a4, fmaf(0.5f, a3, m));
    o[2 * os] = fmaf(4.0f, a4, fmaf(0.25f, a3, p));
    o[3 * os] = fmaf(-8.0f, a4, fmaf(0.125f, a3, m)) + a5;
}

/* Tile j of an F(4×4, 3×3) run from tile (ty, tx) of its first image: the image *q (counted from
 * the first), the tile row *y and column *x. */
static void run_tile4(int H, int W, int ty, int tx, int j, int *q, int *y, int *x) {
    const int TW = (W + 3) / 4, T = (H + 3) / 4 * TW, t = ty * TW + tx + j;
    *q = t / T;
    *y = t % T / TW;
    *x = t % TW;
}

/* The portable transforms of F(4×4, 3×3) (winograd.h). The run's tiles are lanes j of arrays
 * [value][16]: gathered one tile at a time, then transformed lane by lane in loops the compiler
 * vectorises (the same operations per lane, so the same bits). On x86 each is also compiled for
 * CPUs with FMA, picked at load time: without it fmaf is a library call per value. */
#define LANES 16
#if defined(__x86_64__) && defined(__GNUC__)
#define WITH_FMA __attribute__((target_clones("fma", "default")))
#else
#define WITH_FMA
#endif

WITH_FMA static void in4_run_scalar(float *v, size_t xs, const float *plane, size_t istride, int H, int W, int ty, int tx,
                           int len) {
    float d[36][LANES], e[36][LANES];
    for (int j = 0; j < len; j++) {
        int q, yt, xt;
        run_tile4(H, W, ty, tx, j, &q, &yt, &xt);
        const float *p = plane + (size_t)q * istride;
        for (int i = 0; i < 6; i++)
            for (int k = 0; k < 6; k++) {
                const int y = 4 * yt - 1 + i, x = 4 * xt - 1 + k;
                d[6 * i + k][j] = y >= 0 && y < H && x >= 0 && x < W ? p[(size_t)y * W + x] : 0.0f;
            }
    }
    for (int k = 0; k < 6; k++) /* Bᵀ d */
#pragma omp simd
        for (int j = 0; j < len; j++) bt6(&e[k][j], 6 * LANES, &d[k][j], 6 * LANES);
    for (int i = 0; i < 6; i++) /* (Bᵀ d) B */
#pragma omp simd
        for (int j = 0; j < len; j++) bt6(v + (size_t)6 * i * xs + j, xs, &e[6 * i][j], LANES);
}

WITH_FMA static void out4_run_scalar(float *o, size_t istride, int H, int W, const float *m, size_t xs, int ty, int tx, int len,
                            float bias, const float *bias2, size_t b2stride, int accumulate) {
    float s[24][LANES], y[16][LANES];
    for (int k = 0; k < 6; k++) /* Aᵀ M */
#pragma omp simd
        for (int j = 0; j < len; j++) at6(&s[k][j], 6 * LANES, m + (size_t)k * xs + j, 6 * xs);
    for (int r = 0; r < 4; r++) /* (Aᵀ M) A */
#pragma omp simd
        for (int j = 0; j < len; j++) at6(&y[4 * r][j], LANES, &s[6 * r][j], LANES);
    for (int j = 0; j < len; j++) {
        int q, yt, xt;
        run_tile4(H, W, ty, tx, j, &q, &yt, &xt);
        const float b2 = bias2 ? bias2[(size_t)q * b2stride] : 0.0f;
        const int rows = min_int(H - 4 * yt, 4), cols = min_int(W - 4 * xt, 4);
        for (int r = 0; r < rows; r++) {
            float *row = o + (size_t)q * istride + (size_t)(4 * yt + r) * W + 4 * xt;
            for (int k = 0; k < cols; k++) {
                const float v = (y[4 * r + k][j] + bias) + b2;
                row[k] = accumulate ? row[k] + v : v;
            }
        }
    }
}

/* Z = A dY Aᵀ: z[i] = (A y)_i for the four values y[k·ys]. */
static inline __attribute__((always_inline)) void a6(float *z, size_t zs, const float *y, size_t ys) {
    const float y0 = y[0], y1 = y[ys], y2 = y[2 * ys], y3 = y[3 * ys], e = y0 + y2, o = y1 + y3;
    z[0] = y0;
    z[zs] = e - o;
    z[2 * zs] = e + o;
    z[3 * zs] = fmaf(0.125f, y3, fmaf(0.25f, y2, fmaf(0.5f, y1, y0)));
    z[4 * zs] = fmaf(-8.0f, y3, fmaf(4.0f, y2, fmaf(-2.0f, y1, y0)));
    z[5 * zs] = y3;
}

WITH_FMA static void grad4_run_scalar(float *z, size_t xs, const float *dy, size_t istride, int H, int W, int ty, int tx, int len) {
    float y[16][LANES], t[24][LANES];
    for (int j = 0; j < len; j++) {
        int q, yt, xt;
        run_tile4(H, W, ty, tx, j, &q, &yt, &xt);
        for (int r = 0; r < 4; r++)
            for (int k = 0; k < 4; k++) {
                const int row = 4 * yt + r, col = 4 * xt + k;
                y[4 * r + k][j] = row < H && col < W ? dy[(size_t)q * istride + (size_t)row * W + col] : 0.0f;
            }
    }
    for (int k = 0; k < 4; k++) /* A dY */
#pragma omp simd
        for (int j = 0; j < len; j++) a6(&t[k][j], 4 * LANES, &y[k][j], 4 * LANES);
    for (int i = 0; i < 6; i++) /* (A dY) Aᵀ */
#pragma omp simd
        for (int j = 0; j < len; j++) a6(z + (size_t)6 * i * xs + j, xs, &t[4 * i][j], LANES);
}

/* The weight transforms of count <= 16 kernels (gradients) at a time, as the schemes take them. */
static void weights2(float *u, size_t n, const float *g, int count) {
    for (int c = 0; c < count; c++) weight_tile(u + c, n, g + 9 * c);
}

static void weights4_scalar(float *u, size_t n, const float *g, int count) {
    for (int c = 0; c < count; c++) weight_tile4(u + c, n, g + 9 * c);
}

static void dw2(float *dw, const float *u, size_t n, int count) {
    for (int c = 0; c < count; c++) dw_transform(dw + 9 * c, u + c, n);
}

static void dw4_scalar(float *dw, const float *u, size_t n, int count) {
    for (int c = 0; c < count; c++) dw_transform4(dw + 9 * c, u + c, n);
}

static const dfs_wg_impl wg_scalar = {"scalar",         in_run_scalar,    in4_run_scalar,  out_run_scalar, out4_run_scalar,
                                      grad_run_scalar, grad4_run_scalar, weights4_scalar, dw4_scalar};

#if defined(__x86_64__) || defined(__i386__)
static const dfs_wg_impl wg_avx2 = {"avx2",          dfs_wg_in_avx2,    dfs_wg_in4_avx2, dfs_wg_out_avx2, dfs_wg_out4_avx2,
                                    dfs_wg_grad_avx2, dfs_wg_grad4_avx2, weights4_scalar, dw4_scalar};
#endif

int dfs_winograd_available(const dfs_wg_impl **out, int max) {
    int n = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (n < max && __builtin_cpu_supports("avx512f")) out[n++] = &dfs_wg_avx512;
    if (n < max && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) out[n++] = &wg_avx2;
#endif
    if (n < max) out[n++] = &wg_scalar;
    return n;
}

static const dfs_wg_impl *best(void) {
    const dfs_wg_impl *impls[3];
    const int n = dfs_winograd_available(impls, 3);
    for (int i = 0; i < n - 1; i++)
        if (dfs_isa_permits(impls[i]->name)) return impls[i];
    return impls[n - 1];
}

/* F(m×m, 3×3): nx = (m + 2)² transformed values per tile, and its transforms (the fastest
 * versions). */
typedef struct wg_scheme {
    int m, nx;
    dfs_wg_in_fn *in;
    dfs_wg_out_fn *out;
    dfs_wg_grad_fn *grad;
    void (*weights)(float *u, size_t n, const float *g, int count);
    void (*dw)(float *dw, const float *u, size_t n, int count);
} wg_scheme;

static wg_scheme scheme_of(int m) {
    const dfs_wg_impl *wg = best();
    if (m == 4) return (wg_scheme){4, nx_of(4), wg->in4_run, wg->out4_run, wg->grad4_run, wg->weights4, wg->dw4};
    return (wg_scheme){2, nx_of(2), wg->in_run, wg->out_run, wg->grad_run, weights2, dw2};
}

/* U_ξ = G g Gᵀ for every (oc, c), stored [ξ][oc][c]. Shared out among the team's threads. */
static void transform_weights(const wg_scheme *sc, float *U, const float *w, int C, int OC) {
    const size_t n = u_slab(C, OC);
#pragma omp for schedule(static)
    for (int oc = 0; oc < OC; oc++)
        for (int c0 = 0; c0 < C; c0 += 16)
            sc->weights(U + (size_t)oc * C + c0, n, w + ((size_t)oc * C + c0) * 9, C - c0 < 16 ? C - c0 : 16);
}

/* The part of each image's plane a run's input tiles read: floats [lo, hi) of image b's plane. */
#define MAX_SPANS 18
#define PREFETCH_AHEAD 2 /* channels */
typedef struct span { int b; long lo, hi; } span;

static int run_spans(span *sp, const wg_run *r, int m, int H, int W, int T) {
    const int TW = (W + m - 1) / m;
    int n = 0;
    for (long g = (long)r->ty * TW + r->tx, end = g + r->len, b = r->b; g < end && n < MAX_SPANS; b++) {
        const long last = end - 1 < T - 1 ? end - 1 : T - 1; /* the run's last tile in this image */
        const int y0 = (int)(g / TW) * m - 1, y1 = (int)(last / TW) * m + m;
        sp[n++] = (span){(int)b, (long)(y0 < 0 ? 0 : y0) * W, (long)(y1 + 1 < H ? y1 + 1 : H) * W};
        end -= T, g = 0;
    }
    return n;
}

/* Transforms channels [c0, c1) of a strip's tiles into V ([ξ][c][NR], zero past nt), and when Vb
 * is given, also into Vb as BF16 pairs of channels (c0 even; c1 even or C). *zeroed: V's columns
 * from *zeroed on are known to be zero (NR: none); the transforms never write past nt, so a thread
 * that reuses its V for strips of one width zeroes it once. */
static void strip_transform(const wg_scheme *sc, float *V, uint32_t *Vb, const float *inp, int C, int H, int W, int T,
                            long g0, int nt, int c0, int c1, int *zeroed) {
    const int NR = dfs_gemm_best()->nr;
    const size_t vxs = slab(C);
    wg_run runs[64];
    const int n_runs = runs_of(runs, g0, nt, T, W, sc->m);
    if (nt < *zeroed) { /* the channels' rows of each slab at once, the tiles written over after */
        for (int x = 0; x < sc->nx; x++) memset(V + x * vxs + (size_t)c0 * NR, 0, sizeof(float) * (size_t)(c1 - c0) * NR);
        *zeroed = nt;
    }
    for (int k = 0; k < n_runs; k++) { /* run by run: the vector transforms reuse a run's lane plan */
        const wg_run *r = &runs[k];
        span sp[MAX_SPANS];
        const int n_sp = run_spans(sp, r, sc->m, H, W, T);
        for (int c = c0; c < c1; c++) {
            if (c + PREFETCH_AHEAD < c1)
                for (int i = 0; i < n_sp; i++) {
                    const float *pl = inp + ((size_t)sp[i].b * C + c + PREFETCH_AHEAD) * H * W;
                    for (long o = sp[i].lo; o < sp[i].hi; o += 16) __builtin_prefetch(pl + o);
                }
            sc->in(V + (size_t)c * NR + r->j, vxs, inp + ((size_t)r->b * C + c) * H * W, (size_t)C * H * W, H, W, r->ty,
                   r->tx, r->len);
        }
    }
    if (!Vb) return;
    const dfs_gemm_bf16_impl *bk = dfs_gemm_bf16_best();
    const size_t vbxs = pair_slab(C);
    for (int x = 0; x < 16; x++)
        for (int c = c0; c < c1; c += 2)
            bk->pack(Vb + x * vbxs + (size_t)c / 2 * NR, V + x * vxs + (size_t)c * NR,
                     c + 1 < C ? V + x * vxs + (size_t)(c + 1) * NR : NULL, NR);
}

/* A task's share of a transformed strip: for each block of output channels in [ob0, ob1) the 16
 * GEMMs over all channels and the output transform. */
static void strip_multiply(const wg_scheme *sc, float *out, const float *V, const uint32_t *Vb, float *M,
                           const float *U, const uint32_t *Ub, const float *bias, const float *bias_img, int C, int OC,
                           int H, int W, int T, long g0, int nt, int ob0, int ob1, int accumulate) {
    const dfs_gemm_impl *g = dfs_gemm_best();
    const dfs_gemm_bf16_impl *bk = Ub ? dfs_gemm_bf16_best() : NULL;
    const int NR = g->nr, C2 = (C + 1) / 2;
    const size_t vxs = slab(C), vbxs = pair_slab(C), mxs = slab(OCB);
    wg_run runs[64];
    const int n_runs = runs_of(runs, g0, nt, T, W, sc->m);
    for (int ob = ob0; ob < ob1; ob++) {
        const int oc0 = ob * OCB, ocs = OC - oc0 < OCB ? OC - oc0 : OCB;
        for (int x = 0; x < 16 && Ub; x++) { /* BF16: pairs of channels */
            const uint32_t *u = Ub + (size_t)x * ub_slab(C, OC) + (size_t)oc0 * C2, *v = Vb + (size_t)x * vbxs;
            for (int k0 = 0; k0 < C2; k0 += DFS_GEMM_KC / 2) {
                const int kc2 = C2 - k0 < DFS_GEMM_KC / 2 ? C2 - k0 : DFS_GEMM_KC / 2;
                for (int i0 = 0; i0 < ocs; i0 += DFS_GEMM_MR)
                    bk->kernel(kc2, u + (size_t)i0 * C2 + k0, (size_t)C2, v + (size_t)k0 * NR, (size_t)NR,
                               M + (size_t)x * mxs + (size_t)i0 * NR, (size_t)NR, ocs - i0 < DFS_GEMM_MR ? ocs - i0 : DFS_GEMM_MR,
                               nt, k0 > 0);
            }
        }
        for (int x = 0; x < sc->nx && !Ub; x++) {
            const float *u = U + (size_t)x * u_slab(C, OC) + (size_t)oc0 * C, *v = V + (size_t)x * vxs;
            float *m = M + (size_t)x * mxs;
            for (int c0 = 0; c0 < C; c0 += DFS_GEMM_KC) {
                const int kc = C - c0 < DFS_GEMM_KC ? C - c0 : DFS_GEMM_KC;
                for (int i0 = 0; i0 < ocs; i0 += DFS_GEMM_MR)
                    g->kernel(kc, u + (size_t)i0 * C + c0, (size_t)C, v + (size_t)c0 * NR, (size_t)NR, m + (size_t)i0 * NR,
                              (size_t)NR, ocs - i0 < DFS_GEMM_MR ? ocs - i0 : DFS_GEMM_MR, nt, c0 > 0);
            }
        }
        for (int k = 0; k < n_runs; k++)
            for (int o = 0; o < ocs; o++) {
                const wg_run *r = &runs[k];
                sc->out(out + ((size_t)r->b * OC + oc0 + o) * H * W, (size_t)OC * H * W, H, W, M + (size_t)o * NR + r->j, mxs,
                        r->ty, r->tx, r->len, bias ? bias[oc0 + o] : 0.0f,
                        bias_img ? bias_img + (size_t)r->b * OC + oc0 + o : NULL, (size_t)OC, accumulate);
            }
    }
}

void dfs_winograd_weights(float *U, const float *w, int C, int OC, int m) {
    const wg_scheme sc = scheme_of(m);
#pragma omp parallel
    transform_weights(&sc, U, w, C, OC);
}

void dfs_conv3x3_winograd(float *out, float *ws, const float *inp, const float *w, const float *U_given,
                          const uint32_t *Ub, const float *bias, const float *bias_img, int B, int C, int H, int W, int OC,
                          int accumulate) {
    const wg_scheme sc = scheme_of(Ub ? 2 : dfs_winograd_tile(B, C, OC, H, W, 0));
    const int NR = dfs_gemm_best()->nr, nx = sc.nx, TW = (W + sc.m - 1) / sc.m, T = (H + sc.m - 1) / sc.m * TW;
    const int n_ocb = (OC + OCB - 1) / OCB;
    DFS_ASSERT(NR <= 64);
    const long tiles = (long)B * T, threads = dfs_ops_max_threads();
    long n_strips = (tiles + NR - 1) / NR;
    int groups = 1; /* split the output channels too when there are too few strips to share out */
    while (groups < n_ocb && n_strips * groups < 2 * threads) groups++;
    /* Few tasks: the strip width that leaves the busiest thread the least work. The narrow
     * kernels make a strip's products cost about its width rounded up to 16 tiles, and its
     * transforms its width, about a quarter as much a tile. At batch 64 the 28×28 model's 7×7
     * layers (256 tiles) take 8 strips of 32, not 6 of 43 (48 wide). The outputs do not depend
     * on how tiles are split. Shared transforms keep at most 2 × threads strips. */
    long per = NR; /* tiles per strip */
    if (n_strips * groups < 4 * threads) {
        long least = LONG_MAX;
        for (long p = NR; p >= 1; p--) {
            const long n = (tiles + p - 1) / p, rounds = (n * groups + threads - 1) / threads;
            const long work = rounds * (4 * ((p + 15) / 16 * 16) + p);
            if (work < least && (groups == 1 || n <= 2 * threads)) least = work, per = p;
        }
    }
    n_strips = (tiles + per - 1) / per;
    float *U = ws, *vbufs = U + lines(nx * u_slab(C, OC));
    uint32_t *vbbufs = (uint32_t *)(vbufs + 2 * threads * lines(nx * slab(C)));
    float *mbufs = (float *)(vbbufs + 2 * threads * lines(16 * pair_slab(C)));
    /* When strips are split into groups of output channels, each strip is transformed once, by
     * all threads together, before the products; else each task transforms its own strip. */
    const int shared = groups > 1, cb = 16; /* channels per transform task */
    DFS_ASSERT(!shared || n_strips <= 2 * threads);
#pragma omp parallel
    {
        if (!U_given && !Ub) transform_weights(&sc, U, w, C, OC);
        const int id = dfs_ops_thread_id();
        float *M = mbufs + (size_t)id * lines(nx * slab(OCB));
        int zeroed = NR; /* this thread's V (not shared): columns known to be zero */
        if (shared) {
            const int n_cb = (C + cb - 1) / cb;
#pragma omp for schedule(static)
            for (long t = 0; t < n_strips * n_cb; t++) {
                const long s = t / n_cb, g0 = s * per;
                const int c0 = (int)(t % n_cb) * cb, c1 = C - c0 < cb ? C : c0 + cb;
                int fresh = NR; /* each strip's buffer is transformed once */
                strip_transform(&sc, vbufs + (size_t)s * lines(nx * slab(C)), Ub ? vbbufs + (size_t)s * lines(16 * pair_slab(C)) : NULL,
                                inp, C, H, W, T, g0, (int)(tiles - g0 < per ? tiles - g0 : per), c0, c1, &fresh);
            }
        }
#pragma omp for schedule(guided)
        for (long task = 0; task < n_strips * groups; task++) {
            const long s = task / groups, g0 = s * per;
            const int gi = (int)(task % groups), nt = (int)(tiles - g0 < per ? tiles - g0 : per);
            const size_t buf = (size_t)(shared ? s : id);
            float *V = vbufs + buf * lines(nx * slab(C));
            uint32_t *Vb = Ub ? vbbufs + buf * lines(16 * pair_slab(C)) : NULL;
            if (!shared) strip_transform(&sc, V, Vb, inp, C, H, W, T, g0, nt, 0, C, &zeroed);
            strip_multiply(&sc, out, V, Vb, M, U_given ? U_given : U, Ub, bias, bias_img, C, OC, H, W, T, g0, nt,
                           gi * n_ocb / groups, (gi + 1) * n_ocb / groups, accumulate);
        }
    }
}

/* The weight gradient. Tiles are taken in chunks of DW_KT (all images numbered together, as in
 * the forward pass). A chunk's input tiles are transformed into V_ξ ([ξ][c][tile]) and its
 * output-gradient blocks into Z_ξ ([ξ][oc][tile]); then for each (ξ, strip of NR input channels)
 * its part of V_ξ is transposed into a panel [tile][NR] and Z_ξ · panel is added to dU_ξ (OC × C)
 * on the micro-kernel. Large layers share each chunk among the threads (channels to transform,
 * then (ξ, strip) tasks) and take the chunks in order. Small ones (16·OC·C <= DW_PRIVATE), where
 * that would mean two meetings of the threads for little work, make each chunk one task with its
 * own V, Z and partial dU (the first chunk's straight into dU), and add the partials to dU in
 * chunk order afterwards. Both give dU = ((p₀ + p₁) + p₂) + … with p_k a chunk's products, so
 * the same bits whatever the thread count and whichever way. Last, dw += G'ᵀ dU G' for each
 * (oc, c), with G' = G whose last row is negated (see grad_run). Where the forward pass takes
 * F(4×4, 3×3), so does this: 36 slabs, Z = A dY Aᵀ (grad4_run) and dw += Gᵀ dU G. */
#define DW_KT DFS_GEMM_KC
#define DW_PRIVATE 65536

static size_t dw_panel(void) { return lines((size_t)DW_KT * dfs_gemm_best()->nr); }
/* V_ξ and Z_ξ one cache line further apart than their rows: DW_KT rows are 1 KiB, so without it
 * the 16 values a tile transform writes would all fall in the same L1 set. */
static size_t dw_xs(int rows) { return (size_t)rows * DW_KT + 16; }
static size_t dw_vz(int C, int OC, int nx) { return lines(nx * dw_xs(C)) + lines(nx * dw_xs(OC)); }
static int dw_private(int C, int OC, int nx) { return (size_t)nx * OC * C <= DW_PRIVATE; }

size_t dfs_winograd_dw_workspace(int B, int C, int OC, int H, int W) {
    const int m = dfs_winograd_tile(B, C, OC, H, W, 0), nx = nx_of(m);
    const size_t threads = (size_t)dfs_ops_max_threads(), un = lines(nx * u_slab(C, OC));
    const long chunks = ((long)B * ((H + m - 1) / m) * ((W + m - 1) / m) + DW_KT - 1) / DW_KT;
    if (dw_private(C, OC, nx)) return (size_t)chunks * un + threads * (dw_vz(C, OC, nx) + dw_panel());
    return dw_vz(C, OC, nx) + un + threads * dw_panel();
}



/* Channels [ch0, ch1) of a chunk's runs, run by run (the vector transforms reuse a run's lane
 * plan): an input channel (ch < C) into V, else an output-gradient channel into Z. */
static void dw_channels(const wg_scheme *sc, float *V, float *Z, const float *inp, const float *dout, const wg_run *runs,
                        int n_runs, int ch0, int ch1, int C, int OC, int H, int W) {
    const size_t vxs = dw_xs(C), zxs = dw_xs(OC);
    for (int k = 0; k < n_runs; k++) {
        const wg_run *r = &runs[k];
        for (int ch = ch0; ch < ch1; ch++) {
            if (ch < C) {
                sc->in(V + (size_t)ch * DW_KT + r->j, vxs, inp + ((size_t)r->b * C + ch) * H * W, (size_t)C * H * W, H, W,
                       r->ty, r->tx, r->len);
            } else {
                const int oc = ch - C;
                sc->grad(Z + (size_t)oc * DW_KT + r->j, zxs, dout + ((size_t)r->b * OC + oc) * H * W, (size_t)OC * H * W, H,
                         W, r->ty, r->tx, r->len);
            }
        }
    }
}

/* Task (ξ = x, strip from input channel c0) of a chunk of nt tiles: dU_ξ (+)= Z_ξ · V_ξᵀ. */
static void dw_multiply(const dfs_gemm_impl *g, float *dU, float *panel, const float *V, const float *Z, int x, int c0,
                        int nt, int C, int OC, int add) {
    const int NR = g->nr, nc = C - c0 < NR ? C - c0 : NR;
    const size_t vxs = dw_xs(C), zxs = dw_xs(OC), un = u_slab(C, OC);
    /* columns past nc are never stored: left as they are */
    dfs_gemm_transpose_blocks(g, panel, (size_t)NR, V + x * vxs + (size_t)c0 * DW_KT, DW_KT, nt, nc);
    for (int oc0 = 0; oc0 < OC; oc0 += DFS_GEMM_MR)
        g->kernel(nt, Z + x * zxs + (size_t)oc0 * DW_KT, DW_KT, panel, (size_t)NR, dU + x * un + (size_t)oc0 * C + c0,
                  (size_t)C, OC - oc0 < DFS_GEMM_MR ? OC - oc0 : DFS_GEMM_MR, nc, add);
}

void dfs_conv3x3_winograd_dw(float *dw, float *ws, const float *dout, const float *inp, int B, int C, int H, int W,
                             int OC) {
    const wg_scheme sc = scheme_of(dfs_winograd_tile(B, C, OC, H, W, 0));
    const dfs_gemm_impl *g = dfs_gemm_best();
    const int NR = g->nr, nx = sc.nx, TW = (W + sc.m - 1) / sc.m, T = (H + sc.m - 1) / sc.m * TW;
    const int n_strips = (C + NR - 1) / NR, private = dw_private(C, OC, nx);
    const long tiles = (long)B * T, n_chunks = (tiles + DW_KT - 1) / DW_KT;
    const size_t un = u_slab(C, OC), per_thread = dw_vz(C, OC, nx) + dw_panel();
    /* private: the partials of chunks 1.. (chunk 0's is dU), then each thread's V, Z and panel;
     * shared: V, Z, dU, then each thread's panel */
    float *dU = ws, *parts = ws + lines(nx * un), *bufs = private ? parts + (size_t)(n_chunks - 1) * lines(nx * un) : NULL;
#pragma omp parallel
    {
        const int id = dfs_ops_thread_id();
        wg_run runs[DW_KT];
        if (private) {
            float *V = bufs + (size_t)id * per_thread, *Z = V + lines(nx * dw_xs(C)), *panel = V + dw_vz(C, OC, nx);
#pragma omp for schedule(guided)
            for (long k = 0; k < n_chunks; k++) {
                const long t0 = k * DW_KT;
                const int nt = (int)(tiles - t0 < DW_KT ? tiles - t0 : DW_KT), n_runs = runs_of(runs, t0, nt, T, W, sc.m);
                float *out = k == 0 ? dU : parts + (size_t)(k - 1) * lines(nx * un);
                dw_channels(&sc, V, Z, inp, dout, runs, n_runs, 0, C + OC, C, OC, H, W);
                for (int x = 0; x < nx; x++)
                    for (int s = 0; s < n_strips; s++) dw_multiply(g, out, panel, V, Z, x, s * NR, nt, C, OC, 0);
            }
            /* dU += the partials, in chunk order for every element (each slab's OC·C values) */
            const size_t per_slab = ((size_t)OC * C + 1023) / 1024;
#pragma omp for schedule(static)
            for (size_t t = 0; t < nx * per_slab; t++) {
                const size_t i0 = t / per_slab * un + t % per_slab * 1024, end = t / per_slab * un + (size_t)OC * C;
                const size_t n = end - i0 < 1024 ? end - i0 : 1024;
                for (long k = 1; k < n_chunks; k++) {
                    const float *p = parts + (size_t)(k - 1) * lines(nx * un) + i0;
                    float *d = dU + i0;
#pragma omp simd
                    for (size_t i = 0; i < n; i++) d[i] += p[i];
                }
            }
        } else {
            float *V = parts, *Z = V + lines(nx * dw_xs(C)), *panel = V + dw_vz(C, OC, nx) + (size_t)id * dw_panel();
            for (long t0 = 0; t0 < tiles; t0 += DW_KT) {
                const int nt = (int)(tiles - t0 < DW_KT ? tiles - t0 : DW_KT), n_runs = runs_of(runs, t0, nt, T, W, sc.m);
#pragma omp for schedule(static)
                for (int ch = 0; ch < C + OC; ch += 16)
                    dw_channels(&sc, V, Z, inp, dout, runs, n_runs, ch, ch + 16 < C + OC ? ch + 16 : C + OC, C, OC, H, W);
#pragma omp for schedule(guided)
                for (int task = 0; task < nx * n_strips; task++)
                    dw_multiply(g, dU, panel, V, Z, task / n_strips, task % n_strips * NR, nt, C, OC, t0 > 0);
            }
        }
#pragma omp for schedule(static)
        for (int oc = 0; oc < OC; oc++)
            for (int c0 = 0; c0 < C; c0 += 16)
                sc.dw(dw + ((size_t)oc * C + c0) * 9, dU + (size_t)oc * C + c0, un, C - c0 < 16 ? C - c0 : 16);
    }
}
