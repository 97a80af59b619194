/* Tokenizer exactness against the reference fixtures in
 * $HEARTH_SHARED/tokenizer/gguf (ids from the original tokenizers), round
 * trips, and the streaming detokenizer's UTF-8 promise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "text/tok_test_util.h"
#include "text/utf8.h"

#define SEP "\n__ggml_vocab_test__\n"

typedef struct fixture {
    char *inp, *out; /* file contents */
    char **str;      /* test strings (into inp) */
    size_t *len;
    char **ids; /* expected id lines (into out) */
    size_t n;
} fixture;

static void fixture_load(fixture *fx, const char *vocab) {
    char rel[256], path[4096];
    memset(fx, 0, sizeof *fx);
    snprintf(rel, sizeof rel, "tokenizer/gguf/ggml-vocab-%s.gguf.inp", vocab);
    shared_path(path, sizeof path, rel);
    size_t n_inp = 0;
    fx->inp = read_all(path, &n_inp);
    assert_non_null(fx->inp);
    snprintf(rel, sizeof rel, "tokenizer/gguf/ggml-vocab-%s.gguf.out", vocab);
    shared_path(path, sizeof path, rel);
    fx->out = read_all(path, NULL);
    assert_non_null(fx->out);
    size_t cap = 256;
    fx->str = calloc(cap, sizeof *fx->str);
    fx->len = calloc(cap, sizeof *fx->len);
    fx->ids = calloc(cap, sizeof *fx->ids);
    /* The file ends with the separator: every string is followed by one. */
    char *p = fx->inp, *end = fx->inp + n_inp;
    while (p < end) {
        char *s = memmem(p, (size_t)(end - p), SEP, strlen(SEP));
        assert_non_null(s);
        assert_true(fx->n < cap);
        fx->str[fx->n] = p;
        fx->len[fx->n] = (size_t)(s - p);
        fx->n++;
        p = s + strlen(SEP);
    }
    char *line = fx->out;
    for (size_t i = 0; i < fx->n; i++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = 0;
        fx->ids[i] = line;
        line = nl + 1;
    }
    assert_int_equal(*line, 0); /* as many id lines as strings */
}

static void fixture_free(fixture *fx) {
    free(fx->inp);
    free(fx->out);
    free(fx->str);
    free(fx->len);
    free(fx->ids);
}

static size_t parse_ids(const char *line, int32_t *ids, size_t cap) {
    size_t n = 0;
    char *end;
    for (const char *p = line; *p;) {
        long v = strtol(p, &end, 10);
        if (end == p) break;
        assert_true(n < cap);
        ids[n++] = (int32_t)v;
        p = end;
    }
    return n;
}

static char *show_ids(const int32_t *ids, size_t n) {
    static char buf[4096];
    size_t at = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && at + 16 < sizeof buf; i++)
        at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%d", i ? " " : "", ids[i]);
    return buf;
}

/* Streams ids one at a time: every chunk must be valid UTF-8 and the
 * concatenation must equal tok_decode's result. */
static void check_stream(const tok_vocab *v, const int32_t *ids, size_t n, unsigned flags) {
    hearth_err e;
    char *whole;
    size_t whole_len;
    assert_int_equal(tok_decode(v, ids, n, flags, &whole, &whole_len, &e), 0);
    assert_true(tok_utf8_valid((const uint8_t *)whole, whole_len));
    tok_detok *d = tok_detok_new(v, flags, &e);
    assert_non_null(d);
    char *cat = malloc(whole_len + 1);
    size_t at = 0;
    for (size_t i = 0; i <= n; i++) {
        size_t k;
        const char *t = i < n ? tok_detok_push(d, ids[i], &k, &e) : tok_detok_flush(d, &k);
        assert_non_null(t);
        assert_true(tok_utf8_valid((const uint8_t *)t, k));
        assert_true(at + k <= whole_len);
        memcpy(cat + at, t, k);
        at += k;
    }
    assert_int_equal(at, whole_len);
    assert_memory_equal(cat, whole, whole_len);
    free(cat);
    free(whole);
    tok_detok_free(d);
}

static void run_fixture(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "tokenizer/gguf/ggml-vocab-%s.gguf", name);
    tok_vocab *v = load_vocab(rel);
    fixture fx;
    fixture_load(&fx, name);
    size_t pass = 0, rt_ref = 0, rt_ok = 0;
    unsigned flags = TOK_DETOK_STRIP_SPACE;
    static int32_t want[8192];
    for (size_t i = 0; i < fx.n; i++) {
        hearth_err e;
        int32_t *ids;
        size_t n;
        assert_int_equal(tok_encode(v, fx.str[i], fx.len[i], false, false, &ids, &n, &e), 0);
        size_t nw = parse_ids(fx.ids[i], want, sizeof want / sizeof want[0]);
        if (n == nw && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0)) {
            pass++;
        } else {
            fprintf(stderr, "%s: string %zu '%.*s'\n  want %s\n", name, i, (int)fx.len[i],
                    fx.str[i], fx.ids[i]);
            fprintf(stderr, "  got  %s\n", show_ids(ids, n));
        }
        /* Round trip where the reference's own ids round-trip. */
        char *ref_text, *text;
        size_t ref_len, len;
        assert_int_equal(tok_decode(v, want, nw, flags, &ref_text, &ref_len, &e), 0);
        assert_int_equal(tok_decode(v, ids, n, flags, &text, &len, &e), 0);
        if (ref_len == fx.len[i] && memcmp(ref_text, fx.str[i], ref_len) == 0) {
            rt_ref++;
            if (len == fx.len[i] && memcmp(text, fx.str[i], len) == 0)
                rt_ok++;
            else
                fprintf(stderr, "%s: string %zu does not round-trip: '%s'\n", name, i, text);
        }
        check_stream(v, ids, n, flags);
        check_stream(v, ids, n, TOK_DETOK_SPECIAL);
        free(ref_text);
        free(text);
        free(ids);
    }
    printf("fixture %-14s %zu/%zu strings match the reference ids; %zu/%zu round-trip\n", name,
           pass, fx.n, rt_ok, rt_ref);
    assert_int_equal(pass, fx.n);
    assert_int_equal(rt_ok, rt_ref);
    assert_true(fx.n >= 40);
    fixture_free(&fx);
    tok_free(v);
}

static void test_fixture_llama_spm(void **state) {
    (void)state;
    run_fixture("llama-spm");
}
static void test_fixture_gpt2(void **state) {
    (void)state;
    run_fixture("gpt-2");
}
static void test_fixture_deepseek_llm(void **state) {
    (void)state;
    run_fixture("deepseek-llm");
}
static void test_fixture_qwen2(void **state) {
    (void)state;
    run_fixture("qwen2");
}
static void test_fixture_deepseek_v3(void **state) {
    (void)state;
    run_fixture("deepseek-v3");
}

/* Vocabulary facts the model runtime relies on. */
static void test_accessors(void **state) {
    (void)state;
    hearth_err e;
    tok_vocab *v = load_vocab("tokenizer/gguf/ggml-vocab-qwen2.gguf");
    assert_int_equal(tok_type(v), TOK_BPE);
    assert_string_equal(tok_pre(v), "qwen2");
    assert_int_equal(tok_n_vocab(v), 151669);
    assert_false(tok_add_bos(v));
    int32_t im_end = tok_token_to_id(v, "<|im_end|>", 10);
    assert_int_equal(im_end, 151645);
    assert_int_equal(tok_eot(v), im_end);
    assert_true(tok_is_eog(v, im_end));
    assert_true(tok_is_eog(v, tok_token_to_id(v, "<|endoftext|>", 13)));
    assert_false(tok_is_eog(v, tok_token_to_id(v, "<|im_start|>", 12)));
    assert_false(tok_is_eog(v, -1));
    assert_false(tok_is_eog(v, tok_n_vocab(v)));
    assert_int_equal(tok_token_to_id(v, "<think>", 7), 151667);
    assert_int_equal(tok_token_to_id(v, "no such token at all", 20), -1);

    /* parse_special turns control texts into tokens; without it they are text. */
    const char *s = "<|im_start|>user\nhi<|im_end|>";
    int32_t *ids;
    size_t n;
    assert_int_equal(tok_encode(v, s, strlen(s), true, true, &ids, &n, &e), 0);
    assert_true(n >= 4);
    assert_int_equal(ids[0], 151644);
    assert_int_equal(ids[n - 1], im_end);
    free(ids);
    assert_int_equal(tok_encode(v, s, strlen(s), true, false, &ids, &n, &e), 0);
    for (size_t i = 0; i < n; i++) assert_true(ids[i] < 151643);
    free(ids);
    /* user-defined tokens match even without parse_special */
    assert_int_equal(tok_encode(v, "<think>", 7, false, false, &ids, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 151667);
    free(ids);

    /* control tokens render only when asked */
    const char *p;
    size_t len;
    assert_int_equal(tok_piece(v, im_end, false, &p, &len, &e), 0);
    assert_int_equal(len, 0);
    assert_int_equal(tok_piece(v, im_end, true, &p, &len, &e), 0);
    assert_int_equal(len, 10);
    assert_memory_equal(p, "<|im_end|>", 10);
    assert_int_equal(tok_piece(v, 151669, true, &p, &len, &e), -1);
    assert_non_null(strstr(e.msg, "151669"));
    tok_free(v);

    v = load_vocab("tokenizer/gguf/ggml-vocab-llama-spm.gguf");
    assert_int_equal(tok_type(v), TOK_SPM);
    assert_int_equal(tok_bos(v), 1);
    assert_int_equal(tok_eos(v), 2);
    assert_true(tok_add_bos(v));
    assert_true(tok_is_eog(v, 2));
    assert_int_equal(tok_encode(v, "Hello", 5, true, false, &ids, &n, &e), 0);
    assert_true(n >= 2);
    assert_int_equal(ids[0], 1);
    free(ids);
    /* empty text: BOS alone, or nothing */
    assert_int_equal(tok_encode(v, "", 0, true, false, &ids, &n, &e), 0);
    assert_int_equal(n, 1);
    free(ids);
    assert_int_equal(tok_encode(v, "", 0, false, false, &ids, &n, &e), 0);
    assert_int_equal(n, 0);
    free(ids);
    /* byte tokens give raw bytes */
    int32_t nl = tok_token_to_id(v, "<0x0A>", 6);
    assert_true(nl >= 0);
    assert_int_equal(tok_piece(v, nl, false, &p, &len, &e), 0);
    assert_int_equal(len, 1);
    assert_int_equal(p[0], '\n');
    tok_free(v);
}

/* The streaming decoder holds back split characters and replaces bad bytes. */
static void test_stream_split_character(void **state) {
    (void)state;
    hearth_err e;
    tok_vocab *v = load_vocab("tokenizer/gguf/ggml-vocab-llama-spm.gguf");
    /* "é" = C3 A9 and "🦙" = F0 9F A6 99 as SPM byte tokens, one at a time */
    const uint8_t bytes[] = {0xC3, 0xA9, 0xF0, 0x9F, 0xA6, 0x99, 0xFF, 0xE2, 0x82};
    int32_t ids[sizeof bytes];
    for (size_t i = 0; i < sizeof bytes; i++) {
        char hex[8];
        snprintf(hex, sizeof hex, "<0x%02X>", bytes[i]);
        ids[i] = tok_token_to_id(v, hex, 6);
        assert_true(ids[i] >= 0);
    }
    tok_detok *d = tok_detok_new(v, 0, &e);
    size_t k;
    const char *t = tok_detok_push(d, ids[0], &k, &e);
    assert_int_equal(k, 0); /* half of é */
    t = tok_detok_push(d, ids[1], &k, &e);
    assert_int_equal(k, 2);
    assert_memory_equal(t, "\xC3\xA9", 2);
    for (int i = 2; i < 5; i++) {
        t = tok_detok_push(d, ids[i], &k, &e);
        assert_int_equal(k, 0);
    }
    t = tok_detok_push(d, ids[5], &k, &e);
    assert_int_equal(k, 4);
    assert_memory_equal(t, "\xF0\x9F\xA6\x99", 4);
    t = tok_detok_push(d, ids[6], &k, &e); /* 0xFF can never start a character */
    assert_int_equal(k, 3);
    assert_memory_equal(t, "\xEF\xBF\xBD", 3);
    t = tok_detok_push(d, ids[7], &k, &e);
    assert_int_equal(k, 0);
    t = tok_detok_push(d, ids[8], &k, &e);
    assert_int_equal(k, 0);
    assert_null(tok_detok_push(d, -5, &k, &e)); /* bad id: error, state kept */
    assert_non_null(strstr(e.msg, "-5"));
    t = tok_detok_flush(d, &k); /* E2 82 never finished */
    assert_int_equal(k, 3);
    assert_memory_equal(t, "\xEF\xBF\xBD", 3);
    tok_detok_free(d);

    char *out;
    size_t n;
    int32_t bad[] = {ids[0], 999999};
    assert_int_equal(tok_decode(v, bad, 2, 0, &out, &n, &e), -1);
    assert_non_null(strstr(e.msg, "999999"));
    tok_free(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_llama_spm),      cmocka_unit_test(test_fixture_gpt2),
        cmocka_unit_test(test_fixture_deepseek_llm),   cmocka_unit_test(test_fixture_qwen2),
        cmocka_unit_test(test_fixture_deepseek_v3),    cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_stream_split_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
