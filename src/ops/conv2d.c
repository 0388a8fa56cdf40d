/* 2-D convolution as GEMMs on the micro-kernels of src/ops/gemm.h:
 *     out[b] (OC × P) = w (OC × K) · patches (K × P),   K = C·KH·KW, P = OH·OW.
 * Stride-1 convolutions (all but the downsamplers) work in "padded-row space": each image is
 * copied with its zero padding into planes of Hp × Wp (Hp = OH + KH − 1, Wp = OW + KW − 1) and
 * output pixel (y, x) becomes column q = y·Wp + x of Q = OH·Wp columns. Then the patch row of
 * (c, ky, kx) is the contiguous run plane_c + ky·Wp + kx, and the rows of one (ky, kx) for
 * consecutive channels lie one plane apart: the micro-kernel reads them in place, nothing is
 * gathered. The KW − 1 extra columns of each output row are computed and dropped.
 * A stride s > 1 splits each padded plane into its s × s phases: phase (py, px) holds the padded
 * pixels (s·Y + py, s·X + px). Tap (ky, kx) of output (y, x) reads padded pixel (s·y + ky,
 * s·x + kx), which is pixel (y + ky/s, x + kx/s) of phase (ky mod s, kx mod s): again a
 * contiguous run, now in phase planes of Hp = OH + (KH − 1)/s rows by Wp = OW + (KW − 1)/s, and
 * (KW − 1)/s extra columns per row.
 * 3×3 stride-1 convolutions with one pixel of padding go to winograd.c when there are enough
 * pixels and at least a micro-kernel's rows of output channels (with fewer, transforming the
 * input costs more than the products it saves). Strided convolutions whose extra columns would cost more than packing (small outputs)
 * and negative padding (cropping) pack patch panels instead (implicit im2col, never built whole).
 * Threads split every product into tiles with one writer per output element, and each element
 * sums over K in a fixed order, so results do not depend on the thread count. */
#include <string.h>

#include "core/internal.h"
#include "ops/gemm.h"
#include "ops/ops.h"
#include "ops/vmath.h"
#include "ops/winograd.h"

/* Floats rounded up to whole cache lines, so each workspace part starts 64-byte aligned. */
static size_t lines(size_t n) { return (n + 15) / 16 * 16; }

/* A padded image for stride s: s·s phases of C planes of Hp × Wp each, and room for the
 * kernel's reads past the last row. */
static size_t padded_floats(int C, int KH, int KW, int OH, int OW, int s) {
    const size_t Hp = (size_t)OH + (KH - 1) / s, Wp = (size_t)OW + (KW - 1) / s;
    return lines((size_t)s * s * C * Hp * Wp + (size_t)dfs_gemm_best()->nr + (size_t)KW);
}

/* The padded-row path: the weights reordered (OC, ky, kx, c); per image in flight, a padded
 * image and an output in q columns. Batches of at least the thread count give each thread whole
 * images (no synchronisation per image); smaller ones split every image among the threads. */
static size_t rows_image_floats(int C, int OC, int KH, int KW, int OH, int OW, int s) {
    return padded_floats(C, KH, KW, OH, OW, s) + lines((size_t)OC * OH * (OW + (KW - 1) / s));
}
static size_t rows_floats(int C, int OC, int KH, int KW, int OH, int OW, int s) {
    return lines((size_t)OC * C * KH * KW) + (size_t)dfs_ops_max_threads() * rows_image_floats(C, OC, KH, KW, OH, OW, s);
}

/* Packed panels: per thread, one panel of patch rows and the strip's sums (OC × NR). */
static size_t packed_thread_floats(int OC) {
    const size_t NR = (size_t)dfs_gemm_best()->nr;
    return DFS_GEMM_KC * NR + lines((size_t)OC * NR);
}

size_t dfs_conv2d_workspace(int B, int C, int OC, int KH, int KW, int stride, int OH, int OW) {
    const size_t packed = (size_t)dfs_ops_max_threads() * packed_thread_floats(OC);
    const size_t rows = rows_floats(C, OC, KH, KW, OH, OW, stride);
    const size_t wg = dfs_winograd_applies(B, KH, KW, stride, 1, 1, OH, OW, OH, OW) ? dfs_winograd_workspace(B, C, OC, OH, OW) : 0;
    const size_t m = packed > rows ? packed : rows;
    return m > wg ? m : wg;
}

/* Zeroes the room past the planes: runs that start in the last plane read into it. */
static void zero_slack(float *pad, int C, int KH, int KW, int OH, int OW, int s) {
    const size_t used = (size_t)s * s * C * (OH + (KH - 1) / s) * (OW + (KW - 1) / s);
    memset(pad + used, 0, sizeof(float) * (padded_floats(C, KH, KW, OH, OW, s) - used));
}

/* Channels [c0, c1) of image img (C, H, W) into the s × s phases of its padded planes: phase
 * (py, px) of channel c is the plane at ((py·s + px)·C + c)·Hp·Wp. */
static void pad_phases(float *pad, const float *img, int C, int c0, int c1, int H, int W, int Hp, int Wp, int s,
                       int pad_t, int pad_l) {
    const size_t plane = (size_t)Hp * Wp;
    if (s <= 2) { /* the common cases, through the implementation's phase_plane */
        const dfs_gemm_impl *g = dfs_gemm_best();
        for (int py = 0; py < s; py++)
            for (int px = 0; px < s; px++)
                for (int c = c0; c < c1; c++)
                    g->phase_plane(pad + ((size_t)(py * s + px) * C + c) * plane, Hp, Wp, img + (size_t)c * H * W, H, W,
                                   py - pad_t, px - pad_l, s);
        return;
    }
    for (int py = 0; py < s; py++)
        for (int px = 0; px < s; px++) {
            /* the columns X0 <= X < X1 of this phase fall inside the image */
            const int off = px - pad_l, X0 = off >= 0 ? 0 : (-off + s - 1) / s;
            const int X1 = W - off <= 0 ? 0 : (W - off + s - 1) / s < Wp ? (W - off + s - 1) / s : Wp;
            for (int c = c0; c < c1; c++)
                for (int Y = 0; Y < Hp; Y++) {
                    float *row = pad + ((size_t)(py * s + px) * C + c) * plane + (size_t)Y * Wp;
                    const int y = s * Y + py - pad_t;
                    if (y < 0 || y >= H || X1 <= X0) {
                        memset(row, 0, sizeof(float) * (size_t)Wp);
                        continue;
                    }
                    const float *src = img + ((size_t)c * H + y) * W + off;
                    for (int X = 0; X < X0; X++) row[X] = 0.0f;
                    for (int X = X0; X < X1; X++) row[X] = src[(size_t)s * X];
                    for (int X = X1; X < Wp; X++) row[X] = 0.0f;
                }
        }
}

#define OC_CHUNK 64 /* output channels per tile */

/* The geometry of one convolution in padded-row space. */
typedef struct rows_conv {
    const dfs_gemm_impl *g;
    const float *wr; /* (OC, ky, kx, c) */
    int C, OC, KW, s, ksz, K, Wp, Q, OH, OW, n_strips, n_tiles;
    size_t plane;
} rows_conv;

/* Tile t of one image: q columns [q0, q0+NR) of output channels [m0, m0+OC_CHUNK). */
static void rows_tile(const rows_conv *v, const float *pad, float *qout, int t) {
    const int NR = v->g->nr, q0 = t % v->n_strips * NR, m0 = t / v->n_strips * OC_CHUNK;
    const int nr = v->Q - q0 < NR ? v->Q - q0 : NR, rows = v->OC - m0 < OC_CHUNK ? v->OC - m0 : OC_CHUNK;
    for (int r = 0; r < v->ksz; r++) {
        const int ky = r / v->KW, kx = r % v->KW, phase = ky % v->s * v->s + kx % v->s;
        const float *br = pad + (size_t)phase * v->C * v->plane + (size_t)(ky / v->s) * v->Wp + kx / v->s + q0;
        for (int c0 = 0; c0 < v->C; c0 += DFS_GEMM_KC) {
            const int kc = v->C - c0 < DFS_GEMM_KC ? v->C - c0 : DFS_GEMM_KC;
            for (int i0 = 0; i0 < rows; i0 += DFS_GEMM_MR) {
                const int mr = rows - i0 < DFS_GEMM_MR ? rows - i0 : DFS_GEMM_MR;
                v->g->kernel(kc, v->wr + (size_t)(m0 + i0) * v->K + (size_t)r * v->C + c0, (size_t)v->K, br + c0 * v->plane,
                             v->plane, qout + (size_t)(m0 + i0) * v->Q + q0, (size_t)v->Q, mr, nr, r > 0 || c0 > 0);
            }
        }
    }
}

/* o[0..n) (+)= (q + b) + b2, what every path does with its sums: stored, or added to o when
 * accumulate is set. o is q, or does not overlap it: vectorised (the same operations per element). */
static void put_row(float *o, const float *q, int n, float b, float b2, int accumulate) {
    if (accumulate)
#pragma omp simd
        for (int x = 0; x < n; x++) o[x] += (q[x] + b) + b2;
    else
#pragma omp simd
        for (int x = 0; x < n; x++) o[x] = (q[x] + b) + b2;
}

/* Output channels [o0, o1) of one image from q columns (q = y·Wp + x → p = y·OW + x), with the
 * bias and bias2 (this image's (OC), or NULL) as put_row adds them. */
static void rows_store(const rows_conv *v, float *ob, const float *qout, const float *bias, const float *bias2, int accumulate,
                       int o0, int o1) {
    for (int oc = o0; oc < o1; oc++)
        for (int y = 0; y < v->OH; y++)
            put_row(ob + ((size_t)oc * v->OH + y) * v->OW, qout + (size_t)oc * v->Q + (size_t)y * v->Wp, v->OW,
                    bias ? bias[oc] : 0.0f, bias2 ? bias2[oc] : 0.0f, accumulate);
}

/* The weights in the order the padded-row path reads them, (OC, ky, kx, c). Shared out among the team. */
static void reorder_weights(float *wr, const float *w, int C, int OC, int ksz) {
#pragma omp for schedule(static)
    for (int oc = 0; oc < OC; oc++)
        for (int c = 0; c < C; c++)
            for (int r = 0; r < ksz; r++) wr[((size_t)oc * ksz + r) * C + c] = w[((size_t)oc * C + c) * ksz + r];
}

/* out (+)= conv(inp, w) in padded-row space, pad_t >= 0, pad_l >= 0 (see the top of the file).
 * wr: the weights already reordered, or NULL. A 1×1 stride-1 convolution without padding reads
 * its images in place (their planes are the padded ones) and, unless accumulating, has the
 * kernel write its sums straight into the output (the same layout), adding the biases there:
 * the same sums, without the two copies. The last image is still copied: the kernel loads
 * whole vectors, which at the end of its last plane would read past the input. */
static void conv_rows(float *out, float *ws, const float *inp, const float *w, const float *wr_given, const float *bias,
                      const float *bias_img, int B, int C, int H, int W, int OC, int KH, int KW, int s, int pad_t,
                      int pad_l, int OH, int OW, int accumulate) {
    if (KH * KW == 1) wr_given = w; /* (OC, 1, 1, C) is already the order */
    const int Wp = OW + (KW - 1) / s, Hp = OH + (KH - 1) / s, threads = dfs_ops_max_threads();
    rows_conv v = {dfs_gemm_best(), wr_given ? wr_given : ws, C, OC, KW, s, KH * KW, C * KH * KW, Wp, OH * Wp, OH, OW,
                   0, 0, (size_t)Hp * Wp};
    v.n_strips = (v.Q + v.g->nr - 1) / v.g->nr;
    v.n_tiles = v.n_strips * ((OC + OC_CHUNK - 1) / OC_CHUNK);
    const size_t per_image = rows_image_floats(C, OC, KH, KW, OH, OW, s), pad_n = padded_floats(C, KH, KW, OH, OW, s);
    float *wr = ws, *bufs = ws + lines((size_t)OC * v.K);
    const size_t in_img = (size_t)C * H * W, out_img = (size_t)OC * OH * OW;
    const int as_is = KH * KW == 1 && s == 1 && pad_t == 0 && pad_l == 0 && H == OH && W == OW;
#pragma omp parallel
    {
        if (!wr_given) reorder_weights(wr, w, C, OC, v.ksz);
        if (B >= threads) {
            float *pad = bufs + (size_t)dfs_ops_thread_id() * per_image, *qout = pad + pad_n;
            zero_slack(pad, C, KH, KW, OH, OW, s);
#pragma omp for schedule(guided)
            for (int b = 0; b < B; b++) {
                const int in_place = as_is && b < B - 1, direct = as_is && !accumulate;
                const float *src = in_place ? inp + b * in_img : pad;
                float *sums = direct ? out + b * out_img : qout;
                if (!in_place) pad_phases(pad, inp + b * in_img, C, 0, C, H, W, Hp, Wp, s, pad_t, pad_l);
                for (int t = 0; t < v.n_tiles; t++) rows_tile(&v, src, sums, t);
                if (!direct || bias || bias_img)
                    rows_store(&v, out + b * out_img, sums, bias, bias_img ? bias_img + (size_t)b * OC : NULL, accumulate, 0, OC);
            }
        } else {
            float *pad = bufs, *qout = pad + pad_n;
#pragma omp single
            zero_slack(pad, C, KH, KW, OH, OW, s);
            for (int b = 0; b < B; b++) {
                const int in_place = as_is && b < B - 1, direct = as_is && !accumulate;
                const float *src = in_place ? inp + b * in_img : pad;
                float *sums = direct ? out + b * out_img : qout;
                if (!in_place)
#pragma omp for schedule(static)
                    for (int c = 0; c < C; c++) pad_phases(pad, inp + b * in_img, C, c, c + 1, H, W, Hp, Wp, s, pad_t, pad_l);
#pragma omp for schedule(static)
                for (int t = 0; t < v.n_tiles; t++) rows_tile(&v, src, sums, t);
                if (!direct || bias || bias_img)
#pragma omp for schedule(static)
                    for (int oc = 0; oc < OC; oc++)
                        rows_store(&v, out + b * out_img, sums, bias, bias_img ? bias_img + (size_t)b * OC : NULL, accumulate,
                                   oc, oc + 1);
            }
        }
    }
}

/* Packs rows [k0, k0+kc) of the patch matrix for pixels [p0, p0+ncols) of one image into a strip
 * of NR columns ([k][NR], zero beyond ncols and outside the image). */
static void pack_strip(float *dst, int NR, const float *img, int H, int W, int KH, int KW, int stride, int pad_t,
                       int pad_l, int OW, int k0, int kc, int p0, int ncols) {
    int oy[64], ox[64];
    DFS_ASSERT(NR <= 64);
    for (int j = 0; j < ncols; j++) {
        oy[j] = (p0 + j) / OW;
        ox[j] = (p0 + j) % OW;
    }
    const int ksz = KH * KW;
    for (int kk = 0; kk < kc; kk++) {
        const int k = k0 + kk, c = k / ksz, r = k % ksz, ky = r / KW, kx = r % KW;
        const float *plane = img + (size_t)c * H * W;
        float *d = dst + (size_t)kk * NR;
        int j = 0;
        if (stride == 1) {
            /* runs of pixels in one output row read one contiguous input run */
            while (j < ncols) {
                const int y = oy[j], iy = y + ky - pad_t;
                int run = OW - ox[j];
                if (run > ncols - j) run = ncols - j;
                if (iy < 0 || iy >= H) {
                    memset(d + j, 0, sizeof(float) * (size_t)run);
                } else {
                    const float *src = plane + (size_t)iy * W;
                    const int ix0 = ox[j] + kx - pad_l;
                    int lo = -ix0 > 0 ? -ix0 : 0, hi = W - ix0 < run ? W - ix0 : run;
                    if (hi < lo) hi = lo;
                    for (int t = 0; t < lo; t++) d[j + t] = 0.0f;
                    memcpy(d + j + lo, src + ix0 + lo, sizeof(float) * (size_t)(hi - lo));
                    for (int t = hi; t < run; t++) d[j + t] = 0.0f;
                }
                j += run;
            }
        } else {
            for (; j < ncols; j++) {
                const int iy = oy[j] * stride + ky - pad_t, ix = ox[j] * stride + kx - pad_l;
                d[j] = iy >= 0 && iy < H && ix >= 0 && ix < W ? plane[(size_t)iy * W + ix] : 0.0f;
            }
        }
        for (; j < NR; j++) d[j] = 0.0f;
    }
}

/* The F(2×2, 3×3) weights that lead a 3×3 kernel's prepared weights (the reordered ones follow). */
static size_t winograd_floats(int C, int OC, int KH, int KW) {
    return KH == 3 && KW == 3 ? dfs_winograd_weights_floats(C, OC, 2) : 0;
}

/* The Winograd tile side a convolution takes (0: none). */
static int winograd_tile(int B, int C, int OC, int KH, int KW, int stride, int pad_t, int pad_l, int H, int W, int OH, int OW,
                         int bf16) {
    return OC >= DFS_GEMM_MR && dfs_winograd_applies(B, KH, KW, stride, pad_t, pad_l, H, W, OH, OW)
               ? dfs_winograd_tile(B, C, OC, H, W, bf16)
               : 0;
}

/* Columns the micro-kernel computes for n columns in strips of NR (widths in steps of 16). */
static long computed_columns(long n, int NR) { return n / NR * NR + (n % NR + 15) / 16 * 16; }

/* out (+)= (conv(inp, w) + bias) + bias_img[b]: stored, or added to out when accumulate is set. */
static void conv_gemm(float *out, float *ws, const float *inp, const float *w, const float *prep, int bf16,
                      const float *bias, const float *bias_img, int B, int C, int H, int W, int OC, int KH, int KW,
                      int stride, int pad_t, int pad_l, int OH, int OW, int accumulate) {
    if (winograd_tile(B, C, OC, KH, KW, stride, pad_t, pad_l, H, W, OH, OW, bf16)) {
        dfs_conv3x3_winograd(out, ws, inp, w, bf16 ? NULL : prep, bf16 ? (const uint32_t *)prep : NULL, bias, bias_img, B, C,
                             H, W, OC, accumulate);
        return;
    }
    const dfs_gemm_impl *g = dfs_gemm_best();
    const int NR = g->nr, K = C * KH * KW, P = OH * OW, Wp = OW + (KW - 1) / stride;
    /* strided: in padded-row space unless its extra columns cost more than a quarter more work */
    if (pad_t >= 0 && pad_l >= 0 &&
        (stride == 1 || 4 * computed_columns((long)OH * Wp, NR) <= 5 * computed_columns(P, NR))) {
        const float *wr = prep ? prep + winograd_floats(C, OC, KH, KW) : NULL;
        conv_rows(out, ws, inp, w, wr, bias, bias_img, B, C, H, W, OC, KH, KW, stride, pad_t, pad_l, OH, OW, accumulate);
        return;
    }
    const int n_strips = (P + NR - 1) / NR;
    const long n_work = (long)B * n_strips;
#pragma omp parallel for schedule(static)
    for (long t = 0; t < n_work; t++) {
        const int b = (int)(t / n_strips), s = (int)(t % n_strips);
        const int p0 = s * NR, cols = P - p0 < NR ? P - p0 : NR;
        float *panel = ws + (size_t)dfs_ops_thread_id() * packed_thread_floats(OC);
        float *sums = panel + (size_t)DFS_GEMM_KC * NR; /* OC × NR */
        const float *img = inp + (size_t)b * C * H * W;
        for (int k0 = 0; k0 < K; k0 += DFS_GEMM_KC) {
            const int kc = K - k0 < DFS_GEMM_KC ? K - k0 : DFS_GEMM_KC;
            pack_strip(panel, NR, img, H, W, KH, KW, stride, pad_t, pad_l, OW, k0, kc, p0, cols);
            for (int m0 = 0; m0 < OC; m0 += DFS_GEMM_MR) {
                const int mr = OC - m0 < DFS_GEMM_MR ? OC - m0 : DFS_GEMM_MR;
                g->kernel(kc, w + (size_t)m0 * K + k0, (size_t)K, panel, (size_t)NR, sums + (size_t)m0 * NR, (size_t)NR, mr,
                          cols, k0 > 0);
            }
        }
        for (int oc = 0; oc < OC; oc++)
            put_row(out + ((size_t)b * OC + oc) * P + p0, sums + (size_t)oc * NR, cols, bias ? bias[oc] : 0.0f,
                    bias_img ? bias_img[(size_t)b * OC + oc] : 0.0f, accumulate);
    }
}

void dfs_conv2d_forward(float *out, float *ws, const float *inp, const float *w, const float *bias, int B, int C,
                        int H, int W, int OC, int KH, int KW, int stride, int pad_t, int pad_l, int OH, int OW) {
    DFS_ASSERT(stride >= 1 && OH >= 1 && OW >= 1);
    conv_gemm(out, ws, inp, w, NULL, 0, bias, NULL, B, C, H, W, OC, KH, KW, stride, pad_t, pad_l, OH, OW, 0);
}

/* Prepared weights: for 3×3 kernels the F(2×2, 3×3) transform (in BF16 pairs of channels, half
 * its room, when bf16 is set), then (for any kernel but 1×1, whose order needs no change) the
 * stride-1 path's reordered copy: at most 25/9 of the weights; or, for a convolution that takes
 * F(4×4, 3×3) in F32, only its transform (36/9). The room for both compute types. */
size_t dfs_conv2d_prepared_floats(int B, int C, int H, int W, int OC, int KH, int KW, int stride, int pad_t, int pad_l,
                                  int OH, int OW) {
    const size_t n = KH * KW > 1 ? winograd_floats(C, OC, KH, KW) + (size_t)OC * C * KH * KW : 0;
    const size_t n4 = winograd_tile(B, C, OC, KH, KW, stride, pad_t, pad_l, H, W, OH, OW, 0) == 4
                          ? dfs_winograd_weights_floats(C, OC, 4)
                          : 0;
    return n > n4 ? n : n4;
}

void dfs_conv2d_prepare(float *prep, const float *w, int B, int C, int H, int W, int OC, int KH, int KW, int stride,
                        int pad_t, int pad_l, int OH, int OW, int bf16) {
    if (KH * KW == 1) return;
    if (winograd_tile(B, C, OC, KH, KW, stride, pad_t, pad_l, H, W, OH, OW, bf16) == 4) {
        dfs_winograd_weights(prep, w, C, OC, 4);
        return;
    }
    if (KH == 3 && KW == 3 && bf16) dfs_winograd_weights_bf16((uint32_t *)prep, w, C, OC);
    else if (KH == 3 && KW == 3) dfs_winograd_weights(prep, w, C, OC, 2);
#pragma omp parallel
    reorder_weights(prep + winograd_floats(C, OC, KH, KW), w, C, OC, KH * KW);
}

void dfs_conv2d_forward_prepared(float *out, float *ws, const float *inp, const float *w, const float *prep,
                                 const float *bias, const float *bias_img, int B, int C, int H, int W, int OC, int KH,
                                 int KW, int stride, int pad_t, int pad_l, int OH, int OW, int bf16, int accumulate) {
    DFS_ASSERT(stride >= 1 && OH >= 1 && OW >= 1);
    conv_gemm(out, ws, inp, w, prep, bf16, bias, bias_img, B, C, H, W, OC, KH, KW, stride, pad_t, pad_l, OH, OW, accumulate);
}

/* The weights of the taps ky = py + s·j, kx = px + s·i (j < kh, i < kw), transposed over channels and
 * flipped in space: wp (C, OC, kh, kw). For s = 1 (py = px = 0) all the taps: the weights of a
 * stride-1 convolution's input gradient. */
static void flipped_taps(float *wp, const float *w, int C, int OC, int KH, int KW, int s, int py, int px, int kh, int kw) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        for (int oc = 0; oc < OC; oc++)
            for (int a = 0; a < kh; a++)
                for (int b = 0; b < kw; b++)
                    wp[(((size_t)c * OC + oc) * kh + a) * kw + b] =
                        w[(((size_t)oc * C + c) * KH + py + s * (kh - 1 - a)) * KW + px + s * (kw - 1 - b)];
}

/* The input gradient of a stride-s convolution, phase by phase: phase (py, px) of the padded
 * input (pixels (s·u + py, s·v + px)) only meets the taps ky ≡ py, kx ≡ px (mod s), and its
 * gradient is the stride-1 convolution of dout with those taps, flipped and transposed over
 * channels, padded by their count − 1 (tap ky = py + s·j reads dout row u − j). Each phase runs
 * on the forward path into tmp (B, C, Hp, Wp) and is copied to the input pixels it covers, each
 * pixel in exactly one phase; pixels no phase covers (past what the forward reads) get zero.
 * Workspace: the phase's weights, tmp and the convolution's own. */
static size_t dx_phases_floats(int B, int C, int OC, int KH, int KW, int s, int OH, int OW) {
    const size_t Hp = (size_t)OH + (KH - 1) / s, Wp = (size_t)OW + (KW - 1) / s;
    return lines((size_t)C * OC * KH * KW) + lines((size_t)B * C * Hp * Wp) +
           dfs_conv2d_workspace(B, OC, C, (KH + s - 1) / s, (KW + s - 1) / s, 1, (int)Hp, (int)Wp);
}

static void dx_phases(float *dinp, float *ws, const float *dout, const float *w, int B, int C, int H, int W, int OC,
                      int KH, int KW, int s, int pad_t, int pad_l, int OH, int OW, int add) {
    const int Hp = OH + (KH - 1) / s, Wp = OW + (KW - 1) / s;
    float *wp = ws, *tmp = ws + lines((size_t)C * OC * KH * KW), *cws = tmp + lines((size_t)B * C * Hp * Wp);
    for (int py = 0; py < s; py++)
        for (int px = 0; px < s; px++) {
            const int kh = py < KH ? (KH - py + s - 1) / s : 0, kw = px < KW ? (KW - px + s - 1) / s : 0;
            if (kh && kw) {
                flipped_taps(wp, w, C, OC, KH, KW, s, py, px, kh, kw);
                conv_gemm(tmp, cws, dout, wp, NULL, 0, NULL, NULL, B, OC, OH, OW, C, kh, kw, 1, kh - 1, kw - 1, Hp, Wp, 0);
            }
            /* the phase's pixels u0 <= u < u1, v0 <= v < v1: 0 <= s·u + py − pad_t < H, likewise x */
            const int u0 = pad_t > py ? (pad_t - py + s - 1) / s : 0, v0 = pad_l > px ? (pad_l - px + s - 1) / s : 0;
            const int u1 = H + pad_t - py <= 0 ? 0 : (H + pad_t - py + s - 1) / s < Hp ? (H + pad_t - py + s - 1) / s : Hp;
            const int v1 = W + pad_l - px <= 0 ? 0 : (W + pad_l - px + s - 1) / s < Wp ? (W + pad_l - px + s - 1) / s : Wp;
            const int nv = v1 - v0, none = !kh || !kw;
            if (nv <= 0 || (none && add)) continue;
#pragma omp parallel for schedule(static)
            for (long bc = 0; bc < (long)B * C; bc++)
                for (int u = u0; u < u1; u++) {
                    float *row = dinp + ((size_t)bc * H + (size_t)(s * u + py - pad_t)) * W + (s * v0 + px - pad_l);
                    const float *t = tmp + ((size_t)bc * Hp + u) * Wp + v0;
                    if (none)
                        for (int k = 0; k < nv; k++) row[(size_t)s * k] = 0.0f;
                    else if (add)
                        for (int k = 0; k < nv; k++) row[(size_t)s * k] += t[k];
                    else
                        for (int k = 0; k < nv; k++) row[(size_t)s * k] = t[k];
                }
        }
    if (add) return;
    /* rows and columns past the phases (y + pad_t >= s·Hp, x + pad_l >= s·Wp) */
    const int y1 = s * Hp - pad_t, x1 = s * Wp - pad_l;
#pragma omp parallel for schedule(static)
    for (long bc = 0; bc < (long)B * C; bc++)
        for (int y = 0; y < H; y++) {
            float *row = dinp + ((size_t)bc * H + y) * W;
            const int from = y >= y1 ? 0 : x1 < 0 ? 0 : x1;
            if (from < W) memset(row + from, 0, sizeof(float) * (size_t)(W - from));
        }
}

/* The weight gradient works in padded-row space too (conv_dw_rows): dWᵀ = patches · doutᵀ reads
 * the patch rows in place and packs only dout (zero in the extra columns), reused by every row.
 * DW_IMAGES images are prepared together, so the threads meet twice per group of images. */
#define DW_IMAGES 8

size_t dfs_conv2d_backward_workspace(int B, int C, int OC, int KH, int KW, int stride, int OH, int OW) {
    const size_t NR = (size_t)dfs_gemm_best()->nr, K = (size_t)C * KH * KW;
    const size_t Q = (size_t)OH * (OW + (KW - 1) / stride), ocp = (OC + NR - 1) / NR * NR;
    /* dWᵀ, the padded images (their phases for stride > 1) and dout packed as strips of NR output
     * channels; for stride 1 then the flipped weights and the workspace of the forward
     * convolution that gives dinp */
    const size_t dw1 = lines(K * OC) + DW_IMAGES * (padded_floats(C, KH, KW, OH, OW, stride) + lines(Q * ocp));
    const size_t fw = dfs_conv2d_workspace(B, OC, C, KH, KW, 1, OH + KH - 1, OW + KW - 1);
    const size_t fw_same = dfs_conv2d_workspace(B, OC, C, KH, KW, 1, OH, OW); /* the Winograd tiles of OH × OW */
    const size_t dx1 = stride > 1 ? dx_phases_floats(B, C, OC, KH, KW, stride, OH, OW)
                                  : lines(K * OC) + (fw > fw_same ? fw : fw_same);
    const size_t wg = dfs_winograd_applies(B, KH, KW, stride, 1, 1, OH, OW, OH, OW) ? dfs_winograd_dw_workspace(B, C, OC, OH, OW) : 0;
    const size_t m = dw1 > wg ? dw1 : wg;
    return m > dx1 ? m : dx1;
}

/* dW += Σ_b dout_b · patches_bᵀ, computed as dWᵀ (rows ordered (ky, kx, c), so eight
 * consecutive rows are eight channel planes at one stride) = patches · doutᵀ in padded-row space
 * (for stride s > 1 the rows of tap (ky, kx) are runs of phase (ky mod s, kx mod s), as in the
 * forward pass). Threads split dWᵀ into (8-row block, strip) tiles; each tile sums images and
 * pixels in order, so the result does not depend on the thread count. A 1×1 stride-1
 * convolution without padding reads the images in place (their planes are the padded ones). */
static void conv_dw_rows(float *dw, float *ws, const float *dout, const float *inp, int B, int C, int H, int W, int OC,
                         int KH, int KW, int stride, int pad_t, int pad_l, int OH, int OW) {
    const dfs_gemm_impl *g = dfs_gemm_best();
    const int s = stride, NR = g->nr, ksz = KH * KW, K = C * ksz, Hp = OH + (KH - 1) / s, Wp = OW + (KW - 1) / s;
    const int Q = OH * Wp, n_strips = (OC + NR - 1) / NR, c_blocks = (C + DFS_GEMM_MR - 1) / DFS_GEMM_MR;
    const int n_rblocks = ksz * c_blocks, in_place = ksz == 1 && s == 1 && pad_t == 0 && pad_l == 0 && H == OH && W == OW;
    const size_t plane = (size_t)Hp * Wp, pad_n = padded_floats(C, KH, KW, OH, OW, s), bp_n = lines((size_t)Q * n_strips * NR);
    float *dwt = ws, *pads = ws + lines((size_t)K * OC), *bps = pads + DW_IMAGES * pad_n;
    for (int i = 0; i < DW_IMAGES && !in_place; i++) zero_slack(pads + i * pad_n, C, KH, KW, OH, OW, s);
    memset(dwt, 0, sizeof(float) * (size_t)K * OC);
#pragma omp parallel
    for (int b0 = 0; b0 < B; b0 += DW_IMAGES) { /* every thread walks the groups; the loops inside are shared out */
        const int nb = B - b0 < DW_IMAGES ? B - b0 : DW_IMAGES, n_pads = in_place ? 0 : nb * C;
        /* the padded images, and doutᵀ as strips [q][NR], zero in the extra columns and past OC */
#pragma omp for schedule(static)
        for (int t = 0; t < n_pads + nb * n_strips * OH; t++) {
            if (t < n_pads) {
                const int i = t / C, c = t % C;
                pad_phases(pads + i * pad_n, inp + (size_t)(b0 + i) * C * H * W, C, c, c + 1, H, W, Hp, Wp, s, pad_t, pad_l);
                continue;
            }
            const int i = (t - n_pads) / (n_strips * OH), st = (t - n_pads) / OH % n_strips, y = (t - n_pads) % OH;
            const int o0 = st * NR, nj = OC - o0 < NR ? OC - o0 : NR;
            float *d = bps + i * bp_n + ((size_t)st * Q + (size_t)y * Wp) * NR;
            memset(d, 0, sizeof(float) * (size_t)Wp * NR);
            dfs_gemm_transpose_blocks(g, d, (size_t)NR, dout + (((size_t)(b0 + i) * OC + o0) * OH + y) * OW,
                                      (size_t)OH * OW, OW, nj);
        }
#pragma omp for schedule(static)
        for (int t = 0; t < n_rblocks * n_strips; t++) {
            const int rb = t / n_strips, st = t % n_strips;
            const int r = rb / c_blocks, c0 = rb % c_blocks * DFS_GEMM_MR, ky = r / KW, kx = r % KW;
            const int mr = C - c0 < DFS_GEMM_MR ? C - c0 : DFS_GEMM_MR, nr = OC - st * NR < NR ? OC - st * NR : NR;
            const size_t tap = ((size_t)(ky % s * s + kx % s) * C + c0) * plane + (size_t)(ky / s) * Wp + kx / s;
            float *cp = dwt + ((size_t)r * C + c0) * OC + (size_t)st * NR;
            for (int i = 0; i < nb; i++) {
                const float *pad = in_place ? inp + (size_t)(b0 + i) * C * H * W : pads + i * pad_n;
                const float *a = pad + tap, *bp = bps + i * bp_n;
                for (int q0 = 0; q0 < Q; q0 += DFS_GEMM_KC) {
                    const int kc = Q - q0 < DFS_GEMM_KC ? Q - q0 : DFS_GEMM_KC;
                    g->kernel(kc, a + q0, plane, bp + ((size_t)st * Q + q0) * NR, (size_t)NR, cp, (size_t)OC, mr, nr, 1);
                }
            }
        }
    }
#pragma omp parallel for schedule(static)
    for (int oc = 0; oc < OC; oc++)
        for (int c = 0; c < C; c++)
            for (int r = 0; r < ksz; r++) dw[((size_t)oc * C + c) * ksz + r] += dwt[((size_t)r * C + c) * OC + oc];
}

void dfs_conv2d_backward(float *dinp, float *dw, float *db, float *ws, const float *dout, const float *inp,
                         const float *w, int B, int C, int H, int W, int OC, int KH, int KW, int stride, int pad_t,
                         int pad_l, int OH, int OW, int dinp_add) {
    const int K = C * KH * KW, P = OH * OW;
    if (db) { /* block sums in double (vmath.h), images in order */
        const dfs_vmath_impl *vm = dfs_vmath_best();
#pragma omp parallel for schedule(static)
        for (int oc = 0; oc < OC; oc++) {
            double s = 0.0;
            for (int b = 0; b < B; b++) s += vm->sum(dout + ((size_t)b * OC + oc) * P, (size_t)P);
            db[oc] += (float)s;
        }
    }
    if (dw && dfs_winograd_applies(B, KH, KW, stride, pad_t, pad_l, H, W, OH, OW)) {
        dfs_conv3x3_winograd_dw(dw, ws, dout, inp, B, C, H, W, OC);
    } else if (dw) {
        conv_dw_rows(dw, ws, dout, inp, B, C, H, W, OC, KH, KW, stride, pad_t, pad_l, OH, OW);
    }
    if (dinp && stride == 1) {
        /* The input gradient of a stride-1 convolution is the convolution of dout with the
         * weights transposed over channels and flipped in space, padded by K − 1 − pad: the
         * forward path's packing and micro-kernel, summed in a fixed order. */
        float *wt = ws, *conv_ws = ws + lines((size_t)K * OC); /* wt: (C, OC, KH, KW) */
        flipped_taps(wt, w, C, OC, KH, KW, 1, 0, 0, KH, KW);
        conv_gemm(dinp, conv_ws, dout, wt, NULL, 0, NULL, NULL, B, OC, OH, OW, C, KH, KW, 1, KH - 1 - pad_t, KW - 1 - pad_l,
                  H, W, dinp_add);
    } else if (dinp) {
        dx_phases(dinp, ws, dout, w, B, C, H, W, OC, KH, KW, stride, pad_t, pad_l, OH, OW, dinp_add);
    }
}
