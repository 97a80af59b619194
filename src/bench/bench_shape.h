/* Benchmark shapes: random-weight GGUF files of real models' shapes, names,
 * types and metadata (see ../shared/bench/README.md), written by hearth
 * itself with any seed.
 *
 *   const bench_shape *s = bench_shape_find("bench-qwen2-1.5b");
 *   bench_shape_write(s, BENCH_Q4_K_M, 42, "/tmp/q.gguf", &err);
 *
 * Tensor types follow the reference quantizer's mixes: F16 and Q8_0 put every
 * matrix in that type; Q4_K_M uses Q6_K for output.weight and for attn_v and
 * ffn_down* on the layers its use_more_bits rule picks, Q4_K elsewhere
 * (token_embd included), with its fallbacks for rows that are not a whole
 * number of 256-element blocks (Q4_K -> Q5_0, Q6_K -> Q8_0). 1-D tensors and
 * the MoE router stay F32. Weights: a fixed-seed PRNG, std 1/sqrt(row length)
 * and mean 0 (norm weights 1), so activations stay finite: F32/F16 roughly
 * normal; quantized tensors are random blocks of their type (uniform quants,
 * scales set for that std), made directly: the reference quantizers would
 * take many minutes over a 1.5 G-parameter file, and speed does not depend on
 * the values. The same seed gives the same bytes on any thread count.
 *
 * Tensors are generated while the file is written (gguf_writer_add_tensor_gen):
 * memory stays at a few MiB whatever the file size. */
#ifndef HEARTH_BENCH_SHAPE_H
#define HEARTH_BENCH_SHAPE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "tensor/types.h"

typedef enum bench_ftype { BENCH_F16 = 0, BENCH_Q8_0 = 1, BENCH_Q4_K_M = 2 } bench_ftype;

typedef struct bench_shape {
    const char *name;
    const char *arch; /* "qwen2" or "deepseek2" */
    const char *pre;  /* tokenizer.ggml.pre */
    int n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, n_ff;
    int head_dim; /* qwen2 */
    float rope_theta, rms_eps;
    /* deepseek2 */
    int n_lead_dense, q_lora_rank, kv_lora_rank, qk_nope, qk_rope, v_head;
    int n_expert, n_expert_used, n_expert_shared, n_ff_exp, gating;
    float yarn_factor, yarn_log_mul;
    int yarn_orig_ctx;
} bench_shape;

/* One tensor of a shape, as it will be in the file. */
typedef struct bench_tensor {
    char name[64];
    ht_type type;
    uint32_t n_dims;
    int64_t ne[4]; /* unused dims are 1 */
    uint64_t nbytes;
} bench_tensor;

/* Shapes by name: "bench-qwen2-1.5b", "bench-deepseek2-moe", and the tiny
 * test shapes "tiny-qwen2", "tiny-deepseek2-moe" (same architectures and
 * mixes, small dimensions). NULL when unknown. */
const bench_shape *bench_shape_find(const char *name);
const bench_shape *bench_shape_at(int i); /* NULL past the end */

/* "F16", "Q8_0", "Q4_K_M" (case-insensitive); -1 when unknown. */
int bench_ftype_parse(const char *s);
const char *bench_ftype_name(bench_ftype ft);

/* The tensors of the file in file order. *out is malloc'd (free it). */
int bench_shape_tensors(const bench_shape *s, bench_ftype ft, bench_tensor **out, size_t *n,
                        hearth_err *err);

/* Writes the file (a temporary file, then renamed). n_threads <= 0: online CPUs. */
int bench_shape_write(const bench_shape *s, bench_ftype ft, uint64_t seed, const char *path,
                      int n_threads, hearth_err *err);

#endif
