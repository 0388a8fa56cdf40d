/* Naive reference versions of the ops: the test oracles. Straight loops, accumulating in double,
 * with the same contracts as the ops in ops/ops.h. */
#ifndef DFS_OPS_REF_H
#define DFS_OPS_REF_H

#include "ops/ops.h"

void dfs_conv2d_forward_ref(float *out, const float *inp, const float *w, const float *bias, int B, int C, int H,
                            int W, int OC, int KH, int KW, int stride, int pad_t, int pad_l, int OH, int OW);
void dfs_linear_forward_ref(float *out, const float *inp, const float *w, const float *bias, int N, int I, int O);
void dfs_groupnorm_forward_ref(float *out, const float *inp, const float *gamma, const float *beta, int B, int C,
                               int HW, int G, float eps, dfs_act act);
/* Materialises the whole (HW, HW) score matrix per head: only for small tests. */
void dfs_attention_forward_ref(float *out, const float *xn, const float *residual, const float *wq, const float *bq,
                               const float *wk, const float *bk, const float *wv, const float *bv, const float *wo,
                               const float *bo, int B, int C, int HW, int heads, int dh, float rescale);
double dfs_act_ref(double x, dfs_act act);

#endif
