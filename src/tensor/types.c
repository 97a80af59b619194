/* Type table, F16/BF16 conversions and row sizes. The block layouts are in
 * quant.c. Sizes follow ggml's block structs (byte-compatible). */
#include "tensor/types.h"

#include <string.h>

#define QK_K 256

/* Every id ggml assigns, so that files holding types hearth cannot run still
 * open (and `hearth inspect` can show them); can_compute marks what
 * ht_dequantize_row handles. */
static const ht_type_info type_table[HT_TYPE_COUNT] = {
    [HT_F32] = {"f32", 1, 4, true},         [HT_F16] = {"f16", 1, 2, true},
    [HT_Q4_0] = {"q4_0", 32, 18, true},     [HT_Q4_1] = {"q4_1", 32, 20, true},
    [HT_Q5_0] = {"q5_0", 32, 22, true},     [HT_Q5_1] = {"q5_1", 32, 24, true},
    [HT_Q8_0] = {"q8_0", 32, 34, true},     [HT_Q8_1] = {"q8_1", 32, 36, true},
    [HT_Q2_K] = {"q2_K", QK_K, 84, true},   [HT_Q3_K] = {"q3_K", QK_K, 110, true},
    [HT_Q4_K] = {"q4_K", QK_K, 144, true},  [HT_Q5_K] = {"q5_K", QK_K, 176, true},
    [HT_Q6_K] = {"q6_K", QK_K, 210, true},  [HT_Q8_K] = {"q8_K", QK_K, 292, true},
    [16] = {"iq2_xxs", QK_K, 66, false},    [17] = {"iq2_xs", QK_K, 74, false},
    [18] = {"iq3_xxs", QK_K, 98, false},    [19] = {"iq1_s", QK_K, 50, false},
    [HT_IQ4_NL] = {"iq4_nl", 32, 18, true}, [21] = {"iq3_s", QK_K, 110, false},
    [22] = {"iq2_s", QK_K, 82, false},      [HT_IQ4_XS] = {"iq4_xs", QK_K, 136, true},
    [HT_I8] = {"i8", 1, 1, true},           [HT_I16] = {"i16", 1, 2, true},
    [HT_I32] = {"i32", 1, 4, true},         [HT_I64] = {"i64", 1, 8, true},
    [HT_F64] = {"f64", 1, 8, true},         [29] = {"iq1_m", QK_K, 56, false},
    [HT_BF16] = {"bf16", 1, 2, true},       [34] = {"tq1_0", QK_K, 54, false},
    [35] = {"tq2_0", QK_K, 66, false},      [39] = {"mxfp4", 32, 17, false},
};

const ht_type_info *ht_type_get(uint32_t type) {
    if (type >= HT_TYPE_COUNT || !type_table[type].name) return NULL;
    return &type_table[type];
}

int ht_row_size(uint32_t type, int64_t n, size_t *out, hearth_err *err) {
    const ht_type_info *ti = ht_type_get(type);
    if (!ti) return hearth_errf(err, "unknown tensor type id %u", type);
    if (n < 0)
        return hearth_errf(err, "row of %s: expected a length >= 0, found %lld", ti->name,
                           (long long)n);
    if (n % ti->block_size)
        return hearth_errf(err, "row of %s: expected a length that is a multiple of %d, found %lld",
                           ti->name, ti->block_size, (long long)n);
    uint64_t blocks = (uint64_t)n / (uint64_t)ti->block_size;
    if (blocks > SIZE_MAX / (uint64_t)ti->type_size)
        return hearth_errf(err, "row of %s: %lld elements overflow the size type", ti->name,
                           (long long)n);
    *out = (size_t)(blocks * (uint64_t)ti->type_size);
    return 0;
}

/* IEEE 754 binary16 <-> binary32, round to nearest even, with subnormals,
 * infinities and NaN (quiet NaN kept quiet). */
float ht_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while (!(man & 0x400));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t ht_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t exp = (u >> 23) & 0xff;
    uint32_t man = u & 0x7fffff;
    if (exp == 0xff) /* inf or NaN (keep a mantissa bit for NaN) */
        return sign | 0x7c00 | (man ? (0x200 | (man >> 13)) : 0);
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 0x1f) return sign | 0x7c00; /* overflow -> inf */
    if (e <= 0) {                        /* subnormal or zero in half */
        if (e < -10) return sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* may carry into exp: correct */
    return sign | (uint16_t)half;
}

float ht_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t ht_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 64); /* quiet NaN */
    return (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}
