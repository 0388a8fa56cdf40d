/* Which instruction sets the ops may use. cpuid decides what the CPU can run; the environment
 * variable DIFFUSE_ISA=avx512|avx2|scalar can only lower that, so the AVX2 and portable paths
 * can be tested and timed on a machine that has more (CI runs the tests once per level). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"

static int level_of(const char *name) {
    return !name ? 2 : strcmp(name, "scalar") == 0 ? 0 : strcmp(name, "avx2") == 0 ? 1 : 2;
}

int dfs_isa_permits(const char *impl_name) {
    static atomic_int cap = -1;
    int c = atomic_load_explicit(&cap, memory_order_relaxed);
    if (c < 0) {
        c = level_of(getenv("DIFFUSE_ISA"));
        atomic_store_explicit(&cap, c, memory_order_relaxed);
    }
    return level_of(impl_name) <= c;
}
