/* gen_run on real (golden, random-weight) models and on the demo model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "generate/demo.h"
#include "generate/generate.h"
#include "gguf/gguf.h"
#include "text/tokenizer.h"

typedef struct fixture {
    model *m;
    tok_vocab *v;
    json_t *ref;
} fixture;

static char path_buf[4096];

static const char *shared_path(const char *rel) {
    const char *sh = getenv("HEARTH_SHARED");
    snprintf(path_buf, sizeof path_buf, "%s/%s", sh ? sh : "../shared", rel);
    return path_buf;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    hearth_err e;
    model_params mp = model_default_params();
    mp.n_threads = 2;
    f->m = model_load(shared_path("golden/models/qwen2-r1distill.f32.gguf"), &mp, &e);
    if (!f->m) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    f->v = tok_load(model_gguf(f->m), &e);
    if (!f->v) return -1;
    json_error_t je;
    f->ref = json_load_file(shared_path("golden/f64/qwen2-r1distill.f32.json"), 0, &je);
    if (!f->ref) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    tok_free(f->v);
    model_free(f->m);
    json_decref(f->ref);
    free(f);
    return 0;
}

static int32_t *ids_of(json_t *arr, int *n) {
    *n = (int)json_array_size(arr);
    int32_t *ids = malloc(sizeof *ids * (size_t)(*n ? *n : 1));
    for (int i = 0; i < *n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return ids;
}

typedef struct collect {
    int32_t ids[4096];
    int n;
    char text[16384];
    size_t len;
    char think[16384];
    size_t tlen;
    int stop_after; /* return false from the token callback after this many, 0: never */
} collect;

static bool on_token(void *ud, int32_t t) {
    collect *c = ud;
    if (c->n < 4096) c->ids[c->n++] = t;
    return !(c->stop_after && c->n >= c->stop_after);
}

static bool on_piece(void *ud, reasoning_kind k, const char *text, size_t len) {
    collect *c = ud;
    if (k == REASONING_THINK) {
        if (c->tlen + len < sizeof c->think) memcpy(c->think + c->tlen, text, len), c->tlen += len;
    } else if (c->len + len < sizeof c->text) {
        memcpy(c->text + c->len, text, len);
        c->len += len;
    }
    return true;
}

static gen_params greedy_params(int n_predict) {
    gen_params p = gen_default_params(NULL);
    p.sampling.temp = 0;
    p.n_predict = n_predict;
    p.ignore_eos = true;
    return p;
}

/* Greedy generation reproduces the exact (float64) maths' greedy tokens for
 * every prompt (the golden README's rule: raw argmax, EOS ignored, compared up
 * to the first step whose top-1/top-2 gap is below 1e-3 of the row's std). */
static void test_greedy_matches_reference(void **state) {
    fixture *f = *state;
    hearth_err e;
    generator *g = gen_new(f->m, f->v, 512, 32, &e);
    assert_non_null(g);
    json_t *cases = json_object_get(f->ref, "cases");
    assert_true(json_array_size(cases) >= 1);
    int compared = 0;
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *cs = json_array_get(cases, i);
        int n_prompt, n_greedy;
        int32_t *prompt = ids_of(json_object_get(cs, "tokens"), &n_prompt);
        int32_t *greedy = ids_of(json_object_get(cs, "greedy"), &n_greedy);
        json_t *gaps = json_object_get(cs, "greedy_top12_gap_over_std");
        int n_cmp = 0;
        while (n_cmp < n_greedy && json_real_value(json_array_get(gaps, (size_t)n_cmp)) >= 1e-3)
            n_cmp++;
        collect c = {0};
        gen_params p = greedy_params(n_greedy);
        gen_stats st;
        assert_int_equal(gen_run(g, prompt, n_prompt, &p, NULL, on_token, &c, &st, &e), 0);
        assert_int_equal(st.reason, GEN_STOP_LENGTH);
        assert_int_equal(st.n_gen, n_greedy);
        assert_int_equal(c.n, n_greedy);
        assert_memory_equal(c.ids, greedy, sizeof *greedy * (size_t)n_cmp);
        compared += n_cmp;
        free(prompt);
        free(greedy);
    }
    assert_true(compared >= 24); /* a test that compares nothing proves nothing */
    gen_free(g);
}

/* A prompt that extends what the cache holds evaluates only the suffix, and
 * gives the same tokens as a fresh generator. */
static void test_prefix_reuse_same_result(void **state) {
    fixture *f = *state;
    hearth_err e;
    int n_prompt;
    int32_t *prompt = ids_of(
        json_object_get(json_array_get(json_object_get(f->ref, "cases"), 0), "tokens"), &n_prompt);
    generator *g = gen_new(f->m, f->v, 256, 16, &e);
    generator *fresh = gen_new(f->m, f->v, 256, 16, &e);
    collect a = {0};
    gen_params p = greedy_params(10);
    gen_stats st;
    assert_int_equal(gen_run(g, prompt, n_prompt, &p, NULL, on_token, &a, &st, &e), 0);
    assert_int_equal(st.n_reused, 0);
    /* prompt + the 10 generated tokens + 3 more prompt tokens */
    int32_t ext[256];
    int n_ext = 0;
    for (int i = 0; i < n_prompt; i++) ext[n_ext++] = prompt[i];
    for (int i = 0; i < a.n; i++) ext[n_ext++] = a.ids[i];
    ext[n_ext++] = prompt[0];
    ext[n_ext++] = prompt[1];
    ext[n_ext++] = prompt[2];
    collect b = {0}, c = {0};
    assert_int_equal(gen_run(g, ext, n_ext, &p, NULL, on_token, &b, &st, &e), 0);
    /* the last generated token was never evaluated: reuse stops before it */
    assert_int_equal(st.n_reused, n_prompt + a.n - 1);
    assert_int_equal(gen_run(fresh, ext, n_ext, &p, NULL, on_token, &c, &st, &e), 0);
    assert_int_equal(st.n_reused, 0);
    assert_int_equal(b.n, c.n);
    assert_memory_equal(b.ids, c.ids, sizeof b.ids[0] * (size_t)b.n);
    /* a prompt that differs early: reuse only the common prefix */
    ext[5] = (ext[5] + 1) % 400;
    collect d = {0};
    assert_int_equal(gen_run(g, ext, n_ext, &p, NULL, on_token, &d, &st, &e), 0);
    assert_int_equal(st.n_reused, 5);
    gen_free(g);
    gen_free(fresh);
    free(prompt);
}

static void test_prompt_longer_than_context(void **state) {
    fixture *f = *state;
    hearth_err e;
    generator *g = gen_new(f->m, f->v, 16, 8, &e);
    int32_t prompt[20] = {0};
    for (int i = 0; i < 20; i++) prompt[i] = 100 + i;
    gen_params p = greedy_params(4);
    assert_int_equal(gen_run(g, prompt, 20, &p, NULL, NULL, NULL, NULL, &e), -1);
    assert_string_equal(e.msg, "prompt is 20 tokens, context is 16");
    assert_int_equal(gen_run(g, prompt, 0, &p, NULL, NULL, NULL, NULL, &e), -1);
    assert_non_null(strstr(e.msg, "empty"));
    gen_free(g);
}

static void test_context_end_is_reported(void **state) {
    fixture *f = *state;
    hearth_err e;
    generator *g = gen_new(f->m, f->v, 16, 8, &e);
    int32_t prompt[10];
    for (int i = 0; i < 10; i++) prompt[i] = 100 + i;
    gen_params p = greedy_params(-1);
    gen_stats st;
    collect c = {0};
    assert_int_equal(gen_run(g, prompt, 10, &p, NULL, on_token, &c, &st, &e), 0);
    assert_int_equal(st.reason, GEN_STOP_CONTEXT);
    /* 6 positions were free: 6 tokens evaluated there, plus the one sampled
     * from the last position's logits */
    assert_int_equal(st.n_gen, 7);
    assert_int_equal(gen_n_cached(g), 16);
    gen_free(g);
}

static void test_seeds(void **state) {
    fixture *f = *state;
    hearth_err e;
    generator *g = gen_new(f->m, f->v, 128, 32, &e);
    int32_t prompt[4] = {506, 84, 104, 101};
    gen_params p = gen_default_params(NULL);
    p.n_predict = 20;
    p.ignore_eos = true;
    p.sampling.temp = 1.0f;
    p.sampling.seed = 7;
    collect a = {0}, b = {0}, c = {0};
    assert_int_equal(gen_run(g, prompt, 4, &p, NULL, on_token, &a, NULL, &e), 0);
    assert_int_equal(gen_run(g, prompt, 4, &p, NULL, on_token, &b, NULL, &e), 0);
    p.sampling.seed = 8;
    assert_int_equal(gen_run(g, prompt, 4, &p, NULL, on_token, &c, NULL, &e), 0);
    assert_int_equal(a.n, 20);
    assert_memory_equal(a.ids, b.ids, sizeof a.ids[0] * 20);
    assert_memory_not_equal(a.ids, c.ids, sizeof a.ids[0] * 20);
    gen_free(g);
}

/* A stop string taken from the middle of the greedy text cuts the output
 * right before it. */
static void test_stop_string_cuts_text(void **state) {
    fixture *f = *state;
    hearth_err e;
    generator *g = gen_new(f->m, f->v, 256, 32, &e);
    int32_t prompt[4] = {506, 84, 104, 101};
    gen_params p = greedy_params(40);
    collect a = {0};
    assert_int_equal(gen_run(g, prompt, 4, &p, on_piece, NULL, &a, NULL, &e), 0);
    assert_true(a.len > 12);
    char stop[5];
    memcpy(stop, a.text + a.len / 2, 4);
    stop[4] = 0;
    const char *found = strstr(a.text, stop); /* the first occurrence decides */
    size_t want = (size_t)(found - a.text);
    const char *stops[] = {stop};
    p.stops = stops;
    p.n_stops = 1;
    collect b = {0};
    gen_stats st;
    assert_int_equal(gen_run(g, prompt, 4, &p, on_piece, NULL, &b, &st, &e), 0);
    assert_int_equal(st.reason, GEN_STOP_STRING);
    assert_int_equal(st.stop_index, 0);
    assert_int_equal(b.len, want);
    assert_memory_equal(b.text, a.text, want);
    gen_free(g);
}

static void test_cancel_and_zero_tokens(void **state) {
    fixture *f = *state;
    hearth_err e;
    generator *g = gen_new(f->m, f->v, 128, 32, &e);
    int32_t prompt[4] = {506, 84, 104, 101};
    gen_params p = greedy_params(50);
    collect c = {.stop_after = 3};
    gen_stats st;
    assert_int_equal(gen_run(g, prompt, 4, &p, NULL, on_token, &c, &st, &e), 0);
    assert_int_equal(st.reason, GEN_STOP_CANCELLED);
    assert_int_equal(st.n_gen, 3);
    volatile sig_atomic_t flag = 1;
    p.cancel = &flag;
    collect d = {0};
    assert_int_equal(gen_run(g, prompt, 4, &p, NULL, on_token, &d, &st, &e), 0);
    assert_int_equal(st.reason, GEN_STOP_CANCELLED);
    assert_int_equal(d.n, 0);
    p.cancel = NULL;
    p.n_predict = 0;
    assert_int_equal(gen_run(g, prompt, 4, &p, NULL, on_token, &d, &st, &e), 0);
    assert_int_equal(st.reason, GEN_STOP_LENGTH);
    assert_int_equal(st.n_gen, 0);
    gen_free(g);
}

static void test_reasoning_defaults(void **state) {
    (void)state;
    gen_params r1 = gen_default_params("{{'<｜Assistant｜><think>\\n'}}");
    assert_float_equal(r1.sampling.temp, 0.6f, 1e-6);
    assert_float_equal(r1.sampling.top_p, 0.95f, 1e-6);
    assert_true(r1.split_reasoning);
    gen_params plain = gen_default_params("{{ '<|im_start|>assistant\\n' }}");
    assert_float_equal(plain.sampling.temp, 0.8f, 1e-6);
    assert_int_equal(plain.sampling.top_k, 40);
    assert_float_equal(plain.sampling.min_p, 0.05f, 1e-6);
    assert_false(plain.split_reasoning);
}

/* Thinking split through the whole pipeline: with prompt_in_think every
 * piece of a random model's output (which never closes thinking) is THINK. */
static void test_prompt_in_think_routes_to_thinking(void **state) {
    fixture *f = *state;
    hearth_err e;
    generator *g = gen_new(f->m, f->v, 128, 32, &e);
    int32_t prompt[4] = {506, 84, 104, 101};
    gen_params p = greedy_params(20);
    p.split_reasoning = true;
    p.prompt_in_think = true;
    collect a = {0}, b = {0};
    assert_int_equal(gen_run(g, prompt, 4, &p, on_piece, NULL, &a, NULL, &e), 0);
    p.split_reasoning = false;
    assert_int_equal(gen_run(g, prompt, 4, &p, on_piece, NULL, &b, NULL, &e), 0);
    assert_true(b.len > 0);
    assert_int_equal(a.len, 0);
    /* thinking drops leading whitespace only */
    size_t skip = 0;
    while (skip < b.len && strchr(" \n\r\t", b.text[skip])) skip++;
    assert_int_equal(a.tlen, b.len - skip);
    assert_memory_equal(a.think, b.text + skip, a.tlen);
    gen_free(g);
}

/* The demo model: written, loaded, and it ends its turns (EOG) by itself. */
static void test_demo_model_runs_and_ends_turns(void **state) {
    (void)state;
    char dir[] = "/tmp/hearth-demo-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[4096];
    snprintf(path, sizeof path, "%s/demo.gguf", dir);
    hearth_err e;
    assert_int_equal(demo_model_write(path, &e), 0);
    model_params mp = model_default_params();
    mp.n_threads = 2;
    model *m = model_load(path, &mp, &e);
    assert_non_null(m);
    tok_vocab *v = tok_load(model_gguf(m), &e);
    assert_non_null(v);
    generator *g = gen_new(m, v, 2048, 64, &e);
    assert_non_null(g);
    int32_t *prompt;
    size_t n_prompt;
    const char *text = "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n";
    assert_int_equal(tok_encode(v, text, strlen(text), true, true, &prompt, &n_prompt, &e), 0);
    assert_int_equal(prompt[0], tok_token_to_id(v, "<|im_start|>", 12));
    int eog = 0;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        gen_params p = gen_default_params(NULL);
        p.sampling.seed = seed;
        p.n_predict = 1500;
        gen_stats st;
        collect c = {0};
        assert_int_equal(gen_run(g, prompt, (int)n_prompt, &p, on_piece, on_token, &c, &st, &e), 0);
        if (st.reason == GEN_STOP_EOG) {
            eog++;
            assert_true(tok_is_eog(v, c.ids[c.n - 1]));
            assert_null(memmem(c.text, c.len, "<|im_end|>", 10));
        }
    }
    assert_true(eog >= 3);
    free(prompt);
    gen_free(g);
    tok_free(v);
    model_free(m);
    unlink(path);
    rmdir(dir);
}

static bool copy_every_key(const char *key, void *ud) {
    (void)key;
    (void)ud;
    return false;
}

/* NaN weights: generation stops with an error that says so, not noise. */
static void test_non_finite_logits_are_an_error(void **state) {
    (void)state;
    char dir[] = "/tmp/hearth-nan-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/demo.gguf", dir);
    snprintf(dst, sizeof dst, "%s/nan.gguf", dir);
    hearth_err e;
    assert_int_equal(demo_model_write(src, &e), 0);
    /* Copy the demo model with output_norm.weight set to NaN. */
    gguf_file *f = gguf_open(src, &e);
    assert_non_null(f);
    gguf_writer *w = gguf_writer_new();
    assert_int_equal(gguf_writer_copy_kv(w, f, copy_every_key, NULL), 0);
    float *nan_norm = NULL;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char *name = gguf_str_dup(t->name);
        const void *data = t->data;
        if (!strcmp(name, "output_norm.weight")) {
            assert_int_equal(t->type, HT_F32);
            nan_norm = malloc(t->nbytes);
            for (int64_t j = 0; j < t->ne[0]; j++) nan_norm[j] = NAN;
            data = nan_norm;
        }
        assert_int_equal(gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, data, &e), 0);
        free(name);
    }
    assert_non_null(nan_norm);
    assert_int_equal(gguf_writer_write(w, dst, &e), 0);
    gguf_writer_free(w);
    gguf_close(f);
    free(nan_norm);

    model_params mp = model_default_params();
    mp.n_threads = 1;
    model *m = model_load(dst, &mp, &e);
    assert_non_null(m);
    tok_vocab *v = tok_load(model_gguf(m), &e);
    assert_non_null(v);
    generator *g = gen_new(m, v, 64, 16, &e);
    assert_non_null(g);
    int32_t prompt[] = {104, 105};
    gen_params p = greedy_params(4);
    gen_stats st;
    assert_int_equal(gen_run(g, prompt, 2, &p, NULL, NULL, NULL, &st, &e), -1);
    assert_non_null(strstr(e.msg, "non-finite"));
    gen_free(g);
    tok_free(v);
    model_free(m);
    unlink(src);
    unlink(dst);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_matches_reference),
        cmocka_unit_test(test_prefix_reuse_same_result),
        cmocka_unit_test(test_prompt_longer_than_context),
        cmocka_unit_test(test_context_end_is_reported),
        cmocka_unit_test(test_seeds),
        cmocka_unit_test(test_stop_string_cuts_text),
        cmocka_unit_test(test_cancel_and_zero_tokens),
        cmocka_unit_test(test_reasoning_defaults),
        cmocka_unit_test(test_prompt_in_think_routes_to_thinking),
        cmocka_unit_test(test_demo_model_runs_and_ends_turns),
        cmocka_unit_test(test_non_finite_logits_are_an_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
