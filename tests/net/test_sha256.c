/* SHA-256 against the FIPS 180-4 / NIST example vectors, the padding
 * boundaries, and incremental updates in odd chunk sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "net/sha256.h"

static void check_hex(const void *data, size_t len, const char *want) {
    uint8_t d[SHA256_DIGEST_SIZE];
    char hex[SHA256_HEX_SIZE];
    sha256(data, len, d);
    sha256_hex(d, hex);
    assert_string_equal(hex, want);
}

static void test_nist_empty(void **state) {
    (void)state;
    check_hex("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_nist_abc(void **state) {
    (void)state;
    check_hex("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_nist_448_bits(void **state) {
    (void)state;
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_int_equal(strlen(m) * 8, 448);
    check_hex(m, strlen(m), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_nist_896_bits(void **state) {
    (void)state;
    const char *m =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnop"
        "qklmnopqrlmnopqrsmnopqrstnopqrstu";
    assert_int_equal(strlen(m) * 8, 896);
    check_hex(m, strlen(m), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_nist_million_a(void **state) {
    (void)state;
    size_t n = 1000000;
    char *m = malloc(n);
    assert_non_null(m);
    memset(m, 'a', n);
    check_hex(m, n, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* The same message fed 1000 bytes at a time. */
    sha256_ctx c;
    sha256_init(&c);
    for (size_t i = 0; i < n; i += 1000) sha256_update(&c, m + i, 1000);
    uint8_t d[SHA256_DIGEST_SIZE];
    char hex[SHA256_HEX_SIZE];
    sha256_final(&c, d);
    sha256_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(m);
}

/* Lengths around the 56-byte padding boundary (one vs two final blocks);
 * reference digests from Python's hashlib. */
static void test_padding_boundaries(void **state) {
    (void)state;
    static const struct {
        size_t n;
        const char *hex;
    } v[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
        {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
    };
    char buf[128];
    memset(buf, 'a', sizeof buf);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) check_hex(buf, v[i].n, v[i].hex);
}

/* Any split of the input gives the one-shot digest. */
static void test_incremental_odd_chunks(void **state) {
    (void)state;
    enum { N = 10007 };
    uint8_t *m = malloc(N);
    assert_non_null(m);
    uint32_t x = 12345;
    for (size_t i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        m[i] = (uint8_t)(x >> 16);
    }
    uint8_t want[SHA256_DIGEST_SIZE];
    sha256(m, N, want);
    static const size_t chunks[] = {1, 2, 3, 7, 13, 55, 56, 63, 64, 65, 127, 129, 1000, 4099};
    for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++) {
        sha256_ctx c;
        sha256_init(&c);
        for (size_t i = 0; i < N; i += chunks[k])
            sha256_update(&c, m + i, N - i < chunks[k] ? N - i : chunks[k]);
        uint8_t got[SHA256_DIGEST_SIZE];
        sha256_final(&c, got);
        assert_memory_equal(got, want, SHA256_DIGEST_SIZE);
    }
    /* Varying chunk sizes, including empty updates. */
    sha256_ctx c;
    sha256_init(&c);
    size_t i = 0, step = 0;
    while (i < N) {
        size_t len = (step * 37) % 150;
        if (len > N - i) len = N - i;
        sha256_update(&c, m + i, len);
        i += len;
        step++;
    }
    uint8_t got[SHA256_DIGEST_SIZE];
    sha256_final(&c, got);
    assert_memory_equal(got, want, SHA256_DIGEST_SIZE);
    /* A different message gives a different digest. */
    m[N / 2] ^= 1;
    sha256(m, N, got);
    assert_memory_not_equal(got, want, SHA256_DIGEST_SIZE);
    free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nist_empty),
        cmocka_unit_test(test_nist_abc),
        cmocka_unit_test(test_nist_448_bits),
        cmocka_unit_test(test_nist_896_bits),
        cmocka_unit_test(test_nist_million_a),
        cmocka_unit_test(test_padding_boundaries),
        cmocka_unit_test(test_incremental_odd_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
