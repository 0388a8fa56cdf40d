/* diffuse's GEMM (src/ops/gemm.c) against a CBLAS library on the shapes of the UNet's
 * convolutions (C = W·patches: M output channels, K = C_in·9, N pixels) at 1 and 2 threads.
 * Build and run with bench/blas/run.sh (needs libopenblas-dev and libblis-dev); prints one line
 * per shape and thread count with both GFLOP/s and their ratio. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ops/gemm.h"
#include "ops/ops.h"

/* CBLAS's sgemm, declared here: OpenBLAS's cblas.h pulls in <complex.h>, whose macro I clashes
 * with parameter names */
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111 };
void cblas_sgemm(int layout, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc);
void openblas_set_num_threads(int) __attribute__((weak));
void bli_thread_set_num_threads(long) __attribute__((weak));

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void set_blas_threads(int n) {
    if (openblas_set_num_threads) openblas_set_num_threads(n);
    if (bli_thread_set_num_threads) bli_thread_set_num_threads(n);
}

/* best of 5 timings of reps calls */
static double best_gflops(int which, int M, int N, int K, const float *a, const float *b, float *c, int reps) {
    double best = 0;
    for (int r = 0; r < 5; r++) {
        const double t0 = now();
        for (int i = 0; i < reps; i++) {
            if (which) cblas_sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, CBLAS_NO_TRANS, M, N, K, 1.0f, a, K, b, N, 1.0f, c, N);
            else dfs_gemm(M, N, K, a, (size_t)K, 1, b, (size_t)N, 1, c, (size_t)N);
        }
        const double g = 2.0 * M * N * K * reps / (now() - t0) / 1e9;
        if (g > best) best = g;
    }
    return best;
}

int main(int argc, char **argv) {
    const char *lib = argc > 1 ? argv[1] : "blas";
    static const int shapes[][4] = {
        /* M, K, N, and a label index: CIFAR-10 UNet layers, then the 28x28 model's */
        {128, 1152, 1024, 0}, {256, 2304, 256, 0}, {256, 2304, 64, 0}, {256, 2304, 16, 0},
        {32, 288, 784, 1},    {64, 576, 196, 1},   {128, 1152, 49, 1},
    };
    for (int threads = 1; threads <= 2; threads++) {
        dfs_ops_set_threads(threads);
        set_blas_threads(threads);
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            const int M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
            float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N), *c = calloc((size_t)M * N, sizeof(float));
            for (long i = 0; i < (long)M * K; i++) a[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
            for (long i = 0; i < (long)K * N; i++) b[i] = (float)((i * 104729) % 1000) * 1e-3f - 0.5f;
            const int reps = (int)(2e9 / (2.0 * M * N * K)) + 1;
            const double ours = best_gflops(0, M, N, K, a, b, c, reps), theirs = best_gflops(1, M, N, K, a, b, c, reps);
            printf("%-8s %s M %4d K %4d N %4d, %d thread%s: diffuse %6.1f GFLOP/s, %s %6.1f GFLOP/s, ratio %.2f\n", lib,
                   shapes[s][3] ? "28x28  " : "cifar10", M, K, N, threads, threads == 1 ? " " : "s", ours, lib, theirs,
                   ours / theirs);
            free(a);
            free(b);
            free(c);
        }
    }
    return 0;
}
