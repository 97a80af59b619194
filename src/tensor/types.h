/* Tensor element types: the GGUF/ggml type ids, their block layouts, and
 * conversion of rows to and from F32. The block formats are byte-compatible
 * with the files people download (ggml's quant formats). */
#ifndef HEARTH_TENSOR_TYPES_H
#define HEARTH_TENSOR_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* Values are the type ids stored in GGUF files. */
typedef enum ht_type {
    HT_F32 = 0,
    HT_F16 = 1,
    HT_Q4_0 = 2,
    HT_Q4_1 = 3,
    HT_Q5_0 = 6,
    HT_Q5_1 = 7,
    HT_Q8_0 = 8,
    HT_Q8_1 = 9,
    HT_Q2_K = 10,
    HT_Q3_K = 11,
    HT_Q4_K = 12,
    HT_Q5_K = 13,
    HT_Q6_K = 14,
    HT_Q8_K = 15,
    HT_IQ4_NL = 20,
    HT_IQ4_XS = 23,
    HT_I8 = 24,
    HT_I16 = 25,
    HT_I32 = 26,
    HT_I64 = 27,
    HT_F64 = 28,
    HT_BF16 = 30,
    HT_TYPE_COUNT = 40 /* bound for tables; not a type */
} ht_type;

typedef struct ht_type_info {
    const char *name; /* "q4_K", as ggml spells it */
    int block_size;   /* elements per block (1 for plain types) */
    int type_size;    /* bytes per block */
    bool can_compute; /* hearth can dequantize it (a weight type it runs) */
} ht_type_info;

/* NULL for ids that are not known types. */
const ht_type_info *ht_type_get(uint32_t type);

/* Bytes of a row of n elements; -1 with a message when n is not a multiple of
 * the block size or the size overflows. */
int ht_row_size(uint32_t type, int64_t n, size_t *out, hearth_err *err);

/* Dequantize n elements (a multiple of the block size) of `src` to F32.
 * Handles every type whose info says can_compute (F32, F16, BF16, F64, I8..I64,
 * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K..Q6_K, Q8_K, IQ4_NL, IQ4_XS); for
 * any other type it writes NaN. `src` needs no alignment. */
void ht_dequantize_row(ht_type type, const void *src, float *dst, int64_t n);

/* Quantize n elements to `type` (reference quantizers, used by the GGUF writer
 * and `hearth quantize`). Returns -1 for types without a quantizer or when n
 * is not a multiple of the block size. Quantizers: F32, F16, BF16, Q4_0, Q4_1,
 * Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K. They follow the
 * reference algorithms (no importance matrix) and reproduce the bytes of the
 * files the reference runtime writes; non-finite inputs give finite garbage,
 * never undefined behaviour. */
int ht_quantize_row(ht_type type, const float *src, void *dst, int64_t n);

/* Like ht_quantize_row, with an importance matrix: imat is NULL (then the
 * bytes are exactly ht_quantize_row's) or n non-negative floats, the
 * importance of each column (the mean over calibration tokens of the squared
 * activation that multiplies it, as in llama.cpp's imatrix). Q4_0, Q4_1, Q5_0,
 * Q5_1 and Q2_K..Q6_K then choose their scales, mins and levels to lower
 * sum_j imat_j * (x_j - dequant_j)^2 instead of the plain error; the other
 * types ignore imat. NaN, inf or negative entries count as 0; a block whose
 * entries are all 0 (or whose inputs are non-finite or beyond 1e15) gets the
 * reference quantizer's bytes; every column keeps a small weight (2% of its
 * block's mean) so columns the calibration never lit still get a sane fit.
 * Finite inputs never give a non-finite scale that the reference quantizer
 * would not. No shared state: rows may be quantized on several threads. Same
 * return values as ht_quantize_row. */
int ht_quantize_row_w(ht_type type, const float *src, void *dst, int64_t n, const float *imat);

/* IEEE half and bfloat16 conversions. */
float ht_f16_to_f32(uint16_t h);
uint16_t ht_f32_to_f16(float f);
float ht_bf16_to_f32(uint16_t h);
uint16_t ht_f32_to_bf16(float f);

#endif
