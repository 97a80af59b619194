/* Hostile templates: every one ends in a clean error (or a bounded render),
 * never a crash, a hang or unbounded memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/template.h"

/* Parses and renders; returns 0 or -1 with err filled. */
static int run(const char *src, size_t len, hearth_err *err) {
    memset(err, 0, sizeof *err);
    tmpl_template *t = tmpl_parse(src, len, err);
    if (!t) return -1;
    char *out = NULL;
    size_t n = 0;
    int rc = tmpl_render(t, NULL, &out, &n, err);
    if (rc == 0)
        assert_non_null(out);
    else
        assert_null(out);
    free(out);
    tmpl_free(t);
    return rc;
}

static void expect_error(const char *src, size_t len, const char *needle) {
    hearth_err err;
    if (run(src, len, &err) == 0) fail_msg("expected an error mentioning [%s]", needle);
    if (!strstr(err.msg, needle)) fail_msg("error [%s] does not mention [%s]", err.msg, needle);
}

/* s repeated n times, then tail, in a malloc'd buffer */
static char *repeat(const char *head, const char *s, int n, const char *mid, const char *t, int m) {
    size_t len = strlen(head) + strlen(s) * (size_t)n + strlen(mid) + strlen(t) * (size_t)m + 1;
    char *b = malloc(len), *p = b;
    assert_non_null(b);
    p += sprintf(p, "%s", head);
    for (int i = 0; i < n; i++) p += sprintf(p, "%s", s);
    p += sprintf(p, "%s", mid);
    for (int i = 0; i < m; i++) p += sprintf(p, "%s", t);
    return b;
}

static void test_deep_nesting(void **state) {
    (void)state;
    char *s = repeat("", "{% if true %}", 10000, "x", "{% endif %}", 10000);
    expect_error(s, strlen(s), "nested too deeply");
    free(s);
    s = repeat("{{ ", "(", 10000, "1", ")", 10000);
    expect_error(s, strlen(s), "nested too deeply");
    free(s);
    s = repeat("{{ ", "not ", 10000, "1 }}", "", 0);
    expect_error(s, strlen(s), "nested too deeply");
    free(s);
    s = repeat("{{ ", "-", 10000, "1 }}", "", 0);
    expect_error(s, strlen(s), "nested too deeply");
    free(s);
    /* long flat chains parse, and evaluating them is depth-bounded */
    s = repeat("{{ x", ".a", 10000, " }}", "", 0);
    expect_error(s, strlen(s), "nested too deeply");
    free(s);
    s = repeat("{{ 1", " + 1", 10000, " }}", "", 0);
    expect_error(s, strlen(s), "nested too deeply");
    free(s);
    /* ... but a sane depth works */
    s = repeat("", "{% if true %}", 100, "deep", "{% endif %}", 100);
    hearth_err err;
    assert_int_equal(run(s, strlen(s), &err), 0);
    free(s);
}

static void test_resource_limits(void **state) {
    (void)state;
    const char *huge_range = "{% for i in range(10**12) %}x{% endfor %}";
    expect_error(huge_range, strlen(huge_range), "range too big");
    const char *nested = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                         "{% endfor %}";
    expect_error(nested, strlen(nested), "loop iterations");
    const char *runaway = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}";
    expect_error(runaway, strlen(runaway), "nested too deeply");
    const char *doubling = "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
                           "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}";
    expect_error(doubling, strlen(doubling), "limit");
    const char *bigmul = "{{ 'x' * 1000000000 }}";
    expect_error(bigmul, strlen(bigmul), "too large");
    const char *overflow = "{{ 9223372036854775807 + 1 }}";
    expect_error(overflow, strlen(overflow), "integer overflow");
    const char *pow = "{{ 2 ** 64 }}";
    expect_error(pow, strlen(pow), "integer overflow");
    const char *div = "{{ 1 // 0 }}";
    expect_error(div, strlen(div), "by zero");
    const char *deepval = "{% set ns = namespace(x=[]) %}{% for i in range(5000) %}"
                          "{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x == ns.x }}";
    expect_error(deepval, strlen(deepval), "nested too deeply");
    /* the `loop` object and a caller survive their block without dangling */
    const char *escape =
        "{% macro m() %}{% set ns.c = caller %}{% endmacro %}"
        "{% set ns = namespace() %}{% for i in [1, 2] %}{% set ns.l = loop %}"
        "{% call m() %}{{ i }}{% endcall %}{% endfor %}{{ ns.l.index }}{{ ns.c() }}";
    hearth_err err;
    memset(&err, 0, sizeof err);
    tmpl_template *t = tmpl_parse(escape, strlen(escape), &err);
    assert_non_null(t);
    char *out = NULL;
    if (tmpl_render(t, NULL, &out, NULL, &err) != 0) fail_msg("%s", err.msg);
    assert_string_equal(out, "22");
    free(out);
    tmpl_free(t);
}

static void test_exponential_macro_fanout_is_bounded(void **state) {
    (void)state;
    const char *fan = "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
                      "{% endmacro %}{{ f(60) }}";
    hearth_err err;
    assert_int_equal(run(fan, strlen(fan), &err), -1);
    assert_true(strstr(err.msg, "too much work") || strstr(err.msg, "memory") ||
                strstr(err.msg, "limit"));
}

static void test_garbage_never_crashes(void **state) {
    (void)state;
    static const char *const pieces[] = {
        "{%",      "%}",         "{{",       "}}",       "{#",      "#}",
        "-",       "+",          "if",       "for",      "in",      "endfor",
        "endif",   "else",       "elif",     "set",      "=",       "x",
        "ns",      "namespace(", "(",        ")",        "[",       "]",
        "{",       "}",          ",",        ":",        ".",       "|",
        "upper",   "length",     "tojson",   "\"a",      "'b'",     "1",
        "2.5",     "not",        "and",      "or",       "is",      "defined",
        "loop",    "macro",      "endmacro", "call",     "endcall", "raw",
        "endraw",  "break",      "~",        "*",        "**",      "/",
        "%",       "\n",         " ",        "range(",   "[::-1]",  "none",
        "\\",      "\xc3\xa9",   "\xff",     "caller()", "filter",  "endfilter",
        "endset",  "do",         "with",     "0x",       "1e",      "9999999999999999999999",
        "'\\u12'", "\"\\x4\""};
    const size_t np = sizeof pieces / sizeof pieces[0];
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char buf[2048];
    int errors = 0, renders = 0;
    for (int it = 0; it < 3000; it++) {
        size_t len = 0;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        int n = 1 + (int)(seed % 40);
        for (int k = 0; k < n; k++) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            const char *p = pieces[seed % np];
            size_t pl = strlen(p);
            if (len + pl + 1 >= sizeof buf) break;
            memcpy(buf + len, p, pl);
            len += pl;
            if (seed & 0x100) buf[len++] = ' ';
        }
        hearth_err err;
        if (run(buf, len, &err) == 0)
            renders++;
        else {
            errors++;
            assert_true(strlen(err.msg) > 0);
        }
    }
    /* both outcomes occur: the generator is not degenerate */
    assert_true(errors > 0);
    assert_true(renders > 0);
    /* random bytes */
    for (int it = 0; it < 2000; it++) {
        size_t len = 0;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        size_t n = seed % 200;
        for (size_t k = 0; k < n; k++) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            static const char alphabet[] = "{}%#-+ ()[]'\"\\.|ab01\n\xc3\xa9";
            buf[len++] = alphabet[seed % (sizeof alphabet - 1)];
        }
        hearth_err err;
        run(buf, len, &err);
    }
}

static void test_api_edges(void **state) {
    (void)state;
    hearth_err err;
    /* empty template renders empty */
    tmpl_template *t = tmpl_parse("", 0, &err);
    assert_non_null(t);
    char *out = NULL;
    size_t n = 99;
    assert_int_equal(tmpl_render(t, NULL, &out, &n, &err), 0);
    assert_string_equal(out, "");
    assert_int_equal(n, 0);
    free(out);
    tmpl_free(t);
    /* NUL bytes in text are kept (length-counted) */
    t = tmpl_parse("a\0b", 3, &err);
    assert_non_null(t);
    assert_int_equal(tmpl_render(t, NULL, &out, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "a\0b", 3);
    free(out);
    tmpl_free(t);
    /* bad JSON for messages is an error that says so */
    tmpl_chat c = {"[{\"role\": ", NULL, true, NULL, NULL, NULL};
    assert_int_equal(tmpl_render_chat("x", 1, &c, &out, &n, &err), -1);
    assert_non_null(strstr(err.msg, "messages"));
    assert_null(out);
    tmpl_chat c2 = {"{\"role\": \"user\"}", NULL, true, NULL, NULL, NULL};
    assert_int_equal(tmpl_render_chat("x", 1, &c2, &out, &n, &err), -1);
    assert_non_null(strstr(err.msg, "array"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_resource_limits),
        cmocka_unit_test(test_exponential_macro_fanout_is_bounded),
        cmocka_unit_test(test_garbage_never_crashes),
        cmocka_unit_test(test_api_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
