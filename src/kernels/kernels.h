/* Compute kernels: the operations a forward pass is made of.
 *
 * Every op has a portable reference implementation (ref.c), the truth the
 * golden tests hold against float64: activations in F32, weights
 * dequantized row by row into F32, F32 accumulation. Faster variants must
 * agree with it: "avx2" (avx2*.c, x86-64 with AVX2+FMA+F16C) rounds
 * activations to 8-bit blocks of 32 for Q8_0/Q4_0/Q4_1/Q5_0/Q5_1/IQ4_NL and
 * Q2_K..Q6_K weights and uses integer dot products (the golden tests' "fast" tier;
 * kern_act_block says which types); "avx512" (avx512*.c: avx2's code with
 * AVX-512 VNNI dot products and 512-bit batches, where the CPU has AVX512F,
 * BW, VL and VNNI) gives bitwise avx2's values for quantized weights and
 * sums float weights in 16 lanes, F16 and BF16 ones as BF16 products where
 * the CPU has AVX512_BF16 (kern_act_bf16), and takes the integer dots of
 * prefill batches from AMX tiles where the CPU has AMX (kern_amx); "neon" (neon.c,
 * aarch64, the default there) does the same for Q8_0/Q4_0 weights and has
 * NEON F32/F16 dot products. The variant is chosen once, at the first call into this
 * module: the environment variable
 * HEARTH_KERNELS=NAME forces a variant ("ref": the reference kernels; an
 * unknown or unsupported name also gives ref, the safe choice); otherwise the
 * fastest one the CPU supports is used. Callers just call kern_* below.
 *
 * Layout conventions (shapes in comments are [outer][inner]):
 *   activations: one row per token, row-major, F32: x[n_tok][n].
 *   weights: a kern_mat, as GGUF stores it: n_rows rows of n_cols elements
 *   (ne[1] = n_rows = outputs, ne[0] = n_cols = inputs), each row
 *   row_bytes long in the weight's own type; used in place from the mapping.
 *
 * Multi-threaded ops take a tp_pool (NULL = run on the caller). */
#ifndef HEARTH_KERNELS_H
#define HEARTH_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/threadpool.h"
#include "tensor/types.h"

/* How a matrix's bytes are arranged. */
typedef enum kern_layout {
    KERN_LAYOUT_ROWS = 0, /* as GGUF stores it: one row after another */
    /* kern_repack's for Q4_K and Q6_K: groups of 8 rows (8 * row_bytes bytes each),
     * every 256-column superblock of the 8 rows interleaved (kernels/repack.h) */
    KERN_LAYOUT_R8 = 1,
} kern_layout;

/* A weight matrix W[n_rows][n_cols] in any type ht_type_get(type)->can_compute. */
typedef struct kern_mat {
    ht_type type;
    int64_t n_cols;     /* inputs: ne[0], a multiple of the type's block size */
    int64_t n_rows;     /* outputs: ne[1] */
    size_t row_bytes;   /* bytes of one row */
    const void *data;   /* n_rows * row_bytes bytes */
    kern_layout layout; /* KERN_LAYOUT_ROWS unless kern_repack changed it */
} kern_mat;

/* Fills m for `data` of shape [n_rows][n_cols]; -1 if n_cols does not fit the
 * type's blocks or sizes overflow. */
int kern_mat_init(kern_mat *m, ht_type type, int64_t n_cols, int64_t n_rows, const void *data,
                  hearth_err *err);

/* Rows [r0, r0 + n) of w as a matrix of their own (a view: an expert of a
 * stacked tensor, a head's rows). For a repacked matrix, r0 and n must be
 * multiples of kern_mat_row_align(w). */
kern_mat kern_mat_rows(const kern_mat *w, int64_t r0, int64_t n);

/* The rows of every repacked layout's groups. */
#define KERN_REPACK_ROWS 8

/* The row multiple views of w must start and end on: KERN_REPACK_ROWS for
 * KERN_LAYOUT_R8, else 1. */
int kern_mat_row_align(const kern_mat *w);

/* Weights repacked at load: where the active variant computes w's type
 * faster from interleaved rows (avx2 and avx512: Q4_K and Q6_K, whose one-token
 * products then take every 8 rows' dots in one vector's lanes instead of a
 * horizontal reduction per row), rearranges w's bytes in place into that
 * layout and sets w->layout. `data` is w->data, writable (the model's own
 * copy of the file); the size does not change. Needs n_rows a multiple of 8;
 * views of the result must keep to 8-row groups (kern_mat_rows). Every kern_*
 * op gives bitwise the same values for the repacked matrix as for the
 * original, in every variant: one that does not run the layout itself
 * (ref, or after kern_select) restores rows on the fly, slowly. Returns
 * true if repacked; false (w unchanged) where nothing is gained, or when
 * the environment variable HEARTH_REPACK is "0". Rows are split over pool. */
bool kern_repack(tp_pool *pool, kern_mat *w, void *data);

/* Name of the active variant ("ref", ...). */
const char *kern_name(void);
/* Force a variant by name (tests, benchmarks); -1 if unknown/unsupported.
 * Not thread-safe with kernels running. */
int kern_select(const char *name, hearth_err *err);

/* y[t][r] = sum_c W[r][c] * x[t][c]   for t < n_tok, r < n_rows.
 * x: [n_tok][n_cols] with row stride ldx floats (>= n_cols);
 * y: [n_tok][n_rows] with row stride ldy floats (>= n_rows).
 * Each weight row is dequantized once per call and used for every token;
 * rows are split over the pool. x and y must not overlap. Token t's result
 * does not depend on the thread count nor on the other tokens of the call:
 * a batched prefill and one-token decode agree bitwise. */
void kern_matmul(tp_pool *pool, const kern_mat *w, const float *x, size_t ldx, float *y, size_t ldy,
                 int n_tok);

/* Several matmuls of one input, y_i = W_i x: as kern_matmul for each, with
 * bitwise the same results, but the input is quantized once per activation
 * format and all matrices' rows run as one set of tasks over the pool (one
 * dispatch, one barrier): q/k/v, gate/up, the experts a token chose. Every
 * w->n_cols is the same (the input's width); y_i must not overlap x or each
 * other. */
typedef struct kern_mm {
    const kern_mat *w;
    float *y;   /* [n_tok][ldy] */
    size_t ldy; /* >= w->n_rows */
} kern_mm;
void kern_matmul_n(tp_pool *pool, const kern_mm *mm, int n_mm, const float *x, size_t ldx,
                   int n_tok);

/* How the active variant rounds activations for weights of type t: values
 * per shared 8-bit scale (x ~ d * q, d = max|x| / 127 over the block, q
 * rounded to nearest), or 0 where the activations stay F32 (tests). */
int kern_act_block(ht_type t);

/* Whether the active variant multiplies weights of type t as BF16: the
 * weights and the activations each rounded to BF16 (to nearest even),
 * the exact products summed in F32. The avx512 variant does so for F16 and
 * BF16 weights where the CPU has AVX512_BF16 (unless HEARTH_AVX512_BF16=0):
 * the golden tests' F16 fast tier. */
bool kern_act_bf16(ht_type t);

/* Whether the active variant's batches (prefill) take AMX tiles: avx512 on
 * a CPU with AMX-TILE and AMX-INT8 whose OS grants the tile state, unless
 * HEARTH_AMX=0 (avx512emu: HEARTH_AMX=1, emulated). Quantized weights'
 * values do not change (a batch is bitwise what the other paths give);
 * F16 / BF16 weights' BF16 products (kern_act_bf16), where the CPU also has
 * AMX-BF16, are summed in another order in batches of 16 tokens or more:
 * there a token's value in a batch is its value alone to float rounding,
 * not bitwise. */
bool kern_amx(void);

/* out[i] = row `row` of W as F32 (n_cols floats): an embedding lookup. */
void kern_get_row(const kern_mat *w, int64_t row, float *out);

/* y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w   for n_tok rows of n floats.
 * w may be NULL (no scale). y may equal x. */
void kern_rmsnorm(float *y, const float *x, const float *w, int n, int n_tok, float eps);

/* In place, numerically stable: x = exp(x - max) / sum. */
void kern_softmax(float *x, int n);

/* out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). out may alias gate or up. */
void kern_swiglu(float *out, const float *gate, const float *up, int64_t n);

/* y[t][i] = sum over d < k, in d order, of x[t][d] * b[d][i], for i < m and
 * t < n_tok: a product with a matrix stored as one row per input (b:
 * [k][m] F32, rows ldb floats apart), the layout kern_matmul would need
 * transposed. MLA's absorbed query is one: a head's attn_kv_b rows weighted
 * by its query. x: [n_tok] rows ldx apart, y: [n_tok] rows ldy apart (not
 * overlapping x or b). y[t] depends on x[t] alone: bitwise the same in any
 * batch. Runs on the caller's thread. */
void kern_matmul_kn(const float *x, size_t ldx, const float *b, size_t ldb, int k, int m, float *y,
                    size_t ldy, int n_tok);

/* y[i] += x[i]. */
void kern_add(float *y, const float *x, int64_t n);

/* y[t][i] += b[i] for n_tok rows of n (row stride n): a bias. */
void kern_add_bias(float *y, const float *b, int n, int n_tok);

/* Rotary position embedding, in place.
 *
 * x: [n_tok] rows with stride ld floats, each holding n_head heads of
 * head_dim floats; the first n_rot dimensions of each head are rotated, the
 * rest kept. Token t is at position pos[t].
 * Pair i (i < n_rot/2) rotates by angle pos * theta_i with
 *   theta_i = freq_base^(-2i/n_rot) / freq_factors[i]   (freq_factors may be NULL),
 * and the pair is (2i, 2i+1) in KERN_ROPE_NORM (llama) or (i, i + n_rot/2)
 * in KERN_ROPE_NEOX (qwen2, deepseek2).
 *
 * YaRN (deepseek2): freq_scale = 1/factor (1 = off), ext_factor (0 = off),
 * corr_dims = the [low, high] dimension range of the ramp, attn_factor the
 * magnitude scale (1 = off). With ext_factor 0 and freq_scale 1 this is plain
 * RoPE. As in the reference runtime: theta_interp = freq_scale * theta_extrap,
 * ramp = ext_factor * (1 - clamp((i - low) / max(0.001, high - low), 0, 1)),
 * theta = theta_interp * (1 - ramp) + theta_extrap * ramp, and when
 * ext_factor != 0 the magnitude is attn_factor * (1 + 0.1 ln(1/freq_scale)),
 * else attn_factor. */
typedef enum kern_rope_mode { KERN_ROPE_NORM = 0, KERN_ROPE_NEOX = 2 } kern_rope_mode;
typedef struct kern_rope_params {
    kern_rope_mode mode;
    int n_rot;                 /* rotated dimensions per head, even, <= head_dim */
    float freq_base;           /* theta, e.g. 10000 */
    const float *freq_factors; /* [n_rot/2] or NULL (Llama 3.1 rope_freqs.weight) */
    float freq_scale;          /* YaRN: 1/factor; 1 when unused */
    float ext_factor;          /* YaRN: 0 when unused */
    float attn_factor;         /* YaRN magnitude; 1 when unused */
    float corr_dims[2];        /* YaRN ramp range */
} kern_rope_params;

/* Plain RoPE parameters (no YaRN, no factors). */
kern_rope_params kern_rope_default(kern_rope_mode mode, int n_rot, float freq_base);

void kern_rope(const kern_rope_params *p, float *x, size_t ld, int n_tok, int n_head, int head_dim,
               const int32_t *pos);

/* Causal multi-head attention of a batch of queries over a KV cache (GQA/MQA:
 * query head h reads kv head h / (n_head / n_head_kv)).
 *
 *   q:   [n_tok] rows, stride ldq, each n_head heads of head_dim_k floats
 *   k:   [n_kv] cache rows, stride ldk, each n_head_kv heads of head_dim_k
 *   v:   [n_kv] cache rows, stride ldv, each n_head_kv heads of head_dim_v
 *   out: [n_tok] rows, stride ldo, each n_head heads of head_dim_v
 * Query t attends to cache positions 0..pos[t] (inclusive; pos[t] < n_kv):
 *   out = softmax(scale * q.k) . v
 * scratch: kern_attn_scratch_floats(...) floats for the call's shape (or any
 * larger one: more threads, positions, heads or tokens). */
typedef struct kern_attn {
    int n_tok, n_kv;
    int n_head, n_head_kv;
    int head_dim_k, head_dim_v;
    float scale;
    const int32_t *pos;
    const float *q;
    size_t ldq;
    const float *k;
    size_t ldk;
    const float *v;
    size_t ldv;
    float *out;
    size_t ldo;
    float *scratch;
} kern_attn;

void kern_attention(tp_pool *pool, const kern_attn *a);

/* Floats of kern_attn.scratch for up to n_tok queries of n_head heads of
 * head_dim_v over n_kv cache positions, on n_threads threads, enough for
 * every kernel variant. SIZE_MAX where that does not fit a size_t. */
size_t kern_attn_scratch_floats(int n_threads, int n_kv, int n_head, int head_dim_v, int n_tok);

/* Opt-in count of the bytes the kernels read from weights and the KV cache
 * (benchmarks, tests), to check a model's bytes per token by measurement.
 * Off by default; when off, each counted call costs one predictable branch.
 * While on, these add to a process-wide total (relaxed atomics, any thread):
 *   kern_matmul    w->n_rows * w->row_bytes (the rows it was given: a slice
 *                  of a stacked expert tensor counts only the slice)
 *   kern_get_row   w->row_bytes
 *   kern_rmsnorm   n * 4 when w is not NULL (the norm weight)
 *   kern_add_bias  n * 4 (the bias)
 *   kern_attention the cache rows attended, 0..max(pos[t]), times the K and
 *                  V widths (n_head_kv * head_dim * 4); when v is k (MLA's
 *                  latent cache) the shared row is counted once, as the wider.
 * Activations and scratch are not counted. Enabling does not reset. */
void kern_count_enable(bool on);
void kern_count_reset(void);
uint64_t kern_count_bytes(void);

/* The table a variant provides (dispatch.c). Internal to the kernels module
 * and its tests; callers use the kern_* functions. */
typedef struct kern_ops {
    const char *name;
    void (*matmul)(tp_pool *pool, const kern_mat *w, const float *x, size_t ldx, float *y,
                   size_t ldy, int n_tok);
    /* NULL: kern_matmul_n calls matmul for each matrix */
    void (*matmul_n)(tp_pool *pool, const kern_mm *mm, int n_mm, const float *x, size_t ldx,
                     int n_tok);
    int (*act_block)(ht_type t); /* NULL: 0 for every type */
    bool (*act_bf16)(ht_type t); /* NULL: false for every type */
    bool (*amx)(void);           /* NULL: false */
    /* kern_get_row; NULL: the reference (dequantize_row). Bitwise the same. */
    void (*get_row)(const kern_mat *w, int64_t row, float *out);
    void (*rmsnorm)(float *y, const float *x, const float *w, int n, int n_tok, float eps);
    void (*softmax)(float *x, int n);
    void (*swiglu)(float *out, const float *gate, const float *up, int64_t n);
    void (*rope)(const kern_rope_params *p, float *x, size_t ld, int n_tok, int n_head,
                 int head_dim, const int32_t *pos);
    void (*attention)(tp_pool *pool, const kern_attn *a);
    /* kern_matmul_kn; NULL: the reference */
    void (*matmul_kn)(const float *x, size_t ldx, const float *b, size_t ldb, int k, int m,
                      float *y, size_t ldy, int n_tok);
    /* whether matmul and matmul_n run matrices of type t in layout l other
     * than KERN_LAYOUT_ROWS themselves; NULL: none (dispatch.c restores
     * rows for them; get_row is always given KERN_LAYOUT_ROWS) */
    bool (*runs_layout)(ht_type t, kern_layout l);
} kern_ops;

extern const kern_ops kern_ops_ref;

#endif
