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

#endif
