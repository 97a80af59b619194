/* Shared helpers of the kernels tests: a seedable xorshift64 generator and
 * random weight matrices of any type. Each test sets its own seed with
 * ktu_seed() so that its data does not depend on the other tests. */
#ifndef HEARTH_TESTS_KERN_TEST_UTIL_H
#define HEARTH_TESTS_KERN_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/types.h"
#include "test_rng.h"

/* seed must not be 0 (xorshift would stay at 0) */
static inline void ktu_seed(uint64_t seed) {
    trng_seed(seed);
}

static inline double ktu_urand(void) { /* [0, 1) */
    return trng_urand();
}

static inline float ktu_frand(void) { /* [-1, 1) */
    return (float)(ktu_urand() * 2 - 1);
}

/* f rounded to BF16 (to nearest even; a denormal to zero), as F32: what
 * a variant multiplies where kern_act_bf16() says so. */
static inline float ktu_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0)
        u &= 0x80000000u;
    else if ((u & 0x7fffffffu) <= 0x7f800000u)
        u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

/* Every type ktu_random_matrix() makes (test_kernels checks them all), and
 * where the F16 fields of its blocks sit (ggml layouts). f16_at[0] is a
 * scale, f16_at[1] a second scale or a minimum; signed_min: f16_at[1] is
 * Q4_1 / Q5_1's minimum (added to every value), drawn small and of either
 * sign. */
typedef struct ktu_layout {
    ht_type type;
    int f16_at[2]; /* -1: none */
    int signed_min;
} ktu_layout;

static const ktu_layout ktu_layouts[] = {
    {HT_F32, {-1, -1}, 0},   {HT_F16, {-1, -1}, 0},   {HT_BF16, {-1, -1}, 0},
    {HT_Q4_0, {0, -1}, 0},   {HT_Q4_1, {0, 2}, 1},    {HT_Q5_0, {0, -1}, 0},
    {HT_Q5_1, {0, 2}, 1},    {HT_Q8_0, {0, -1}, 0},   {HT_Q2_K, {80, 82}, 0},
    {HT_Q3_K, {108, -1}, 0}, {HT_Q4_K, {0, 2}, 0},    {HT_Q5_K, {0, 2}, 0},
    {HT_Q6_K, {208, -1}, 0}, {HT_IQ4_NL, {0, -1}, 0}, {HT_IQ4_XS, {0, -1}, 0},
};

/* n_rows rows of n_cols values of `type`, malloc'ed (*row_bytes: bytes per
 * row). F32 / F16 / BF16: values in [-1, 1). Quantized types: random bytes
 * (any quant, any sub-block scale) with every F16 field set to a moderate
 * finite value, scales in [0.002, 0.022), Q4_1 / Q5_1 minimums in
 * [-0.01, 0.01), so that rows dequantize to finite, moderate values.
 * NULL: unknown type, bad shape or out of memory. */
static inline void *ktu_random_matrix(ht_type type, int64_t n_cols, int64_t n_rows,
                                      size_t *row_bytes) {
    hearth_err err;
    if (n_rows < 0 || ht_row_size(type, n_cols, row_bytes, &err) < 0) return NULL;
    const size_t nb = *row_bytes * (size_t)n_rows;
    uint8_t *d = malloc(nb ? nb : 1);
    if (!d) return NULL;
    const ktu_layout *ql = NULL;
    for (size_t i = 0; i < sizeof(ktu_layouts) / sizeof(ktu_layouts[0]); i++)
        if (ktu_layouts[i].type == type) ql = &ktu_layouts[i];
    if (!ql) {
        free(d);
        return NULL;
    }
    if (type == HT_F32 || type == HT_F16 || type == HT_BF16) {
        for (int64_t i = 0; i < n_cols * n_rows; i++) {
            float v = ktu_frand();
            if (type == HT_F32) {
                memcpy(d + 4 * i, &v, 4);
            } else {
                uint16_t h = type == HT_F16 ? ht_f32_to_f16(v) : ht_f32_to_bf16(v);
                memcpy(d + 2 * i, &h, 2);
            }
        }
        return d;
    }
    for (size_t i = 0; i < nb; i++) d[i] = (uint8_t)(ktu_urand() * 256);
    const size_t bs = (size_t)ht_type_get(type)->type_size;
    for (size_t b = 0; b < nb / bs; b++)
        for (int k = 0; k < 2; k++)
            if (ql->f16_at[k] >= 0) {
                double v = k == 1 && ql->signed_min ? 0.02 * ktu_urand() - 0.01
                                                    : 0.002 + 0.02 * ktu_urand();
                uint16_t h = ht_f32_to_f16((float)v);
                memcpy(d + b * bs + ql->f16_at[k], &h, 2);
            }
    return d;
}

#endif
