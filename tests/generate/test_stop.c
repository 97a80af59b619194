#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "generate/stop.h"

typedef struct sink {
    char buf[4096];
    size_t n;
    int pieces;
} sink;

static void collect(void *ud, const char *text, size_t len) {
    sink *s = ud;
    assert_true(len > 0);
    memcpy(s->buf + s->n, text, len);
    s->n += len;
    s->buf[s->n] = 0;
    s->pieces++;
}

/* Splits `in` at i and j and checks the output and whether a stop fired. */
static void run_split(stop_filter *f, const char *in, size_t i, size_t j, const char *want,
                      bool want_stop) {
    sink s = {.n = 0};
    s.buf[0] = 0;
    stop_reset(f);
    size_t n = strlen(in);
    bool st = stop_feed(f, in, i, collect, &s);
    st = stop_feed(f, in + i, j - i, collect, &s) || st;
    st = stop_feed(f, in + j, n - j, collect, &s) || st;
    stop_flush(f, collect, &s);
    if (strcmp(s.buf, want) || st != want_stop)
        fail_msg("input '%s' split %zu,%zu: got '%s' stop %d, want '%s' stop %d", in, i, j, s.buf,
                 st, want, want_stop);
}

static void check_all_splits(const char *const *stops, int n_stops, const char *in,
                             const char *want, bool want_stop) {
    stop_filter *f = stop_new(stops, n_stops, NULL);
    assert_non_null(f);
    size_t n = strlen(in);
    for (size_t i = 0; i <= n; i++)
        for (size_t j = i; j <= n; j++) run_split(f, in, i, j, want, want_stop);
    stop_free(f);
}

static void test_stop_across_boundaries(void **state) {
    (void)state;
    const char *stops[] = {"\nUser:"};
    check_all_splits(stops, 1, "Hello there.\nUser: more", "Hello there.", true);
    check_all_splits(stops, 1, "Hello\nUse the force", "Hello\nUse the force", false);
    check_all_splits(stops, 1, "ends in a prefix\nUs", "ends in a prefix\nUs", false);
}

static void test_earliest_of_several(void **state) {
    (void)state;
    const char *stops[] = {"STOP", "###", "end"};
    check_all_splits(stops, 3, "abc ### def STOP", "abc ", true);
    check_all_splits(stops, 3, "STOP", "", true);
    check_all_splits(stops, 3, "ST#en#d", "ST#en#d", false);
}

static void test_held_text_is_not_emitted_early(void **state) {
    (void)state;
    const char *stops[] = {"<|im_end|>"};
    stop_filter *f = stop_new(stops, 1, NULL);
    sink s = {.n = 0};
    assert_false(stop_feed(f, "Hi<|im_", 7, collect, &s));
    assert_string_equal(s.buf, "Hi"); /* "<|im_" held back */
    assert_false(stop_feed(f, "x", 1, collect, &s));
    assert_string_equal(s.buf, "Hi<|im_x");
    assert_false(stop_feed(f, "<|im_end", 8, collect, &s));
    assert_true(stop_feed(f, "|>more", 6, collect, &s));
    assert_string_equal(s.buf, "Hi<|im_x");
    assert_int_equal(stop_which(f), 0);
    /* after a stop, nothing more comes out */
    assert_true(stop_feed(f, "zzz", 3, collect, &s));
    stop_flush(f, collect, &s);
    assert_string_equal(s.buf, "Hi<|im_x");
    stop_free(f);
}

static void test_overlapping_prefix(void **state) {
    (void)state;
    /* "aab" inside "aaab": the held tail must restart one byte later */
    const char *stops[] = {"aab"};
    check_all_splits(stops, 1, "xaaab", "xa", true);
    check_all_splits(stops, 1, "aaaa", "aaaa", false);
}

static void test_long_text_through_small_buffer(void **state) {
    (void)state;
    const char *stops[] = {"XY"};
    stop_filter *f = stop_new(stops, 1, NULL);
    char in[3000];
    memset(in, 'a', sizeof in);
    memcpy(in + 2500, "XY", 2);
    sink s = {.n = 0};
    assert_true(stop_feed(f, in, sizeof in, collect, &s));
    assert_int_equal(s.n, 2500);
    stop_free(f);
}

static void test_no_stops_passes_through(void **state) {
    (void)state;
    stop_filter *f = stop_new(NULL, 0, NULL);
    sink s = {.n = 0};
    assert_false(stop_feed(f, "abc", 3, collect, &s));
    stop_flush(f, collect, &s);
    assert_string_equal(s.buf, "abc");
    assert_int_equal(stop_which(f), -1);
    stop_free(f);
}

static void test_bad_stops_rejected(void **state) {
    (void)state;
    hearth_err e;
    const char *empty[] = {""};
    assert_null(stop_new(empty, 1, &e));
    assert_non_null(strstr(e.msg, "stop string 1"));
    assert_null(stop_new(empty, STOP_MAX_STRINGS + 1, &e));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_across_boundaries),
        cmocka_unit_test(test_earliest_of_several),
        cmocka_unit_test(test_held_text_is_not_emitted_early),
        cmocka_unit_test(test_overlapping_prefix),
        cmocka_unit_test(test_long_text_through_small_buffer),
        cmocka_unit_test(test_no_stops_passes_through),
        cmocka_unit_test(test_bad_stops_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
