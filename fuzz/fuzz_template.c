/* Fuzz harness: the Jinja template engine on arbitrary templates and
 * contexts. Input: byte 0 = flags, then NUL-separated fields
 *   template \0 messages JSON \0 tools JSON \0 extra JSON
 * (missing fields: a fixed two-message conversation, no tools, no extras).
 * Also parses the template alone and renders it with plain variables. The
 * engine's promise: an error with a message or a NUL-terminated output of
 * at most TMPL_MAX_OUTPUT bytes; never a crash or a hang (the bounds on
 * nesting, evaluation depth, loops and memory see to the last). */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "text/template.h"

static const char default_messages[] =
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":\"Hi <b>there</b> \\u00e9\"},"
    "{\"role\":\"assistant\",\"content\":\"<think>x</think>Hello\"}]";

static void check_output(int rc, char *out, size_t out_len, const hearth_err *err) {
    if (rc == 0) {
        FZ_CHECK(out != NULL);
        FZ_CHECK(out[out_len] == 0);
        FZ_CHECK(out_len <= TMPL_MAX_OUTPUT);
    } else {
        FZ_CHECK(out == NULL);
        FZ_CHECK(err->msg[0] != 0);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned flags = data[0];
    char *field[4] = {0};
    size_t flen[4] = {0};
    int n = fz_split(data + 1, size - 1, field, flen, 4);
    if (n < 1) return 0;

    hearth_err err;
    err.msg[0] = 0;
    tmpl_chat chat = {
        .messages_json = n > 1 ? field[1] : default_messages,
        .tools_json = n > 2 && flen[2] ? field[2] : NULL,
        .add_generation_prompt = flags & 1,
        .bos_token = flags & 2 ? "<s>" : NULL,
        .eos_token = flags & 4 ? "</s>" : NULL,
        .extra_json = n > 3 && flen[3] ? field[3] : NULL,
    };
    char *out = NULL;
    size_t out_len = 0;
    int rc = tmpl_render_chat(field[0], flen[0], &chat, &out, &out_len, &err);
    check_output(rc, out, out_len, &err);

    /* The template alone, with scalar variables (one parse, two renders:
     * a parsed template is read-only while rendering). */
    if (flags & 8) {
        tmpl_template *t = tmpl_parse(field[0], flen[0], &err);
        if (t) {
            tmpl_vars *v = tmpl_vars_new();
            if (v) {
                tmpl_vars_set_str(v, "x", "abc", 3, &err);
                tmpl_vars_set_int(v, "n", (int64_t)flags - 128, &err);
                tmpl_vars_set_bool(v, "b", flags & 16, &err);
                tmpl_vars_set_none(v, "z", &err);
                if (n > 1) tmpl_vars_set_json_text(v, "messages", field[1], flen[1], &err);
                if (n > 3) tmpl_vars_set_json_object_keys(v, field[3], flen[3], &err);
                for (int k = 0; k < 2; k++) {
                    out = NULL;
                    out_len = 0;
                    err.msg[0] = 0;
                    rc = tmpl_render(t, v, &out, &out_len, &err);
                    check_output(rc, out, out_len, &err);
                }
                tmpl_vars_free(v);
            }
            tmpl_free(t);
        } else {
            FZ_CHECK(err.msg[0] != 0);
        }
    }
    fz_free_fields(field, n);
    return 0;
}
