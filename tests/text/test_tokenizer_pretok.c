/* The BPE pre-tokenizer on its own: every known name compiles, unknown names
 * are refused by name, and the splitting follows the reference's semantics
 * (each regex splits the pieces left by the previous one; unmatched stretches
 * are kept; lookaheads and `$` see the end of the piece). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/pretok.h"

/* Splits text with `name` and compares with the '|'-joined expected words. */
static void check_split(const char *name, const char *text, const char *want) {
    hearth_err e;
    tok_pretok *p = tok_pretok_new(name, NULL, &e);
    assert_non_null(p);
    tok_pretok_ctx *c = tok_pretok_ctx_new(&e);
    assert_non_null(c);
    tok_spans out = {0}, tmp = {0};
    assert_int_equal(tok_pretok_split(p, c, (const uint8_t *)text, strlen(text), &out, &tmp, &e),
                     0);
    char got[1024] = "";
    size_t at = 0, covered = 0;
    for (size_t i = 0; i < out.n; i++) {
        assert_int_equal(out.v[i].off, covered); /* pieces tile the text in order */
        assert_true(out.v[i].len > 0);
        covered += out.v[i].len;
        at += (size_t)snprintf(got + at, sizeof got - at, "%s%.*s", i ? "|" : "", (int)out.v[i].len,
                               text + out.v[i].off);
    }
    assert_int_equal(covered, strlen(text));
    if (strcmp(got, want))
        fprintf(stderr, "%s: '%s'\n  want '%s'\n  got  '%s'\n", name, text, want, got);
    assert_string_equal(got, want);
    free(out.v);
    free(tmp.v);
    tok_pretok_ctx_free(c);
    tok_pretok_free(p);
}

static void test_every_name_compiles(void **state) {
    (void)state;
    size_t n = 0;
    for (size_t i = 0; tok_pretok_name_at(i); i++) {
        char names[512];
        snprintf(names, sizeof names, "%s", tok_pretok_name_at(i));
        for (char *save = NULL, *name = strtok_r(names, "|", &save); name;
             name = strtok_r(NULL, "|", &save)) {
            hearth_err e = {{0}};
            tok_pretok *p = tok_pretok_new(name, NULL, &e);
            if (!p) fprintf(stderr, "%s: %s\n", name, e.msg);
            assert_non_null(p);
            tok_pretok_free(p);
            n++;
        }
    }
    assert_true(n >= 20);
    hearth_err e;
    assert_null(tok_pretok_new("made-up-pre", NULL, &e));
    assert_non_null(strstr(e.msg, "'made-up-pre'"));
}

static void test_splits(void **state) {
    (void)state;
    check_split("gpt-2", "Hello world's  3.14!!", "Hello| world|'s| | 3|.|14|!!");
    check_split("gpt-2", "a   b", "a|  | b");
    check_split("llama-bpe", "I'M 12345 ok\n\n  x", "I|'M| |123|45| ok|\n\n| | x");
    check_split("qwen2", "abc 123", "abc| |1|2|3");
    /* deepseek-coder: letters, punctuation, CJK and single digits in turn */
    check_split("deepseek-coder", "Hello 123 \xE4\xB8\x96\xE7\x95\x8C",
                "Hello| |1|2|3| |\xE4\xB8\x96\xE7\x95\x8C");
    /* deepseek-llm: "\s+$" only matches at the very end of a piece */
    check_split("deepseek-llm", "ab  \n", "ab|  |\n");
    /* deepseek-v3: digits in threes first, then CJK, then words */
    check_split("deepseek-v3", "x1234567", "x|123|456|7");
    check_split("deepseek-v3", "\xE4\xBD\xA0\xE5\xA5\xBD,world", "\xE4\xBD\xA0\xE5\xA5\xBD|,world");
    check_split("default", "", "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_name_compiles),
        cmocka_unit_test(test_splits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
