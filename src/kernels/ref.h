/* The reference kernels by name, for variants that reuse some of them
 * (inside the kernels module only). */
#ifndef HEARTH_KERNELS_REF_H
#define HEARTH_KERNELS_REF_H

#include <stdbool.h>

#include "kernels/kernels.h"

void kern_ref_matmul(tp_pool *pool, const kern_mat *w, const float *x, size_t ldx, float *y,
                     size_t ldy, int n_tok);
/* kern_ref_matmul for a matrix in any layout (dispatch.c: rows restored
 * into a copy where needed; NaN without memory for it). */
void kern_ref_matmul_any(tp_pool *pool, const kern_mat *w, const float *x, size_t ldx, float *y,
                         size_t ldy, int n_tok);
void kern_ref_rmsnorm(float *y, const float *x, const float *w, int n, int n_tok, float eps);
void kern_ref_softmax(float *x, int n);
void kern_ref_swiglu(float *out, const float *gate, const float *up, int64_t n);
void kern_ref_rope(const kern_rope_params *p, float *x, size_t ld, int n_tok, int n_head,
                   int head_dim, const int32_t *pos);
void kern_ref_attention(tp_pool *pool, const kern_attn *a);
void kern_ref_matmul_kn(const float *x, size_t ldx, const float *b, size_t ldb, int k, int m,
                        float *y, size_t ldy, int n_tok);

/* The AVX2 variant (avx2.c) and whether this CPU can run it. */
extern const kern_ops kern_ops_avx2;
bool kern_avx2_supported(void);

/* The AVX-512 VNNI variant (avx512.c) and whether this CPU can run it. */
extern const kern_ops kern_ops_avx512;
bool kern_avx512_supported(void);
/* The avx512 variant's code on any AVX2 CPU, AVX-512 emulated exactly
 * (avx512_emu.h): defined only in test programs that link
 * tests/kernels/avx512emu_*.c, so weak here (NULL elsewhere); selected by
 * name only, never by default. */
extern const kern_ops kern_ops_avx512emu __attribute__((weak));
bool kern_avx512emu_supported(void) __attribute__((weak));

/* The NEON variant (neon.c, aarch64) and whether this CPU can run it. */
extern const kern_ops kern_ops_neon;
bool kern_neon_supported(void);
/* Whether its quantized dots use the dot-product extension (SDOT): the CPU
 * has it (HWCAP) and HEARTH_NEON_SDOT is not "0". */
bool kern_neon_uses_sdot(void);

#endif
