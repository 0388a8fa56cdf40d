/* The one place that talks to OpenMP's runtime, so `make OMP=0` builds everything else unchanged. */
#ifdef _OPENMP
#include <omp.h>
#endif

#include "ops/ops.h"

void dfs_ops_set_threads(int n_threads) {
#ifdef _OPENMP
    omp_set_num_threads(n_threads > 0 ? n_threads : 1);
#else
    (void)n_threads;
#endif
}

int dfs_ops_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int dfs_ops_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
