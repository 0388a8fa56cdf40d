/* The vectorised exp, softmax-row exp and SiLU of src/ops/vmath.h: within 2 ulp of the
 * double-precision reference over the whole usable range, NaN kept; GroupNorm's block sums within
 * 1e-6 of double sums; and the same bits from every implementation this CPU runs (they implement
 * one algorithm with single-rounding operations). */
#include <math.h>
#include <string.h>

#include "core/internal.h"
#include "ops/ops.h"
#include "ops/vmath.h"
#include "test.h"

#define N 100003 /* not a multiple of 16: tails are exercised */

/* The same bits, except that any NaN matches any NaN (which operand's payload survives depends
 * on the order the compiler chose for a commutative operation). */
static int same_bits(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(a + i, b + i, sizeof(float)) != 0 && !(isnan(a[i]) && isnan(b[i]))) return 0;
    return 1;
}

/* x spread over [lo, hi] plus the values where things could go wrong */
static void inputs(float *x, float lo, float hi) {
    for (int i = 0; i < N; i++) x[i] = lo + (hi - lo) * (float)i / (float)(N - 1);
    const float special[] = {0.0f, -0.0f, DFS_EXP_LO, DFS_EXP_HI, -DFS_EXP_LO, -DFS_EXP_HI, 1e-30f, -1e-30f,
                             0.34657359f, -0.34657359f, 0.5f, -0.5f, 1.0f, -1.0f, 20.0f, -20.0f, NAN};
    for (size_t i = 0; i < sizeof special / sizeof *special; i++) x[i * 997] = special[i];
}

static void test_exp(const dfs_vmath_impl **impls, int n_impls) {
    float *x = dfs_malloc(N * sizeof(float)), *y = dfs_malloc(N * sizeof(float)), *y0 = dfs_malloc(N * sizeof(float));
    inputs(x, -87.3f, 88.3f);
    dfs_vmath_scalar.exp(y0, x, N);
    double worst = 0;
    int nan_ok = 1;
    for (int i = 0; i < N; i++) {
        if (isnan(x[i])) {
            nan_ok &= isnan(y0[i]);
            continue;
        }
        if (x[i] < DFS_EXP_LO || x[i] > DFS_EXP_HI) continue; /* clamped: checked below */
        const double e = exp((double)x[i]), ulp = ldexp(1.0, ilogb(e) - 23);
        const double err = fabs(y0[i] - e) / (e < 0x1p-126 ? 0x1p-149 : ulp);
        if (err > worst) worst = err;
    }
    if (!TEST_CHECK(worst <= 2.0)) fprintf(stderr, "  exp: worst %.3g ulp\n", worst);
    TEST_CHECK(nan_ok);
    for (int k = 0; k < n_impls; k++) {
        memset(y, 0, N * sizeof(float));
        impls[k]->exp(y, x, N);
        if (!TEST_CHECK(same_bits(y, y0, N))) fprintf(stderr, "  exp: %s differs from scalar\n", impls[k]->name);
    }
    /* outside the range: clamped, never infinite or negative; NaN still NaN */
    const float far[] = {-1000.0f, -INFINITY, 1000.0f, INFINITY, NAN};
    float fy[5];
    for (int k = 0; k < n_impls; k++) {
        impls[k]->exp(fy, far, 5);
        TEST_CHECK(fy[0] >= 0 && fy[0] < 1e-37f && fy[1] >= 0 && fy[1] < 1e-37f);
        TEST_CHECK(isfinite(fy[2]) && fy[2] > 1e38f && isfinite(fy[3]) && fy[3] > 1e38f && isnan(fy[4]));
    }
    dfs_free(x), dfs_free(y), dfs_free(y0);
}

static void test_silu(const dfs_vmath_impl **impls, int n_impls) {
    float *x = dfs_malloc(N * sizeof(float)), *y = dfs_malloc(N * sizeof(float)), *y0 = dfs_malloc(N * sizeof(float));
    inputs(x, -100.0f, 100.0f);
    memcpy(y0, x, N * sizeof(float));
    dfs_vmath_scalar.silu(y0, N);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        if (isnan(x[i])) {
            TEST_CHECK(isnan(y0[i]));
            continue;
        }
        const double r = x[i] / (1.0 + exp(-(double)x[i]));
        const double err = fabs(y0[i] - r) / (fabs(r) > 1e-30 ? fabs(r) : 1e-30);
        if (x[i] > -85.0f && err > worst) worst = err;
        if (x[i] <= -85.0f) TEST_CHECK(fabs(y0[i]) < 1e-33); /* e^−x may be clamped: still about 0 */
    }
    if (!TEST_CHECK(worst < 4e-7)) fprintf(stderr, "  silu: worst relative error %.3g\n", worst);
    for (int k = 0; k < n_impls; k++) {
        memcpy(y, x, N * sizeof(float));
        impls[k]->silu(y, N);
        if (!TEST_CHECK(same_bits(y, y0, N))) fprintf(stderr, "  silu: %s differs from scalar\n", impls[k]->name);
    }
    dfs_free(x), dfs_free(y), dfs_free(y0);
}

static void test_exp_sum(const dfs_vmath_impl **impls, int n_impls) {
    const size_t lens[] = {0, 1, 7, 15, 16, 17, 31, 48, 63, 100, 256, 1000};
    float x[1000], y[1000], y0[1000];
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        const size_t n = lens[li];
        for (size_t i = 0; i < n; i++) x[i] = (float)sin(i * 0.7) * 40.0f;
        const float scale = 0.125f, shift = 4.5f;
        memcpy(y0, x, n * sizeof(float));
        const float s0 = dfs_vmath_scalar.exp_sum(y0, n, scale, shift);
        double ref = 0, worst = 0;
        for (size_t i = 0; i < n; i++) {
            const double e = exp((double)fmaf(x[i], scale, -shift)); /* the argument as rounded */
            ref += e;
            if (fabs(y0[i] - e) / e > worst) worst = fabs(y0[i] - e) / e;
        }
        TEST_CHECK(worst < 3e-7);
        if (!TEST_CHECK(fabs(s0 - ref) <= 1e-6 * ref + 1e-30)) fprintf(stderr, "  exp_sum n %zu: %g vs %g\n", n, s0, ref);
        for (int k = 0; k < n_impls; k++) {
            memcpy(y, x, n * sizeof(float));
            const float s = impls[k]->exp_sum(y, n, scale, shift);
            if (!TEST_CHECK(same_bits(y, y0, n) && memcmp(&s, &s0, sizeof s) == 0))
                fprintf(stderr, "  exp_sum n %zu: %s differs from scalar\n", n, impls[k]->name);
        }
    }
}

static void test_sums(const dfs_vmath_impl **impls, int n_impls) {
    const size_t lens[] = {0, 1, 15, 16, 17, 63, 64, 65, 80, 97, 1023, 1024, 1025, 5000, 70001}; /* runs of 64 and the rest */
    float *x = dfs_malloc(70001 * sizeof(float));
    for (size_t i = 0; i < 70001; i++) x[i] = 3.0f + (float)sin(i * 0.37) * 2.0f; /* a mean far from 0 */
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        const size_t n = lens[li];
        const float c = 3.1f;
        double rs = 0, rq = 0;
        for (size_t i = 0; i < n; i++) {
            rs += x[i];
            rq += ((double)x[i] - c) * ((double)x[i] - c);
        }
        double rd = 0; /* x against itself reversed */
        for (size_t i = 0; i < n; i++) rd += (double)x[i] * x[n - 1 - i];
        float *y = dfs_malloc(n * sizeof(float) + 1);
        for (size_t i = 0; i < n; i++) y[i] = x[n - 1 - i];
        const double s0 = dfs_vmath_scalar.sum(x, n), q0 = dfs_vmath_scalar.sumsq(x, n, c), d0 = dfs_vmath_scalar.dot(x, y, n);
        if (!TEST_CHECK(fabs(s0 - rs) <= 1e-6 * fabs(rs) && fabs(q0 - rq) <= 1e-6 * rq && fabs(d0 - rd) <= 1e-6 * fabs(rd)))
            fprintf(stderr, "  sums n %zu: %.9g %.9g %.9g vs %.9g %.9g %.9g\n", n, s0, q0, d0, rs, rq, rd);
        for (int k = 0; k < n_impls; k++) {
            const double s = impls[k]->sum(x, n), q = impls[k]->sumsq(x, n, c), d = impls[k]->dot(x, y, n);
            if (!TEST_CHECK(memcmp(&s, &s0, sizeof s) == 0 && memcmp(&q, &q0, sizeof q) == 0 && memcmp(&d, &d0, sizeof d) == 0))
                fprintf(stderr, "  sums n %zu: %s differs from scalar\n", n, impls[k]->name);
        }
        dfs_free(y);
    }
    dfs_free(x);
}

/* dx = dy·silu'(x·scale + shift), added to dx or stored, also in place (dx = dy): against the
 * derivative in double, and the same bits from every version. */
static void test_silu_grad(const dfs_vmath_impl **impls, int n_impls) {
    float *x = dfs_malloc(N * sizeof(float)), *dy = dfs_malloc(N * sizeof(float)), *g0 = dfs_malloc(N * sizeof(float));
    inputs(x, -40.0f, 40.0f);
    static const float scales[][2] = {{1.0f, 0.0f}, {0.37f, -1.25f}};
    for (int sc = 0; sc < 2; sc++)
        for (int add = 0; add < 2; add++) {
            const float scale = scales[sc][0], shift = scales[sc][1];
            for (int i = 0; i < N; i++) dy[i] = 0.5f + (float)(i % 7) * 0.25f, g0[i] = (float)(i % 3);
            dfs_vmath_scalar.silu_grad(g0, dy, x, N, scale, shift, add);
            double worst = 0;
            for (int i = 0; i < N; i++) {
                if (isnan(x[i])) {
                    TEST_CHECK(isnan(g0[i]));
                    continue;
                }
                const double v = x[i] * scale + shift, s = 1.0 / (1.0 + exp(-v));
                const double ref = (add ? (double)(i % 3) : 0.0) + dy[i] * s * (1.0 + v * (1.0 - s));
                const double e = fabs(g0[i] - ref) / (1.0 + fabs(ref));
                if (e > worst) worst = e;
            }
            if (!TEST_CHECK(worst < 1e-6)) fprintf(stderr, "  silu_grad: worst %.3g\n", worst);
            for (int k = 0; k < n_impls; k++) {
                float *gk = dfs_malloc(N * sizeof(float)), *inplace = dfs_malloc(N * sizeof(float));
                for (int i = 0; i < N; i++) gk[i] = (float)(i % 3);
                impls[k]->silu_grad(gk, dy, x, N, scale, shift, add);
                if (!TEST_CHECK(same_bits(gk, g0, N))) fprintf(stderr, "  silu_grad: %s differs from scalar\n", impls[k]->name);
                if (!add) {
                    memcpy(inplace, dy, N * sizeof(float));
                    impls[k]->silu_grad(inplace, inplace, x, N, scale, shift, 0);
                    TEST_CHECK(same_bits(inplace, g0, N));
                }
                dfs_free(gk), dfs_free(inplace);
            }
        }
    dfs_free(x), dfs_free(dy), dfs_free(g0);
}

/* y = x·scale + shift, optionally through SiLU (GroupNorm's last pass): against double, and the
 * same bits from every version. */
static void test_affine(const dfs_vmath_impl **impls, int n_impls) {
    float *x = dfs_malloc(N * sizeof(float)), *y0 = dfs_malloc(N * sizeof(float)), *y = dfs_malloc(N * sizeof(float));
    inputs(x, -30.0f, 30.0f);
    for (int silu = 0; silu <= 1; silu++) {
        dfs_vmath_scalar.affine(y0, x, N, 0.75f, -0.5f, silu);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            if (isnan(x[i])) continue;
            const double v = (double)x[i] * 0.75 - 0.5, r = silu ? v / (1.0 + exp(-v)) : v;
            const double e = fabs(y0[i] - r) / (1.0 + fabs(r));
            if (e > worst) worst = e;
        }
        if (!TEST_CHECK(worst < 5e-7)) fprintf(stderr, "  affine silu %d: worst %.3g\n", silu, worst);
        for (int k = 0; k < n_impls; k++) {
            memcpy(y, x, N * sizeof(float));
            impls[k]->affine(y, y, N, 0.75f, -0.5f, silu); /* in place, as GroupNorm may call it */
            if (!TEST_CHECK(same_bits(y, y0, N))) fprintf(stderr, "  affine: %s differs from scalar\n", impls[k]->name);
        }
    }
    dfs_free(x), dfs_free(y0), dfs_free(y);
}

int main(void) {
    const dfs_vmath_impl *impls[4];
    const int n = dfs_vmath_available(impls, 4);
    TEST_CHECK(n >= 1 && impls[n - 1] == &dfs_vmath_scalar);
    /* the best is the first that DIFFUSE_ISA permits */
    int first = 0;
    while (first < n - 1 && !dfs_isa_permits(impls[first]->name)) first++;
    TEST_CHECK(dfs_vmath_best() == impls[first]);
    for (int k = 0; k < n; k++) fprintf(stderr, "  vmath: %s\n", impls[k]->name);
    test_exp(impls, n);
    test_silu(impls, n);
    test_exp_sum(impls, n);
    test_sums(impls, n);
    test_silu_grad(impls, n);
    test_affine(impls, n);
    return test_summary("vmath");
}
