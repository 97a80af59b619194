/* The public API (include/hearth.h) on a golden model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth.h"

static char path_buf[4096];

static const char *shared_path(const char *rel) {
    const char *sh = getenv("HEARTH_SHARED");
    snprintf(path_buf, sizeof path_buf, "%s/%s", sh ? sh : "../shared", rel);
    return path_buf;
}

typedef struct fixture {
    hearth_model *m;
    json_t *ref;
    int progress_calls;
    float last_progress;
} fixture;

static void progress(void *ud, float f) {
    fixture *fx = ud;
    fx->progress_calls++;
    fx->last_progress = f;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    hearth_model_params mp = {.n_threads = 2, .progress = progress, .progress_ud = f};
    f->m = hearth_model_load(shared_path("golden/models/qwen2-r1distill.f32.gguf"), &mp);
    if (!f->m) {
        fprintf(stderr, "%s\n", hearth_last_error());
        return -1;
    }
    json_error_t je;
    f->ref = json_load_file(shared_path("golden/f64/qwen2-r1distill.f32.json"), 0, &je);
    if (!f->ref) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    hearth_model_free(f->m);
    json_decref(f->ref);
    free(f);
    return 0;
}

static void test_load_info_and_errors(void **state) {
    fixture *f = *state;
    assert_true(f->progress_calls >= 1);
    assert_float_equal(f->last_progress, 1.0f, 1e-6);
    /* either way of holding the weights reports progress to the end */
    const hearth_load modes[] = {HEARTH_LOAD_MMAP, HEARTH_LOAD_COPY};
    for (int i = 0; i < 2; i++) {
        fixture g = {0};
        hearth_model_params mp = {
            .n_threads = 1, .load = modes[i], .progress = progress, .progress_ud = &g};
        hearth_model *m = hearth_model_load(shared_path("golden/models/llama-spm.q8_0.gguf"), &mp);
        if (!m) fail_msg("%s", hearth_last_error());
        assert_true(g.progress_calls >= 1);
        assert_float_equal(g.last_progress, 1.0f, 1e-6);
        hearth_model_free(m);
    }
    hearth_model_info in;
    hearth_model_get_info(f->m, &in);
    assert_string_equal(in.arch, "qwen2");
    assert_true(in.n_vocab > 0);
    assert_true(in.has_chat_template);
    assert_true(in.thinks);
    assert_non_null(strstr(hearth_model_chat_template(f->m), "<think>"));
    assert_null(hearth_model_load("/nonexistent/x.gguf", NULL));
    assert_non_null(strstr(hearth_last_error(), "/nonexistent/x.gguf"));
}

static void test_tokenize_matches_reference(void **state) {
    fixture *f = *state;
    json_t *cases = json_object_get(f->ref, "cases");
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        const char *prompt = json_string_value(json_object_get(c, "prompt"));
        json_t *want = json_object_get(c, "tokens");
        int32_t *ids;
        size_t n;
        assert_int_equal(hearth_tokenize(f->m, prompt, strlen(prompt),
                                         HEARTH_TOK_ADD_SPECIAL | HEARTH_TOK_PARSE_SPECIAL, &ids,
                                         &n),
                         0);
        assert_int_equal(n, json_array_size(want));
        for (size_t k = 0; k < n; k++)
            assert_int_equal(ids[k], json_integer_value(json_array_get(want, k)));
        char *text;
        size_t len;
        assert_int_equal(hearth_detokenize(f->m, ids, n, 0, &text, &len), 0);
        assert_non_null(strstr(text, prompt)); /* BOS, if any, renders as "" */
        hearth_free(text);
        hearth_free(ids);
    }
}

typedef struct sink {
    char think[8192], answer[8192];
    size_t nt, na;
    int32_t ids[256];
    int n_ids;
} sink;

static int on_text(void *ud, int thinking, const char *t, size_t n) {
    sink *s = ud;
    if (thinking && s->nt + n < sizeof s->think) memcpy(s->think + s->nt, t, n), s->nt += n;
    if (!thinking && s->na + n < sizeof s->answer) memcpy(s->answer + s->na, t, n), s->na += n;
    return 0;
}

static int on_token(void *ud, int32_t t) {
    sink *s = ud;
    if (s->n_ids < 256) s->ids[s->n_ids++] = t;
    return 0;
}

static void test_generate_greedy_and_limits(void **state) {
    fixture *f = *state;
    json_t *c = json_array_get(json_object_get(f->ref, "cases"), 0);
    json_t *toks = json_object_get(c, "tokens"), *greedy = json_object_get(c, "greedy");
    size_t n = json_array_size(toks);
    int32_t *ids = malloc(n * sizeof *ids);
    for (size_t k = 0; k < n; k++) ids[k] = (int32_t)json_integer_value(json_array_get(toks, k));
    hearth_session *s = hearth_session_new(f->m, 256, 0);
    assert_non_null(s);
    assert_int_equal(hearth_session_n_ctx(s), 256);
    hearth_gen_params p = hearth_gen_default_params(f->m);
    assert_float_equal(p.temperature, 0.6f, 1e-6); /* R1 template: DeepSeek's advice */
    assert_float_equal(p.top_p, 0.95f, 1e-6);
    p.temperature = 0;
    p.max_tokens = 24;
    p.ignore_eos = 1;
    p.split_thinking = 0;
    sink k = {0};
    p.on_token = on_token;
    p.on_text = on_text;
    p.ud = &k;
    hearth_gen_stats st;
    assert_int_equal(hearth_generate(s, ids, n, &p, &st), 0);
    assert_int_equal(st.stop_reason, HEARTH_STOP_LENGTH);
    assert_string_equal(st.stop_str, "length");
    assert_int_equal(st.gen_tokens, 24);
    assert_int_equal(st.prompt_tokens, (int)n);
    assert_int_equal(k.n_ids, 24);
    for (int i = 0; i < 24; i++)
        assert_int_equal(k.ids[i], json_integer_value(json_array_get(greedy, (size_t)i)));
    /* the same prompt again: all but its last token come from the cache */
    sink k2 = {0};
    p.ud = &k2;
    assert_int_equal(hearth_generate(s, ids, n, &p, &st), 0);
    assert_int_equal(st.reused_tokens, (int)n - 1);
    assert_memory_equal(k.ids, k2.ids, sizeof k.ids[0] * 24);
    hearth_session_free(s);

    /* too long for the context: both numbers */
    s = hearth_session_new(f->m, 16, 0);
    assert_int_equal(hearth_generate(s, ids, n, &p, &st), -1);
    char want[64];
    snprintf(want, sizeof want, "prompt is %zu tokens, context is 16", n);
    assert_string_equal(hearth_last_error(), want);
    /* bad parameters are refused, not clamped */
    p.top_p = 2;
    assert_int_equal(hearth_generate(s, ids, 4, &p, &st), -1);
    assert_non_null(strstr(hearth_last_error(), "top-p"));
    hearth_session_free(s);
    free(ids);
}

/* A rendered R1 chat ends in "<think>\n": generation starts as thinking on its
 * own, and BOS appears once although the template writes it too. */
static void test_chat_render_and_thinking(void **state) {
    fixture *f = *state;
    hearth_message msgs[] = {{"system", "You are terse."}, {"user", "Hi there"}};
    char *prompt;
    size_t len;
    assert_int_equal(hearth_chat_render(f->m, msgs, 2, 1, &prompt, &len), 0);
    assert_int_equal(strlen(prompt), len);
    const char *tail = "<｜User｜>Hi there<｜Assistant｜><think>\n";
    assert_true(len > strlen(tail));
    assert_string_equal(prompt + len - strlen(tail), tail);
    int32_t *ids;
    size_t n;
    assert_int_equal(hearth_tokenize(f->m, prompt, len,
                                     HEARTH_TOK_ADD_SPECIAL | HEARTH_TOK_PARSE_SPECIAL, &ids, &n),
                     0);
    assert_true(n >= 2);
    assert_true(ids[0] != ids[1]); /* one BOS */
    hearth_session *s = hearth_session_new(f->m, 512, 0);
    hearth_gen_params p = hearth_gen_default_params(f->m);
    assert_true(p.split_thinking);
    p.max_tokens = 16;
    p.ignore_eos = 1;
    p.seed = 3;
    sink k = {0};
    p.on_text = on_text;
    p.ud = &k;
    assert_int_equal(hearth_generate(s, ids, n, &p, NULL), 0);
    assert_true(k.nt > 0);
    assert_int_equal(k.na, 0); /* random weights never close the thinking */
    hearth_session_free(s);
    hearth_free(ids);
    hearth_free(prompt);
    hearth_message bad[] = {{"user", NULL}};
    assert_int_equal(hearth_chat_render(f->m, bad, 1, 1, &prompt, &len), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_info_and_errors),
        cmocka_unit_test(test_tokenize_matches_reference),
        cmocka_unit_test(test_generate_greedy_and_limits),
        cmocka_unit_test(test_chat_render_and_thinking),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
