/* Tensor ops used by the UNet, float32, NCHW. Kernels return void: they assert on programmer
 * errors and never fail. Each op writes every output element from exactly one thread, so results
 * do not depend on the thread count. Naive versions live in src/ops/ref/ (test oracles). */
#ifndef DFS_OPS_OPS_H
#define DFS_OPS_OPS_H

#include <stddef.h>

/* Sets the number of worker threads used by the ops called from this thread. */
void dfs_ops_set_threads(int n_threads);
int dfs_ops_max_threads(void); /* the count set for this thread's parallel regions */
/* Whether the implementation named "avx512", "avx2" or "scalar" may be chosen: what cpuid allows,
 * lowered by DIFFUSE_ISA (src/ops/isa.c). */
int dfs_isa_permits(const char *impl_name);
int dfs_ops_thread_id(void);   /* inside a parallel region: 0 .. max_threads - 1 */

typedef enum dfs_act {
    DFS_ACT_NONE,
    DFS_ACT_SILU, /* x * sigmoid(x), "silu" and "swish" in diffusers */
    DFS_ACT_MISH, /* x * tanh(softplus(x)) */
    DFS_ACT_GELU, /* exact: x/2 * (1 + erf(x/sqrt 2)) */
    DFS_ACT_RELU
} dfs_act;

/* 2-D convolution. inp: (B, C, H, W); w: (OC, C, KH, KW); bias: (OC) or NULL; out: (B, OC, OH, OW).
 * Zero padding pad_t rows above and pad_l columns left; the bottom/right padding is whatever OH,
 * OW imply: OH = (H + pad_t + pad_b - KH) / stride + 1. Matches torch.nn.functional.conv2d.
 * ws: dfs_conv2d_workspace(...) floats of scratch, 64-byte aligned, sized for the thread count
 * set when it was computed. */
size_t dfs_conv2d_workspace(int B, int C, int OC, int KH, int KW, int stride, int OH, int OW);
void dfs_conv2d_forward(float *out, float *ws, const float *inp, const float *w, const float *bias, int B, int C,
                        int H, int W, int OC, int KH, int KW, int stride, int pad_t, int pad_l, int OH, int OW);

/* Weights prepared once for repeated forward passes (inference): dfs_conv2d_prepared_floats(...)
 * floats (0: nothing to prepare) filled by dfs_conv2d_prepare from w, then given with w to
 * dfs_conv2d_forward_prepared, which is dfs_conv2d_forward without redoing that work per call
 * (the Winograd transform of 3×3 weights). prep holds what a forward pass of that geometry (the
 * arguments of dfs_conv2d_forward_prepared) needs: it must be recomputed when w or the geometry
 * changes (the Winograd tiles of small images depend on the batch and size). With bf16 set
 * (the same in both calls) the Winograd products run in BF16 (gemm.h): weights and transformed
 * inputs rounded to 8 significant bits, multiplied with AVX-512 BF16 where the CPU has it (not
 * faster than f32 on every such CPU: docs/performance.md). With pad_t, pad_l >= 0:
 * bias_img (B, OC), when not NULL, is added per image after the bias, out = (conv + bias) +
 * bias_img[b], and with accumulate set that is added to out instead of stored. */
size_t dfs_conv2d_prepared_floats(int B, int C, int H, int W, int OC, int KH, int KW, int stride, int pad_t, int pad_l,
                                  int OH, int OW);
void dfs_conv2d_prepare(float *prep, const float *w, int B, int C, int H, int W, int OC, int KH, int KW, int stride,
                        int pad_t, int pad_l, int OH, int OW, int bf16);
void dfs_conv2d_forward_prepared(float *out, float *ws, const float *inp, const float *w, const float *prep,
                                 const float *bias, const float *bias_img, int B, int C, int H, int W, int OC, int KH,
                                 int KW, int stride, int pad_t, int pad_l, int OH, int OW, int bf16, int accumulate);

/* Gradients of dfs_conv2d_forward, accumulated (+=) into dw and db, and into dinp when
 * dinp_add is set, else stored there (no need to zero it first); each may be NULL.
 * ws: dfs_conv2d_backward_workspace(...) floats. dW sums over images in order, so results do
 * not depend on the thread count. */
size_t dfs_conv2d_backward_workspace(int B, int C, int OC, int KH, int KW, int stride, int OH, int OW);
void dfs_conv2d_backward(float *dinp, float *dw, float *db, float *ws, const float *dout, const float *inp,
                         const float *w, int B, int C, int H, int W, int OC, int KH, int KW, int stride, int pad_t,
                         int pad_l, int OH, int OW, int dinp_add);

/* out (N, O) = inp (N, I) · w (O, I)^T + bias (O, or NULL). As torch.nn.Linear. Below
 * DFS_LINEAR_FEW_ROWS rows it sums by dot products (another order than the GEMM's), else on the
 * GEMM, whose sums for a row do not depend on the other rows. */
#define DFS_LINEAR_FEW_ROWS 8
void dfs_linear_forward(float *out, const float *inp, const float *w, const float *bias, int N, int I, int O);
/* The same, computed by the calling thread alone (same bits), for work already split among threads. */
void dfs_linear_forward_1t(float *out, const float *inp, const float *w, const float *bias, int N, int I, int O);

/* Gradients of dfs_linear_forward, += into dinp, dw, db (each may be NULL). */
void dfs_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w, int N,
                         int I, int O);

/* GroupNorm with G groups over (C/G)·HW values each, then an optional activation.
 * inp, out: (B, C, HW) (may alias); gamma, beta: (C). Statistics accumulate in double; the biased
 * variance is used, as torch.nn.GroupNorm. stats: NULL, or (B·G, 2) doubles that receive each
 * group's mean and 1/std, for dfs_groupnorm_backward. */
void dfs_groupnorm_forward(float *out, const float *inp, const float *gamma, const float *beta, int B,
                           int C, int HW, int G, float eps, dfs_act act, double *stats);

/* dfs_groupnorm_forward without an activation, written as token rows: out (B, HW, C), the
 * transpose of each image of what dfs_groupnorm_forward gives (the same values). ws:
 * dfs_groupnorm_tokens_workspace(C, HW, G) floats. */
size_t dfs_groupnorm_tokens_workspace(int C, int HW, int G);
void dfs_groupnorm_forward_tokens(float *out, float *ws, const float *inp, const float *gamma, const float *beta, int B,
                                  int C, int HW, int G, float eps);

/* x[i] = act(x[i]) for n values, in place. */
void dfs_act_forward(float *x, size_t n, dfs_act act);
/* out = act(in) over a whole tensor, shared out among the threads; out may be in. */
void dfs_act_apply(float *out, const float *in, size_t n, dfs_act act);
/* p[0..n) = 0, shared out among the threads. */
void dfs_zero(float *p, size_t n);
/* dinp += dout · act'(inp), inp being the activation's input; with add unset, dinp is
 * overwritten (the same values as adding to zeros). */
void dfs_act_backward(float *dinp, const float *dout, const float *inp, size_t n, dfs_act act, int add);

/* Gradients of GroupNorm followed by act (DFS_ACT_NONE or DFS_ACT_SILU), += into dgamma, dbeta
 * and, when dinp_add is set, dinp (else stored there); each may be NULL. With SiLU, dout (the
 * gradient of the activation's output) is overwritten with the gradient of the normalised values,
 * dout·silu'(x·scale + shift) recomputed from inp as the forward computed it, so the normalised
 * tensor need not be kept. stats: what the forward pass saved, or NULL to recompute the statistics
 * from inp (the same values). ws: dfs_groupnorm_backward_workspace(B, C, G) floats, 8-byte aligned. */
size_t dfs_groupnorm_backward_workspace(int B, int C, int G);
void dfs_groupnorm_backward(float *dinp, float *dgamma, float *dbeta, float *ws, float *dout, const float *inp,
                            const float *gamma, const float *beta, const double *stats, int B, int C, int HW, int G,
                            float eps, dfs_act act, int dinp_add);

/* Multi-head self-attention over the HW positions of each image, as diffusers' Attention with
 * residual_connection: out = (to_out(softmax(q kᵀ/√dh) v) + residual) / rescale.
 * xn: (B, C, HW), the (group-normalised) input; residual: (B, C, HW); out: (B, C, HW), may alias
 * residual. wq, wk, wv: (heads·dh, C), bq, bk, bv: (heads·dh); wo: (C, heads·dh), bo: (C).
 * scratch: at least dfs_attention_scratch(B, C, HW, heads, dh) floats. The score matrix is
 * never materialised beyond one row per thread. */
size_t dfs_attention_scratch(int B, int C, int HW, int heads, int dh);
void dfs_attention_forward(float *out, float *scratch, const float *xn, const float *residual,
                           const float *wq, const float *bq, const float *wk, const float *bk,
                           const float *wv, const float *bv, const float *wo, const float *bo,
                           int B, int C, int HW, int heads, int dh, float rescale);

/* Inference of a batch of small images (dfs_attention_takes_tokens(B, HW)) can be given its input as
 * token rows T (B, HW, C), what dfs_groupnorm_forward_tokens writes, instead of xn: the same result,
 * bit for bit, without transposing each image first. scratch as above. */
int dfs_attention_takes_tokens(int B, int HW);
void dfs_attention_forward_tokens(float *out, float *scratch, const float *T, const float *residual, const float *wq,
                                  const float *bq, const float *wk, const float *bk, const float *wv, const float *bv,
                                  const float *wo, const float *bo, int B, int C, int HW, int heads, int dh,
                                  float rescale);

/* Training: the same, also saving Q, K, V, O and the softmax row statistics into saved
 * (dfs_attention_saved_size floats) for dfs_attention_backward. scratch as above. */
size_t dfs_attention_saved_size(int B, int C, int HW, int heads, int dh);
void dfs_attention_forward_train(float *out, float *saved, float *scratch, const float *xn, const float *residual,
                                 const float *wq, const float *bq, const float *wk, const float *bk, const float *wv,
                                 const float *bv, const float *wo, const float *bo, int B, int C, int HW, int heads,
                                 int dh, float rescale);

/* Parameter gradients of an attention layer, each accumulated (+=); any may be NULL. */
typedef struct dfs_attn_grads {
    float *dwq, *dbq, *dwk, *dbk, *dwv, *dbv, *dwo, *dbo;
} dfs_attn_grads;

/* Gradients of dfs_attention_forward_train: += into dxn (the normalised input), dres (the
 * residual) and the parameter gradients. Probabilities are recomputed from the saved Q, K and row
 * statistics; dQ is computed per query row and dK, dV per key row, each with one writer.
 * scratch: dfs_attention_backward_scratch(...) floats. */
size_t dfs_attention_backward_scratch(int B, int C, int HW, int heads, int dh);
void dfs_attention_backward(float *dxn, float *dres, const dfs_attn_grads *g, float *scratch, const float *dout,
                            const float *saved, const float *xn, const float *wq, const float *wk, const float *wv,
                            const float *wo, int B, int C, int HW, int heads, int dh, float rescale);

/* Nearest-neighbour 2x upsampling. inp: (B·C, H, W); out: (B·C, 2H, 2W). */
void dfs_upsample2x_forward(float *out, const float *inp, int BC, int H, int W);

void dfs_upsample2x_backward(float *dinp, const float *dout, int BC, int H, int W); /* dinp += */

/* 2x2 average pooling, stride 2 (floor). inp: (B·C, H, W); out: (B·C, H/2, W/2). */
void dfs_avgpool2x_forward(float *out, const float *inp, int BC, int H, int W);

void dfs_avgpool2x_backward(float *dinp, const float *dout, int BC, int H, int W); /* dinp += */

/* out = (a + b) / div, n values (out may alias a or b). A division, as diffusers writes it
 * ((input + hidden) / output_scale_factor), so results match torch bit for bit. */
void dfs_add_div(float *out, const float *a, const float *b, size_t n, float div);

/* x (B, C, HW) += bias (B, C), broadcast over positions: the time embedding added to a resnet. */
void dfs_add_channel_bias(float *x, const float *bias, int B, int C, int HW);

/* x (B, C, HW) = act(x · (1 + scale) + shift) with t (B, 2C) = [scale, shift] per image: the
 * "scale_shift" time conditioning of ResnetBlock2D. */
void dfs_scale_shift(float *x, const float *t, int B, int C, int HW, dfs_act act);

/* dbias (B, C) += Σ over positions of dx (B, C, HW): the gradient of dfs_add_channel_bias. */
void dfs_channel_sum_backward(float *dbias, const float *dx, int B, int C, int HW);

/* Gradients of dfs_scale_shift without its activation: dinp += dout·(1 + scale),
 * dt (B, 2C) += [Σ dout·inp, Σ dout]. */
void dfs_scale_shift_backward(float *dinp, float *dt, const float *dout, const float *inp, const float *t, int B, int C,
                              int HW);

/* Channel concatenation: out (B, Ca+Cb, HW) = [a (B, Ca, HW), b (B, Cb, HW)]. */
void dfs_concat_channels(float *out, const float *a, int Ca, const float *b, int Cb, int B, int HW);

/* Sinusoidal timestep embedding, as diffusers' get_timestep_embedding with scale 1 and
 * max_period 10000: out (N, dim). Frequencies and arguments are rounded to float32 where torch
 * rounds them. */
void dfs_timestep_embedding(float *out, const float *t, int N, int dim, int flip_sin_to_cos, float freq_shift);

/* Gaussian Fourier features (diffusers' GaussianFourierProjection with log=True, no flip):
 * out (N, 2·D) = [sin(log(t)·w·2π), cos(log(t)·w·2π)]; w: (D). */
void dfs_fourier_embedding(float *out, const float *t, int N, const float *w, int D);

#endif
