/* Fuzz harness: the chat-message JSON that `hearth template` and `hearth
 * chat` read (a JSON array of {"role", "content", ...} objects, optional
 * tools and extra variables), rendered through the real chat templates of
 * ../shared/chat/cases.json (DeepSeek-V3, Qwen3, R1-distill, ChatML, Llama 3).
 * Input: byte 0 picks the template and flags, then NUL-separated fields
 *   messages JSON \0 tools JSON \0 extra JSON. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "text/template.h"

#define MAX_TEMPLATES 16
static char *templates[MAX_TEMPLATES];
static int n_templates = -1;

static void load_templates(void) {
    n_templates = 0;
    json_error_t je;
    json_t *cases = json_load_file(fz_shared("chat/cases.json"), 0, &je);
    if (!cases) {
        fprintf(stderr, "fuzz_chat_json: %s: %s\n", fz_shared("chat/cases.json"), je.text);
        return;
    }
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *t = json_string_value(json_object_get(c, "template"));
        if (!t) continue;
        bool seen = false;
        for (int k = 0; k < n_templates; k++) seen |= strcmp(templates[k], t) == 0;
        if (!seen && n_templates < MAX_TEMPLATES) templates[n_templates++] = strdup(t);
    }
    json_decref(cases);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (n_templates < 0) load_templates();
    if (size < 1 || n_templates == 0) return 0;
    unsigned sel = data[0];
    const char *tsrc = templates[(sel & 15) % n_templates];
    char *field[3] = {0};
    size_t flen[3] = {0};
    int n = fz_split(data + 1, size - 1, field, flen, 3);
    if (n < 1) return 0;
    tmpl_chat chat = {
        .messages_json = field[0],
        .tools_json = n > 1 && flen[1] ? field[1] : NULL,
        .add_generation_prompt = sel & 16,
        .bos_token = sel & 32 ? "<|begin_of_sentence|>" : NULL,
        .eos_token = sel & 64 ? "<|end_of_sentence|>" : NULL,
        .extra_json = n > 2 && flen[2] ? field[2] : NULL,
    };
    hearth_err err;
    err.msg[0] = 0;
    char *out = NULL;
    size_t out_len = 0;
    int rc = tmpl_render_chat(tsrc, strlen(tsrc), &chat, &out, &out_len, &err);
    if (rc == 0) {
        FZ_CHECK(out && out[out_len] == 0 && out_len <= TMPL_MAX_OUTPUT);
    } else {
        FZ_CHECK(out == NULL && err.msg[0] != 0);
    }
    free(out);
    fz_free_fields(field, n);
    return 0;
}
