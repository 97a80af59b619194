/* The template language, construct by construct. Expected strings are what
 * Jinja2 (as configured by transformers) renders for the same input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/template.h"

static const char *vars_json =
    "{\"l\": [3, 1, 2], \"s\": \"Hello World\", \"u\": \"h\\u00e9llo \\u5e8a\", \"n\": null,"
    " \"d\": {\"b\": 1, \"a\": [1, 2.5, null, true, \"x\"]},"
    " \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", "
    "\"content\": \"yo\", \"x\": 1}, {\"role\": \"user\", \"content\": \"bye\"}]}";

static char g_out[65536];
static hearth_err g_err;

/* Renders src with vars_json; returns 0 or -1 (then g_err has the message). */
static int render(const char *src) {
    g_out[0] = 0;
    memset(&g_err, 0, sizeof g_err);
    tmpl_template *t = tmpl_parse(src, strlen(src), &g_err);
    if (!t) return -1;
    tmpl_vars *v = tmpl_vars_new();
    assert_non_null(v);
    assert_int_equal(tmpl_vars_set_json_object_keys(v, vars_json, strlen(vars_json), &g_err), 0);
    char *out = NULL;
    size_t n = 0;
    int rc = tmpl_render(t, v, &out, &n, &g_err);
    if (rc == 0) {
        assert_true(n < sizeof g_out);
        assert_int_equal(strlen(out), n);
        memcpy(g_out, out, n + 1);
        free(out);
    } else {
        assert_null(out);
    }
    tmpl_vars_free(v);
    tmpl_free(t);
    return rc;
}

#define EXPECT(src, want)                                                                          \
    do {                                                                                           \
        if (render(src) != 0) fail_msg("%s\n  error: %s", src, g_err.msg);                         \
        if (strcmp(g_out, want) != 0)                                                              \
            fail_msg("%s\n  got:      [%s]\n  expected: [%s]", src, g_out, want);                  \
    } while (0)

#define EXPECT_ERR(src, needle)                                                                    \
    do {                                                                                           \
        if (render(src) == 0) fail_msg("%s\n  rendered [%s], expected an error", src, g_out);      \
        if (!strstr(g_err.msg, needle))                                                            \
            fail_msg("%s\n  error [%s] does not mention [%s]", src, g_err.msg, needle);            \
    } while (0)

static void test_whitespace_control(void **state) {
    (void)state;
    /* trim_blocks + lstrip_blocks; keep_trailing_newline=False */
    EXPECT("  {% if true %}\n  x\n  {% endif %}\n  {{ 1 }}\n  {# c #}\ny\n", "  x\n  1\ny");
    EXPECT("a\n{% for i in l %}\n  {{ i }}\n{% endfor %}\nb", "a\n  3\n  1\n  2\nb");
    EXPECT("a  {%- if true -%}  b  {%- endif -%}  c", "abc");
    EXPECT("a  {{- 1 -}}  b {{ 2 }}\n c", "a1b 2\n c");
    EXPECT("x {%+ if true %}y{% endif +%}\nz", "x y\nz");
    EXPECT("{# comment #}\nline\n  {#- c2 -#}  \n end", "lineend");
    EXPECT("{% raw -%}  {{ x }}  {%- endraw %}", "{{ x }}");
    EXPECT("a\r\nb\r\n{% if true %}\r\nc\r\n{% endif %}\r\n", "a\nb\nc\n");
    EXPECT("{{ 'a' }}\n\n", "a\n");
    EXPECT("x\n  {#", "x\n"); /* Jinja drops a "{#" that ends the source */
}

static void test_loops(void **state) {
    (void)state;
    EXPECT("{% for x in l if x > 1 %}{{ loop.index }}/{{ loop.length }}:{{ x }} {% else %}none"
           "{% endfor %}",
           "1/2:3 2/2:2 ");
    EXPECT("{% for x in [] %}x{% else %}empty{% endfor %}", "empty");
    EXPECT("{% for x in l %}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
           "{{ loop.first }}{{ loop.last }}{{ loop.previtem }}{{ loop.nextitem }}"
           "{{ loop.cycle('a','b') }};{% endfor %}",
           "032TrueFalse1a;121FalseFalse32b;210FalseTrue1a;");
    EXPECT("{% for x in l %}{% if x == 1 %}{% break %}{% endif %}{{ x }}{% endfor %}", "3");
    EXPECT("{% for x in l %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}", "32");
    EXPECT("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
           "b=1;a=[1, 2.5, None, True, 'x'];");
    EXPECT("{% for a, b in [(1, 2), (3, 4)] %}{{ a + b }}{% endfor %}", "37");
    EXPECT("{% for i in range(3) %}{% for j in range(2) %}{{ loop.index }}{% endfor %}"
           "{{ loop.index }}|{% endfor %}",
           "121|122|123|");
    EXPECT("{% for c in u %}[{{ c }}]{% endfor %}", "[h][é][l][l][o][ ][床]");
    /* loop scope: assignments inside do not leak out */
    EXPECT("{% set x = 1 %}{% for i in l %}{% set x = i %}{% endfor %}{{ x }}", "1");
    EXPECT_ERR("{% for x in n %}{% endfor %}", "not iterable");
    EXPECT("{% for x in missing %}a{% endfor %}b", "b");
}

static void test_set_namespace_macro(void **state) {
    (void)state;
    EXPECT("{% set ns = namespace(x=0, s='') %}{% for i in l %}{% set ns.x = ns.x + i %}"
           "{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.x }} {{ ns.s }}",
           "6 312");
    EXPECT("{% set a, b = 1, 2 %}{{ a }}{{ b }}", "12");
    EXPECT("{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}]", "[inner 2]");
    EXPECT("{% set x | upper %}inner{% endset %}[{{ x }}]", "[INNER]");
    EXPECT("{% macro m(a, b='B') %}<{{ a }}{{ b }}>{% endmacro %}{{ m(1) }}{{ m(1, 2) }}"
           "{{ m(b=3, a=4) }}{{ m() }}",
           "<1B><12><43><B>");
    EXPECT("{% macro outer() %}[{{ caller() }}]{% endmacro %}{% call outer() %}in{% endcall %}",
           "[in]");
    EXPECT("{% macro f(x) %}{{ x }}{% if x > 0 %}{{ f(x - 1) }}{% endif %}{% endmacro %}{{ f(3) }}",
           "3210");
    EXPECT("{% filter upper %}abc {{ 'x' }}{% endfilter %}", "ABC X");
    EXPECT("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", "3[]");
    EXPECT("{% if false %}a{% elif true %}b{% else %}c{% endif %}", "b");
    EXPECT("{% set l2 = [] %}{% do l2.append(1) %}{{ l2 }}", "[1]");
    EXPECT_ERR("{% set n.x = 1 %}", "non-namespace");
    EXPECT_ERR("{% do l.append(1) %}", "read-only");
}

static void test_expressions(void **state) {
    (void)state;
    EXPECT("{{ 1 + 2 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} "
           "{{ 2 ** -1 }} {{ 10 / 4 }} {{ 1 + 2 * 3 - 4 / 2 }}",
           "3 3.5 3 -4 2 1024 0.5 2.5 5.0");
    EXPECT("{{ 'a' ~ 1 ~ none ~ true ~ 1.0 }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ (1,) }} {{ () }} "
           "{{ {'k': 'v', 1: none} }} {{ 'a' 'b' }}",
           "a1NoneTrue1.0 ababab [1, 2] (1,) () {'k': 'v', 1: None} ab");
    EXPECT("{{ 1e16 }} {{ 1e15 }} {{ 0.00001 }} {{ 0.0001 }} {{ 1/3 }} {{ 2.5e-7 }} {{ -0.0 }}",
           "1e+16 1000000000000000.0 1e-05 0.0001 0.3333333333333333 2.5e-07 -0.0");
    EXPECT("{{ s[::-1] }} {{ s[1:3] }} {{ s[-3:] }} {{ s[::2] }} {{ u[1] }} {{ u[::-1] }} "
           "{{ l[-1] }} {{ l[1:] }} {{ l[::-1] }} {{ l[5:0:-2] }}",
           "dlroW olleH el rld HloWrd é 床 olléh 2 [1, 2] [2, 1, 3] [2]");
    EXPECT("{{ 1 in l }} {{ 5 not in l }} {{ 'b' in d }} {{ 'ell' in s }} {{ 1 < 2 < 3 }} "
           "{{ 1 < 3 < 2 }} {{ [1,2] < [1,3] }} {{ 1 == 1.0 }} {{ true == 1 }}",
           "True True True True True False True True True");
    EXPECT("{{ 'x' if n else 'y' }} {{ 'x' if n }}|{{ true and 'A' or 'B' }} {{ n or 'fb' }} "
           "{{ 0 and 1 }} {{ not n is none }} {{ -2 ** 2 }}",
           "y |A fb 0 False 4");
    EXPECT("{{ d.b }} {{ d['a'][4] }} {{ d.a.1 }} {{ msgs[-1].content }} {{ msgs[0]['role'] }} "
           "{{ d.get('b') }} {{ d.get('z', 3) }} {{ d.keys()|list }} {{ d.items()|list|length }}",
           "1 x 2.5 bye user 1 3 ['b', 'a'] 2");
    EXPECT("{{ \"it's\" }} {{ ['it\\'s', 'a\"b', 'x\\ny'] }} {{ '\\u00e9\\x41' }}",
           "it's [\"it's\", 'a\"b', 'x\\ny'] éA");
}

static void test_string_methods(void **state) {
    (void)state;
    EXPECT("{{ s.upper() }} {{ s.lower() }} {{ s.split() }} {{ s.split('o', 1) }} "
           "{{ s.rsplit('o', 1) }} {{ '  a b  c '.split(None, 1) }}",
           "HELLO WORLD hello world ['Hello', 'World'] ['Hell', ' World'] ['Hello W', 'rld'] "
           "['a', 'b  c ']");
    EXPECT("{{ '  x  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\nA\\n'.lstrip('\\n') }}|"
           "{{ '\\n\\nA\\n'.rstrip('\\n') }}|",
           "x|a|A\n|\n\nA|");
    EXPECT("{{ s.startswith('He') }} {{ s.endswith(('x', 'ld')) }} {{ s.replace('l', 'L', 2) }} "
           "{{ 'abc'.replace('', '-') }} {{ s.find('o') }} {{ u.find('l') }} {{ s.count('l') }}",
           "True True HeLLo World -a-b-c- 4 2 3");
    EXPECT("{{ ','.join(['a','b']) }} {{ \"they're bill\".title() }} {{ 'hELLO'.capitalize() }} "
           "{{ '12'.isdigit() }} {{ 'a\\nb\\r\\nc'.splitlines() }}",
           "a,b They'Re Bill Hello True ['a', 'b', 'c']");
    EXPECT(
        "{% set c = '<think>\\nr\\n</think>\\n\\nans' %}{{ c.split('</think>')[-1].lstrip('\\n') }}"
        "|{{ c.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}",
        "ans|r");
}

static void test_filters(void **state) {
    (void)state;
    EXPECT("{{ l|sort }} {{ l|sort(reverse=true) }} {{ ['b','A','c']|sort }} {{ l|max }} "
           "{{ l|min }} {{ l|sum }} {{ l|first }} {{ l|last }} {{ l|length }} {{ u|length }}",
           "[1, 2, 3] [3, 2, 1] ['A', 'b', 'c'] 3 1 6 3 2 3 7");
    EXPECT("{{ msgs|selectattr('role', 'equalto', 'user')|list|length }} "
           "{{ msgs|rejectattr('role', 'eq', 'user')|map(attribute='content')|join(',') }} "
           "{{ msgs|selectattr('x', 'defined')|list|length }} {{ [1,2,3,4]|select('odd')|list }} "
           "{{ ['a','b']|map('upper')|list }}",
           "2 yo 1 [1, 3] ['A', 'B']");
    EXPECT("{{ [1,2,1,3]|unique|list }} {{ l|reverse|list }} {{ s|reverse }} {{ d|dictsort }} "
           "{{ msgs|join(', ', attribute='role') }}",
           "[1, 2, 3] [2, 1, 3] dlroW olleH [('a', [1, 2.5, None, True, 'x']), ('b', 1)] user, "
           "assistant, user");
    EXPECT("{{ '  hi  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ 'hello world-foo'|title }} "
           "{{ 'aXbX'|replace('X', 'y') }} {{ '<a>&\\''|e }} {{ 'a b  c'|wordcount }}",
           "hi|hi|Hello World-Foo ayby &lt;a&gt;&amp;&#39; 3");
    EXPECT("{{ '42'|int }} {{ '4.7'|int }} {{ 'x'|int(7) }} {{ 4.7|int }} {{ '3.5'|float }} "
           "{{ -3|abs }} {{ 2.5|round }} {{ 2.675|round(2) }} {{ 2.1|round(method='ceil') }} "
           "{{ 'ab'|list }}",
           "42 4 7 4 3.5 3 2.0 2.67 3.0 ['a', 'b']");
    EXPECT("{{ nope|default('dflt') }} {{ ''|default('dflt', true) }} {{ n|default('x') }} "
           "{{ nope|length }} {{ nope }}|{{ nope is defined }}",
           "dflt dflt None 0 |False");
    EXPECT("{{ \"a\\nb\\n\\nc\"|indent(2) }}|{{ \"a\\nb\"|indent(2, first=true) }}",
           "a\n  b\n\n  c|  a\n  b");
}

static void test_formatting(void **state) {
    (void)state;
    EXPECT("{{ '%s|%5s|%-5s|%.2s' % ('abc', 'ab', '\u00e9', 'xyz') }}", "abc|   ab|é    |xy");
    EXPECT("{{ '%d %05d %+d %x %X %o %%' % (42, 7, 5, 255, 255, 8) }}", "42 00007 +5 ff FF 10 %");
    EXPECT("{{ '%.2f %e %5.1f%%' % (2.345, 12345.678, 99.44) }}", "2.35 1.234568e+04  99.4%");
    EXPECT("{{ '%s' % l }} {{ '%(b)s!' % d }} {{ '%s, %s!'|format('Hello', 'World') }}",
           "[3, 1, 2] 1! Hello, World!");
    EXPECT("{{ '{} and {}'.format(1, 'a') }} {{ '{1}{0}'.format('a', 'b') }} "
           "{{ '{x}-{y!r}'.format(x=1, y='q') }} {{ '{{}}'.format() }}",
           "1 and a ba 1-'q' {}");
    EXPECT("{{ u.upper() }} {{ 'stra\u00dfe'.upper() }} {{ '\u0391\u0392 \u0410\u0411'|lower }}",
           "HÉLLO 床 STRASSE αβ аб");
}

static void test_tojson(void **state) {
    (void)state;
    /* transformers' tojson: json.dumps(ensure_ascii=False), insertion order */
    EXPECT("{{ d|tojson }}", "{\"b\": 1, \"a\": [1, 2.5, null, true, \"x\"]}");
    EXPECT("{{ d|tojson(indent=2) }}",
           "{\n  \"b\": 1,\n  \"a\": [\n    1,\n    2.5,\n    null,\n    true,\n    \"x\"\n  ]\n}");
    EXPECT("{{ d|tojson(sort_keys=true) }}", "{\"a\": [1, 2.5, null, true, \"x\"], \"b\": 1}");
    EXPECT("{{ {'a': \"\\u00e9\\\"\\n\\u0001\"}|tojson }} {{ {'\\u00e9': "
           "1}|tojson(ensure_ascii=true) }}",
           "{\"a\": \"é\\\"\\n\\u0001\"} {\"\\u00e9\": 1}");
    EXPECT("{{ {'a': [], 'b': {}}|tojson(indent=2) }}", "{\n  \"a\": [],\n  \"b\": {}\n}");
    EXPECT("{{ d|tojson(separators=(',', ':')) }}", "{\"b\":1,\"a\":[1,2.5,null,true,\"x\"]}");
    EXPECT_ERR("{{ nope|tojson }}", "not JSON serializable");
}

static void test_is_tests(void **state) {
    (void)state;
    EXPECT("{{ d.zz is defined }} {{ d.zz is undefined }} {{ n is none }} {{ 3 is odd }} "
           "{{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ 'a' is string }} "
           "{{ 1 is number }} {{ 1.0 is integer }} {{ true is boolean }} {{ d is mapping }} "
           "{{ l is iterable }} {{ s is sequence }} {{ 1 is eq 1 }} {{ 1 is equalto 2 }} "
           "{{ 'a' is in 'cat' }} {{ true is true }} {{ n is not none }}",
           "False True True True True True False True True False True True True True True False "
           "True True False");
}

static void test_undefined_and_errors(void **state) {
    (void)state;
    EXPECT("[{{ nope }}]{% if nope %}x{% endif %}{{ nope is defined }}", "[]False");
    EXPECT_ERR("{{ nope.attr }}", "'nope' is undefined");
    EXPECT_ERR("{{ msgs[0].nope.deeper }}", "'dict object' has no attribute 'nope'");
    EXPECT_ERR("{{ nope + 1 }}", "'nope' is undefined");
    EXPECT_ERR("{{ 1 + 'a' }}", "unsupported operand types for +: 'int' and 'str'");
    EXPECT_ERR("x\n{{ raise_exception('Only user and assistant roles are supported!') }}",
               "Only user and assistant roles are supported!");
    EXPECT_ERR("x\n{{ raise_exception('boom') }}", "line 2");
    EXPECT_ERR("a\n\n{{ x|nosuchfilter }}", "unknown filter 'nosuchfilter'");
    EXPECT_ERR("a\n\n{{ x|nosuchfilter }}", "line 3");
    EXPECT_ERR("{{ x is nosuchtest }}", "unknown test 'nosuchtest'");
    /* as in Jinja 3: unknown filters and tests fail when they run, so a guarded branch is fine */
    EXPECT("{% if false %}{{ x|nosuchfilter }}{{ x is nosuchtest }}{% endif %}ok", "ok");
    EXPECT_ERR("{{ 1 is odd(2) }}", "takes no arguments");
    EXPECT_ERR("line1\n{% for x in l %}\n{{ x }}",
               "expected 'endfor' to close the 'for' tag from line 2");
    EXPECT_ERR("{% if true %}{% endfor %}", "unexpected 'endfor'");
    EXPECT_ERR("{% include 'x.html' %}", "the 'include' tag is not supported");
    EXPECT_ERR("{% extends 'base' %}", "'extends' tag is not supported");
    EXPECT_ERR("{% frobnicate %}", "unknown tag 'frobnicate'");
    EXPECT_ERR("{{ x|groupby('a') }}", "filter 'groupby' is not supported");
    EXPECT_ERR("{% break %}", "outside of a for loop");
    EXPECT_ERR("{{ 'a' 'b }}", "unterminated string");
    EXPECT_ERR("{{ 1 + }}", "expected an expression");
    EXPECT_ERR("{{ (1 }}", "missing '}}'");
    EXPECT_ERR("{{ (1 ]] }}", "expected ')'");
    EXPECT_ERR("{# never closed", "unclosed comment");
    EXPECT_ERR("{{ x", "missing '}}'");
    EXPECT_ERR("{{ '{:02d}'.format(1) }}", "format specs (':02d') are not supported");
    EXPECT_ERR("{{ s.zfill(3) }}", "has no attribute 'zfill'");
    EXPECT_ERR("{{ '%d' % 'x' }}", "needs a number");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whitespace_control),
        cmocka_unit_test(test_loops),
        cmocka_unit_test(test_set_namespace_macro),
        cmocka_unit_test(test_expressions),
        cmocka_unit_test(test_string_methods),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_tojson),
        cmocka_unit_test(test_is_tests),
        cmocka_unit_test(test_formatting),
        cmocka_unit_test(test_undefined_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
