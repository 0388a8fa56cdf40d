/* The context: error message and thread count. One per thread of the caller. */
#ifndef DFS_CORE_CTX_H
#define DFS_CORE_CTX_H

struct dfs_ctx {
    char err[1024]; /* last error, one line */
    int n_threads;
    size_t max_memory; /* bytes a call may allocate for activations; 0: what the machine has free */
};

#endif
