/* Self-attention over image positions with an online softmax: each query row keeps a running
 * maximum and sum while it walks the keys, so memory stays O(HW·C) instead of O(HW²).
 * Inference of larger images goes image by image in scratch reused for each: T (HW, C) tokens,
 * Q (HW, inner), Kᵀ (inner, HW), V, O (HW, inner), Yᵀ (C, HW). One image is shared out among the
 * threads step by step; a batch of several is shared out image by image (each thread with its own
 * scratch), which saves the many short parallel steps of small images. Training, and inference
 * of batches of small images, run each projection (and its gradients) as one GEMM over the batch
 * and keep Q, K, V and O of every image. All ways do the same arithmetic, so the bits do not
 * depend on which is taken. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "ops/ops.h"
#include "ops/attn.h"
#include "ops/gemm.h"
#include "ops/vec.h"
#include "ops/vmath.h"

/* Inference takes forward_batched for batches of small images (its scratch holds the whole
 * batch's Q, K, V, O): at 7×7, 128 channels, batch 64, 3.3–4.8 against 5.7–6.3 ms a layer. Larger
 * images go image by image, each image's operands staying in cache, and so do images of fewer
 * positions than DFS_LINEAR_FEW_ROWS, whose projections one by one are dot products: batched,
 * they would sum in another order than the same image alone. */
#define BATCHED_HW 64

static int batched(int B, int HW) { return B > 1 && HW >= DFS_LINEAR_FEW_ROWS && HW <= BATCHED_HW; }

size_t dfs_attention_scratch(int B, int C, int HW, int heads, int dh) {
    const size_t inner = (size_t)heads * dh, copies = B > 1 ? (size_t)dfs_ops_max_threads() : 1;
    const size_t per = (size_t)HW * (2 * (size_t)C + 4 * inner);
    const size_t infer = (batched(B, HW) ? (size_t)B : copies) * per, train = (size_t)HW * 2 * (size_t)B * C;
    return infer > train ? infer : train;
}

/* Runs the statements for b = 0 .. B−1 with `one` set when B is 1: one image has each of its
 * steps shared among the threads (one = 1), several are shared out image by image, each image's
 * steps on its thread alone (one = 0). Never both: nested parallel regions would start new
 * thread teams. */
#define FOR_IMAGES(B, ...)                                                                                             \
    do {                                                                                                           \
        if ((B) == 1) {                                                                                            \
            const int b = 0, one = 1;                                                                              \
            __VA_ARGS__;                                                                                           \
        } else {                                                                                                   \
            _Pragma("omp parallel for schedule(static)") for (int b = 0; b < (B); b++) {                           \
                const int one = 0;                                                                                 \
                __VA_ARGS__;                                                                                       \
            }                                                                                                      \
        }                                                                                                          \
    } while (0)

/* The steps below share their work among the threads when `threaded`, else run on the caller's.
 * Transposes go through the GEMM's vectorised 16×16 block transpose (gemm.h), a block of 16
 * columns of src per task. */
static void transpose(float *dst, const float *src, int rows, int cols, int threaded) {
    const dfs_gemm_impl *g = dfs_gemm_best();
#pragma omp parallel for schedule(static) if (threaded)
    for (int c0 = 0; c0 < cols; c0 += 16)
        dfs_gemm_transpose_blocks(g, dst + (size_t)c0 * rows, (size_t)rows, src + c0, (size_t)cols, cols - c0 < 16 ? cols - c0 : 16,
                                  rows);
}

#define ATT_BQ 64  /* query rows per task */
#define ATT_BK 256 /* keys per block of scores */

/* Query rows i0 .. i0 + rows − 1 of one head (attn.h): walks the keys ATT_BK at a time, scores
 * the block with one GEMM, rescales its rows' running sums and outputs to the block's new
 * maximum, and adds P·V with another GEMM. */
static void attend_rows(float *O, float *stats, const float *Q, const float *K, size_t k_rs, size_t k_cs, const float *V,
                        int HW, int inner, int dh, float scale, int i0, int rows) {
    static _Thread_local _Alignas(64) float S[ATT_BQ * ATT_BK];
    float m[ATT_BQ], l[ATT_BQ];
    const dfs_vmath_impl *vm = dfs_vmath_best();
    const float *q = Q + (size_t)i0 * inner;
    float *o = O + (size_t)i0 * inner;
    for (int r = 0; r < rows; r++) {
        m[r] = -INFINITY, l[r] = 0.0f;
        memset(o + (size_t)r * inner, 0, sizeof(float) * (size_t)dh);
    }
    for (int j0 = 0; j0 < HW; j0 += ATT_BK) {
        const int cols = HW - j0 < ATT_BK ? HW - j0 : ATT_BK;
        for (int r = 0; r < rows; r++) memset(S + (size_t)r * ATT_BK, 0, sizeof(float) * (size_t)cols);
        dfs_gemm_1t(rows, cols, dh, q, (size_t)inner, 1, K + (size_t)j0 * k_cs, k_rs, k_cs, S, ATT_BK);
        for (int r = 0; r < rows; r++) {
            float *s = S + (size_t)r * ATT_BK, mx = dfs_max(s, cols);
            const float mnew = m[r] > mx * scale ? m[r] : mx * scale; /* scale > 0: max of the scaled row */
            const float corr = expf(m[r] - mnew);                        /* 0 on the first block */
            l[r] = l[r] * corr + vm->exp_sum(s, (size_t)cols, scale, mnew);
            if (j0 > 0 && corr != 1.0f) /* on the first block o is still zero */
#pragma omp simd
                for (int d = 0; d < dh; d++) o[(size_t)r * inner + d] *= corr;
            m[r] = mnew;
        }
        dfs_gemm_1t(rows, dh, cols, S, ATT_BK, 1, V + (size_t)j0 * inner, (size_t)inner, 1, o, (size_t)inner);
    }
    for (int r = 0; r < rows; r++) {
        const float inv = 1.0f / l[r];
#pragma omp simd
        for (int d = 0; d < dh; d++) o[(size_t)r * inner + d] *= inv;
        if (stats) {
            stats[(size_t)(i0 + r) * 2] = m[r];
            stats[(size_t)(i0 + r) * 2 + 1] = l[r];
        }
    }
}

static void blocks_head(float *O, float *stats, const float *Q, const float *K, size_t k_rs, size_t k_cs, const float *V,
                        int HW, int inner, int dh, float scale) {
    for (int i0 = 0; i0 < HW; i0 += ATT_BQ)
        attend_rows(O, stats, Q, K, k_rs, k_cs, V, HW, inner, dh, scale, i0, HW - i0 < ATT_BQ ? HW - i0 : ATT_BQ);
}

static const dfs_attn_impl attn_blocks = {"blocks", 0, blocks_head};

int dfs_attn_available(const dfs_attn_impl **out, int max) {
    int n = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (n < max && __builtin_cpu_supports("avx512f")) out[n++] = &dfs_attn_avx512;
#endif
    if (n < max) out[n++] = &attn_blocks;
    return n;
}

/* The vector version that takes heads of HW positions and dh values, or NULL. attend() gives it
 * whole heads: a small image's head is one task. */
_Static_assert(DFS_ATTN_SMALL_HW <= ATT_BQ, "a small image's head must be one task");
static dfs_attn_head_fn *small_head(int HW, int dh) {
    if (HW > DFS_ATTN_SMALL_HW || dh % 16 || dh > DFS_ATTN_SMALL_DH) return NULL;
    const dfs_attn_impl *impls[2];
    const int n = dfs_attn_available(impls, 2);
    for (int i = 0; i < n - 1; i++)
        if (dfs_isa_permits(impls[i]->name)) return impls[i]->head;
    return NULL;
}

/* O = softmax(Q Kᵀ·scale) V for every head, rows of (HW, inner) matrices, with key position j's
 * value d at K[d·k_rs + j·k_cs] (Kᵀ as (inner, HW): k_rs = HW, k_cs = 1; K as rows: 1, inner);
 * stats (heads, HW, 2) receives each row's maximum and sum when not NULL (what the backward pass
 * needs). A task is one head and ATT_BQ query rows (attend_rows), or a whole head of a small
 * image where the CPU has a vector version for it (attn.h); the same bits either way, and tasks
 * do not depend on the thread count. */
static void attend(float *O, float *stats, const float *Q, const float *K, size_t k_rs, size_t k_cs, const float *V,
                   int HW, int heads, int dh, float scale, int threaded) {
    const int inner = heads * dh, n_qb = (HW + ATT_BQ - 1) / ATT_BQ;
    dfs_attn_head_fn *small = small_head(HW, dh);
#pragma omp parallel for schedule(static) if (threaded)
    for (int task = 0; task < heads * n_qb; task++) {
        const int h = task / n_qb, i0 = task % n_qb * ATT_BQ, rows = HW - i0 < ATT_BQ ? HW - i0 : ATT_BQ;
        float *st = stats ? stats + (size_t)h * HW * 2 : NULL;
        const size_t col = (size_t)h * dh;
        if (small)
            small(O + col, st, Q + col, K + col * k_rs, k_rs, k_cs, V + col, HW, inner, dh, scale);
        else
            attend_rows(O + col, st, Q + col, K + col * k_rs, k_rs, k_cs, V + col, HW, inner, dh, scale, i0, rows);
    }
}

size_t dfs_attention_saved_size(int B, int C, int HW, int heads, int dh) {
    return (size_t)B * HW * (4 * (size_t)heads * dh + 2 * (size_t)heads);
}

/* Kᵀ (inner, HW) = Wk (inner, C) · xn (C, HW) + bk: straight from the image, no transpose. */
static void keys_transposed(float *KT, const float *xn, const float *wk, const float *bk, int C, int HW, int inner,
                            int threaded) {
#pragma omp parallel for schedule(static) if (threaded)
    for (int d = 0; d < inner; d++) {
        const float v = bk ? bk[d] : 0.0f;
#pragma omp simd
        for (int p = 0; p < HW; p++) KT[(size_t)d * HW + p] = v;
    }
    (threaded ? dfs_gemm : dfs_gemm_1t)(inner, HW, C, wk, (size_t)C, 1, xn, (size_t)HW, 1, KT, (size_t)HW);
}

/* dst (C, HW) = (Yᵀ + res) / rescale for one image, Y (HW, C) transposed a 16×16 block at a time;
 * dst may be res (res = dst, rescale = 1: dst += Yᵀ). */
static void add_residual(float *dst, const float *Y, const float *res, int C, int HW, float rescale, int threaded) {
    const dfs_gemm_impl *g = dfs_gemm_best();
#pragma omp parallel for schedule(static) if (threaded)
    for (int c0 = 0; c0 < C; c0 += 16) {
        _Alignas(64) float t[16 * 16]; /* t[i·16 + j] = Y[(p0 + j)·C + c0 + i] */
        const int nc = C - c0 < 16 ? C - c0 : 16;
        for (int p0 = 0; p0 < HW; p0 += 16) {
            const int np = HW - p0 < 16 ? HW - p0 : 16;
            g->transpose(t, 16, Y + (size_t)p0 * C + c0, (size_t)C, nc, np);
            for (int i = 0; i < nc; i++) {
                float *d = dst + (size_t)(c0 + i) * HW + p0;
                const float *r = res + (size_t)(c0 + i) * HW + p0;
                if (rescale == 1.0f) /* x / 1 is x: the vectorisable form */
                    for (int j = 0; j < np; j++) d[j] = t[i * 16 + j] + r[j];
                else
                    for (int j = 0; j < np; j++) d[j] = (t[i * 16 + j] + r[j]) / rescale;
            }
        }
    }
}

/* dst (C, HW) = (Wo·Oᵀ + bo + res) / rescale for one image: the output projection computed
 * transposed (into YT, (C, HW)), so that it lands in the image's layout. */
static void project_out(float *dst, float *YT, const float *O, const float *wo, const float *bo, const float *res, int C,
                        int HW, int inner, float rescale, int threaded) {
#pragma omp parallel for schedule(static) if (threaded)
    for (int c = 0; c < C; c++) {
        const float v = bo ? bo[c] : 0.0f;
#pragma omp simd
        for (int p = 0; p < HW; p++) YT[(size_t)c * HW + p] = v;
    }
    (threaded ? dfs_gemm : dfs_gemm_1t)(C, HW, inner, wo, (size_t)inner, 1, O, 1, (size_t)inner, YT, (size_t)HW);
#pragma omp parallel for schedule(static) if (threaded)
    for (int c = 0; c < C; c++) {
        float *d = dst + (size_t)c * HW;
        const float *y = YT + (size_t)c * HW, *r = res + (size_t)c * HW;
        if (rescale == 1.0f) /* x / 1 is x: the vectorisable form */
            for (int p = 0; p < HW; p++) d[p] = y[p] + r[p];
        else
            for (int p = 0; p < HW; p++) d[p] = (y[p] + r[p]) / rescale;
    }
}

/* One image in inference: tokens → Q, Kᵀ, V → O → out, in scratch reused image by image (each
 * image's operands stay in cache). */
static void forward_image(float *dst, float *T, float *Y, float *Q, float *KT, float *V, float *O, const float *xn,
                          const float *res, const float *wq, const float *bq, const float *wk, const float *bk,
                          const float *wv, const float *bv, const float *wo, const float *bo, int C, int HW, int heads,
                          int dh, float rescale, int threaded) {
    const int inner = heads * dh;
    void (*linear)(float *, const float *, const float *, const float *, int, int, int) =
        threaded ? dfs_linear_forward : dfs_linear_forward_1t;
    transpose(T, xn, C, HW, threaded);
    linear(Q, T, wq, bq, HW, C, inner);
    keys_transposed(KT, xn, wk, bk, C, HW, inner, threaded);
    linear(V, T, wv, bv, HW, C, inner);
    attend(O, NULL, Q, KT, (size_t)HW, 1, V, HW, heads, dh, 1.0f / sqrtf((float)dh), threaded);
    project_out(dst, Y, O, wo, bo, res, C, HW, inner, rescale, threaded);
}

/* Saved for the backward pass: Q, K, V, O as (B·HW, inner) rows each, then stats (B, heads, HW, 2). */
typedef struct saved_parts { float *Q, *K, *V, *O, *stats; } saved_parts;

static saved_parts parts_of(float *saved, int B, int HW, int heads, int dh) {
    const size_t n = (size_t)B * HW * heads * dh;
    saved_parts p = {saved, saved + n, saved + 2 * n, saved + 3 * n, saved + 4 * n};
    return p;
}

/* A batch with its projections as one GEMM each over all images (their weights packed once, not
 * once per image), the attention image by image, the scores reading K's rows transposed; the same
 * sums as forward_image, so the same bits. Q, K, V, O: (B·HW, inner) each; stats as attend's, or
 * NULL; T and Y: (B·HW, C) scratch. With tokens set, xn is already T's token rows (B·HW, C). */
static void forward_batched(float *out, saved_parts s, float *T, float *Y, const float *xn, int tokens,
                            const float *residual, const float *wq, const float *bq, const float *wk, const float *bk,
                            const float *wv, const float *bv, const float *wo, const float *bo, int B, int C, int HW,
                            int heads, int dh, float rescale) {
    const size_t inner = (size_t)heads * dh, n = (size_t)B * HW, img = (size_t)C * HW, tok = (size_t)HW * inner;
    DFS_ASSERT(n <= INT_MAX);
    if (!tokens) FOR_IMAGES(B, transpose(T + b * img, xn + b * img, C, HW, one));
    const float *rows = tokens ? xn : T; /* the token rows */
    dfs_linear_forward(s.Q, rows, wq, bq, (int)n, C, (int)inner);
    dfs_linear_forward(s.K, rows, wk, bk, (int)n, C, (int)inner);
    dfs_linear_forward(s.V, rows, wv, bv, (int)n, C, (int)inner);
    FOR_IMAGES(B, attend(s.O + b * tok, s.stats ? s.stats + (size_t)b * heads * HW * 2 : NULL, s.Q + b * tok, s.K + b * tok,
                         1, inner, s.V + b * tok, HW, heads, dh, 1.0f / sqrtf((float)dh), one));
    dfs_linear_forward(Y, s.O, wo, bo, (int)n, (int)inner, C);
    FOR_IMAGES(B, add_residual(out + b * img, Y + b * img, residual + b * img, C, HW, rescale, one));
}

void dfs_attention_forward(float *out, float *scratch, const float *xn, const float *residual,
                           const float *wq, const float *bq, const float *wk, const float *bk,
                           const float *wv, const float *bv, const float *wo, const float *bo,
                           int B, int C, int HW, int heads, int dh, float rescale) {
    const size_t inner = (size_t)heads * dh, per = (size_t)HW * (2 * (size_t)C + 4 * inner), n = (size_t)B * HW;
    if (batched(B, HW)) {
        float *T = scratch, *Y = T + n * C;
        saved_parts s = parts_of(Y + n * C, B, HW, heads, dh); /* Q, K, V, O after T and Y; no stats */
        s.stats = NULL;
        forward_batched(out, s, T, Y, xn, 0, residual, wq, bq, wk, bk, wv, bv, wo, bo, B, C, HW, heads, dh, rescale);
        return;
    }
    FOR_IMAGES(B, float *T = scratch + (one ? 0 : (size_t)dfs_ops_thread_id() * per), *Q = T + (size_t)HW * C;
               float *K = Q + (size_t)HW * inner, *V = K + (size_t)HW * inner, *O = V + (size_t)HW * inner;
               const size_t img = (size_t)b * C * HW;
               forward_image(out + img, T, O + (size_t)HW * inner, Q, K, V, O, xn + img, residual + img, wq, bq, wk, bk,
                             wv, bv, wo, bo, C, HW, heads, dh, rescale, one));
}

/* Training keeps every image's Q, K, V and O: forward_batched into the saved buffer. Scratch: T
 * and Y (B·HW, C). */
void dfs_attention_forward_train(float *out, float *saved, float *scratch, const float *xn, const float *residual,
                                 const float *wq, const float *bq, const float *wk, const float *bk, const float *wv,
                                 const float *bv, const float *wo, const float *bo, int B, int C, int HW, int heads,
                                 int dh, float rescale) {
    forward_batched(out, parts_of(saved, B, HW, heads, dh), scratch, scratch + (size_t)B * HW * C, xn, 0, residual, wq,
                    bq, wk, bk, wv, bv, wo, bo, B, C, HW, heads, dh, rescale);
}

int dfs_attention_takes_tokens(int B, int HW) { return batched(B, HW); }

void dfs_attention_forward_tokens(float *out, float *scratch, const float *T, const float *residual, const float *wq,
                                  const float *bq, const float *wk, const float *bk, const float *wv, const float *bv,
                                  const float *wo, const float *bo, int B, int C, int HW, int heads, int dh,
                                  float rescale) {
    DFS_ASSERT(batched(B, HW));
    const size_t n = (size_t)B * HW;
    float *Y = scratch + n * C;
    saved_parts s = parts_of(Y + n * C, B, HW, heads, dh); /* as dfs_attention_forward's, T unused */
    s.stats = NULL;
    forward_batched(out, s, NULL, Y, T, 1, residual, wq, bq, wk, bk, wv, bv, wo, bo, B, C, HW, heads, dh, rescale);
}

/* P = softmax rows of a score block S (rows × cols, leading dimension ld) given each row's
 * maximum m and sum l: S·scale − m exponentiated, divided by l; then, with dP = dO·Vᵀ for the same
 * block, dS = P ⊙ (dP − D)·scale, the gradient of the scores (D = Σ dO ⊙ O of the row). */
static void probs_and_grads(const dfs_vmath_impl *vm, float *S, float *dP, int rows, int cols, int ld, const float *stats,
                            const float *D, float scale) {
    for (int r = 0; r < rows; r++) {
        float *s = S + (size_t)r * ld, *dp = dP + (size_t)r * ld;
        const float inv_l = 1.0f / stats[2 * r + 1];
        vm->exp_sum(s, (size_t)cols, scale, stats[2 * r]);
        for (int j = 0; j < cols; j++) {
            s[j] *= inv_l;
            dp[j] = s[j] * (dp[j] - D[r]) * scale;
        }
    }
}

/* For a block of rows queries × cols keys: S = P (the probabilities) and dP = dS (the score
 * gradients), both with leading dimension ld, from Q, dO rows at q, dq and K, V rows at k, v. */
static void score_block(const dfs_vmath_impl *vm, float *S, float *dP, int ld, int rows, int cols, int dh, size_t inner,
                        const float *q, const float *dq, const float *k, const float *v, const float *stats,
                        const float *D, float scale) {
    memset(S, 0, sizeof(float) * (size_t)rows * ld), memset(dP, 0, sizeof(float) * (size_t)rows * ld);
    dfs_gemm_1t(rows, cols, dh, q, inner, 1, k, 1, inner, S, (size_t)ld);
    dfs_gemm_1t(rows, cols, dh, dq, inner, 1, v, 1, inner, dP, (size_t)ld);
    probs_and_grads(vm, S, dP, rows, cols, ld, stats, D, scale);
}

#define ATTB_Q 64  /* query rows per dQ task; keys per dK, dV task */
#define ATTB_K 256 /* keys per block of a dQ task; queries per block of a dK, dV task */

/* dQ, dK, dV of O = softmax(Q Kᵀ·scale) V for one image, recomputing the probabilities block by
 * block from the saved row statistics: first tasks of (head, query rows) that each own their dQ
 * rows, then tasks of (head, key rows) that each own their dK and dV rows; every product is a GEMM
 * on the micro-kernel, summed in an order that does not depend on the thread count. When one
 * block holds all the queries and keys (HW <= ATTB_Q), a task per head scores the block once and
 * computes all three, with the same sums. */
static void attend_backward(float *dQ, float *dK, float *dV, const float *Q, const float *K, const float *V,
                            const float *dO, const float *stats, const float *D, int HW, int heads, int dh, float scale,
                            int threaded) {
    const int inner = heads * dh, n_qb = (HW + ATTB_Q - 1) / ATTB_Q;
    const dfs_vmath_impl *vm = dfs_vmath_best();
#pragma omp parallel if (threaded)
    {
        static _Thread_local _Alignas(64) float S[ATTB_Q * ATTB_K], dP[ATTB_Q * ATTB_K];
        if (HW <= ATTB_Q) {
#pragma omp for schedule(static)
            for (int h = 0; h < heads; h++) {
                const size_t hi = (size_t)h * dh;
                for (int r = 0; r < HW; r++) {
                    memset(dQ + hi + (size_t)r * inner, 0, sizeof(float) * (size_t)dh);
                    memset(dK + hi + (size_t)r * inner, 0, sizeof(float) * (size_t)dh);
                    memset(dV + hi + (size_t)r * inner, 0, sizeof(float) * (size_t)dh);
                }
                score_block(vm, S, dP, ATTB_Q, HW, HW, dh, (size_t)inner, Q + hi, dO + hi, K + hi, V + hi,
                            stats + (size_t)h * HW * 2, D + (size_t)h * HW, scale);
                dfs_gemm_1t(HW, dh, HW, dP, ATTB_Q, 1, K + hi, (size_t)inner, 1, dQ + hi, (size_t)inner);
                dfs_gemm_1t(HW, dh, HW, S, 1, ATTB_Q, dO + hi, (size_t)inner, 1, dV + hi, (size_t)inner);
                dfs_gemm_1t(HW, dh, HW, dP, 1, ATTB_Q, Q + hi, (size_t)inner, 1, dK + hi, (size_t)inner);
            }
        } else {
#pragma omp for schedule(static)
            for (int task = 0; task < heads * n_qb; task++) {
                const int h = task / n_qb, i0 = task % n_qb * ATTB_Q, rows = HW - i0 < ATTB_Q ? HW - i0 : ATTB_Q;
                const size_t qi = (size_t)i0 * inner + (size_t)h * dh;
                for (int r = 0; r < rows; r++) memset(dQ + qi + (size_t)r * inner, 0, sizeof(float) * (size_t)dh);
                for (int j0 = 0; j0 < HW; j0 += ATTB_K) {
                    const int cols = HW - j0 < ATTB_K ? HW - j0 : ATTB_K;
                    const size_t kj = (size_t)j0 * inner + (size_t)h * dh;
                    score_block(vm, S, dP, ATTB_K, rows, cols, dh, (size_t)inner, Q + qi, dO + qi, K + kj, V + kj,
                                stats + ((size_t)h * HW + i0) * 2, D + (size_t)h * HW + i0, scale);
                    dfs_gemm_1t(rows, dh, cols, dP, ATTB_K, 1, K + kj, (size_t)inner, 1, dQ + qi, (size_t)inner);
                }
            }
#pragma omp for schedule(static)
            for (int task = 0; task < heads * n_qb; task++) {
                const int h = task / n_qb, j0 = task % n_qb * ATTB_Q, cols = HW - j0 < ATTB_Q ? HW - j0 : ATTB_Q;
                const size_t kj = (size_t)j0 * inner + (size_t)h * dh;
                for (int r = 0; r < cols; r++) {
                    memset(dK + kj + (size_t)r * inner, 0, sizeof(float) * (size_t)dh);
                    memset(dV + kj + (size_t)r * inner, 0, sizeof(float) * (size_t)dh);
                }
                for (int i0 = 0; i0 < HW; i0 += ATTB_K) {
                    const int rows = HW - i0 < ATTB_K ? HW - i0 : ATTB_K;
                    const size_t qi = (size_t)i0 * inner + (size_t)h * dh;
                    score_block(vm, S, dP, ATTB_Q, rows, cols, dh, (size_t)inner, Q + qi, dO + qi, K + kj, V + kj,
                                stats + ((size_t)h * HW + i0) * 2, D + (size_t)h * HW + i0, scale);
                    /* dV += Pᵀ dO, dK += dSᵀ Q: the blocks read transposed */
                    dfs_gemm_1t(cols, dh, rows, S, 1, ATTB_Q, dO + qi, (size_t)inner, 1, dV + kj, (size_t)inner);
                    dfs_gemm_1t(cols, dh, rows, dP, 1, ATTB_Q, Q + qi, (size_t)inner, 1, dK + kj, (size_t)inner);
                }
            }
        }
    }
}

/* dy (HW, C) = go (C, HW)ᵀ / rescale for one image, also added to dres (C, HW) when not NULL. */
static void output_grad(float *dy, float *dres, const float *go, int C, int HW, float rescale, int threaded) {
    const size_t n = (size_t)C * HW;
    transpose(dy, go, C, HW, threaded);
    if (rescale != 1.0f) /* x / 1 is x */
#pragma omp parallel for simd schedule(static) if (parallel : threaded)
        for (size_t k = 0; k < n; k++) dy[k] /= rescale;
    if (dres)
#pragma omp parallel for simd schedule(static) if (parallel : threaded)
        for (size_t k = 0; k < n; k++) dres[k] += go[k] / rescale;
}

/* D (heads, HW) = Σ_d dO ⊙ O for each head's row of one image. */
static void row_dots(float *D, const float *dO, const float *O, int HW, int heads, int dh, int threaded) {
    const size_t inner = (size_t)heads * dh;
#pragma omp parallel for collapse(2) schedule(static) if (threaded)
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < HW; i++)
            D[(size_t)h * HW + i] = dfs_dot(dO + (size_t)i * inner + (size_t)h * dh, O + (size_t)i * inner + (size_t)h * dh, dh);
}

size_t dfs_attention_backward_scratch(int B, int C, int HW, int heads, int dh) {
    return (size_t)B * HW * (3 * (size_t)C + 4 * (size_t)heads * dh) + (size_t)B * heads * HW;
}

/* The projections' gradients as GEMMs over the whole batch, like the training forward; the
 * attention itself image by image. Scratch: T, dY, dT (B·HW, C), dO, dQ, dK, dV (B·HW, inner), D. */
void dfs_attention_backward(float *dxn, float *dres, const dfs_attn_grads *g, float *scratch, const float *dout,
                            const float *saved, const float *xn, const float *wq, const float *wk, const float *wv,
                            const float *wo, int B, int C, int HW, int heads, int dh, float rescale) {
    const size_t inner = (size_t)heads * dh, n = (size_t)B * HW, img = (size_t)C * HW, tok = (size_t)HW * inner;
    const float scale = 1.0f / sqrtf((float)dh);
    float *T = scratch, *dY = T + n * C, *dT = dY + n * C;
    float *dO = dT + n * C, *dQ = dO + n * inner, *dK = dQ + n * inner, *dV = dK + n * inner, *D = dV + n * inner;
    const saved_parts s = parts_of((float *)saved, B, HW, heads, dh);
    DFS_ASSERT(n <= INT_MAX);
    FOR_IMAGES(B, output_grad(dY + b * img, dres ? dres + b * img : NULL, dout + b * img, C, HW, rescale, one));
    memset(dO, 0, sizeof(float) * n * inner);
    dfs_linear_backward(dO, g->dwo, g->dbo, dY, s.O, wo, (int)n, (int)inner, C);
    FOR_IMAGES(B, float *Db = D + (size_t)b * heads * HW;
               row_dots(Db, dO + b * tok, s.O + b * tok, HW, heads, dh, one);
               attend_backward(dQ + b * tok, dK + b * tok, dV + b * tok, s.Q + b * tok, s.K + b * tok, s.V + b * tok,
                               dO + b * tok, s.stats + (size_t)b * heads * HW * 2, Db, HW, heads, dh, scale, one);
               transpose(T + b * img, xn + b * img, C, HW, one));
    memset(dT, 0, sizeof(float) * n * C);
    dfs_linear_backward(dT, g->dwq, g->dbq, dQ, T, wq, (int)n, C, (int)inner);
    dfs_linear_backward(dT, g->dwk, g->dbk, dK, T, wk, (int)n, C, (int)inner);
    dfs_linear_backward(dT, g->dwv, g->dbv, dV, T, wv, (int)n, C, (int)inner);
    if (dxn) FOR_IMAGES(B, add_residual(dxn + b * img, dT + b * img, dxn + b * img, C, HW, 1.0f, one));
}
