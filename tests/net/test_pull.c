/* The network-free parts of `hearth pull`: source parsing (hf:// mapping),
 * the redirect policy, Content-Range and ETag parsing. The transfer itself is
 * tested against a loopback server by pull_test.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "net/pull.h"

static void test_hf_mapping(void **state) {
    (void)state;
    pull_source s;
    hearth_err e = {{0}};
    assert_int_equal(
        pull_parse_source("hf://Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_0.gguf",
                          "https://huggingface.co", &s, &e),
        0);
    assert_string_equal(s.url,
                        "https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/"
                        "qwen2.5-0.5b-instruct-q4_0.gguf");
    assert_string_equal(s.name, "qwen2.5-0.5b-instruct-q4_0.gguf");
    assert_true(s.hub);
    assert_string_equal(s.hub_endpoint, "https://huggingface.co");

    /* Revision, subfolders, an endpoint with a trailing slash and a port. */
    assert_int_equal(
        pull_parse_source("hf://org/repo/sub/dir/m.gguf@v1.2", "http://127.0.0.1:8080/", &s, &e),
        0);
    assert_string_equal(s.url, "http://127.0.0.1:8080/org/repo/resolve/v1.2/sub/dir/m.gguf");
    assert_string_equal(s.name, "m.gguf");
    assert_string_equal(s.hub_endpoint, "http://127.0.0.1:8080");

    /* A revision with '/' (refs/pr/1) is one path segment; odd bytes are escaped. */
    assert_int_equal(
        pull_parse_source("hf://o/r/a b.gguf@refs/pr/1", "https://hub.example", &s, &e), 0);
    assert_string_equal(s.url, "https://hub.example/o/r/resolve/refs%2Fpr%2F1/a%20b.gguf");
    assert_string_equal(s.name, "a b.gguf");
}

static void test_hf_default_endpoint_from_env(void **state) {
    (void)state;
    pull_source s;
    hearth_err e;
    unsetenv("HEARTH_HF_ENDPOINT");
    assert_int_equal(pull_parse_source("hf://o/r/f.gguf", NULL, &s, &e), 0);
    assert_string_equal(s.url, "https://huggingface.co/o/r/resolve/main/f.gguf");
    setenv("HEARTH_HF_ENDPOINT", "http://localhost:1234", 1);
    assert_int_equal(pull_parse_source("hf://o/r/f.gguf", NULL, &s, &e), 0);
    assert_string_equal(s.url, "http://localhost:1234/o/r/resolve/main/f.gguf");
    unsetenv("HEARTH_HF_ENDPOINT");
}

static void expect_bad_source(const char *spec, const char *needle) {
    pull_source s;
    hearth_err e = {{0}};
    assert_int_equal(pull_parse_source(spec, "https://huggingface.co", &s, &e), -1);
    if (!strstr(e.msg, needle)) fail_msg("'%s': '%s' not in: %s", spec, needle, e.msg);
}

static void test_bad_sources(void **state) {
    (void)state;
    expect_bad_source("", "expected a source");
    expect_bad_source("hf://org/file.gguf", "found 2 path segments");
    expect_bad_source("hf://org", "found 1 path segment");
    expect_bad_source("hf://org//f.gguf", "empty");
    expect_bad_source("hf://org/repo/../f.gguf", "'..'");
    expect_bad_source("hf://org/repo/./f.gguf", "'.'");
    expect_bad_source("hf://org/repo/f.gguf@", "empty revision");
    expect_bad_source("hf://org/repo/.hidden", "not usable as a file name");
    expect_bad_source("hf://org/repo/f.gguf?x=1", "unexpected character");
    expect_bad_source("ftp://host/f.gguf", "expected hf://ORG/REPO/FILE.gguf or an http(s):// URL");
    expect_bad_source("file:///etc/passwd", "expected hf://");
    expect_bad_source("/local/path.gguf", "expected hf://");
    expect_bad_source("https://host/dir/", "pass --name");
    pull_source s;
    hearth_err e;
    assert_int_equal(pull_parse_source("hf://o/r/f.gguf", "ftp://hub", &s, &e), -1);
    assert_non_null(strstr(e.msg, "expected an http(s) URL"));
}

static void test_plain_urls(void **state) {
    (void)state;
    pull_source s;
    hearth_err e = {{0}};
    assert_int_equal(
        pull_parse_source("https://example.com/models/tiny%20model.gguf?download=1", NULL, &s, &e),
        0);
    assert_string_equal(s.url, "https://example.com/models/tiny%20model.gguf?download=1");
    assert_string_equal(s.name, "tiny model.gguf");
    assert_false(s.hub); /* no token for plain URLs */
    assert_int_equal(pull_parse_source("HTTP://example.com/a.gguf", NULL, &s, &e), 0);
    assert_string_equal(s.name, "a.gguf");
}

static void test_redirect_policy(void **state) {
    (void)state;
    hearth_err e = {{0}};
    assert_int_equal(pull_redirect_check("https://hub.example/a", "https://cdn.example/b", &e), 0);
    assert_int_equal(pull_redirect_check("http://hub.example/a", "https://cdn.example/b", &e), 0);
    assert_int_equal(pull_redirect_check("http://hub.example/a", "http://cdn.example/b", &e), 0);
    assert_int_equal(pull_redirect_check("https://hub.example/a", "http://cdn.example/b", &e), -1);
    assert_non_null(strstr(e.msg, "refusing redirect from https to plain http"));
    assert_int_equal(pull_redirect_check("HTTPS://hub.example/a", "HTTP://hub.example/b", &e), -1);
    assert_int_equal(pull_redirect_check("https://hub.example/a", "ftp://cdn.example/b", &e), -1);
    assert_non_null(strstr(e.msg, "expected http or https, found ftp"));
    assert_int_equal(pull_redirect_check("http://hub.example/a", "file:///etc/passwd", &e), -1);
    assert_int_equal(pull_redirect_check("http://hub.example/a", "gopher://x/", &e), -1);
}

static void test_same_origin(void **state) {
    (void)state;
    assert_true(pull_same_origin("https://huggingface.co/a/b", "https://huggingface.co"));
    assert_true(pull_same_origin("https://HuggingFace.co:443/x", "https://huggingface.co/"));
    assert_true(pull_same_origin("http://127.0.0.1:8080/x", "http://127.0.0.1:8080"));
    assert_false(pull_same_origin("https://cdn-lfs.huggingface.co/x", "https://huggingface.co"));
    assert_false(pull_same_origin("http://huggingface.co/x", "https://huggingface.co"));
    assert_false(pull_same_origin("http://127.0.0.1:8081/x", "http://127.0.0.1:8080"));
    assert_false(pull_same_origin("http://127.0.0.2:8080/x", "http://127.0.0.1:8080"));
    assert_false(
        pull_same_origin("https://huggingface.co.evil.example/x", "https://huggingface.co"));
    assert_false(
        pull_same_origin("https://huggingface.co@evil.example/x", "https://huggingface.co"));
    assert_false(pull_same_origin("not a url", "https://huggingface.co"));
}

static void test_content_range(void **state) {
    (void)state;
    uint64_t a = 1, b = 2, t = 3;
    assert_int_equal(pull_parse_content_range("bytes 100-199/200", &a, &b, &t), 0);
    assert_true(a == 100 && b == 199 && t == 200);
    assert_int_equal(pull_parse_content_range("bytes 0-0/1", &a, &b, &t), 0);
    assert_true(a == 0 && b == 0 && t == 1);
    assert_int_equal(pull_parse_content_range("  Bytes 5-9/*", &a, &b, &t), 0);
    assert_true(a == 5 && b == 9 && t == PULL_SIZE_UNKNOWN);
    assert_int_equal(pull_parse_content_range("bytes */4096", &a, &b, &t), 1);
    assert_true(t == 4096 && a == PULL_SIZE_UNKNOWN);
    assert_int_equal(
        pull_parse_content_range("bytes 0-18446744073709551614/18446744073709551615", &a, &b, &t),
        0);
    /* Malformed or inconsistent. */
    static const char *bad[] = {
        "",
        "bytes",
        "bytes 1-2",
        "items 0-1/2",
        "bytes 5-4/10",
        "bytes 0-10/10",
        "bytes -1-2/3",
        "bytes 0-1/x",
        "bytes */*",
        "bytes 0-1/2 junk",
        "bytes 0-99999999999999999999/1",
        "bytes a-b/c",
        "bytes0-1/2",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (pull_parse_content_range(bad[i], &a, &b, &t) != -1) fail_msg("accepted '%s'", bad[i]);
}

static void test_hex_digest(void **state) {
    (void)state;
    const char *hex = "6E8B6BA0C7763CE1584273BECA6D77EF003CAF024336CCF34948AF4E42740A70";
    char out[SHA256_HEX_SIZE];
    char quoted[80];
    snprintf(quoted, sizeof quoted, "\"%s\"", hex);
    assert_true(pull_hex_digest(quoted, out));
    assert_string_equal(out, "6e8b6ba0c7763ce1584273beca6d77ef003caf024336ccf34948af4e42740a70");
    snprintf(quoted, sizeof quoted, "W/\"%s\" ", hex);
    assert_true(pull_hex_digest(quoted, out));
    assert_true(pull_hex_digest(hex, out));
    /* A git blob id (40 hex), too long, not hex, unbalanced quotes. */
    assert_false(pull_hex_digest("\"da39a3ee5e6b4b0d3255bfef95601890afd80709\"", out));
    snprintf(quoted, sizeof quoted, "%s0", hex);
    assert_false(pull_hex_digest(quoted, out));
    snprintf(quoted, sizeof quoted, "%.63sg", hex);
    assert_false(pull_hex_digest(quoted, out));
    snprintf(quoted, sizeof quoted, "\"%s", hex);
    assert_false(pull_hex_digest(quoted, out));
    assert_false(pull_hex_digest("", out));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hf_mapping),      cmocka_unit_test(test_hf_default_endpoint_from_env),
        cmocka_unit_test(test_bad_sources),     cmocka_unit_test(test_plain_urls),
        cmocka_unit_test(test_redirect_policy), cmocka_unit_test(test_same_origin),
        cmocka_unit_test(test_content_range),   cmocka_unit_test(test_hex_digest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
