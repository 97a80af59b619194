/* Chat templates against the strings Hugging Face's renderer produced
 * ($HEARTH_SHARED/chat/cases.json), and the real DeepSeek-V3 and Qwen3
 * templates from their tokenizer_config.json on a conversation with a system
 * prompt, tool calls and tool results. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/template.h"

static json_t *load_json(const char *rel) {
    const char *shared = getenv("HEARTH_SHARED");
    assert_non_null(shared);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", shared, rel);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) fail_msg("%s: %s", path, je.text);
    return j;
}

/* Prints where two renderings first differ. */
static void report_diff(const char *name, const char *got, size_t got_n, const char *want,
                        size_t want_n) {
    size_t i = 0;
    while (i < got_n && i < want_n && got[i] == want[i]) i++;
    size_t from = i > 40 ? i - 40 : 0;
    fprintf(stderr, "case %s: first difference at byte %zu (got %zu bytes, expected %zu)\n", name,
            i, got_n, want_n);
    fprintf(stderr, "  got:      ...%.*s|%.*s\n", (int)(i - from), got + from,
            (int)(got_n - i < 60 ? got_n - i : 60), got + i);
    fprintf(stderr, "  expected: ...%.*s|%.*s\n", (int)(i - from), want + from,
            (int)(want_n - i < 60 ? want_n - i : 60), want + i);
}

static void test_cases_json_byte_exact(void **state) {
    (void)state;
    json_t *cases = load_json("chat/cases.json");
    assert_true(json_is_array(cases));
    assert_true(json_array_size(cases) >= 16);
    size_t i, failures = 0;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *tpl = json_object_get(c, "template");
        hearth_err err = {{0}};
        tmpl_template *t = tmpl_parse(json_string_value(tpl), json_string_length(tpl), &err);
        if (!t) {
            fprintf(stderr, "case %zu %s: parse: %s\n", i, name, err.msg);
            failures++;
            continue;
        }
        tmpl_vars *v = tmpl_vars_new();
        assert_non_null(v);
        assert_int_equal(tmpl_vars_set_json(v, "messages", json_object_get(c, "messages"), &err),
                         0);
        json_t *tools = json_object_get(c, "tools");
        if (tools && !json_is_null(tools))
            assert_int_equal(tmpl_vars_set_json(v, "tools", tools, &err), 0);
        else
            assert_int_equal(tmpl_vars_set_none(v, "tools", &err), 0);
        assert_int_equal(
            tmpl_vars_set_bool(v, "add_generation_prompt",
                               json_is_true(json_object_get(c, "add_generation_prompt")), &err),
            0);
        const char *keys[] = {"bos_token", "eos_token"};
        for (int k = 0; k < 2; k++) {
            json_t *s = json_object_get(c, keys[k]);
            if (json_is_string(s))
                assert_int_equal(tmpl_vars_set_str(v, keys[k], json_string_value(s),
                                                   json_string_length(s), &err),
                                 0);
        }
        char *out = NULL;
        size_t n = 0;
        json_t *exp = json_object_get(c, "expected");
        if (tmpl_render(t, v, &out, &n, &err) != 0) {
            fprintf(stderr, "case %zu %s: render: %s\n", i, name, err.msg);
            failures++;
        } else if (n != json_string_length(exp) || memcmp(out, json_string_value(exp), n) != 0) {
            char label[128];
            snprintf(label, sizeof label, "%zu %s", i, name);
            report_diff(label, out, n, json_string_value(exp), json_string_length(exp));
            failures++;
        }
        free(out);
        tmpl_vars_free(v);
        tmpl_free(t);
    }
    json_decref(cases);
    assert_int_equal(failures, 0);
}

static char *template_of(const char *config) {
    json_t *j = load_json(config);
    const char *s = json_string_value(json_object_get(j, "chat_template"));
    assert_non_null(s);
    char *dup = strdup(s);
    json_decref(j);
    return dup;
}

static const char *conversation =
    "[{\"role\": \"system\", \"content\": \"You are a weather bot.\"},"
    " {\"role\": \"user\", \"content\": \"Weather in Paris and Oslo?\"},"
    " {\"role\": \"assistant\", \"content\": null, \"tool_calls\": ["
    "   {\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": "
    "\"{\\\"city\\\": \\\"Paris\\\"}\"}},"
    "   {\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": "
    "\"{\\\"city\\\": \\\"Oslo\\\"}\"}}]},"
    " {\"role\": \"tool\", \"content\": \"{\\\"temp_c\\\": 12}\"},"
    " {\"role\": \"tool\", \"content\": \"{\\\"temp_c\\\": -3}\"},"
    " {\"role\": \"assistant\", \"content\": \"Paris 12C, Oslo -3C.\"},"
    " {\"role\": \"user\", \"content\": \"Thanks\"}]";

static const char *tools_json =
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": "
    "\"Current weather\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": "
    "{\"type\": \"string\"}}, \"required\": [\"city\"]}}}]";

static void assert_contains(const char *hay, const char *needle) {
    if (!strstr(hay, needle)) fail_msg("expected to find [%s] in:\n%s", needle, hay);
}

static void test_real_deepseek_v3_template(void **state) {
    (void)state;
    char *tpl = template_of("tokenizer/hf/deepseek_v3.tokenizer_config.json");
    tmpl_chat c = {
        conversation, tools_json, true, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", NULL};
    char *out = NULL;
    size_t n = 0;
    hearth_err err = {{0}};
    int rc = tmpl_render_chat(tpl, strlen(tpl), &c, &out, &n, &err);
    if (rc) fail_msg("render: %s", err.msg);
    assert_int_equal(strlen(out), n);
    /* BOS, then the system prompt verbatim before the first user turn */
    assert_contains(out, "<｜begin▁of▁sentence｜>You are a weather bot.<｜User｜>Weather in Paris");
    /* first tool call opens the calls block, the second is appended and closes it */
    assert_contains(out, "<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function"
                         "<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```"
                         "<｜tool▁call▁end｜>");
    assert_contains(out, "\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
                         "{\"city\": \"Oslo\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"
                         "<｜end▁of▁sentence｜>");
    /* tool outputs: first opens the block, the second on a new line */
    assert_contains(out, "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>{\"temp_c\": 12}"
                         "<｜tool▁output▁end｜>\n<｜tool▁output▁begin｜>{\"temp_c\": -3}"
                         "<｜tool▁output▁end｜>");
    /* the assistant answer after tool outputs closes the outputs block */
    assert_contains(out, "<｜tool▁outputs▁end｜>Paris 12C, Oslo -3C.<｜end▁of▁sentence｜>");
    /* ends with the last user turn and the generation prompt */
    const char *tail = "<｜User｜>Thanks<｜Assistant｜>";
    assert_true(n >= strlen(tail));
    assert_string_equal(out + n - strlen(tail), tail);
    free(out);
    free(tpl);
}

/* Qwen3's template tests `'</think>' in message.content`, which Python rejects
 * for content null; transformers' users send "" with tool calls. Arguments
 * may be a JSON string (printed as is) or an object (printed with tojson). */
static const char *qwen_conversation =
    "[{\"role\": \"system\", \"content\": \"You are a weather bot.\"},"
    " {\"role\": \"user\", \"content\": \"Weather in Paris and Oslo?\"},"
    " {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": ["
    "   {\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": "
    "\"{\\\"city\\\": \\\"Paris\\\"}\"}},"
    "   {\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": "
    "{\"city\": \"Oslo\"}}}]},"
    " {\"role\": \"tool\", \"content\": \"{\\\"temp_c\\\": 12}\"},"
    " {\"role\": \"tool\", \"content\": \"{\\\"temp_c\\\": -3}\"},"
    " {\"role\": \"assistant\", \"content\": \"<think>\\nthinking\\n</think>\\n\\nParis 12C, Oslo "
    "-3C.\"},"
    " {\"role\": \"user\", \"content\": \"Thanks\"}]";

static void test_real_qwen3_template(void **state) {
    (void)state;
    char *tpl = template_of("tokenizer/hf/qwen3.tokenizer_config.json");
    char *out = NULL;
    size_t n = 0;
    hearth_err err = {{0}};
    /* content null with tool calls: an error, as in Python */
    tmpl_chat bad = {conversation, tools_json, true, NULL, "<|im_end|>", NULL};
    assert_int_equal(tmpl_render_chat(tpl, strlen(tpl), &bad, &out, &n, &err), -1);
    assert_non_null(strstr(err.msg, "NoneType"));
    tmpl_chat c = {qwen_conversation, tools_json, true, NULL, "<|im_end|>", NULL};
    int rc = tmpl_render_chat(tpl, strlen(tpl), &c, &out, &n, &err);
    if (rc) fail_msg("render: %s", err.msg);
    /* tools block inside the system turn, after the system prompt; tojson keeps key order
     * and Python's separators */
    assert_contains(out, "<|im_start|>system\nYou are a weather bot.\n\n# Tools\n");
    assert_contains(out, "<tools>\n{\"type\": \"function\", \"function\": {\"name\": "
                         "\"get_weather\", \"description\": \"Current weather\", \"parameters\": "
                         "{\"type\": \"object\", \"properties\": {\"city\": {\"type\": "
                         "\"string\"}}, \"required\": [\"city\"]}}}\n</tools>");
    /* the system message is not repeated as its own turn */
    assert_null(strstr(out, "<|im_start|>system\nYou are a weather bot.<|im_end|>"));
    /* tool calls: string arguments verbatim, object arguments through tojson */
    assert_contains(out, "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", "
                         "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n"
                         "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n"
                         "</tool_call><|im_end|>\n");
    /* consecutive tool results grouped in one user turn */
    assert_contains(out, "<|im_start|>user\n<tool_response>\n{\"temp_c\": 12}\n</tool_response>\n"
                         "<tool_response>\n{\"temp_c\": -3}\n</tool_response><|im_end|>\n");
    /* an assistant turn before the last user query loses its reasoning */
    assert_contains(out, "<|im_start|>assistant\nParis 12C, Oslo -3C.<|im_end|>\n");
    assert_null(strstr(out, "thinking"));
    const char *tail = "<|im_start|>user\nThanks<|im_end|>\n<|im_start|>assistant\n";
    assert_true(n >= strlen(tail));
    assert_string_equal(out + n - strlen(tail), tail);
    free(out);

    /* enable_thinking=false adds the empty think block */
    tmpl_chat c2 = {"[{\"role\":\"user\",\"content\":\"Hi\"}]",
                    NULL,
                    true,
                    NULL,
                    "<|im_end|>",
                    "{\"enable_thinking\": false}"};
    rc = tmpl_render_chat(tpl, strlen(tpl), &c2, &out, &n, &err);
    if (rc) fail_msg("render: %s", err.msg);
    assert_string_equal(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n"
                             "</think>\n\n");
    free(out);
    free(tpl);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_json_byte_exact),
        cmocka_unit_test(test_real_deepseek_v3_template),
        cmocka_unit_test(test_real_qwen3_template),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
