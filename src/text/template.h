/* Chat templates: the subset of Jinja2 that Hugging Face chat templates use,
 * rendered the way transformers renders `tokenizer.chat_template`:
 * ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the
 * loopcontrols extension, keep_trailing_newline=False, HF's `tojson`
 * (json.dumps(x, ensure_ascii=False, ...): insertion order, ", " and ": "),
 * and the globals raise_exception(msg) and strftime_now(fmt).
 *
 * Values follow Python: none, bool, 64-bit int (overflow is an error, not a
 * bignum), float (printed like Python's repr), UTF-8 string (length, index and
 * slice count code points), list, tuple, dict (insertion ordered), namespace,
 * undefined (prints '', is falsy, `is defined` works; attribute access on it,
 * arithmetic with it and calling it are errors, as with Jinja's Undefined).
 *
 * A template that uses a construct the engine does not implement fails at
 * tmpl_parse() with a message naming the construct and its line and column;
 * nothing is silently ignored. Rendering is bounded (nesting, evaluation depth,
 * output, memory, loop iterations, range size): a hostile template or input
 * ends in an error, never a crash or a hang. A parsed template is read-only
 * while rendering: one template may be rendered by several threads at once. */
#ifndef HEARTH_TEXT_TEMPLATE_H
#define HEARTH_TEXT_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

struct json_t; /* jansson */

#define TMPL_MAX_SOURCE     (16u << 20)  /* template source bytes */
#define TMPL_MAX_NESTING    256          /* nested blocks and nested expressions */
#define TMPL_MAX_EVAL_DEPTH 512          /* evaluation depth incl. macro recursion */
#define TMPL_MAX_OUTPUT     (64u << 20)  /* rendered bytes (also each captured block) */
#define TMPL_MAX_MEMORY     (512u << 20) /* bytes allocated during one render */
#define TMPL_MAX_RANGE      100000       /* items of one range(), as Jinja's sandbox */
#define TMPL_MAX_ITERATIONS 2000000      /* loop iterations in one render */

typedef struct tmpl_template tmpl_template;

/* Parses `len` bytes of template source. Errors say line, column and construct. */
tmpl_template *tmpl_parse(const char *src, size_t len, hearth_err *err);
void tmpl_free(tmpl_template *t);

/* Top-level variables of a render (a dict). Values given here are read-only to
 * the template (as in the immutable sandbox). */
typedef struct tmpl_vars tmpl_vars;
tmpl_vars *tmpl_vars_new(void);
void tmpl_vars_free(tmpl_vars *v);
int tmpl_vars_set_str(tmpl_vars *v, const char *name, const char *s, size_t len, hearth_err *err);
int tmpl_vars_set_bool(tmpl_vars *v, const char *name, bool b, hearth_err *err);
int tmpl_vars_set_int(tmpl_vars *v, const char *name, int64_t i, hearth_err *err);
int tmpl_vars_set_none(tmpl_vars *v, const char *name, hearth_err *err);
/* JSON values: objects become dicts (key order kept), arrays lists, integers
 * ints, reals floats, null none. */
int tmpl_vars_set_json(tmpl_vars *v, const char *name, const struct json_t *j, hearth_err *err);
int tmpl_vars_set_json_text(tmpl_vars *v, const char *name, const char *json, size_t len,
                            hearth_err *err);
/* Every key of a JSON object text becomes a variable (e.g. {"enable_thinking": false}). */
int tmpl_vars_set_json_object_keys(tmpl_vars *v, const char *json, size_t len, hearth_err *err);

/* Renders into a malloc'd, NUL-terminated buffer (*out, *out_len bytes without
 * the NUL). On error returns -1, *out is NULL and err says what and which line. */
int tmpl_render(const tmpl_template *t, const tmpl_vars *vars, char **out, size_t *out_len,
                hearth_err *err);

/* What transformers' apply_chat_template passes to a template. */
typedef struct tmpl_chat {
    const char *messages_json; /* JSON array of {"role":..., "content":..., ...} */
    const char *tools_json;    /* JSON array of tool schemas, or NULL (tools = none) */
    bool add_generation_prompt;
    const char *bos_token;  /* NULL: the variable is left undefined */
    const char *eos_token;  /* NULL: the variable is left undefined */
    const char *extra_json; /* NULL or a JSON object of extra variables */
} tmpl_chat;

/* Parses `template_src` and renders it with messages, tools (or none),
 * documents = none, add_generation_prompt, bos_token, eos_token and extras. */
int tmpl_render_chat(const char *template_src, size_t template_len, const tmpl_chat *chat,
                     char **out, size_t *out_len, hearth_err *err);

#endif
