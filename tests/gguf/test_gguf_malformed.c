/* Hostile and broken GGUF files: each must be refused with a message that
 * names the problem; none may crash (run under ASan/UBSan in CI). Files are
 * hand-built here byte by byte, or cut from a valid file the writer made. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf/gguf.h"

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *v, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, v, n);
    b->n += n;
}
static void u32(buf *b, uint32_t v) {
    put(b, &v, 4);
}
static void u64(buf *b, uint64_t v) {
    put(b, &v, 8);
}
static void str(buf *b, const char *s) {
    u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void hdr(buf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    put(b, "GGUF", 4);
    u32(b, version);
    u64(b, n_tensors);
    u64(b, n_kv);
}
static void kv_u32(buf *b, const char *key, uint32_t v) {
    str(b, key);
    u32(b, GGUF_UINT32);
    u32(b, v);
}
static void kv_str(buf *b, const char *key, const char *v) {
    str(b, key);
    u32(b, GGUF_STRING);
    str(b, v);
}
static void tinfo(buf *b, const char *name, uint32_t n_dims, const int64_t *ne, uint32_t type,
                  uint64_t offset) {
    str(b, name);
    u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) u64(b, (uint64_t)ne[i]);
    u32(b, type);
    u64(b, offset);
}
static void pad_to(buf *b, size_t align) {
    while (b->n % align) put(b, "", 1);
}
static void zeros(buf *b, size_t n) {
    for (size_t i = 0; i < n; i++) put(b, "", 1);
}

/* Opens b from memory: expects failure with `word` in the message. */
static void expect_fail(buf *b, const char *word) {
    hearth_err err = {{0}};
    gguf_file *f = gguf_open_memory(b->p, b->n, &err);
    if (f) {
        gguf_close(f);
        fail_msg("opened, expected failure mentioning '%s'", word);
    }
    if (!strstr(err.msg, word)) fail_msg("message '%s' lacks '%s'", err.msg, word);
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

static gguf_file *expect_ok(buf *b) {
    hearth_err err = {{0}};
    gguf_file *f = gguf_open_memory(b->p, b->n, &err);
    if (!f) fail_msg("expected to open, got: %s", err.msg);
    return f;
}

/* A valid file with two f32 tensors (8 and 4x2 elements) at offsets 0 and 32. */
static void valid_two_tensors(buf *b, uint64_t off2, const char *name2) {
    int64_t ne1[] = {8}, ne2[] = {4, 2};
    hdr(b, 3, 2, 1);
    kv_str(b, "general.architecture", "llama");
    tinfo(b, "a", 1, ne1, HT_F32, 0);
    tinfo(b, name2, 2, ne2, HT_F32, off2);
    pad_to(b, 32);
    zeros(b, 64);
}

static void test_handmade_valid(void **state) {
    (void)state;
    buf b = {0};
    valid_two_tensors(&b, 32, "b");
    gguf_file *f = expect_ok(&b);
    assert_int_equal(gguf_n_tensors(f), 2);
    assert_int_equal(gguf_find_tensor(f, "b")->nbytes, 32);
    assert_int_equal(gguf_find_tensor(f, "b")->ne[1], 2);
    assert_int_equal(gguf_find_tensor(f, "b")->ne[2], 1);
    assert_int_equal(gguf_version(f), 3);
    gguf_close(f);
    free(b.p);
}

static void test_header_problems(void **state) {
    (void)state;
    buf b = {0};
    put(&b, "GGUX", 4), u32(&b, 3), u64(&b, 0), u64(&b, 0);
    expect_fail(&b, "magic");
    hdr(&b, 1, 0, 0);
    expect_fail(&b, "version 1");
    hdr(&b, 4, 0, 0);
    expect_fail(&b, "version 4");
    hdr(&b, 0x03000000, 0, 0);
    expect_fail(&b, "big-endian");
    put(&b, "GG", 2);
    expect_fail(&b, "magic");
    hdr(&b, 3, 0, 1u << 20); /* count far beyond the bytes present */
    expect_fail(&b, "metadata count");
    hdr(&b, 3, 0, 1ull << 63);
    expect_fail(&b, "metadata count");
    hdr(&b, 3, UINT64_MAX, 0);
    expect_fail(&b, "tensor count");
    hdr(&b, 3, 1ull << 62, 1ull << 62);
    expect_fail(&b, "count");
    /* An empty, valid file: no tensors, no keys. */
    hdr(&b, 2, 0, 0);
    gguf_file *f = expect_ok(&b);
    assert_int_equal(gguf_version(f), 2);
    assert_int_equal(gguf_n_kv(f), 0);
    gguf_close(f);
    free(b.p);
}

static void test_metadata_problems(void **state) {
    (void)state;
    buf b = {0};
    /* string length past EOF, in a key and in a value */
    hdr(&b, 3, 0, 1), u64(&b, 1000), put(&b, "abcdefghijklmnop", 16);
    expect_fail(&b, "runs past the end");
    hdr(&b, 3, 0, 1), str(&b, "k"), u32(&b, GGUF_STRING), u64(&b, UINT64_MAX - 3), zeros(&b, 8);
    expect_fail(&b, "runs past the end");
    /* bad value type ids */
    hdr(&b, 3, 0, 1), str(&b, "k"), u32(&b, 13), zeros(&b, 8);
    expect_fail(&b, "invalid value type id 13");
    hdr(&b, 3, 0, 1), str(&b, "k"), u32(&b, GGUF_ARRAY), u32(&b, 77), u64(&b, 0), zeros(&b, 8);
    expect_fail(&b, "invalid array element type id 77");
    hdr(&b, 3, 0, 1), str(&b, "k"), u32(&b, GGUF_ARRAY), u32(&b, GGUF_ARRAY), u64(&b, 1),
        zeros(&b, 16);
    expect_fail(&b, "nested arrays");
    /* array lengths whose byte size overflows 64 bits (2^61 * 8 == 0) */
    hdr(&b, 3, 0, 1), str(&b, "k"), u32(&b, GGUF_ARRAY), u32(&b, GGUF_UINT64), u64(&b, 1ull << 61),
        zeros(&b, 16);
    expect_fail(&b, "runs past the end");
    hdr(&b, 3, 0, 1), str(&b, "k"), u32(&b, GGUF_ARRAY), u32(&b, GGUF_STRING), u64(&b, 1ull << 62),
        zeros(&b, 16);
    expect_fail(&b, "strings cannot fit");
    /* a string element past EOF inside an array */
    hdr(&b, 3, 0, 1), str(&b, "tokens"), u32(&b, GGUF_ARRAY), u32(&b, GGUF_STRING), u64(&b, 2);
    str(&b, "ok"), u64(&b, 99), put(&b, "short", 5);
    expect_fail(&b, "string 1 of 2");
    /* scalar cut short */
    hdr(&b, 3, 0, 1), str(&b, "k"), u32(&b, GGUF_UINT64), u32(&b, 7);
    expect_fail(&b, "expected 8 bytes");
    /* duplicate and empty keys */
    hdr(&b, 3, 0, 2), kv_u32(&b, "a.b", 1), kv_u32(&b, "a.b", 2);
    expect_fail(&b, "duplicate key 'a.b'");
    hdr(&b, 3, 0, 1), kv_u32(&b, "", 1), zeros(&b, 8);
    expect_fail(&b, "empty key");
    /* keys with a NUL byte cannot be looked up; refused */
    hdr(&b, 3, 0, 1), u64(&b, 3), put(&b, "a\0b", 3), u32(&b, GGUF_UINT8), put(&b, "x", 1);
    expect_fail(&b, "NUL byte");
    /* alignment: zero, not a power of two, wrong type */
    hdr(&b, 3, 0, 1), kv_u32(&b, "general.alignment", 0);
    expect_fail(&b, "power of two");
    hdr(&b, 3, 0, 1), kv_u32(&b, "general.alignment", 48);
    expect_fail(&b, "power of two");
    hdr(&b, 3, 0, 1), kv_str(&b, "general.alignment", "32");
    expect_fail(&b, "expected uint32");
    free(b.p);
}

static void test_tensor_problems(void **state) {
    (void)state;
    buf b = {0};
    int64_t ne8[] = {8}, big[] = {1ll << 32, 1ll << 32, 4}, neg[] = {8, -1}, ne33[] = {33};
    /* bad tensor type ids: 4 (removed q4_2), 100 */
    hdr(&b, 3, 1, 0), tinfo(&b, "t", 1, ne8, 4, 0), pad_to(&b, 32), zeros(&b, 64);
    expect_fail(&b, "unknown tensor type id 4");
    hdr(&b, 3, 1, 0), tinfo(&b, "t", 1, ne8, 100, 0), pad_to(&b, 32), zeros(&b, 64);
    expect_fail(&b, "unknown tensor type id 100");
    /* dims */
    hdr(&b, 3, 1, 0), tinfo(&b, "t", 0, ne8, HT_F32, 0), zeros(&b, 64);
    expect_fail(&b, "expected 1 to 4 dims, found 0");
    hdr(&b, 3, 1, 0), str(&b, "t"), u32(&b, 5), zeros(&b, 64);
    expect_fail(&b, "expected 1 to 4 dims, found 5");
    hdr(&b, 3, 1, 0), tinfo(&b, "t", 3, big, HT_F32, 0), pad_to(&b, 32), zeros(&b, 64);
    expect_fail(&b, "overflows");
    int64_t zbig[] = {0, 1ll << 40, 1ll << 40}; /* zero elements, but ne1*ne2 overflows */
    hdr(&b, 3, 1, 0), tinfo(&b, "t", 3, zbig, HT_F32, 0), pad_to(&b, 32), zeros(&b, 64);
    expect_fail(&b, "overflows");
    hdr(&b, 3, 1, 0), tinfo(&b, "t", 2, neg, HT_F32, 0), pad_to(&b, 32), zeros(&b, 64);
    expect_fail(&b, "negative");
    hdr(&b, 3, 1, 0), tinfo(&b, "t", 1, ne33, HT_Q8_0, 0), pad_to(&b, 32), zeros(&b, 64);
    expect_fail(&b, "multiple of 32");
    /* offsets */
    hdr(&b, 3, 1, 0), tinfo(&b, "blk.0.attn_q.weight", 1, ne8, HT_F32, 64), pad_to(&b, 32),
        zeros(&b, 64);
    expect_fail(&b, "tensor 'blk.0.attn_q.weight': data [offset 64, 32 bytes] runs past the end");
    hdr(&b, 3, 1, 0), tinfo(&b, "t", 1, ne8, HT_F32, UINT64_MAX - 31), pad_to(&b, 32),
        zeros(&b, 64);
    expect_fail(&b, "runs past the end");
    valid_two_tensors(&b, 16, "b");
    expect_fail(&b, "not a multiple of the alignment 32");
    valid_two_tensors(&b, 0, "b");
    expect_fail(&b, "overlap");
    valid_two_tensors(&b, 32, "a");
    expect_fail(&b, "duplicate tensor name 'a'");
    hdr(&b, 3, 1, 0), u64(&b, 2), put(&b, "t\0", 2), u32(&b, 1), u64(&b, 8), u32(&b, HT_F32),
        u64(&b, 0);
    pad_to(&b, 32), zeros(&b, 64);
    expect_fail(&b, "NUL byte");
    /* data section missing entirely */
    hdr(&b, 3, 1, 0), tinfo(&b, "t", 1, ne8, HT_F32, 0);
    expect_fail(&b, "past the end of the file");
    /* alignment 64 honoured: offset 32 is then misaligned, 64 is fine */
    hdr(&b, 3, 1, 1), kv_u32(&b, "general.alignment", 64), tinfo(&b, "t", 1, ne8, HT_F32, 32);
    pad_to(&b, 64), zeros(&b, 128);
    expect_fail(&b, "alignment 64");
    hdr(&b, 3, 1, 1), kv_u32(&b, "general.alignment", 64), tinfo(&b, "t", 1, ne8, HT_F32, 64);
    pad_to(&b, 64), zeros(&b, 128);
    gguf_file *f = expect_ok(&b);
    assert_int_equal(gguf_alignment(f), 64);
    assert_int_equal(gguf_data_offset(f) % 64, 0);
    gguf_close(f);
    free(b.p);
    b = (buf){0};
    /* zero-element tensors are allowed and take no bytes */
    int64_t z[] = {0, 5};
    hdr(&b, 3, 1, 0), tinfo(&b, "empty", 2, z, HT_Q4_0, 0), pad_to(&b, 32);
    f = expect_ok(&b);
    assert_int_equal(gguf_tensor_at(f, 0)->nbytes, 0);
    assert_int_equal(gguf_tensor_n_elements(gguf_tensor_at(f, 0)), 0);
    gguf_close(f);
    free(b.p);
}

/* Writes a small but complete file with the writer and returns its bytes. */
static uint8_t *writer_file(size_t *size) {
    char path[] = "/tmp/hearth_gguf_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    gguf_writer *w = gguf_writer_new();
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", "llama"), 0);
    assert_int_equal(gguf_writer_set_u32(w, "llama.block_count", 2), 0);
    const char *toks[] = {"<s>", "a", "bc"};
    assert_int_equal(gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", toks, 3), 0);
    float sc[] = {0, -1, -2};
    assert_int_equal(gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_FLOAT32, sc, 3), 0);
    float data[64];
    for (int i = 0; i < 64; i++) data[i] = (float)i;
    int64_t ne[] = {32, 2};
    assert_int_equal(gguf_writer_add_tensor(w, "x", HT_F32, 2, ne, data, NULL), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "y", HT_F32, 1, ne, data, NULL), 0);
    assert_int_equal(gguf_writer_write(w, path, NULL), 0);
    gguf_writer_free(w);
    FILE *fp = fopen(path, "rb");
    fseek(fp, 0, SEEK_END);
    *size = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *p = malloc(*size);
    assert_int_equal(fread(p, 1, *size, fp), *size);
    fclose(fp);
    unlink(path);
    return p;
}

static void test_every_truncation_fails(void **state) {
    (void)state;
    size_t size;
    uint8_t *full = writer_file(&size);
    hearth_err err;
    gguf_file *f = gguf_open_memory(full, size, &err);
    if (!f) fail_msg("%s", err.msg);
    uint64_t need = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (gguf_data_offset(f) + t->offset + t->nbytes > need)
            need = gguf_data_offset(f) + t->offset + t->nbytes;
    }
    gguf_close(f);
    assert_true(need <= size && need > 200);
    /* Every prefix that lacks needed bytes fails; copies make ASan see overreads. */
    for (size_t n = 0; n < need; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, full, n);
        err.msg[0] = 0;
        f = gguf_open_memory(cut, n, &err);
        if (f) fail_msg("prefix of %zu of %zu bytes opened", n, size);
        assert_true(strlen(err.msg) > 10);
        free(cut);
    }
    /* And every single-byte corruption of the header region is either refused
     * or yields a file whose tensors still lie inside the buffer. */
    f = gguf_open_memory(full, size, NULL);
    assert_non_null(f);
    for (size_t at = 0; at < gguf_data_offset(f); at++) {
        uint8_t *bad = malloc(size);
        memcpy(bad, full, size);
        bad[at] ^= 0xA5;
        gguf_file *g = gguf_open_memory(bad, size, NULL);
        if (g) {
            for (uint64_t i = 0; i < gguf_n_tensors(g); i++) {
                const gguf_tensor *t = gguf_tensor_at(g, i);
                assert_true((const uint8_t *)t->data >= bad);
                assert_true((const uint8_t *)t->data + t->nbytes <= bad + size);
            }
            gguf_close(g);
        }
        free(bad);
    }
    gguf_close(f);
    /* Version 2 has the same layout (64-bit counts): the same bytes open as v2. */
    uint8_t *v2 = malloc(size);
    memcpy(v2, full, size);
    v2[4] = 2;
    f = gguf_open_memory(v2, size, &err);
    if (!f) fail_msg("v2: %s", err.msg);
    assert_int_equal(gguf_version(f), 2);
    assert_int_equal(gguf_n_tensors(f), 2);
    gguf_close(f);
    free(v2);
    free(full);
}

static void test_truncated_file_on_disk_names_path(void **state) {
    (void)state;
    size_t size;
    uint8_t *full = writer_file(&size);
    char path[] = "/tmp/hearth_trunc_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, full, size / 2), (ssize_t)(size / 2));
    close(fd);
    hearth_err err;
    assert_null(gguf_open(path, &err));
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "end of the file"));
    unlink(path);
    free(full);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handmade_valid),
        cmocka_unit_test(test_header_problems),
        cmocka_unit_test(test_metadata_problems),
        cmocka_unit_test(test_tensor_problems),
        cmocka_unit_test(test_every_truncation_fails),
        cmocka_unit_test(test_truncated_file_on_disk_names_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
