/* base/hugemem: aligned, zeroed, writable anonymous memory; the huge page
 * share read back from /proc/self/smaps; refusals with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "base/hugemem.h"

static void test_alloc_aligned_zeroed_writable(void **state) {
    (void)state;
    const size_t sizes[] = {
        1, 4096, HM_HUGE_PAGE - 1, HM_HUGE_PAGE, HM_HUGE_PAGE + 1, 3 * HM_HUGE_PAGE + 12345};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (int huge = 0; huge < 2; huge++) {
            hearth_err err;
            uint8_t *p = hm_alloc(sizes[i], huge, &err);
            if (!p) fail_msg("%zu bytes: %s", sizes[i], err.msg);
            assert_int_equal((uintptr_t)p % HM_HUGE_PAGE, 0);
            size_t nz = 0;
            for (size_t k = 0; k < sizes[i]; k += 997) nz += p[k] != 0;
            assert_int_equal(nz, 0);
            assert_int_equal(p[sizes[i] - 1], 0);
            memset(p, 0xa5, sizes[i]);
            assert_int_equal(p[sizes[i] - 1], 0xa5);
            double h = hm_huge_fraction(p, sizes[i]);
            assert_true(h >= 0 && h <= 1);  /* smaps has the region */
            if (!huge) assert_true(h == 0); /* MADV_NOHUGEPAGE: 4 KiB pages */
            hm_free(p, sizes[i]);
        }
    }
    hm_free(NULL, 123); /* nothing */
}

/* The share is read back from /proc/self/smaps for the region (Linux has
 * it: -1 would mean the region was not found), and a region advised
 * MADV_NOHUGEPAGE has none. How much of an advised region the kernel grants
 * depends on its free huge pages, so it is printed, not asserted. */
static void test_huge_pages_granted_where_offered(void **state) {
    (void)state;
    if (!hm_thp_usable()) {
        /* the kernel refuses: the region still works, in 4 KiB pages */
        hearth_err err;
        uint8_t *p = hm_alloc(4 * HM_HUGE_PAGE, true, &err);
        assert_non_null(p);
        memset(p, 1, 4 * HM_HUGE_PAGE);
        assert_true(hm_huge_fraction(p, 4 * HM_HUGE_PAGE) == 0);
        hm_free(p, 4 * HM_HUGE_PAGE);
        return;
    }
    hearth_err err;
    const size_t n = 4 * HM_HUGE_PAGE;
    uint8_t *p = hm_alloc(n, true, &err);
    assert_non_null(p);
    memset(p, 1, n);
    double h = hm_huge_fraction(p, n);
    fprintf(stderr, "huge page share of a touched 8 MiB region: %.2f\n", h);
    assert_true(h >= 0 && h <= 1);
    hm_free(p, n);
}

static void test_refusals(void **state) {
    (void)state;
    hearth_err err = {{0}};
    assert_null(hm_alloc(0, true, &err));
    assert_non_null(strstr(err.msg, "0 bytes"));
    assert_null(hm_alloc(SIZE_MAX, true, &err));
    assert_non_null(strstr(err.msg, "cannot"));
    assert_null(hm_alloc(SIZE_MAX - HM_HUGE_PAGE, false, NULL));
    /* more than any machine has: the mapping itself is refused */
    assert_null(hm_alloc((size_t)1 << 62, true, &err));
    assert_non_null(strstr(err.msg, "cannot map"));
}

static void test_mem_available(void **state) {
    (void)state;
    size_t a = hm_mem_available();
    /* Linux has /proc/meminfo: some memory is available to this test */
    assert_true(a > ((size_t)1 << 20));
    /* this process's resident set: more than its 1 MiB region, touched */
    const size_t n = (size_t)1 << 20;
    char *p = hm_alloc(n, false, NULL);
    assert_non_null(p);
    memset(p, 1, n);
    assert_true(hm_proc_bytes("/proc/self/status", "VmRSS") >= n);
    assert_int_equal(hm_proc_bytes("/proc/self/status", "NoSuchKey"), 0);
    assert_int_equal(hm_proc_bytes("/nonexistent", "VmRSS"), 0);
    hm_free(p, n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_aligned_zeroed_writable),
        cmocka_unit_test(test_huge_pages_granted_where_offered),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_mem_available),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
