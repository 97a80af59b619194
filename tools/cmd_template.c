/* hearth template: render a chat template the way transformers'
 * apply_chat_template does, and print the prompt (nothing added after it).
 *
 *   hearth template (-m MODEL.gguf | --template FILE) --messages FILE.json
 *                   [--tools FILE.json] [--add-generation-prompt]
 *                   [--bos TEXT] [--eos TEXT] [--extra JSON_OBJECT]
 *
 * The messages file holds a JSON array of messages, or an object with
 * "messages" and optionally "tools". With -m the template is the model's
 * tokenizer.chat_template and bos_token/eos_token are the texts of its BOS/EOS
 * token ids; --bos/--eos override them. --extra adds variables, for example
 * '{"enable_thinking": false}'. */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"
#include "model_arg.h"
#include "gguf/gguf.h"
#include "text/template.h"

#define MAX_INPUT (64u << 20)

static void template_usage(FILE *out) {
    fprintf(out,
            "usage: hearth template (-m MODEL.gguf | --template FILE) --messages FILE.json\n"
            "                       [--tools FILE.json] [--add-generation-prompt]\n"
            "                       [--bos TEXT] [--eos TEXT] [--extra JSON_OBJECT]\n"
            "  -m, --model PATH         use the GGUF file's tokenizer.chat_template and BOS/EOS\n"
            "  --template FILE          use the template in FILE instead\n"
            "  --messages FILE          JSON array of messages, or {\"messages\": [...], "
            "\"tools\": [...]}\n"
            "  --tools FILE             JSON array of tool schemas\n"
            "  --add-generation-prompt  end with the assistant turn's opening\n"
            "  --bos TEXT, --eos TEXT   the bos_token / eos_token variables\n"
            "  --extra JSON             more variables, e.g. '{\"enable_thinking\": false}'\n");
}

/* The text of the token whose id is stored under `key`, or NULL if absent. */
static char *token_text(const gguf_file *f, const char *key, hearth_err *err, int *rc) {
    *rc = 0;
    if (!gguf_has(f, key)) return NULL;
    uint32_t id;
    gguf_arr toks;
    if (gguf_get_u32(f, key, &id, err) || gguf_get_arr(f, "tokenizer.ggml.tokens", &toks, err)) {
        *rc = -1;
        return NULL;
    }
    if (toks.type != GGUF_STRING || id >= toks.n) {
        hearth_errf(err, "%s = %u: expected an index into tokenizer.ggml.tokens (%llu strings)",
                    key, id, (unsigned long long)toks.n);
        *rc = -1;
        return NULL;
    }
    char *s = gguf_str_dup(gguf_arr_str(&toks, id));
    if (!s) {
        hearth_errf(err, "out of memory");
        *rc = -1;
    }
    return s;
}

int cmd_template(int argc, char **argv) {
    const char *model = NULL, *tpl_path = NULL, *msg_path = NULL, *tools_path = NULL;
    const char *bos = NULL, *eos = NULL, *extra = NULL;
    bool agp = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            template_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--add-generation-prompt")) {
            agp = true;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has_val) {
            model = argv[++i];
        } else if (!strcmp(a, "--template") && has_val) {
            tpl_path = argv[++i];
        } else if (!strcmp(a, "--messages") && has_val) {
            msg_path = argv[++i];
        } else if (!strcmp(a, "--tools") && has_val) {
            tools_path = argv[++i];
        } else if (!strcmp(a, "--bos") && has_val) {
            bos = argv[++i];
        } else if (!strcmp(a, "--eos") && has_val) {
            eos = argv[++i];
        } else if (!strcmp(a, "--extra") && has_val) {
            extra = argv[++i];
        } else {
            fprintf(stderr, "hearth template: unknown option or missing value: '%s'\n", a);
            template_usage(stderr);
            return 2;
        }
    }
    if (!msg_path || (!model == !tpl_path)) {
        fprintf(stderr, "hearth template: need --messages and exactly one of -m or --template\n");
        template_usage(stderr);
        return 2;
    }
    if (extra) { /* checked here so that a bad value is a usage error */
        json_t *x = json_loads(extra, 0, NULL);
        bool is_obj = json_is_object(x);
        json_decref(x);
        if (!is_obj) {
            fprintf(stderr, "hearth template: --extra: expected a JSON object, found '%s'\n",
                    extra);
            return 2;
        }
    }

    int status = 1;
    hearth_err err = {{0}};
    char *tpl = NULL, *msgs_text = NULL, *tools_text = NULL, *model_bos = NULL, *model_eos = NULL;
    char *msgs_out = NULL, *tools_out = NULL, *out = NULL;
    json_t *mj = NULL;
    size_t tpl_len = 0, n;

    char resolved[4096];
    if (model) {
        if (cli_model_path("template", model, resolved, sizeof resolved) < 0) return 1;
        model = resolved;
        gguf_file *f = gguf_open(model, &err);
        if (!f) {
            fprintf(stderr, "hearth template: %s\n", err.msg);
            goto done;
        }
        gguf_str s;
        int rc1 = 0, rc2 = 0;
        if (!gguf_has(f, "tokenizer.chat_template")) {
            fprintf(stderr, "hearth template: %s has no tokenizer.chat_template; use --template\n",
                    model);
        } else if (gguf_get_str(f, "tokenizer.chat_template", &s, &err) == 0 &&
                   (tpl = gguf_str_dup(s)) != NULL) {
            tpl_len = s.len;
            model_bos = token_text(f, "tokenizer.ggml.bos_token_id", &err, &rc1);
            if (!rc1) model_eos = token_text(f, "tokenizer.ggml.eos_token_id", &err, &rc2);
            if (rc1 || rc2) fprintf(stderr, "hearth template: %s: %s\n", model, err.msg);
        } else {
            fprintf(stderr, "hearth template: %s: %s\n", model, err.msg);
        }
        gguf_close(f);
        if (!tpl || rc1 || rc2) goto done;
    } else if (!(tpl = cli_read_file("template", tpl_path, MAX_INPUT, &tpl_len))) {
        goto done;
    }
    if (!bos) bos = model_bos;
    if (!eos) eos = model_eos;

    if (!(msgs_text = cli_read_file("template", msg_path, MAX_INPUT, &n))) goto done;
    json_error_t je;
    mj = json_loadb(msgs_text, n, JSON_ALLOW_NUL, &je);
    if (!mj) {
        fprintf(stderr, "hearth template: %s: invalid JSON at line %d column %d: %s\n", msg_path,
                je.line, je.column, je.text);
        goto done;
    }
    json_t *messages = mj, *tools = NULL;
    if (json_is_object(mj)) {
        messages = json_object_get(mj, "messages");
        tools = json_object_get(mj, "tools");
        if (!json_is_array(messages)) {
            fprintf(stderr, "hearth template: %s: expected \"messages\" to be an array\n",
                    msg_path);
            goto done;
        }
    } else if (!json_is_array(mj)) {
        fprintf(stderr,
                "hearth template: %s: expected an array of messages or an object with "
                "\"messages\"\n",
                msg_path);
        goto done;
    }
    msgs_out = json_dumps(messages, JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (tools_path) {
        if (!(tools_text = cli_read_file("template", tools_path, MAX_INPUT, &n))) goto done;
    } else if (tools && !json_is_null(tools)) {
        tools_out = json_dumps(tools, JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    }
    if (!msgs_out || (tools && !json_is_null(tools) && !tools_path && !tools_out)) {
        fprintf(stderr, "hearth template: out of memory\n");
        goto done;
    }
    tmpl_chat chat = {msgs_out, tools_text ? tools_text : tools_out, agp, bos, eos, extra};
    if (tmpl_render_chat(tpl, tpl_len, &chat, &out, &n, &err) != 0) {
        fprintf(stderr, "hearth template: %s\n", err.msg);
        goto done;
    }
    if (fwrite(out, 1, n, stdout) != n || fflush(stdout) != 0) {
        fprintf(stderr, "hearth template: writing stdout: %s\n", strerror(errno));
        goto done;
    }
    status = 0;
done:
    free(out);
    free(msgs_out);
    free(tools_out);
    json_decref(mj);
    free(tools_text);
    free(msgs_text);
    free(model_bos);
    free(model_eos);
    free(tpl);
    return status;
}
