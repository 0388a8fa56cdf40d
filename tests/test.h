/* A tiny test harness: TEST_CHECK / TEST_NEAR count results; test_summary prints one line
 * "<name>: N passed, M failed" and gives the exit status. Each tests/test_*.c is one program. */
#ifndef DFS_TESTS_TEST_H
#define DFS_TESTS_TEST_H

#include <math.h>
#include <stdio.h>

static int test_passed, test_failed;

#define TEST_CHECK(cond) test_check_at((cond) != 0, #cond, __FILE__, __LINE__)
#define TEST_NEAR(a, b, tol) test_near_at((double)(a), (double)(b), (double)(tol), #a, __FILE__, __LINE__)

static inline int test_check_at(int ok, const char *what, const char *file, int line) {
    if (ok) {
        test_passed++;
    } else {
        test_failed++;
        fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what);
    }
    return ok;
}

static inline int test_near_at(double a, double b, double tol, const char *what, const char *file,
                               int line) {
    int ok = fabs(a - b) <= tol; /* NaN fails */
    if (!ok) fprintf(stderr, "FAIL %s:%d: %s = %.9g, expected %.9g (tol %.3g)\n", file, line, what, a, b, tol);
    ok ? test_passed++ : test_failed++;
    return ok;
}

static inline int test_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, test_passed, test_failed);
    return test_failed ? 1 : 0;
}

#endif
