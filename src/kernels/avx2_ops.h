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

#include "kernels/kernels.h"

void kern_avx2_rmsnorm(float *y, const float *x, const float *w, int n, int n_tok, float eps);
void kern_avx2_softmax(float *x, int n);
void kern_avx2_swiglu(float *out, const float *gate, const float *up, int64_t n);
void kern_avx2_rope(const kern_rope_params *p, float *x, size_t ld, int n_tok, int n_head,
                    int head_dim, const int32_t *pos);
void kern_avx2_attention(tp_pool *pool, const kern_attn *a);
void kern_avx2_matmul_kn(const float *x, size_t ldx, const float *b, size_t ldb, int k, int m,
                         float *y, size_t ldy, int n_tok);

#endif
