/* The public API (include/hearth.h): a thin layer over model, text and
 * generate. Errors go to a per-thread buffer read by hearth_last_error(). */
#include "hearth.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate/generate.h"
#include "bench/bench_sol.h"
#include "model/model.h"
#include "text/template.h"
#include "text/tokenizer.h"

struct hearth_model {
    model *m;
    tok_vocab *v;
    char *chat_template; /* NULL when absent */
    hearth_model_info info;
};

struct hearth_session {
    hearth_model *hm;
    generator *g;
};

static _Thread_local char last_error[1024];

static void set_error(const hearth_err *e) {
    snprintf(last_error, sizeof last_error, "%s", e->msg);
}

static void set_errorf(const char *msg) {
    snprintf(last_error, sizeof last_error, "%s", msg);
}

const char *hearth_last_error(void) {
    return last_error;
}

void hearth_free(void *p) {
    free(p);
}

/* ---- models ---- */

/* Reads one byte per page of every tensor so the weights are resident before
 * the first token; reports progress. */
static void warm_up(const gguf_file *f, const hearth_model_params *p) {
    uint64_t total = 0, done = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) total += gguf_tensor_at(f, i)->nbytes;
    volatile uint8_t sink = 0;
    uint64_t next_report = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const uint8_t *d = t->data;
        for (uint64_t o = 0; o < t->nbytes; o += 4096) sink ^= d[o];
        done += t->nbytes;
        if (p && p->progress && total && done >= next_report) {
            p->progress(p->progress_ud, (float)((double)done / (double)total));
            next_report = done + total / 100;
        }
    }
    (void)sink;
}

hearth_model *hearth_model_load(const char *path, const hearth_model_params *params) {
    hearth_err e;
    hearth_model *hm = calloc(1, sizeof *hm);
    if (!hm) {
        set_errorf("out of memory");
        return NULL;
    }
    model_params mp = model_default_params();
    if (params) {
        mp.n_threads = params->n_threads;
        mp.load = params->load == HEARTH_LOAD_MMAP   ? MODEL_LOAD_MAP
                  : params->load == HEARTH_LOAD_COPY ? MODEL_LOAD_COPY
                                                     : MODEL_LOAD_AUTO;
        mp.progress = params->progress;
        mp.progress_ud = params->progress_ud;
    }
    hm->m = model_load(path, &mp, &e);
    if (!hm->m) goto fail;
    const gguf_file *f = model_gguf(hm->m);
    hm->v = tok_load(f, &e);
    if (!hm->v) {
        hearth_err_prefix(&e, "%s", path);
        goto fail;
    }
    gguf_str s;
    if (gguf_has(f, "tokenizer.chat_template")) {
        if (gguf_get_str(f, "tokenizer.chat_template", &s, &e) < 0) goto fail;
        hm->chat_template = gguf_str_dup(s);
        if (!hm->chat_template) {
            hearth_errf(&e, "out of memory");
            goto fail;
        }
    }
    hearth_model_info *in = &hm->info;
    const model_hparams *hp = model_hparams_of(hm->m);
    snprintf(in->arch, sizeof in->arch, "%s", hp->arch);
    if (gguf_has(f, "general.name") && gguf_get_str(f, "general.name", &s, NULL) == 0)
        snprintf(in->name, sizeof in->name, "%.*s", (int)(s.len < 127 ? s.len : 127), s.ptr);
    in->n_vocab = tok_n_vocab(hm->v);
    in->n_ctx_train = hp->n_ctx_train;
    in->n_embd = hp->n_embd;
    in->n_layer = hp->n_layer;
    in->weight_bytes = hp->weight_bytes;
    in->n_threads = model_n_threads(hm->m);
    in->has_chat_template = hm->chat_template != NULL;
    in->thinks = hm->chat_template && strstr(hm->chat_template, "<think>") != NULL;
    /* a copy is resident already (and reported its progress while read) */
    if (!model_weights_copied(hm->m)) warm_up(f, params);
    return hm;
fail:
    set_error(&e);
    hearth_model_free(hm);
    return NULL;
}

void hearth_model_free(hearth_model *hm) {
    if (!hm) return;
    tok_free(hm->v);
    model_free(hm->m);
    free(hm->chat_template);
    free(hm);
}

uint64_t hearth_model_decode_bytes(const hearth_model *m, double n_past) {
    bench_bytes b;
    if (!m || bench_model_bytes(m->m, n_past, &b, NULL) < 0) return 0;
    return b.total;
}

void hearth_model_get_info(const hearth_model *hm, hearth_model_info *out) {
    *out = hm->info;
}

const char *hearth_model_chat_template(const hearth_model *hm) {
    return hm->chat_template;
}

/* ---- text ---- */

int hearth_tokenize(const hearth_model *hm, const char *text, size_t len, int flags, int32_t **ids,
                    size_t *n_ids) {
    hearth_err e;
    *ids = NULL;
    *n_ids = 0;
    bool add = flags & HEARTH_TOK_ADD_SPECIAL, parse = flags & HEARTH_TOK_PARSE_SPECIAL;
    if (tok_encode(hm->v, text, len, add, parse, ids, n_ids, &e) < 0) {
        set_error(&e);
        return -1;
    }
    /* A rendered chat prompt often starts with the BOS text already: keep one. */
    int32_t bos = tok_bos(hm->v);
    if (add && parse && bos >= 0 && *n_ids >= 2 && (*ids)[0] == bos && (*ids)[1] == bos) {
        memmove(*ids, *ids + 1, (*n_ids - 1) * sizeof **ids);
        (*n_ids)--;
    }
    return 0;
}

int hearth_detokenize(const hearth_model *hm, const int32_t *ids, size_t n_ids, int special,
                      char **text, size_t *len) {
    hearth_err e;
    if (tok_decode(hm->v, ids, n_ids, special ? TOK_DETOK_SPECIAL : 0, text, len, &e) < 0) {
        set_error(&e);
        return -1;
    }
    return 0;
}

static char *token_text_dup(const tok_vocab *v, int32_t id) {
    size_t n;
    const char *t = id >= 0 ? tok_text(v, id, &n) : NULL;
    return t ? strndup(t, n) : NULL;
}

int hearth_chat_render(const hearth_model *hm, const hearth_message *msgs, size_t n_msgs,
                       int add_generation_prompt, char **out, size_t *len) {
    hearth_err e;
    *out = NULL;
    *len = 0;
    if (!hm->chat_template) {
        set_errorf("the model has no chat template (tokenizer.chat_template)");
        return -1;
    }
    int rc = -1;
    char *bos = token_text_dup(hm->v, tok_bos(hm->v));
    char *eos = token_text_dup(hm->v, tok_eos(hm->v));
    char *json = NULL;
    json_t *arr = json_array();
    if (!arr) goto oom;
    for (size_t i = 0; i < n_msgs; i++) {
        json_t *o = json_object();
        if (!o || json_array_append_new(arr, o) < 0) goto oom;
        if (!msgs[i].role || !msgs[i].content) {
            set_errorf("message without a role or content");
            goto done;
        }
        json_t *r = json_string(msgs[i].role), *c = json_string(msgs[i].content);
        if (!r || !c) {
            json_decref(r);
            json_decref(c);
            set_errorf("message role and content must be valid UTF-8");
            goto done;
        }
        json_object_set_new(o, "role", r);
        json_object_set_new(o, "content", c);
    }
    json = json_dumps(arr, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!json) goto oom;
    tmpl_chat chat = {
        .messages_json = json,
        .add_generation_prompt = add_generation_prompt != 0,
        .bos_token = bos,
        .eos_token = eos,
    };
    if (tmpl_render_chat(hm->chat_template, strlen(hm->chat_template), &chat, out, len, &e) < 0) {
        hearth_err_prefix(&e, "chat template");
        set_error(&e);
        goto done;
    }
    rc = 0;
    goto done;
oom:
    set_errorf("out of memory");
done:
    json_decref(arr);
    free(json);
    free(bos);
    free(eos);
    return rc;
}

/* ---- generation ---- */

hearth_session *hearth_session_new(hearth_model *hm, int n_ctx, int n_batch) {
    hearth_err e;
    hearth_session *s = calloc(1, sizeof *s);
    if (!s) {
        set_errorf("out of memory");
        return NULL;
    }
    s->hm = hm;
    s->g = gen_new(hm->m, hm->v, n_ctx, n_batch, &e);
    if (!s->g) {
        set_error(&e);
        free(s);
        return NULL;
    }
    return s;
}

void hearth_session_free(hearth_session *s) {
    if (!s) return;
    gen_free(s->g);
    free(s);
}

int hearth_session_n_ctx(const hearth_session *s) {
    return gen_n_ctx(s->g);
}

void hearth_session_reset(hearth_session *s) {
    gen_forget(s->g);
}

hearth_gen_params hearth_gen_default_params(const hearth_model *hm) {
    gen_params g = gen_default_params(hm->chat_template);
    hearth_gen_params p;
    memset(&p, 0, sizeof p);
    p.temperature = g.sampling.temp;
    p.top_k = g.sampling.top_k;
    p.top_p = g.sampling.top_p;
    p.min_p = g.sampling.min_p;
    p.repeat_penalty = g.sampling.repeat_penalty;
    p.presence_penalty = g.sampling.presence_penalty;
    p.frequency_penalty = g.sampling.frequency_penalty;
    p.penalty_last_n = g.sampling.penalty_last_n;
    p.seed = g.sampling.seed;
    p.max_tokens = g.n_predict;
    p.split_thinking = g.split_reasoning;
    return p;
}

typedef struct shim {
    const hearth_gen_params *p;
} shim;

static bool shim_piece(void *ud, reasoning_kind kind, const char *text, size_t len) {
    const hearth_gen_params *p = ((shim *)ud)->p;
    return p->on_text(p->ud, kind == REASONING_THINK, text, len) == 0;
}

static bool shim_token(void *ud, int32_t tok) {
    const hearth_gen_params *p = ((shim *)ud)->p;
    return p->on_token(p->ud, tok) == 0;
}

/* Does the prompt's text end in "<think>" (plus whitespace)? Then the
 * template opened the thinking section and the output starts inside it. */
static bool ends_in_think(const tok_vocab *v, const int32_t *prompt, size_t n) {
    size_t k = n < 8 ? n : 8;
    char *text = NULL;
    size_t len = 0;
    if (tok_decode(v, prompt + n - k, k, TOK_DETOK_SPECIAL, &text, &len, NULL) < 0) return false;
    while (len && strchr(" \t\r\n", text[len - 1])) len--;
    bool yes = len >= 7 && !memcmp(text + len - 7, "<think>", 7);
    free(text);
    return yes;
}

int hearth_generate(hearth_session *s, const int32_t *prompt, size_t n_prompt,
                    const hearth_gen_params *p, hearth_gen_stats *stats) {
    hearth_err e;
    if (n_prompt > (size_t)1 << 30) {
        set_errorf("prompt is too long");
        return -1;
    }
    gen_params g;
    memset(&g, 0, sizeof g);
    g.sampling.temp = p->temperature;
    g.sampling.top_k = p->top_k;
    g.sampling.top_p = p->top_p;
    g.sampling.min_p = p->min_p;
    g.sampling.repeat_penalty = p->repeat_penalty;
    g.sampling.presence_penalty = p->presence_penalty;
    g.sampling.frequency_penalty = p->frequency_penalty;
    g.sampling.penalty_last_n = p->penalty_last_n;
    g.sampling.seed = p->seed;
    g.n_predict = p->max_tokens;
    g.ignore_eos = p->ignore_eos != 0;
    g.stops = p->stop;
    g.n_stops = p->n_stop;
    g.split_reasoning = p->split_thinking != 0;
    g.prompt_in_think = g.split_reasoning && n_prompt && ends_in_think(s->hm->v, prompt, n_prompt);
    g.render_special = p->render_special != 0;
    g.cancel = p->cancel;
    shim sh = {p};
    gen_stats st;
    int rc = gen_run(s->g, prompt, (int)n_prompt, &g, p->on_text ? shim_piece : NULL,
                     p->on_token ? shim_token : NULL, &sh, &st, &e);
    if (rc < 0) set_error(&e);
    if (stats) {
        stats->prompt_tokens = st.n_prompt;
        stats->reused_tokens = st.n_reused;
        stats->prompt_ms = st.prompt_ms;
        stats->gen_tokens = st.n_gen;
        stats->gen_ms = st.gen_ms;
        stats->stop_reason = (int)st.reason; /* the enums agree */
        stats->stop_str = gen_stop_reason_str(st.reason);
    }
    return rc;
}
