/* Inside the model module: the structs behind model.h and the table each
 * architecture fills. An architecture (llama.c, deepseek2.c, ...) provides a
 * model_arch and one line in the `archs` table of model.c.
 *
 * Order of events:
 *   model_load: gguf_open -> model_read_hparams (common keys, n_vocab)
 *               -> arch->load (its own keys, every tensor validated, sets
 *                  hp.kv_k_width / kv_v_width) -> thread pool
 *   model_ctx_new: KV cache + batch positions -> arch->ctx_init (scratch for
 *                  n_batch tokens)
 *   model_eval: checks, then arch->forward once per chunk of <= n_batch tokens. */
#ifndef HEARTH_MODEL_IMPL_H
#define HEARTH_MODEL_IMPL_H

#include "base/threadpool.h"
#include "kernels/kernels.h"
#include "model/model.h"

typedef struct model_arch {
    const char *name; /* general.architecture */
    /* Reads arch keys and weights into m->weights; validates them. */
    int (*load)(model *m, hearth_err *err);
    void (*free)(model *m);
    /* Allocates c->scratch for c->n_batch tokens (model_ctx_alloc helps). */
    int (*ctx_init)(model_ctx *c, hearth_err *err);
    void (*ctx_free)(model_ctx *c);
    /* Runs 1 <= n_tok <= c->n_batch tokens at positions pos..pos+n_tok-1
     * (c->pos holds them), all checked by the caller. Writes logits per
     * logits_mode: LAST -> [n_vocab], ALL -> [n_tok][n_vocab]. */
    int (*forward)(model_ctx *c, const int32_t *tokens, int n_tok, int pos, float *logits,
                   int logits_mode, hearth_err *err);
} model_arch;

typedef struct model_block model_block; /* allocations owned by a model */

struct model {
    gguf_file *gf;
    model_hparams hp;
    const model_arch *arch;
    void *weights; /* the architecture's weight struct */
    tp_pool *pool;
    model_block *blocks;
    struct model_wreg *wreg; /* weight matrices by address (model_register_mat) */
    int n_wreg, cap_wreg;
    bool writable;  /* while loading: the copied weights may be repacked */
    int n_repacked; /* model_repack's count and bytes */
    uint64_t repacked_bytes;
};

struct model_ctx {
    model *m;
    int n_ctx;
    int n_batch;
    int n_past;
    float *k_cache;        /* [n_layer][n_ctx][kv_k_width] */
    float *v_cache;        /* [n_layer][n_ctx][kv_v_width] */
    size_t k_huge, v_huge; /* their bytes where in huge pages (hm_alloc), else 0 */
    int32_t *pos;          /* [n_batch] positions of the current batch */
    void *scratch;         /* the architecture's per-context buffers */
    size_t bytes;          /* allocated by this context */
    model_observer obs;
    void *obs_ud;
};

/* K/V cache rows of layer l starting at position p. */
static inline float *model_k_at(model_ctx *c, int l, int p) {
    return c->k_cache + ((size_t)l * c->n_ctx + p) * c->m->hp.kv_k_width;
}
static inline float *model_v_at(model_ctx *c, int l, int p) {
    return c->v_cache + ((size_t)l * c->n_ctx + p) * c->m->hp.kv_v_width;
}

/* Memory owned by the model, freed by model_free. NULL with a message on OOM. */
void *model_alloc(model *m, size_t bytes, hearth_err *err);

/* Zeroed floats counted in c->bytes; free with free(). n is checked for overflow. */
float *model_ctx_floats(model_ctx *c, size_t n, hearth_err *err);

/* Tensor lookup with validation. `ne` lists the expected shape (ne[0] first,
 * as GGUF stores it) of n_dims dimensions. Messages name the tensor:
 * "blk.3.attn_q.weight: expected shape [2048, 2048], found [2048, 1024]".
 * Absent tensors: error if required, else *out is left NULL / zeroed and 0 is
 * returned. */
const gguf_tensor *model_tensor(model *m, const char *name, int n_dims, const int64_t *ne,
                                bool required, hearth_err *err);

/* t's data as kernels may read it: in place, or (F32/F16/BF16 data that a
 * small general.alignment left misaligned) a copy in model memory. */
const void *model_tensor_data(model *m, const gguf_tensor *t, const char *name, hearth_err *err);

/* While loading: w (n_mat stacked matrices, each w->n_rows / n_mat rows)
 * rearranged in place for the kernels (kern_repack) where the weights are
 * the model's own copy. Only for matrices the architecture uses through
 * kern_matmul / kern_matmul_n, kern_get_row or kern_mat_rows views whose
 * rows start and end on kern_mat_row_align. */
void model_repack(model *m, kern_mat *w, int n_mat);

/* A weight matrix [n_rows][n_cols] (ne = {n_cols, n_rows}) of any computable type. */
int model_mat(model *m, kern_mat *out, const char *name, int64_t n_cols, int64_t n_rows,
              bool required, hearth_err *err);

/* Records that kernels read the n_mat stacked matrices of tensor t at data
 * (t's bytes), so that observers can name what a kern_mat points into. */
int model_register_mat(model *m, const gguf_tensor *t, const void *data, int n_mat,
                       hearth_err *err);

/* Calls the context's observer (if any) for w and its inputs. */
void model_observe(model_ctx *c, const kern_mat *w, const float *x, size_t ldx, int n_tok);

/* kern_matmul / kern_matmul_n on the model's pool, observed. */
static inline void model_matmul(model_ctx *c, const kern_mat *w, const float *x, size_t ldx,
                                float *y, size_t ldy, int n_tok) {
    if (c->obs) model_observe(c, w, x, ldx, n_tok);
    kern_matmul(c->m->pool, w, x, ldx, y, ldy, n_tok);
}
static inline void model_matmul_n(model_ctx *c, const kern_mm *mm, int n_mm, const float *x,
                                  size_t ldx, int n_tok) {
    if (c->obs)
        for (int i = 0; i < n_mm; i++) model_observe(c, mm[i].w, x, ldx, n_tok);
    kern_matmul_n(c->m->pool, mm, n_mm, x, ldx, n_tok);
}

/* A vector of n floats (norm weights, biases): used in place when stored as
 * F32, else converted once into model memory. */
int model_vec(model *m, const float **out, const char *name, int64_t n, bool required,
              hearth_err *err);

/* The `<arch>.<suffix>` key name, e.g. model_key(m, buf, "block_count"). */
const char *model_key(const model *m, char buf[128], const char *suffix);
/* Reads the integer key `<arch>.<suffix>` into *out, checked to lie in
 * [lo, hi]; an absent key is an error when `required`, else keeps *out. */
int model_key_int(model *m, const char *suffix, int *out, bool required, int64_t lo, int64_t hi,
                  hearth_err *err);

/* Architectures. */
extern const model_arch model_arch_llama;
extern const model_arch model_arch_qwen2;
extern const model_arch model_arch_deepseek2; /* deepseek2.c */

#endif
