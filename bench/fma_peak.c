/* The machine's FP32 FMA peak, to quote kernels as a fraction of it: each thread runs 24
 * independent chains of vector FMAs (enough to cover the FMA latency on every port) with the
 * widest vectors the CPU has, and the best of several runs is reported, for 1 thread and for all.
 * Where the CPU has AVX-512 BF16 it also times the BF16 dot product VDPBF16PS the same way on one
 * thread (counting its 2 × 32 flops), the instruction of the bf16 compute type.
 * usage: build/bench/fma_peak [threads] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define ITERS 20000000L

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#if defined(__x86_64__)
/* 24 accumulators × 16 lanes × 2 flops per iteration */
__attribute__((target("avx512f"))) static float run512(long iters) {
    __m512 acc[24];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 24; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < iters; k++)
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    for (int i = 1; i < 24; i++) acc[0] = _mm512_add_ps(acc[0], acc[i]);
    return _mm512_reduce_add_ps(acc[0]);
}

/* 24 accumulators × 16 lanes × 2 products × 2 flops per iteration */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static float run_bf16(long iters) {
    __m512 acc[24];
    const __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = (__m512bh)_mm512_set1_epi32(0x33d633d6);
    for (int i = 0; i < 24; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < iters; k++)
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    for (int i = 1; i < 24; i++) acc[0] = _mm512_add_ps(acc[0], acc[i]);
    return _mm512_reduce_add_ps(acc[0]);
}

/* 12 accumulators × 8 lanes × 2 flops per iteration */
__attribute__((target("avx2,fma"))) static float run256(long iters) {
    __m256 acc[12];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long k = 0; k < iters; k++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    float out[8], s = 0;
    for (int i = 1; i < 12; i++) acc[0] = _mm256_add_ps(acc[0], acc[i]);
    _mm256_storeu_ps(out, acc[0]);
    for (int i = 0; i < 8; i++) s += out[i];
    return s;
}
#endif

enum { AVX2, AVX512, BF16 };

static double measure(int threads, int kind, double flops_per_iter) {
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        volatile float sink = 0;
        const double t0 = now();
#pragma omp parallel num_threads(threads)
        {
#if defined(__x86_64__)
            const float r = kind == BF16 ? run_bf16(ITERS) : kind == AVX512 ? run512(ITERS) : run256(ITERS);
#pragma omp atomic
            sink += r;
#endif
        }
        const double gf = flops_per_iter * ITERS * threads / (now() - t0) / 1e9;
        if (gf > best) best = gf;
        (void)sink;
    }
    return best;
}

int main(int argc, char **argv) {
#if defined(__x86_64__)
    int threads = 1;
#ifdef _OPENMP
    threads = argc > 1 ? atoi(argv[1]) : omp_get_num_procs();
#endif
    if (threads < 1) threads = 1;
    __builtin_cpu_init();
    const int wide = __builtin_cpu_supports("avx512f");
    if (!wide && !__builtin_cpu_supports("fma")) {
        printf("no FMA instructions on this CPU\n");
        return 0;
    }
    const double per_iter = wide ? 24 * 16 * 2 : 12 * 8 * 2;
    const int kind = wide ? AVX512 : AVX2;
    const double one = measure(1, kind, per_iter), all = threads > 1 ? measure(threads, kind, per_iter) : one;
    printf("{\"isa\": \"%s\", \"gflops_1_thread\": %.1f, \"threads\": %d, \"gflops_all_threads\": %.1f", wide ? "avx512" : "avx2",
           one, threads, all);
    if (__builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw"))
        printf(", \"bf16_dot_gflops_1_thread\": %.1f", measure(1, BF16, 24 * 16 * 4));
    printf("}\n");
#else
    printf("FMA peak: x86-64 only\n");
#endif
    return 0;
}
