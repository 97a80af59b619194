/* AVX2 + FMA versions of the small ops (avx2_ops.c) for the avx2 variant's
 * table (avx2.c). Inside the kernels module only; same contracts as the
 * kern_* functions in kernels.h. They agree with the reference to float
 * rounding: rmsnorm and softmax sum in double as the reference does, exp is
 * a range-reduced polynomial within about 1 ulp of expf, rope is bitwise the
 * reference (the same double angles, the same float products), and
 * attention's dot products use FMA. Each row's result depends only on that
 * row (never on the batch or the thread count). Only callable where
 * kern_avx2_supported(). */
#ifndef HEARTH_KERNELS_AVX2_OPS_H
#define HEARTH_KERNELS_AVX2_OPS_H

#include <stdint.h>

#include "kernels/kernels.h"

void kern_avx2_rmsnorm(float *y, const float *x, const float *w, int n, int n_tok, float eps);
void kern_avx2_softmax(float *x, int n);
void kern_avx2_swiglu(float *out, const float *gate, const float *up, int64_t n);
void kern_avx2_rope(const kern_rope_params *p, float *x, size_t ld, int n_tok, int n_head,
                    int head_dim, const int32_t *pos);
void kern_avx2_attention(tp_pool *pool, const kern_attn *a);

/* kern_avx2_attention's shapes: cache positions per block, query heads per
 * task at most, positions per online softmax (spans, merged in order), and
 * the most tokens whose spans are split across threads (decode). */
#define KERN_ATT_BLOCK     64
#define KERN_ATT_HEADS     16
#define KERN_ATT_SPAN      512
#define KERN_ATT_SPLIT_TOK 4

/* The floats of scratch kern_avx2_attention uses (plain arithmetic, any
 * CPU): each thread's span outputs, or the split decode's partials (a
 * double sum, a max and head_dim_v floats per token, head and span, with
 * 8-byte alignment slack). SIZE_MAX where that overflows. */
static inline size_t kern_avx2_attn_scratch(int n_threads, int n_kv, int n_head, int head_dim_v,
                                            int n_tok) {
    const uint64_t dv = head_dim_v > 0 ? (uint64_t)head_dim_v : 0;
    const uint64_t spans = n_kv > 0 ? ((uint64_t)n_kv + KERN_ATT_SPAN - 1) / KERN_ATT_SPAN : 0;
    const uint64_t tok =
        n_tok < KERN_ATT_SPLIT_TOK ? (n_tok > 0 ? (uint64_t)n_tok : 0) : KERN_ATT_SPLIT_TOK;
    const uint64_t heads = n_head > 0 ? (uint64_t)n_head : 0;
    const uint64_t thr = n_threads > 0 ? (uint64_t)n_threads : 1;
    /* each factor is below 2^31: the products of two fit, and of four are
     * checked by division */
    const uint64_t own = thr * KERN_ATT_HEADS * dv;
    const uint64_t parts = tok * heads, per = spans * (dv + 3);
    if (parts && per > (UINT64_MAX - 2) / parts) return SIZE_MAX;
    const uint64_t split = parts * per + 2, need = own > split ? own : split;
    return need > SIZE_MAX ? SIZE_MAX : (size_t)need;
}
void kern_avx2_matmul_kn(const float *x, size_t ldx, const float *b, size_t ldb, int k, int m,
                         float *y, size_t ldy, int n_tok);

#endif
