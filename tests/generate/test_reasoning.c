#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "generate/reasoning.h"

typedef struct sink {
    char think[512], answer[512];
    size_t nt, na;
    bool answer_seen; /* an answer piece arrived */
    bool think_after; /* a think piece arrived after an answer piece */
    bool empty_piece; /* a zero-length piece was emitted */
} sink;

static void collect(void *ud, reasoning_kind kind, const char *text, size_t len) {
    sink *s = ud;
    if (len == 0) s->empty_piece = true;
    if (kind == REASONING_THINK) {
        if (s->answer_seen) s->think_after = true;
        memcpy(s->think + s->nt, text, len);
        s->nt += len;
    } else {
        s->answer_seen = true;
        memcpy(s->answer + s->na, text, len);
        s->na += len;
    }
}

/* Feeds `in` split at i and j (0 <= i <= j <= n) and checks the outcome. */
static void run_split(const char *in, bool start_in_think, size_t i, size_t j, const char *think,
                      const char *answer) {
    sink s;
    memset(&s, 0, sizeof s);
    reasoning r;
    reasoning_init(&r, start_in_think);
    size_t n = strlen(in);
    reasoning_feed(&r, in, i, collect, &s);
    reasoning_feed(&r, in + i, j - i, collect, &s);
    reasoning_feed(&r, in + j, n - j, collect, &s);
    reasoning_flush(&r, collect, &s);
    s.think[s.nt] = 0;
    s.answer[s.na] = 0;
    if (strcmp(s.think, think) || strcmp(s.answer, answer))
        fail_msg("input '%s' split at %zu,%zu: think '%s' (want '%s'), answer '%s' (want '%s')", in,
                 i, j, s.think, think, s.answer, answer);
    assert_false(s.think_after);
    assert_false(s.empty_piece);
}

/* Every pair of split points, and byte by byte. */
static void check_all_splits(const char *in, bool start_in_think, const char *think,
                             const char *answer) {
    size_t n = strlen(in);
    for (size_t i = 0; i <= n; i++)
        for (size_t j = i; j <= n; j++) run_split(in, start_in_think, i, j, think, answer);
    sink s;
    memset(&s, 0, sizeof s);
    reasoning r;
    reasoning_init(&r, start_in_think);
    for (size_t k = 0; k < n; k++) reasoning_feed(&r, in + k, 1, collect, &s);
    reasoning_flush(&r, collect, &s);
    s.think[s.nt] = 0;
    s.answer[s.na] = 0;
    assert_string_equal(s.think, think);
    assert_string_equal(s.answer, answer);
}

static void test_r1_output_with_open_marker(void **state) {
    (void)state;
    check_all_splits("<think>\nLet me see.\n</think>\n\nThe answer is 4.", false, "Let me see.\n",
                     "The answer is 4.");
}

static void test_template_already_opened_thinking(void **state) {
    (void)state;
    check_all_splits("Okay, 2+2.\n</think>\n\n4", true, "Okay, 2+2.\n", "4");
    /* the model may still repeat the newline the template emitted */
    check_all_splits("\nHmm</think>Yes", true, "Hmm", "Yes");
}

static void test_no_thinking_passes_through(void **state) {
    (void)state;
    check_all_splits("  Hello <think>x</think>", false, "", "  Hello <think>x</think>");
    check_all_splits("<thinking>", false, "", "<thinking>");
    check_all_splits("<b>bold</b>", false, "", "<b>bold</b>");
}

static void test_leading_whitespace_then_marker(void **state) {
    (void)state;
    check_all_splits("\n \n<think>a</think>b", false, "a", "b");
}

static void test_false_close_markers_are_thinking_text(void **state) {
    (void)state;
    check_all_splits("<think>a</thin b<</think>c", false, "a</thin b<", "c");
    check_all_splits("x </think", true, "x </think", ""); /* ended inside a marker */
}

static void test_markers_after_answer_are_text(void **state) {
    (void)state;
    check_all_splits("<think>t</think>a <think>u</think>", false, "t", "a <think>u</think>");
}

static void test_empty_thinking(void **state) {
    (void)state;
    check_all_splits("<think>\n\n</think>\n\nHi", false, "", "Hi");
    check_all_splits("", true, "", "");
    check_all_splits("", false, "", "");
}

static void test_long_whitespace_is_not_held_forever(void **state) {
    (void)state;
    char in[200];
    memset(in, ' ', 150);
    strcpy(in + 150, "<think>x</think>y");
    sink s;
    memset(&s, 0, sizeof s);
    reasoning r;
    reasoning_init(&r, false);
    reasoning_feed(&r, in, 100, collect, &s);
    assert_true(s.na > 0); /* beyond the hold limit the answer has started */
    reasoning_feed(&r, in + 100, strlen(in) - 100, collect, &s);
    reasoning_flush(&r, collect, &s);
    assert_int_equal(s.nt, 0);
    assert_int_equal(s.na, strlen(in));
}

static void test_in_think_state(void **state) {
    (void)state;
    sink s;
    memset(&s, 0, sizeof s);
    reasoning r;
    reasoning_init(&r, false);
    assert_false(reasoning_in_think(&r));
    reasoning_feed(&r, "<think>", 7, collect, &s);
    assert_true(reasoning_in_think(&r));
    reasoning_feed(&r, "a</think>", 9, collect, &s);
    assert_false(reasoning_in_think(&r));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_r1_output_with_open_marker),
        cmocka_unit_test(test_template_already_opened_thinking),
        cmocka_unit_test(test_no_thinking_passes_through),
        cmocka_unit_test(test_leading_whitespace_then_marker),
        cmocka_unit_test(test_false_close_markers_are_thinking_text),
        cmocka_unit_test(test_markers_after_answer_are_text),
        cmocka_unit_test(test_empty_thinking),
        cmocka_unit_test(test_long_whitespace_is_not_held_forever),
        cmocka_unit_test(test_in_think_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
