/* hearth: the public C API. Load a GGUF model, tokenize, render its chat
 * template, generate with streaming callbacks. The `hearth` CLI, the HTTP
 * server and the trainer are built on these functions.
 *
 *   hearth_model *m = hearth_model_load("model.gguf", NULL);
 *   if (!m) { fprintf(stderr, "%s\n", hearth_last_error()); return 1; }
 *   hearth_session *s = hearth_session_new(m, 4096, 0);
 *   hearth_message msgs[] = {{"user", "Why is the sky blue?"}};
 *   char *prompt; size_t len;
 *   hearth_chat_render(m, msgs, 1, 1, &prompt, &len);
 *   int32_t *ids; size_t n;
 *   hearth_tokenize(m, prompt, len, HEARTH_TOK_ADD_SPECIAL | HEARTH_TOK_PARSE_SPECIAL, &ids, &n);
 *   hearth_gen_params p = hearth_gen_default_params(m);
 *   p.on_text = print_piece;   // int print_piece(void *ud, int thinking, const char *t, size_t n)
 *   hearth_generate(s, ids, n, &p, NULL);
 *   hearth_free(ids); hearth_free(prompt);
 *   hearth_session_free(s); hearth_model_free(m);
 *
 * Errors: functions return -1 (or NULL) and hearth_last_error() gives the
 * message of the calling thread's last failure: what was expected and what
 * was found. Nothing here exits or aborts on bad input.
 *
 * Threads: a model may be shared by several threads for tokenizing and
 * rendering; generation runs on the model's own thread pool, so at most one
 * session of a model generates at a time. */
#ifndef HEARTH_H
#define HEARTH_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HEARTH_API_VERSION 1

typedef struct hearth_model hearth_model;
typedef struct hearth_session hearth_session;

/* The message of this thread's last failed call ("" if none). */
const char *hearth_last_error(void);
/* Frees buffers the API returned (token arrays, strings). NULL is fine. */
void hearth_free(void *p);

/* ---- models ---- */

/* How the weights are held in memory. */
typedef enum hearth_load {
    /* HEARTH_LOAD_COPY when the kernel grants transparent huge pages on
     * request and the file takes at most 3/4 of the available memory, else
     * HEARTH_LOAD_MMAP */
    HEARTH_LOAD_AUTO = 0,
    /* the file mapped read-only: loads at once, shares the page cache with
     * other processes, 4 KiB pages */
    HEARTH_LOAD_MMAP = 1,
    /* the file read into private memory in 2 MiB huge pages: a read of the
     * whole file at load, then faster to stream (fewer TLB misses) */
    HEARTH_LOAD_COPY = 2
} hearth_load;

typedef struct hearth_model_params {
    int n_threads; /* <= 0: every online CPU */
    hearth_load load;
    /* Called while the weights are read in (fraction 0..1), or NULL. */
    void (*progress)(void *ud, float fraction);
    void *progress_ud;
} hearth_model_params;

/* params may be NULL (defaults). Maps or copies (params->load) and
 * validates the file; a mapping's weights are then touched once so the first
 * token does not pay for the page faults (a copy is resident already). */
hearth_model *hearth_model_load(const char *path, const hearth_model_params *params);
void hearth_model_free(hearth_model *m);

typedef struct hearth_model_info {
    char arch[32];   /* "llama", "qwen2", "deepseek2" */
    char name[128];  /* general.name, or "" */
    int n_vocab;     /* tokenizer's vocabulary */
    int n_ctx_train; /* context length the model was trained for */
    int n_embd, n_layer;
    size_t weight_bytes;
    int n_threads;
    int has_chat_template; /* tokenizer.chat_template is present */
    int thinks;            /* the template mentions <think> (R1 style) */
} hearth_model_info;

void hearth_model_get_info(const hearth_model *m, hearth_model_info *out);
/* Bytes one generated token reads (active weights, one embedding row, the
 * chosen experts, the KV cache of n_past positions): the speed of light of
 * decoding is the read bandwidth divided by this. 0 if it cannot be counted. */
uint64_t hearth_model_decode_bytes(const hearth_model *m, double n_past);
/* The chat template source, or NULL when the model has none. */
const char *hearth_model_chat_template(const hearth_model *m);

/* ---- text ---- */

enum {
    HEARTH_TOK_ADD_SPECIAL = 1 << 0,   /* BOS (and EOS) by the model's own rule */
    HEARTH_TOK_PARSE_SPECIAL = 1 << 1, /* "<|im_start|>" in the text is that token */
};

/* *ids is malloc'd (hearth_free it), *n_ids tokens. */
int hearth_tokenize(const hearth_model *m, const char *text, size_t len, int flags, int32_t **ids,
                    size_t *n_ids);
/* Text of tokens (control tokens shown when `special`); *text NUL-terminated. */
int hearth_detokenize(const hearth_model *m, const int32_t *ids, size_t n_ids, int special,
                      char **text, size_t *len);

typedef struct hearth_message {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} hearth_message;

/* Renders messages through the model's chat template (as Hugging Face's
 * apply_chat_template does), with the model's BOS/EOS texts. Fails when the
 * model has no template. *out is NUL-terminated, malloc'd. */
int hearth_chat_render(const hearth_model *m, const hearth_message *msgs, size_t n_msgs,
                       int add_generation_prompt, char **out, size_t *len);

/* ---- generation ---- */

/* Sessions hold a KV cache of n_ctx positions (<= 0: the model's training
 * context, at most 4096: ask for more when you need it, a full 128k cache of
 * a real model is many GB) and process prompts n_batch tokens at a time
 * (<= 0: 512). */
hearth_session *hearth_session_new(hearth_model *m, int n_ctx, int n_batch);
void hearth_session_free(hearth_session *s);
int hearth_session_n_ctx(const hearth_session *s);
/* Forget the KV cache (the next prompt is evaluated from its start). */
void hearth_session_reset(hearth_session *s);

enum hearth_stop_reason {
    HEARTH_STOP_EOG = 1,       /* the model ended its turn */
    HEARTH_STOP_LENGTH = 2,    /* max_tokens */
    HEARTH_STOP_STRING = 3,    /* a stop string (not included in the text) */
    HEARTH_STOP_CONTEXT = 4,   /* the context is full */
    HEARTH_STOP_CANCELLED = 5, /* *cancel was set or a callback returned non-zero */
};

typedef struct hearth_gen_params {
    /* Sampling: penalties -> top-k -> top-p -> min-p -> temperature. */
    float temperature;       /* <= 0: greedy */
    int top_k;               /* <= 0: off */
    float top_p;             /* 1: off */
    float min_p;             /* 0: off */
    float repeat_penalty;    /* 1: off */
    float presence_penalty;  /* 0: off */
    float frequency_penalty; /* 0: off */
    int penalty_last_n;      /* tokens the penalties look back on (<= 8192) */
    uint64_t seed;           /* same seed, same model, same prompt: same text */

    int max_tokens;          /* < 0: until the end of turn or the context is full */
    int ignore_eos;          /* go on through end-of-turn tokens */
    const char *const *stop; /* stop strings, n_stop of them (at most 64) */
    int n_stop;
    int split_thinking;            /* report <think>...</think> text with thinking = 1 */
    int render_special;            /* include control tokens' text in the output */
    volatile sig_atomic_t *cancel; /* set non-zero (e.g. from SIGINT) to stop */

    /* Streamed text, whole UTF-8 characters; return non-zero to stop. */
    int (*on_text)(void *ud, int thinking, const char *text, size_t len);
    /* Every sampled token id; return non-zero to stop. */
    int (*on_token)(void *ud, int32_t token);
    void *ud;
} hearth_gen_params;

/* Defaults for this model: llama.cpp's (temperature 0.8, top-k 40, top-p 0.95,
 * min-p 0.05, no penalties, window 64), except for reasoning models (template
 * with <think>): temperature 0.6, top-p 0.95 (DeepSeek's advice) and thinking
 * split on. max_tokens -1, seed 0. */
hearth_gen_params hearth_gen_default_params(const hearth_model *m);

typedef struct hearth_gen_stats {
    int prompt_tokens;
    int reused_tokens; /* of the prompt, already in the session's KV cache */
    double prompt_ms;
    int gen_tokens;
    double gen_ms;
    int stop_reason;      /* enum hearth_stop_reason */
    const char *stop_str; /* "eog", "length", "stop string", "context full", "cancelled" */
} hearth_gen_stats;

/* Evaluates the prompt (reusing the longest prefix already in the session's
 * cache) and generates. When the prompt's text ends in "<think>" (the
 * template opened the thinking section), the output starts as thinking.
 * Returns 0 however generation ended (see stats), -1 on errors: a prompt
 * longer than the context ("prompt is 5000 tokens, context is 4096"), an empty
 * prompt, bad parameters. stats may be NULL. */
int hearth_generate(hearth_session *s, const int32_t *prompt, size_t n_prompt,
                    const hearth_gen_params *p, hearth_gen_stats *stats);

#ifdef __cplusplus
}
#endif

#endif
