#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "base/error.h"

static void test_errf_formats_and_returns_minus_one(void **state) {
    (void)state;
    hearth_err e;
    assert_int_equal(hearth_errf(&e, "tensor '%s': expected %d dims, found %d", "blk.0", 2, 5), -1);
    assert_string_equal(e.msg, "tensor 'blk.0': expected 2 dims, found 5");
    assert_int_equal(hearth_err_prefix(&e, "model.gguf"), -1);
    assert_string_equal(e.msg, "model.gguf: tensor 'blk.0': expected 2 dims, found 5");
    assert_int_equal(hearth_errf(NULL, "ignored"), -1);
}

static void test_long_messages_are_cut_not_overflowed(void **state) {
    (void)state;
    hearth_err e;
    char big[4096];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    hearth_errf(&e, "%s", big);
    assert_int_equal(strlen(e.msg), sizeof e.msg - 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errf_formats_and_returns_minus_one),
        cmocka_unit_test(test_long_messages_are_cut_not_overflowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
