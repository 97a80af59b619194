/* Models: load a GGUF file and run its forward pass.
 *
 *   hearth_err err;
 *   model_params mp = model_default_params();         // threads = online CPUs
 *   model *m = model_load("x.gguf", &mp, &err);        // validates every tensor
 *   model_ctx *c = model_ctx_new(m, 4096, 512, &err);  // KV cache + scratch, up front
 *   float *logits = malloc(sizeof(float) * model_hparams_of(m)->n_vocab);
 *   model_eval(c, prompt, n_prompt, 0, logits, MODEL_LOGITS_LAST, &err); // prefill
 *   model_eval(c, &next, 1, n_prompt, logits, MODEL_LOGITS_LAST, &err);  // decode
 *
 * The file stays mapped for the life of the model and weights are used in
 * place. model_gguf() gives the open file, e.g. for tok_load().
 *
 * Architectures: general.architecture selects an entry of a table in model.c
 * (llama and qwen2 in llama.c; more files add one entry each).
 *
 * Threads: a model owns one thread pool; evaluate at most one context of a
 * given model at a time. */
#ifndef HEARTH_MODEL_H
#define HEARTH_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "gguf/gguf.h"

/* Common hyperparameters, from the `<arch>.*` keys of the file. */
typedef struct model_hparams {
    char arch[32];    /* general.architecture, e.g. "llama", "qwen2" */
    int n_vocab;      /* rows of token_embd.weight */
    int n_ctx_train;  /* <arch>.context_length */
    int n_embd;       /* <arch>.embedding_length */
    int n_layer;      /* <arch>.block_count */
    int n_ff;         /* <arch>.feed_forward_length (dense layers) */
    int n_head;       /* <arch>.attention.head_count */
    int n_head_kv;    /* <arch>.attention.head_count_kv (default n_head) */
    int head_dim_k;   /* <arch>.attention.key_length (default n_embd / n_head) */
    int head_dim_v;   /* <arch>.attention.value_length (default n_embd / n_head) */
    int n_rot;        /* <arch>.rope.dimension_count (default head_dim_k) */
    float rms_eps;    /* <arch>.attention.layer_norm_rms_epsilon */
    float rope_theta; /* <arch>.rope.freq_base (default 10000) */
    /* Floats per token per layer that the KV cache stores for K and for V
     * (llama: n_head_kv * head_dim_k and n_head_kv * head_dim_v). Set by the
     * architecture. */
    int kv_k_width;
    int kv_v_width;
    bool tied_embeddings; /* no output.weight: the output matrix is token_embd */
    size_t weight_bytes;  /* bytes of all tensors the forward pass reads */
} model_hparams;

/* How the weights are held (gguf_load): */
typedef enum model_load {
    MODEL_LOAD_AUTO = 0, /* copy when model_load_copies() says so, else map */
    MODEL_LOAD_MAP = 1,  /* the file mapped (4 KiB pages) */
    MODEL_LOAD_COPY = 2  /* read into anonymous memory in 2 MiB huge pages */
} model_load_mode;

typedef struct model_params {
    int n_threads; /* <= 0: number of online CPUs */
    model_load_mode load;
    /* Called with the fraction read while a copy is made (may be NULL). */
    void (*progress)(void *ud, float fraction);
    void *progress_ud;
} model_params;

/* MODEL_LOAD_AUTO's choice for a file of `bytes`: copy when the kernel
 * grants huge pages on request (THP "always" or "madvise") and the file
 * takes at most 3/4 of the memory available now (the copy is not paged out
 * as a mapping's clean pages are; the rest is left to the page cache, the
 * KV cache and other programs). */
bool model_load_copies(size_t bytes);

model_params model_default_params(void);

typedef struct model model;
typedef struct model_ctx model_ctx;

/* Opens, validates (presence, type and shape of every tensor against the
 * hyperparameters) and prepares a model. NULL with a message on failure. */
model *model_load(const char *path, const model_params *params, hearth_err *err);
void model_free(model *m);

const model_hparams *model_hparams_of(const model *m);
/* The open GGUF file (owned by the model; valid until model_free). */
const gguf_file *model_gguf(const model *m);
int model_n_threads(const model *m);
/* Whether the weights were copied into anonymous memory, and the share of
 * them in huge pages (0 when mapped, -1 when unknown). */
bool model_weights_copied(const model *m);
double model_weights_huge_fraction(const model *m);
/* Weight matrices the kernels repacked at load into a layout they run
 * faster (kern_repack: only in copied weights, never in a file mapping),
 * and their bytes; 0 where none was (mapped, HEARTH_REPACK=0, a variant or
 * type without one). */
int model_weights_repacked(const model *m, uint64_t *bytes);

/* A sequence state: KV cache for n_ctx positions (F32, per layer
 * [pos][kv_k_width] for K and [pos][kv_v_width] for V) and scratch for
 * batches of up to n_batch tokens, all allocated here. n_ctx <= 0 means
 * min(n_ctx_train, 4096) (a full 128k-position cache of a real model is tens
 * of GB: ask for what you need); n_batch <= 0 means 512 (capped at n_ctx).
 * model_eval accepts any number of tokens and runs them n_batch at a time. */
model_ctx *model_ctx_new(model *m, int n_ctx, int n_batch, hearth_err *err);
void model_ctx_free(model_ctx *c);

/* Matmul observation (hearth imatrix): once set, every product of a weight
 * matrix with activations calls fn before it runs, with the GGUF tensor's
 * name, which of its stacked matrices (an expert of a 3-D tensor, a head of
 * attn_k_b / attn_v_b; 0 of 1 for a 2-D tensor), the input width n_cols and
 * the inputs x[t][0..n_cols) (row stride ldx) of the n_tok tokens. Calls come
 * from the thread that runs model_eval, in forward order. Not observed: the
 * rows of an unsplit attn_kv_b (MLA uses them transposed). fn NULL stops. */
typedef void (*model_observer)(void *ud, const char *tensor, int slice, int n_slices,
                               int64_t n_cols, const float *x, size_t ldx, int n_tok);
void model_ctx_set_observer(model_ctx *c, model_observer fn, void *ud);

int model_ctx_n_ctx(const model_ctx *c);
/* Positions held in the cache: the next token goes at this position. */
int model_ctx_n_past(const model_ctx *c);
/* Forget positions >= n_past (0 resets; for /reset and regenerate).
 * -1 if n_past is negative or beyond what the cache holds. */
int model_ctx_truncate(model_ctx *c, int n_past, hearth_err *err);
void model_ctx_reset(model_ctx *c);
/* Bytes allocated by the context (KV cache + scratch). */
size_t model_ctx_bytes(const model_ctx *c);
/* KV cache bytes one token takes in one layer: (kv_k_width + kv_v_width) *
 * sizeof(float). For deepseek2 (MLA) that is the latent and the shared rotary
 * key, (kv_lora_rank + n_rot) * 4, not per-head keys and values. */
size_t model_kv_bytes_per_token(const model *m);

enum {
    MODEL_LOGITS_NONE = 0, /* fill the cache only (logits may be NULL) */
    MODEL_LOGITS_LAST = 1, /* logits: [n_vocab], for the last token */
    MODEL_LOGITS_ALL = 2,  /* logits: [n_tokens][n_vocab], one row per token */
};

/* Runs tokens[0..n_tokens) at positions pos..pos+n_tokens-1 in one batched
 * forward (per n_batch chunk): each token attends to the cache positions
 * 0..its own. pos must be <= model_ctx_n_past(c) (positions from pos on are
 * overwritten; afterwards n_past = pos + n_tokens). Errors: pos + n_tokens >
 * n_ctx, a token id outside [0, n_vocab), n_tokens < 1. */
int model_eval(model_ctx *c, const int32_t *tokens, int n_tokens, int pos, float *logits,
               int logits_mode, hearth_err *err);

#endif
