/* Small vector helpers shared by the ops. */
#ifndef DFS_OPS_VEC_H
#define DFS_OPS_VEC_H

#include <stddef.h>

/* Σ a[i]·b[i] with eight independent partial sums (a fixed order, so the same inputs always give
 * the same bits; the compiler can keep the eight sums in one vector register). */
static inline float dfs_dot(const float *a, const float *b, int n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* max(x[0], …, x[n−1]) for n >= 1, with sixteen running maxima (the compiler can keep them in
 * vector registers); the maximum does not depend on the order. */
static inline float dfs_max(const float *x, int n) {
    float m[16];
    for (int k = 0; k < 16; k++) m[k] = x[0];
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
    for (; i < n; i++) m[0] = x[i] > m[0] ? x[i] : m[0];
    float r = m[0];
    for (int k = 1; k < 16; k++) r = m[k] > r ? m[k] : r;
    return r;
}

#endif
