/* Generation: prompt in, streamed text out.
 *
 *   generator *g = gen_new(model, vocab, n_ctx, n_batch, &err);
 *   gen_params p = gen_default_params(chat_template);  // reasoning-aware
 *   gen_run(g, prompt_ids, n_prompt, &p, on_piece, on_token, ud, &stats, &err);
 *
 * One gen_run: the prompt is prefilled in batches of n_batch (one batched
 * forward each); then decode: sample, stream, evaluate, until end of
 * generation (tok_is_eog, unless ignore_eos), n_predict tokens, a stop string,
 * the end of the context, or cancellation. Text goes
 *   token -> streaming detokenizer (whole UTF-8 characters only)
 *         -> stop-string filter (never emits a stop string or what follows)
 *         -> reasoning split (<think>...</think>, when asked) -> on_piece.
 *
 * Prefix reuse: the generator remembers which tokens its KV cache holds. A
 * prompt that starts with them (a chat re-rendered with one more turn)
 * evaluates only the new suffix; anything else is evaluated from the first
 * differing token. The end-of-generation token is not kept in the cache.
 *
 * A prompt longer than the context is an error that gives both numbers; it is
 * never truncated. Memory: the KV cache, logits and sampler buffers are
 * allocated in gen_new; a gen_run allocates only its stop filter. */
#ifndef HEARTH_GENERATE_GENERATE_H
#define HEARTH_GENERATE_GENERATE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "generate/reasoning.h"
#include "generate/sampler.h"
#include "model/model.h"
#include "text/tokenizer.h"

#define GEN_MAX_PENALTY_WINDOW 8192 /* sampler window capacity */

typedef struct gen_params {
    sampler_params sampling;
    int n_predict;            /* most new tokens; < 0: until the context is full */
    bool ignore_eos;          /* keep going through end-of-generation tokens */
    const char *const *stops; /* stop strings (copied per run) */
    int n_stops;
    bool split_reasoning;          /* separate <think>...</think> into THINK pieces */
    bool prompt_in_think;          /* the prompt ends inside thinking ("<think>\n") */
    bool render_special;           /* output control tokens' text (normally hidden) */
    volatile sig_atomic_t *cancel; /* non-zero: stop at the next batch or token */
} gen_params;

typedef enum gen_stop_reason {
    GEN_STOP_NONE = 0,
    GEN_STOP_EOG,       /* the model ended its turn */
    GEN_STOP_LENGTH,    /* n_predict tokens */
    GEN_STOP_STRING,    /* a stop string */
    GEN_STOP_CONTEXT,   /* the context is full */
    GEN_STOP_CANCELLED, /* cancel flag or a callback said stop */
} gen_stop_reason;

const char *gen_stop_reason_str(gen_stop_reason r); /* "eog", "length", ... */

typedef struct gen_stats {
    int n_prompt;     /* prompt tokens */
    int n_reused;     /* of which found in the KV cache */
    double prompt_ms; /* prefill of the n_prompt - n_reused others */
    int n_gen;        /* tokens sampled (the end-of-generation token included) */
    double gen_ms;    /* decode loop: sampling + one forward per token */
    gen_stop_reason reason;
    int stop_index; /* GEN_STOP_STRING: which stop string */
} gen_stats;

/* Return false to stop generation (reason GEN_STOP_CANCELLED). */
typedef bool (*gen_piece_fn)(void *ud, reasoning_kind kind, const char *text, size_t len);
typedef bool (*gen_token_fn)(void *ud, int32_t token);

/* Sampling defaults for a model with this chat template (NULL: none). A
 * template that mentions "<think>" (DeepSeek-R1 and its distills) gets
 * DeepSeek's advice, temperature 0.6 and top-p 0.95; others llama.cpp's
 * defaults (sampler_default_params). */
sampler_params gen_default_sampling(const char *chat_template);
/* All parameters with those sampling defaults: n_predict -1, reasoning split
 * on when the template mentions "<think>", and prompt_in_think off. */
gen_params gen_default_params(const char *chat_template);

typedef struct generator generator;

/* n_ctx <= 0: the model's training context; n_batch <= 0: 512. */
generator *gen_new(model *m, const tok_vocab *v, int n_ctx, int n_batch, hearth_err *err);
void gen_free(generator *g);
int gen_n_ctx(const generator *g);
/* Tokens in the KV cache (what the next run may reuse). */
int gen_n_cached(const generator *g);
/* Empties the KV cache (nothing reused by the next run). */
void gen_forget(generator *g);

/* One generation (see above). on_piece and on_token may be NULL. Returns 0
 * when generation ended for any reason in gen_stats (stats may be NULL), -1
 * with a message for errors (prompt too long or empty, a failed forward). */
int gen_run(generator *g, const int32_t *prompt, int n_prompt, const gen_params *p,
            gen_piece_fn on_piece, gen_token_fn on_token, void *ud, gen_stats *stats,
            hearth_err *err);

#endif
