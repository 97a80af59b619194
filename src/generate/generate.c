#include "generate/generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "generate/stop.h"

struct generator {
    model *m;
    const tok_vocab *v;
    model_ctx *ctx;
    sampler *smp;
    tok_detok *detok;         /* plain */
    tok_detok *detok_special; /* rendering control tokens */
    float *logits;            /* (n_vocab,) */
    int32_t *cached;          /* (n_ctx,) tokens the KV cache holds */
    int n_cached;
    int n_ctx, n_batch, n_vocab, n_vocab_tok;
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

const char *gen_stop_reason_str(gen_stop_reason r) {
    switch (r) {
    case GEN_STOP_EOG:
        return "eog";
    case GEN_STOP_LENGTH:
        return "length";
    case GEN_STOP_STRING:
        return "stop string";
    case GEN_STOP_CONTEXT:
        return "context full";
    case GEN_STOP_CANCELLED:
        return "cancelled";
    default:
        return "none";
    }
}

static bool template_thinks(const char *chat_template) {
    return chat_template && strstr(chat_template, "<think>");
}

sampler_params gen_default_sampling(const char *chat_template) {
    sampler_params p = sampler_default_params();
    if (template_thinks(chat_template)) {
        p.temp = 0.6f;
        p.top_p = 0.95f;
    }
    return p;
}

gen_params gen_default_params(const char *chat_template) {
    gen_params p;
    memset(&p, 0, sizeof p);
    p.sampling = gen_default_sampling(chat_template);
    p.n_predict = -1;
    p.split_reasoning = template_thinks(chat_template);
    return p;
}

generator *gen_new(model *m, const tok_vocab *v, int n_ctx, int n_batch, hearth_err *err) {
    generator *g = calloc(1, sizeof *g);
    if (!g) {
        hearth_errf(err, "out of memory");
        return NULL;
    }
    g->m = m;
    g->v = v;
    g->n_vocab = model_hparams_of(m)->n_vocab;
    g->n_vocab_tok = tok_n_vocab(v);
    g->ctx = model_ctx_new(m, n_ctx, n_batch, err);
    if (!g->ctx) goto fail;
    g->n_ctx = model_ctx_n_ctx(g->ctx);
    g->n_batch = n_batch > 0 ? n_batch : 512;
    sampler_params sp = sampler_default_params();
    sp.penalty_last_n = GEN_MAX_PENALTY_WINDOW;
    g->smp = sampler_new(g->n_vocab, &sp, err);
    if (!g->smp) goto fail;
    g->detok = tok_detok_new(v, 0, err);
    if (!g->detok) goto fail;
    g->detok_special = tok_detok_new(v, TOK_DETOK_SPECIAL, err);
    if (!g->detok_special) goto fail;
    g->logits = malloc((size_t)g->n_vocab * sizeof *g->logits);
    g->cached = malloc((size_t)g->n_ctx * sizeof *g->cached);
    if (!g->logits || !g->cached) {
        hearth_errf(err, "out of memory for a context of %d tokens", g->n_ctx);
        goto fail;
    }
    return g;
fail:
    gen_free(g);
    return NULL;
}

void gen_free(generator *g) {
    if (!g) return;
    model_ctx_free(g->ctx);
    sampler_free(g->smp);
    tok_detok_free(g->detok);
    tok_detok_free(g->detok_special);
    free(g->logits);
    free(g->cached);
    free(g);
}

int gen_n_ctx(const generator *g) {
    return g->n_ctx;
}

int gen_n_cached(const generator *g) {
    return g->n_cached;
}

void gen_forget(generator *g) {
    model_ctx_reset(g->ctx);
    g->n_cached = 0;
}

/* ---- the text pipeline of one run ---- */

typedef struct run {
    const gen_params *p;
    gen_piece_fn on_piece;
    void *ud;
    reasoning rs;
    bool stopped; /* a callback said stop */
} run;

static void to_user(void *ud, reasoning_kind kind, const char *text, size_t len) {
    run *r = ud;
    if (r->stopped || !len || !r->on_piece) return;
    if (!r->on_piece(r->ud, kind, text, len)) r->stopped = true;
}

static void after_stop(void *ud, const char *text, size_t len) {
    run *r = ud;
    if (r->p->split_reasoning)
        reasoning_feed(&r->rs, text, len, to_user, r);
    else
        to_user(r, REASONING_ANSWER, text, len);
}

static bool cancelled(const gen_params *p) {
    return p->cancel && *p->cancel;
}

/* Sets logits of ids the tokenizer does not know (padding rows of the
 * embedding) to -inf, so they are never sampled. */
static void mask_padding(generator *g) {
    for (int i = g->n_vocab_tok; i < g->n_vocab; i++) g->logits[i] = -INFINITY;
}

int gen_run(generator *g, const int32_t *prompt, int n_prompt, const gen_params *p,
            gen_piece_fn on_piece, gen_token_fn on_token, void *ud, gen_stats *stats,
            hearth_err *err) {
    gen_stats st;
    memset(&st, 0, sizeof st);
    st.stop_index = -1;
    st.n_prompt = n_prompt;
    if (stats) *stats = st;
    if (n_prompt < 1) return hearth_errf(err, "the prompt is empty: at least one token is needed");
    if (n_prompt > g->n_ctx)
        return hearth_errf(err, "prompt is %d tokens, context is %d", n_prompt, g->n_ctx);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= g->n_vocab)
            return hearth_errf(err, "prompt token %d: id %d is outside the vocabulary [0, %d)", i,
                               (int)prompt[i], g->n_vocab);
    if (sampler_set_params(g->smp, &p->sampling, err) < 0) return -1;
    stop_filter *sf = stop_new(p->stops, p->n_stops, err);
    if (!sf) return -1;

    /* Prefix reuse: keep the cached tokens the prompt starts with, but always
     * evaluate at least the last prompt token (its logits start the decode). */
    int reuse = 0;
    while (reuse < g->n_cached && reuse < n_prompt - 1 && g->cached[reuse] == prompt[reuse])
        reuse++;
    if (model_ctx_truncate(g->ctx, reuse, err) < 0) goto fail_forget;
    g->n_cached = reuse;
    st.n_reused = reuse;

    /* Prefill, in batches so that a cancel is noticed between them. */
    double t0 = now_ms();
    for (int pos = reuse; pos < n_prompt;) {
        if (cancelled(p)) {
            st.reason = GEN_STOP_CANCELLED;
            st.prompt_ms = now_ms() - t0;
            goto done;
        }
        int n = n_prompt - pos < g->n_batch ? n_prompt - pos : g->n_batch;
        bool last = pos + n == n_prompt;
        if (model_eval(g->ctx, prompt + pos, n, pos, last ? g->logits : NULL,
                       last ? MODEL_LOGITS_LAST : MODEL_LOGITS_NONE, err) < 0)
            goto fail_forget;
        memcpy(g->cached + pos, prompt + pos, (size_t)n * sizeof *prompt);
        pos += n;
        g->n_cached = pos;
    }
    st.prompt_ms = now_ms() - t0;

    /* The penalties see the prompt too (as llama.cpp's samplers do). */
    sampler_reset(g->smp);
    int from = n_prompt > p->sampling.penalty_last_n ? n_prompt - p->sampling.penalty_last_n : 0;
    for (int i = from; i < n_prompt; i++) sampler_accept(g->smp, prompt[i]);

    run r = {.p = p, .on_piece = on_piece, .ud = ud};
    reasoning_init(&r.rs, p->prompt_in_think);
    tok_detok *dt = p->render_special ? g->detok_special : g->detok;
    tok_detok_reset(dt);

    double t1 = now_ms();
    for (;;) {
        if (p->n_predict >= 0 && st.n_gen >= p->n_predict) {
            st.reason = GEN_STOP_LENGTH;
            break;
        }
        if (cancelled(p) || r.stopped) {
            st.reason = GEN_STOP_CANCELLED;
            break;
        }
        /* NaN or Inf weights (a corrupt or hostile file) make every token
         * equally meaningless: say so instead of sampling noise. One pass
         * over n_vocab floats, nothing next to the forward pass. */
        for (int i = 0; i < g->n_vocab; i++)
            if (!isfinite(g->logits[i])) {
                hearth_errf(err,
                            "the model produced a non-finite logit (%g for token %d) at position "
                            "%d: its weights hold NaN or Inf",
                            (double)g->logits[i], i, g->n_cached);
                goto fail_forget;
            }
        mask_padding(g);
        int32_t tok = sampler_sample(g->smp, g->logits);
        sampler_accept(g->smp, tok);
        st.n_gen++;
        if (on_token && !on_token(ud, tok)) r.stopped = true;
        if (!p->ignore_eos && tok_is_eog(g->v, tok)) {
            st.reason = GEN_STOP_EOG;
            break;
        }
        size_t len = 0;
        const char *text = tok_detok_push(dt, tok, &len, err);
        if (!text) goto fail_forget;
        if (len && stop_feed(sf, text, len, after_stop, &r)) {
            st.reason = GEN_STOP_STRING;
            st.stop_index = stop_which(sf);
            break;
        }
        if (p->n_predict >= 0 && st.n_gen >= p->n_predict) {
            st.reason = GEN_STOP_LENGTH; /* no need to evaluate the last token */
            break;
        }
        if (g->n_cached >= g->n_ctx) {
            st.reason = GEN_STOP_CONTEXT;
            break;
        }
        if (model_eval(g->ctx, &tok, 1, g->n_cached, g->logits, MODEL_LOGITS_LAST, err) < 0)
            goto fail_forget;
        g->cached[g->n_cached++] = tok;
    }
    if (st.reason != GEN_STOP_STRING) {
        size_t len = 0;
        const char *text = tok_detok_flush(dt, &len);
        if (len && stop_feed(sf, text, len, after_stop, &r)) {
            st.reason = GEN_STOP_STRING;
            st.stop_index = stop_which(sf);
        }
        stop_flush(sf, after_stop, &r);
    }
    if (p->split_reasoning) reasoning_flush(&r.rs, to_user, &r);
    st.gen_ms = now_ms() - t1;
done:
    stop_free(sf);
    if (stats) *stats = st;
    return 0;
fail_forget:
    /* The cache may hold a partial batch: trust none of it. */
    gen_forget(g);
    stop_free(sf);
    if (stats) *stats = st;
    return -1;
}
