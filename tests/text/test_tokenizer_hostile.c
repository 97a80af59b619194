/* Hostile input for the tokenizer: random bytes, invalid UTF-8, 1 MB of one
 * character, empty text, and malformed vocabularies. Nothing may crash or
 * hang; results must be valid (ids in range, decodable), errors must say what
 * is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>
#include <unistd.h>

#include "text/tok_test_util.h"
#include "text/utf8.h"

static const char *const vocabs[] = {"llama-spm", "gpt-2", "deepseek-llm", "qwen2", "deepseek-v3"};
#define N_VOCABS (sizeof vocabs / sizeof vocabs[0])

static tok_vocab *fixture_vocab(size_t i) {
    char rel[256];
    snprintf(rel, sizeof rel, "tokenizer/gguf/ggml-vocab-%s.gguf", vocabs[i]);
    return load_vocab(rel);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Encodes, checks every id is in range and that the ids decode to valid UTF-8. */
static void encode_checked(const tok_vocab *v, const char *s, size_t n, bool special,
                           int32_t **ids_out, size_t *n_out) {
    hearth_err e;
    int32_t *ids;
    size_t k;
    int rc = tok_encode(v, s, n, special, special, &ids, &k, &e);
    if (rc) fprintf(stderr, "encode failed: %s\n", e.msg);
    assert_int_equal(rc, 0);
    for (size_t i = 0; i < k; i++) {
        assert_true(ids[i] >= 0);
        assert_true(ids[i] < tok_n_vocab(v));
    }
    char *text;
    size_t len;
    assert_int_equal(tok_decode(v, ids, k, TOK_DETOK_SPECIAL, &text, &len, &e), 0);
    assert_true(tok_utf8_valid((const uint8_t *)text, len));
    free(text);
    if (ids_out) {
        *ids_out = ids;
        *n_out = k;
    } else {
        free(ids);
    }
}

static void test_random_bytes(void **state) {
    (void)state;
    size_t lens[] = {1, 2, 3, 7, 64, 1000, 65536};
    char *buf = malloc(65536);
    for (size_t vi = 0; vi < N_VOCABS; vi++) {
        tok_vocab *v = fixture_vocab(vi);
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
            for (int rep = 0; rep < 4; rep++) {
                for (size_t i = 0; i < lens[li]; i++) {
                    /* mostly bytes, sometimes pieces of special tokens and spaces */
                    uint32_t r = rnd();
                    buf[i] = (r & 3) == 0 ? " <|>\n"[r % 5] : (char)(r >> 8);
                }
                encode_checked(v, buf, lens[li], rep & 1, NULL, NULL);
            }
        tok_free(v);
    }
    free(buf);
}

/* BPE: every invalid byte is read as U+FFFD, as the reference does; SPM keeps
 * the bytes (byte tokens). Either way nothing breaks. */
static void test_invalid_utf8(void **state) {
    (void)state;
    static const char *const bad[] = {
        "\xC3",
        "\xC3(",
        "a\xC3",
        "\xED\xA0\x80",
        "\xF4\x90\x80\x80",
        "\xC0\x80",
        "\xFF\xFE",
        "\x80\x80\x80",
        "\xF0\x9F\xA6",
        "x\xF0\x9F\xA6 y",
        "\xE2\x96",
        "<|im_\xFF",
        "\xEF\xBF\xBD\xFF",
    };
    for (size_t vi = 0; vi < N_VOCABS; vi++) {
        tok_vocab *v = fixture_vocab(vi);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            encode_checked(v, bad[i], strlen(bad[i]), false, NULL, NULL);
            encode_checked(v, bad[i], strlen(bad[i]), true, NULL, NULL);
        }
        if (tok_type(v) == TOK_BPE) {
            int32_t *a, *b;
            size_t na, nb;
            encode_checked(v, "\xFF", 1, false, &a, &na);
            encode_checked(v, "\xEF\xBF\xBD", 3, false, &b, &nb);
            assert_int_equal(na, nb);
            assert_memory_equal(a, b, na * sizeof *a);
            free(a);
            free(b);
        } else {
            /* SPM: an invalid byte becomes its byte token */
            int32_t *a;
            size_t na;
            encode_checked(v, "\xFF", 1, false, &a, &na);
            assert_int_equal(na, 2); /* "▁" then <0xFF> */
            assert_int_equal(a[1], tok_token_to_id(v, "<0xFF>", 6));
            free(a);
        }
        tok_free(v);
    }
}

static void test_empty(void **state) {
    (void)state;
    hearth_err e;
    for (size_t vi = 0; vi < N_VOCABS; vi++) {
        tok_vocab *v = fixture_vocab(vi);
        int32_t *ids;
        size_t n;
        assert_int_equal(tok_encode(v, "", 0, false, true, &ids, &n, &e), 0);
        assert_int_equal(n, 0);
        free(ids);
        assert_int_equal(tok_encode(v, NULL, 0, true, true, &ids, &n, &e), 0);
        assert_int_equal(n, tok_add_bos(v) ? 1 : 0);
        if (n) assert_int_equal(ids[0], tok_bos(v));
        free(ids);
        char *text;
        size_t len;
        assert_int_equal(tok_decode(v, NULL, 0, 0, &text, &len, &e), 0);
        assert_int_equal(len, 0);
        assert_string_equal(text, "");
        free(text);
        tok_free(v);
    }
}

/* 1 MB of one character (and of a repeated sentence) must tokenize fast and
 * round-trip: no quadratic blowups in merges, regexes or special matching. */
static void test_one_megabyte(void **state) {
    (void)state;
    static const char *const units[] = {"a",
                                        " ",
                                        "\n",
                                        "1",
                                        "\xE6\x97\xA5",
                                        "\xF0\x9F\xA6\x99",
                                        "!",
                                        "\xC3\xA9",
                                        "Hello, world! 3.14 <think> \t"};
    const size_t mb = 1 << 20;
    char *buf = malloc(mb + 64);
    hearth_err e;
    double worst = 0;
    for (size_t vi = 0; vi < N_VOCABS; vi++) {
        tok_vocab *v = fixture_vocab(vi);
        for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
            size_t ul = strlen(units[u]), n = 0;
            while (n + ul <= mb) {
                memcpy(buf + n, units[u], ul);
                n += ul;
            }
            double t0 = now();
            int32_t *ids;
            size_t k;
            assert_int_equal(tok_encode(v, buf, n, false, false, &ids, &k, &e), 0);
            double dt = now() - t0;
            if (dt > worst) worst = dt;
            if (dt > 0.5)
                printf("%s: 1 MB of '%s' took %.2f s (%zu ids)\n", vocabs[vi], units[u], dt, k);
            assert_true(k > 0);
            char *text;
            size_t len;
            assert_int_equal(tok_decode(v, ids, k, TOK_DETOK_STRIP_SPACE, &text, &len, &e), 0);
            assert_int_equal(len, n);
            assert_memory_equal(text, buf, n);
            free(text);
            free(ids);
        }
        tok_free(v);
    }
    printf("slowest 1 MB encode: %.3f s\n", worst);
    /* Generous (sanitizer builds are slow); a quadratic path would take hours. */
    assert_true(worst < 20.0);
    free(buf);
}

/* ---- malformed vocabularies ----------------------------------------------- */

typedef struct vspec {
    const char *model;
    const char *pre;
    const char *const *tokens;
    uint64_t n_tokens;
    const float *scores;
    uint64_t n_scores;
    const int32_t *types;
    uint64_t n_types;
    const char *const *merges;
    uint64_t n_merges;
    int bos; /* -1: no key; below -1: that value written as int32 */
    int add_bos;
    bool bos_string; /* write the BOS id as a string (a wrong type) */
} vspec;

static tok_vocab *load_spec(const vspec *s, hearth_err *e) {
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    gguf_writer_set_str(w, "general.architecture", "llama");
    if (s->model) gguf_writer_set_str(w, "tokenizer.ggml.model", s->model);
    if (s->pre) gguf_writer_set_str(w, "tokenizer.ggml.pre", s->pre);
    if (s->tokens) gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", s->tokens, s->n_tokens);
    if (s->scores)
        gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_FLOAT32, s->scores, s->n_scores);
    if (s->types)
        gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, s->types, s->n_types);
    if (s->merges) gguf_writer_set_str_arr(w, "tokenizer.ggml.merges", s->merges, s->n_merges);
    if (s->bos >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)s->bos);
    if (s->bos < -1) gguf_writer_set_i32(w, "tokenizer.ggml.bos_token_id", s->bos);
    if (s->bos_string) gguf_writer_set_str(w, "tokenizer.ggml.bos_token_id", "1");
    if (s->add_bos >= 0) gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", s->add_bos);
    char path[] = "/tmp/hearth_tok_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    hearth_err we;
    int rc = gguf_writer_write(w, path, &we);
    if (rc) fprintf(stderr, "write: %s\n", we.msg);
    assert_int_equal(rc, 0);
    gguf_writer_free(w);
    gguf_file *f = gguf_open(path, e);
    assert_non_null(f);
    tok_vocab *v = tok_load(f, e);
    gguf_close(f);
    unlink(path);
    return v;
}

static void expect_load_error(const vspec *s, const char *needle) {
    hearth_err e = {{0}};
    tok_vocab *v = load_spec(s, &e);
    if (v || !strstr(e.msg, needle))
        fprintf(stderr, "expected an error with '%s', got: %s\n", needle, v ? "(loaded)" : e.msg);
    assert_null(v);
    assert_non_null(strstr(e.msg, needle));
}

static const char *const spm_toks[] = {"<unk>", "<s>", "</s>", "\342\226\201a", "a", "b"};
static const float spm_scores[] = {0, 0, 0, -1, -2, -3};
static const int32_t spm_types[] = {2, 3, 3, 1, 1, 1};
static const char *const bpe_toks[] = {"a", "b", "ab", "\xC4\xA0", "<|end|>"};
static const char *const bpe_merges[] = {"a b", "x y", "noseparator", "ab \xC4\xA0"};

static void test_malformed_vocab(void **state) {
    (void)state;
    vspec base = {"llama", NULL, spm_toks, 6, spm_scores, 6, spm_types, 6, NULL, 0, -1, -1, false};
    vspec s;
    hearth_err e;

    s = base;
    s.n_scores = 5; /* fewer scores than tokens */
    expect_load_error(&s, "tokenizer.ggml.scores");
    s = base;
    s.n_types = 2;
    expect_load_error(&s, "tokenizer.ggml.token_type");
    s = base;
    s.model = "t5";
    expect_load_error(&s, "'t5'");
    s = base;
    s.model = NULL;
    expect_load_error(&s, "tokenizer.ggml.model");
    s = base;
    s.tokens = NULL;
    expect_load_error(&s, "tokenizer.ggml.tokens");
    static const char *const dup[] = {"<unk>", "<s>", "</s>", "a", "a", "b"};
    s = base;
    s.tokens = dup;
    expect_load_error(&s, "same text");
    s = base;
    s.bos_string = true;
    expect_load_error(&s, "bos_token_id");
    s = base;
    s.bos = -7; /* negative: no token named, the SPM default (1) stays */
    tok_vocab *neg = load_spec(&s, &e);
    assert_non_null(neg);
    assert_int_equal(tok_bos(neg), 1);
    tok_free(neg);
    s = base;
    s.bos = 77; /* out of range: the SPM default (1) stays */
    tok_vocab *v = load_spec(&s, &e);
    assert_non_null(v);
    assert_int_equal(tok_bos(v), 1);
    /* no byte tokens: unknown characters fall back to <unk> */
    int32_t *ids;
    size_t n;
    assert_int_equal(tok_encode(v, "a\xE6\x97\xA5", 4, true, false, &ids, &n, &e), 0);
    assert_int_equal(n, 5); /* <s> ▁a <unk> x3 */
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 3);
    assert_int_equal(ids[2], 0);
    free(ids);
    tok_free(v);

    vspec bpe = {"gpt2", "gpt-2", bpe_toks, 5, NULL, 0, NULL, 0, bpe_merges, 4, -1, -1, false};
    s = bpe;
    s.pre = "no-such-pre";
    expect_load_error(&s, "no-such-pre");
    s = bpe;
    s.merges = NULL;
    expect_load_error(&s, "tokenizer.ggml.merges");
    s = bpe;
    s.add_bos = 1; /* no BOS id and the default (11) is out of range */
    expect_load_error(&s, "BOS");
    /* merges naming strings that are no tokens load and are harmless */
    v = load_spec(&bpe, &e);
    assert_non_null(v);
    assert_int_equal(tok_encode(v, "ab b<|end|>", 11, false, true, &ids, &n, &e), 0);
    assert_int_equal(n, 4); /* ab, (Ġb is no token: Ġ then b), <|end|> */
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 3);
    assert_int_equal(ids[2], 1);
    assert_int_equal(ids[3], 4);
    free(ids);
    assert_true(tok_is_eog(v, 4));
    assert_int_equal(tok_eot(v), 4);
    char *text;
    size_t len;
    int32_t bad[] = {0, -1};
    assert_int_equal(tok_decode(v, bad, 2, 0, &text, &len, &e), -1);
    assert_non_null(strstr(e.msg, "-1"));
    tok_free(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_bytes),    cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_empty),           cmocka_unit_test(test_one_megabyte),
        cmocka_unit_test(test_malformed_vocab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
