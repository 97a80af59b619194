/* The few cmocka macros tests/kernels/test_kernels.c uses, for builds where
 * cmocka is not available: the aarch64 cross build of scripts/test-neon.sh.
 * Each test runs until its first failed assertion (longjmp back to the
 * runner); the runner prints every failure and "N passed, M failed" per group
 * and returns the number of failures, as cmocka does. Include after
 * <setjmp.h>, <stdarg.h>, <stddef.h> (as cmocka requires). */
#ifndef HEARTH_CMOCKA_SHIM_H
#define HEARTH_CMOCKA_SHIM_H

#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

struct CMUnitTest {
    const char *name;
    void (*test_func)(void **state);
};
#define cmocka_unit_test(f)                                                                        \
    { #f, f }

static jmp_buf shim_jump;

#define fail_msg(...)                                                                              \
    do {                                                                                           \
        fprintf(stderr, "[  FAILED  ] %s:%d: ", __FILE__, __LINE__);                               \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        longjmp(shim_jump, 1);                                                                     \
    } while (0)
#define assert_true(c)                                                                             \
    do {                                                                                           \
        if (!(c)) fail_msg("%s is false", #c);                                                     \
    } while (0)
#define assert_non_null(p) assert_true((p) != NULL)
#define assert_int_equal(a, b)                                                                     \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) fail_msg("%lld != %lld", a_, b_);                                            \
    } while (0)
#define assert_float_equal(a, b, eps)                                                              \
    do {                                                                                           \
        double a_ = (a), b_ = (b), e_ = (eps);                                                     \
        if (!(fabs(a_ - b_) <= e_)) fail_msg("%.9g != %.9g (within %g)", a_, b_, e_);              \
    } while (0)
#define assert_string_equal(a, b)                                                                  \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (strcmp(a_, b_)) fail_msg("\"%s\" != \"%s\"", a_, b_);                                  \
    } while (0)
#define assert_memory_equal(a, b, n) assert_true(memcmp((a), (b), (n)) == 0)

static int shim_run(const char *group, const struct CMUnitTest *tests, size_t n,
                    int (*setup)(void **), int (*teardown)(void **)) {
    void *state = NULL;
    if (setup && setup(&state) != 0) {
        fprintf(stderr, "%s: group setup failed\n", group);
        return (int)n;
    }
    volatile int failed = 0;
    for (volatile size_t i = 0; i < n; i++) {
        printf("[ RUN      ] %s.%s\n", group, tests[i].name);
        fflush(stdout);
        if (setjmp(shim_jump) == 0) {
            tests[i].test_func(&state);
            printf("[       OK ] %s.%s\n", group, tests[i].name);
        } else {
            failed++;
        }
    }
    if (teardown) teardown(&state);
    printf("%s: %d passed, %d failed\n", group, (int)n - failed, failed);
    return failed;
}
#define cmocka_run_group_tests_name(group, tests, setup, teardown)                                 \
    shim_run((group), (tests), sizeof(tests) / sizeof((tests)[0]), (setup), (teardown))

#endif
