/* Block formats (byte-compatible with ggml) and their row conversions.
 *
 * Every block starts or ends with an F16 scale `d`; "x = d * q" below. The
 * structs are packed by construction (only uint8_t / uint16_t members in an
 * order with no padding), and checked against the type table's sizes. */
#include "tensor/types.h"

#include <math.h>
#include <string.h>

/* The quantizers reproduce the reference bytes only if a*b+c is rounded twice,
 * as written: no fused multiply-add contraction (GCC in ISO C mode already
 * does not contract; clang would on FMA targets). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define QK           32
#define QK_K         256
#define K_SCALE_SIZE 12

typedef struct {
    uint16_t d;
    uint8_t qs[QK / 2]; /* x[j] = d*(lo-8), x[j+16] = d*(hi-8) */
} block_q4_0;

typedef struct {
    uint16_t d, m;
    uint8_t qs[QK / 2]; /* x = d*q + m */
} block_q4_1;

typedef struct {
    uint16_t d;
    uint8_t qh[4]; /* bit j: 5th bit of element j */
    uint8_t qs[QK / 2];
} block_q5_0;

typedef struct {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[QK / 2];
} block_q5_1;

typedef struct {
    uint16_t d;
    int8_t qs[QK];
} block_q8_0;

typedef struct {
    uint16_t d, s; /* s = d * sum(qs) */
    int8_t qs[QK];
} block_q8_1;

typedef struct {
    uint8_t scales[QK_K / 16]; /* lo 4 bits: scale, hi 4 bits: min, per 16 elements */
    uint8_t qs[QK_K / 4];      /* 2-bit quants */
    uint16_t d, dmin;
} block_q2_K;

typedef struct {
    uint8_t hmask[QK_K / 8]; /* high bit */
    uint8_t qs[QK_K / 4];    /* low 2 bits */
    uint8_t scales[12];      /* 16 6-bit scales */
    uint16_t d;
} block_q3_K;

typedef struct {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE]; /* 8 6-bit scales and mins */
    uint8_t qs[QK_K / 2];
} block_q4_K;

typedef struct {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;

typedef struct {
    uint8_t ql[QK_K / 2]; /* low 4 bits */
    uint8_t qh[QK_K / 4]; /* high 2 bits */
    int8_t scales[QK_K / 16];
    uint16_t d;
} block_q6_K;

typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
} block_q8_K;

typedef struct {
    uint16_t d;
    uint8_t qs[QK / 2]; /* indexes into iq4nl_values */
} block_iq4_nl;

typedef struct {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[QK_K / 64];
    uint8_t qs[QK_K / 2];
} block_iq4_xs;

_Static_assert(sizeof(block_q4_0) == 18, "q4_0");
_Static_assert(sizeof(block_q4_1) == 20, "q4_1");
_Static_assert(sizeof(block_q5_0) == 22, "q5_0");
_Static_assert(sizeof(block_q5_1) == 24, "q5_1");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0");
_Static_assert(sizeof(block_q8_1) == 36, "q8_1");
_Static_assert(sizeof(block_q2_K) == 84, "q2_K");
_Static_assert(sizeof(block_q3_K) == 110, "q3_K");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K");
_Static_assert(sizeof(block_q5_K) == 176, "q5_K");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K");
_Static_assert(sizeof(block_q8_K) == 292, "q8_K");
_Static_assert(sizeof(block_iq4_nl) == 18, "iq4_nl");
_Static_assert(sizeof(block_iq4_xs) == 136, "iq4_xs");

/* The non-linear 4-bit grid of IQ4_NL / IQ4_XS. */
static const int8_t iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                        1,    13,   25,  38,  53,  69,  89,  113};

#define H2F(x) ht_f16_to_f32(x)

/* Blocks are read through memcpy into a local: the source may be unaligned. */
#define LOAD(T, b, src, i)                                                                         \
    T b;                                                                                           \
    memcpy(&b, (const uint8_t *)(src) + (size_t)(i) * sizeof(T), sizeof(T))

static void deq_q4_0(const void *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK) {
        LOAD(block_q4_0, b, src, i);
        float d = H2F(b.d);
        for (int j = 0; j < QK / 2; j++) {
            y[j] = d * ((b.qs[j] & 0xf) - 8);
            y[j + QK / 2] = d * ((b.qs[j] >> 4) - 8);
        }
    }
}

static void deq_q4_1(const void *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK) {
        LOAD(block_q4_1, b, src, i);
        float d = H2F(b.d), m = H2F(b.m);
        for (int j = 0; j < QK / 2; j++) {
            y[j] = d * (b.qs[j] & 0xf) + m;
            y[j + QK / 2] = d * (b.qs[j] >> 4) + m;
        }
    }
}

static void deq_q5_0(const void *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK) {
        LOAD(block_q5_0, b, src, i);
        float d = H2F(b.d);
        uint32_t qh;
        memcpy(&qh, b.qh, 4);
        for (int j = 0; j < QK / 2; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            y[j] = d * (((b.qs[j] & 0xf) | (h0 << 4)) - 16);
            y[j + QK / 2] = d * (((b.qs[j] >> 4) | (h1 << 4)) - 16);
        }
    }
}

static void deq_q5_1(const void *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK) {
        LOAD(block_q5_1, b, src, i);
        float d = H2F(b.d), m = H2F(b.m);
        uint32_t qh;
        memcpy(&qh, b.qh, 4);
        for (int j = 0; j < QK / 2; j++) {
            int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            y[j] = d * ((b.qs[j] & 0xf) | (h0 << 4)) + m;
            y[j + QK / 2] = d * ((b.qs[j] >> 4) | (h1 << 4)) + m;
        }
    }
}

static void deq_q8_0(const void *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK) {
        LOAD(block_q8_0, b, src, i);
        float d = H2F(b.d);
        for (int j = 0; j < QK; j++) y[j] = d * b.qs[j];
    }
}

static void deq_q8_1(const void *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK) {
        LOAD(block_q8_1, b, src, i);
        float d = H2F(b.d);
        for (int j = 0; j < QK; j++) y[j] = d * b.qs[j];
    }
}

static void deq_q2_K(const void *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        LOAD(block_q2_K, b, src, i);
        float d = H2F(b.d), dmin = H2F(b.dmin);
        const uint8_t *q = b.qs;
        int is = 0;
        /* Two halves of 128; each 32-byte slice of qs holds four 2-bit planes,
         * and each plane is two groups of 16 with their own scale/min. */
        for (int n = 0; n < QK_K; n += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++) {
                    uint8_t sc = b.scales[is++];
                    float dl = d * (sc & 0xf), ml = dmin * (sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[l + 16 * half] >> shift) & 3) - ml;
                }
            }
        }
    }
}

/* The 16 6-bit scales of Q3_K: low 4 bits in bytes 0..7, high 2 bits in 8..11. */
static void q3_K_scales(const uint8_t *s, int8_t out[16]) {
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? s[j] & 0xf : s[j - 8] >> 4;
        int hi = (s[8 + (j % 4)] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

static void deq_q3_K(const void *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        LOAD(block_q3_K, b, src, i);
        float d = H2F(b.d);
        int8_t sc[16];
        q3_K_scales(b.scales, sc);
        const uint8_t *q = b.qs;
        uint8_t m = 1;
        int is = 0;
        for (int n = 0; n < QK_K; n += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
                for (int half = 0; half < 2; half++) {
                    float dl = d * sc[is++];
                    for (int l = 16 * half; l < 16 * half + 16; l++) {
                        int v = ((q[l] >> shift) & 3) - ((b.hmask[l] & m) ? 0 : 4);
                        *y++ = dl * v;
                    }
                }
            }
        }
    }
}

/* Scale j and min j (6 bits each) of Q4_K / Q5_K: for j < 4 the low 6 bits of
 * bytes j and j+4; for j >= 4 a low nibble in byte j+4 plus the top 2 bits of
 * bytes j-4 (scale) and j (min). */
static void k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void deq_q4_K(const void *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        LOAD(block_q4_K, b, src, i);
        float d = H2F(b.d), dmin = H2F(b.dmin);
        const uint8_t *q = b.qs;
        for (int j = 0; j < 8; j += 2, q += 32) {
            uint8_t s0, m0, s1, m1;
            k4_scale_min(j, b.scales, &s0, &m0);
            k4_scale_min(j + 1, b.scales, &s1, &m1);
            float d0 = d * s0, n0 = dmin * m0, d1 = d * s1, n1 = dmin * m1;
            for (int l = 0; l < 32; l++) *y++ = d0 * (q[l] & 0xf) - n0;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] >> 4) - n1;
        }
    }
}

static void deq_q5_K(const void *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        LOAD(block_q5_K, b, src, i);
        float d = H2F(b.d), dmin = H2F(b.dmin);
        const uint8_t *q = b.qs;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < 8; j += 2, q += 32, u1 <<= 2, u2 <<= 2) {
            uint8_t s0, m0, s1, m1;
            k4_scale_min(j, b.scales, &s0, &m0);
            k4_scale_min(j + 1, b.scales, &s1, &m1);
            float d0 = d * s0, n0 = dmin * m0, d1 = d * s1, n1 = dmin * m1;
            for (int l = 0; l < 32; l++) *y++ = d0 * ((q[l] & 0xf) + (b.qh[l] & u1 ? 16 : 0)) - n0;
            for (int l = 0; l < 32; l++) *y++ = d1 * ((q[l] >> 4) + (b.qh[l] & u2 ? 16 : 0)) - n1;
        }
    }
}

static void deq_q6_K(const void *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        LOAD(block_q6_K, b, src, i);
        float d = H2F(b.d);
        const uint8_t *ql = b.ql, *qh = b.qh;
        const int8_t *sc = b.scales;
        for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

static void deq_q8_K(const void *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK_K) {
        LOAD(block_q8_K, b, src, i);
        for (int j = 0; j < QK_K; j++) y[j] = b.d * b.qs[j];
    }
}

static void deq_iq4_nl(const void *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK) {
        LOAD(block_iq4_nl, b, src, i);
        float d = H2F(b.d);
        for (int j = 0; j < QK / 2; j++) {
            y[j] = d * iq4nl_values[b.qs[j] & 0xf];
            y[j + QK / 2] = d * iq4nl_values[b.qs[j] >> 4];
        }
    }
}

static void deq_iq4_xs(const void *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        LOAD(block_iq4_xs, b, src, i);
        float d = H2F(b.d);
        const uint8_t *qs = b.qs;
        for (int ib = 0; ib < QK_K / 32; ib++, y += 32, qs += 16) {
            int ls =
                ((b.scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((b.scales_h >> 2 * ib) & 3) << 4);
            float dl = d * (ls - 32);
            for (int j = 0; j < 16; j++) {
                y[j] = dl * iq4nl_values[qs[j] & 0xf];
                y[j + 16] = dl * iq4nl_values[qs[j] >> 4];
            }
        }
    }
}

void ht_dequantize_row(ht_type type, const void *src, float *dst, int64_t n) {
    const uint8_t *s = src;
    switch (type) {
    case HT_F32:
        memcpy(dst, src, (size_t)n * 4);
        return;
    case HT_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = ht_f16_to_f32(h);
        }
        return;
    case HT_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = ht_bf16_to_f32(h);
        }
        return;
    case HT_F64:
        for (int64_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, s + 8 * i, 8);
            dst[i] = (float)v;
        }
        return;
    case HT_I8:
        for (int64_t i = 0; i < n; i++) dst[i] = (int8_t)s[i];
        return;
    case HT_I16:
        for (int64_t i = 0; i < n; i++) {
            int16_t v;
            memcpy(&v, s + 2 * i, 2);
            dst[i] = v;
        }
        return;
    case HT_I32:
        for (int64_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, s + 4 * i, 4);
            dst[i] = (float)v;
        }
        return;
    case HT_I64:
        for (int64_t i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, s + 8 * i, 8);
            dst[i] = (float)v;
        }
        return;
    case HT_Q4_0:
        deq_q4_0(src, dst, n / QK);
        return;
    case HT_Q4_1:
        deq_q4_1(src, dst, n / QK);
        return;
    case HT_Q5_0:
        deq_q5_0(src, dst, n / QK);
        return;
    case HT_Q5_1:
        deq_q5_1(src, dst, n / QK);
        return;
    case HT_Q8_0:
        deq_q8_0(src, dst, n / QK);
        return;
    case HT_Q8_1:
        deq_q8_1(src, dst, n / QK);
        return;
    case HT_Q2_K:
        deq_q2_K(src, dst, n / QK_K);
        return;
    case HT_Q3_K:
        deq_q3_K(src, dst, n / QK_K);
        return;
    case HT_Q4_K:
        deq_q4_K(src, dst, n / QK_K);
        return;
    case HT_Q5_K:
        deq_q5_K(src, dst, n / QK_K);
        return;
    case HT_Q6_K:
        deq_q6_K(src, dst, n / QK_K);
        return;
    case HT_Q8_K:
        deq_q8_K(src, dst, n / QK_K);
        return;
    case HT_IQ4_NL:
        deq_iq4_nl(src, dst, n / QK);
        return;
    case HT_IQ4_XS:
        deq_iq4_xs(src, dst, n / QK_K);
        return;
    default: /* not a computable type: make misuse visible */
        for (int64_t i = 0; i < n; i++) dst[i] = NAN;
        return;
    }
}

/* ---- quantizers ----------------------------------------------------------
 * The reference algorithms of the formats (as ggml's *_ref quantizers, which
 * is what model files without an importance matrix are made with), with the
 * same arithmetic order so the bytes can match. Non-finite inputs never reach
 * an out-of-range float->int conversion: they quantize to something finite. */

#define GROUP_MAX_EPS 1e-15f

/* Round to nearest, ties to even, through the float adder (|x| < 2^22). */
static int nearest_int(float x) {
    if (!(x > -4194303.f)) x = x != x ? 0.f : -4194303.f;
    if (x > 4194303.f) x = 4194303.f;
    float v = x + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static int clampi(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* Truncating float -> [0, hi] conversion that is defined for every input. */
static int trunc_to(float v, int hi) {
    if (!(v > 0)) return 0;
    if (v >= (float)hi) return hi;
    return (int)v;
}

static void put_f16(uint16_t *dst, float v) {
    *dst = ht_f32_to_f16(v);
}

static void q_q4_0(const float *x, void *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK) {
        block_q4_0 b;
        float amax = 0, max = 0;
        for (int j = 0; j < QK; j++)
            if (amax < fabsf(x[j])) amax = fabsf(x[j]), max = x[j];
        float d = max / -8, id = d ? 1.0f / d : 0.0f;
        put_f16(&b.d, d);
        for (int j = 0; j < QK / 2; j++) {
            int lo = trunc_to(x[j] * id + 8.5f, 15), hi = trunc_to(x[j + QK / 2] * id + 8.5f, 15);
            b.qs[j] = (uint8_t)(lo | (hi << 4));
        }
        memcpy((uint8_t *)dst + i * sizeof b, &b, sizeof b);
    }
}

static void q_q4_1(const float *x, void *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK) {
        block_q4_1 b;
        float min = x[0], max = x[0];
        for (int j = 1; j < QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        float d = (max - min) / 15, id = d ? 1.0f / d : 0.0f;
        put_f16(&b.d, d);
        put_f16(&b.m, min);
        for (int j = 0; j < QK / 2; j++) {
            int lo = trunc_to((x[j] - min) * id + 0.5f, 15);
            int hi = trunc_to((x[j + QK / 2] - min) * id + 0.5f, 15);
            b.qs[j] = (uint8_t)(lo | (hi << 4));
        }
        memcpy((uint8_t *)dst + i * sizeof b, &b, sizeof b);
    }
}

static void q_q5_0(const float *x, void *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK) {
        block_q5_0 b;
        float amax = 0, max = 0;
        for (int j = 0; j < QK; j++)
            if (amax < fabsf(x[j])) amax = fabsf(x[j]), max = x[j];
        float d = max / -16, id = d ? 1.0f / d : 0.0f;
        put_f16(&b.d, d);
        uint32_t qh = 0;
        for (int j = 0; j < QK / 2; j++) {
            int lo = trunc_to(x[j] * id + 16.5f, 31), hi = trunc_to(x[j + QK / 2] * id + 16.5f, 31);
            b.qs[j] = (uint8_t)((lo & 0xf) | ((hi & 0xf) << 4));
            qh |= (uint32_t)(lo >> 4) << j;
            qh |= (uint32_t)(hi >> 4) << (j + QK / 2);
        }
        memcpy(b.qh, &qh, 4);
        memcpy((uint8_t *)dst + i * sizeof b, &b, sizeof b);
    }
}

static void q_q5_1(const float *x, void *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK) {
        block_q5_1 b;
        float min = x[0], max = x[0];
        for (int j = 1; j < QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        float d = (max - min) / 31, id = d ? 1.0f / d : 0.0f;
        put_f16(&b.d, d);
        put_f16(&b.m, min);
        uint32_t qh = 0;
        for (int j = 0; j < QK / 2; j++) {
            int lo = trunc_to((x[j] - min) * id + 0.5f, 31);
            int hi = trunc_to((x[j + QK / 2] - min) * id + 0.5f, 31);
            b.qs[j] = (uint8_t)((lo & 0xf) | ((hi & 0xf) << 4));
            qh |= (uint32_t)(lo >> 4) << j;
            qh |= (uint32_t)(hi >> 4) << (j + QK / 2);
        }
        memcpy(b.qh, &qh, 4);
        memcpy((uint8_t *)dst + i * sizeof b, &b, sizeof b);
    }
}

/* roundf(v) for |v| <= 127 (and 0 for NaN). */
static int8_t round_i8(float v) {
    if (!(v == v)) return 0;
    if (v > 127.f) v = 127.f;
    if (v < -127.f) v = -127.f;
    return (int8_t)roundf(v);
}

static void q_q8_0(const float *x, void *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK) {
        block_q8_0 b;
        float amax = 0;
        for (int j = 0; j < QK; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        put_f16(&b.d, d);
        for (int j = 0; j < QK; j++) b.qs[j] = round_i8(x[j] * id);
        memcpy((uint8_t *)dst + i * sizeof b, &b, sizeof b);
    }
}

static void q_q8_1(const float *x, void *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK) {
        block_q8_1 b;
        float amax = 0;
        for (int j = 0; j < QK; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        float d = amax / 127, id = d ? 1.0f / d : 0.0f;
        put_f16(&b.d, d);
        int sum = 0;
        for (int j = 0; j < QK; j++) sum += b.qs[j] = round_i8(x[j] * id);
        put_f16(&b.s, (float)sum * d);
        memcpy((uint8_t *)dst + i * sizeof b, &b, sizeof b);
    }
}

/* Q8_K (activations for K-quant dot products): one F32 scale per 256 and
 * sums of each 16 quants. */
static void q_q8_K(const float *x, void *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        block_q8_K b;
        float amax = 0, max = 0;
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
        if (!amax) {
            memset(&b, 0, sizeof b);
        } else {
            float iscale = -127.f / max;
            for (int j = 0; j < QK_K; j++) {
                int v = nearest_int(iscale * x[j]);
                b.qs[j] = (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
            }
            for (int j = 0; j < QK_K / 16; j++) {
                int sum = 0;
                for (int l = 0; l < 16; l++) sum += b.qs[16 * j + l];
                b.bsums[j] = (int16_t)sum;
            }
            b.d = 1 / iscale;
        }
        memcpy((uint8_t *)dst + i * sizeof b, &b, sizeof b);
    }
}

/* Symmetric n-element group, levels -nmax..nmax-1 stored as L+nmax; weights
 * x^2 (weighted least squares for the scale), searching 18 nearby inverse
 * scales. Returns the scale. (ggml: make_qx_quants with rmse_type 1.) */
static float group_scale_sym(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K groups: like group_scale_sym but refined element by element (5 passes
 * of coordinate descent on the weighted error). (ggml: make_q3_quants.) */
static float group_scale_q3(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int new_l = clampi(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return sumlx / suml2;
}

/* Asymmetric group x ~ scale*L - min, L in 0..nmax: start from the min/max
 * fit, then try nstep+1 inverse scales around it, each with the weighted
 * least-squares (scale, min) for its levels; keep the lowest weighted error
 * (absolute when use_mad). Returns scale; *the_min gets -min >= 0.
 * (ggml: make_qkx2_quants.) */
static float group_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L,
                             float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                             bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += w[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float err = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                err += w[i] * diff;
            }
            if (err < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = err;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Level packing, shared by the reference and the weighted quantizers. */

/* QK_K levels 0..3: element 128h + 32p + l -> bits 2p of qs[32h + l]. */
static void pack_2bit(uint8_t *qs, const uint8_t *L) {
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                      (L[j + l + 96] << 6));
}

/* Q3_K levels 0..7: the high bit of element j goes to hmask[j % 32], bit
 * j / 32, and L keeps 0..3. */
static void pack_q3_hmask(uint8_t *hmask, int8_t *L) {
    memset(hmask, 0, QK_K / 8);
    for (int j = 0; j < QK_K; j++) {
        if (L[j] > 3) {
            hmask[j % 32] |= (uint8_t)(1 << (j / 32));
            L[j] -= 4;
        }
    }
}

/* Q3_K's 16 6-bit scales l[j] (0..63) into 12 bytes. */
static void pack_q3_scales(uint8_t *scales, const int *l) {
    memset(scales, 0, 12);
    for (int j = 0; j < QK_K / 16; j++) {
        if (j < 8)
            scales[j] = (uint8_t)(l[j] & 0xf);
        else
            scales[j - 8] |= (uint8_t)((l[j] & 0xf) << 4);
        scales[j % 4 + 8] |= (uint8_t)((l[j] >> 4) << (2 * (j / 4)));
    }
}

/* Q4_K levels 0..15: sub-blocks 2i, 2i+1 share bytes 32i.. (low, high nibble). */
static void pack_q4_K(uint8_t *qs, const uint8_t *L) {
    for (int j = 0; j < QK_K; j += 64)
        for (int l = 0; l < 32; l++) qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
}

/* Q5_K levels 0..31: Q4_K's nibbles, the fifth bits in qh. */
static void pack_q5_K(uint8_t *qs, uint8_t *qh, const uint8_t *L) {
    memset(qh, 0, QK_K / 8);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < QK_K; n += 64, m1 <<= 2, m2 <<= 2) {
        for (int j = 0; j < 32; j++) {
            int l1 = L[n + j], l2 = L[n + j + 32];
            if (l1 > 15) l1 -= 16, qh[j] |= m1;
            if (l2 > 15) l2 -= 16, qh[j] |= m2;
            qs[n / 2 + j] = (uint8_t)(l1 | (l2 << 4));
        }
    }
}

/* Q6_K levels 0..63: low nibbles in ql, top 2 bits in qh. */
static void pack_q6_K(uint8_t *ql, uint8_t *qh, const int8_t *L) {
    for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; l++) {
            int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
            ql[l] = (uint8_t)((q1 & 0xf) | ((q3 & 0xf) << 4));
            ql[l + 32] = (uint8_t)((q2 & 0xf) | ((q4 & 0xf) << 4));
            qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
        }
    }
}

static void q_q2_K(const float *x, void *dst, int64_t nb) {
    uint8_t L[QK_K], Laux[16];
    float w[16], mins[QK_K / 16], scales[QK_K / 16];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        block_q2_K b;
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
            scales[j] = group_scale_min(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux, -0.5f,
                                        0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        memset(b.scales, 0, sizeof b.scales);
        if (max_scale > 0) {
            float iscale = 15.f / max_scale;
            for (int j = 0; j < QK_K / 16; j++)
                b.scales[j] = (uint8_t)clampi(nearest_int(iscale * scales[j]), 0, 15);
            put_f16(&b.d, max_scale / 15.f);
        } else {
            put_f16(&b.d, 0.f);
        }
        if (max_min > 0) {
            float iscale = 15.f / max_min;
            for (int j = 0; j < QK_K / 16; j++)
                b.scales[j] |= (uint8_t)(clampi(nearest_int(iscale * mins[j]), 0, 15) << 4);
            put_f16(&b.dmin, max_min / 15.f);
        } else {
            put_f16(&b.dmin, 0.f);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            float d = H2F(b.d) * (b.scales[j] & 0xf);
            if (!d) continue;
            float dm = H2F(b.dmin) * (b.scales[j] >> 4);
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (uint8_t)clampi(nearest_int((x[16 * j + ii] + dm) / d), 0, 3);
        }
        pack_2bit(b.qs, L);
        memcpy((uint8_t *)dst + i * sizeof b, &b, sizeof b);
    }
}

static void q_q3_K(const float *x, void *dst, int64_t nb) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        block_q3_K b;
        float max_scale = 0, amax = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            scales[j] = group_scale_q3(16, 4, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) amax = fabsf(scales[j]), max_scale = scales[j];
        }
        memset(b.scales, 0, sizeof b.scales);
        if (max_scale) {
            float iscale = -32.f / max_scale;
            int l6[QK_K / 16];
            for (int j = 0; j < QK_K / 16; j++)
                l6[j] = clampi(nearest_int(iscale * scales[j]), -32, 31) + 32;
            pack_q3_scales(b.scales, l6);
            put_f16(&b.d, 1 / iscale);
        } else {
            put_f16(&b.d, 0.f);
        }
        int8_t sc[16];
        q3_K_scales(b.scales, sc);
        for (int j = 0; j < QK_K / 16; j++) {
            float d = H2F(b.d) * sc[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (int8_t)(clampi(nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
        }
        pack_q3_hmask(b.hmask, L);
        pack_2bit(b.qs, (const uint8_t *)L);
        memcpy((uint8_t *)dst + i * sizeof b, &b, sizeof b);
    }
}

/* Packs 8 6-bit scales and mins into the 12 bytes of Q4_K / Q5_K (inverse of
 * k4_scale_min). */
static void k4_pack(uint8_t *q, const uint8_t *ls, const uint8_t *lm) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            q[j] = ls[j];
            q[j + 4] = lm[j];
        } else {
            q[j + 4] = (uint8_t)((ls[j] & 0xf) | ((lm[j] & 0xf) << 4));
            q[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            q[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/* Shared by Q4_K (nmax 15) and Q5_K (nmax 31): 8 groups of 32 with their own
 * scale and min, each quantized to 6 bits against the block's d / dmin. */
static void k_scales_mins(const float *x, int nmax, float rmin, float rdelta, int nstep,
                          uint8_t *scales12, uint16_t *d16, uint16_t *dmin16, uint8_t *L) {
    uint8_t Laux[32];
    float w[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = group_scale_min(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], Laux, rmin,
                                    rdelta, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)clampi(nearest_int(inv_scale * scales[j]), 0, 63);
        lm[j] = (uint8_t)clampi(nearest_int(inv_min * mins[j]), 0, 63);
    }
    memset(scales12, 0, K_SCALE_SIZE);
    k4_pack(scales12, ls, lm);
    put_f16(d16, max_scale / 63.f);
    put_f16(dmin16, max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        k4_scale_min(j, scales12, &sc, &m);
        float d = H2F(*d16) * sc;
        if (!d) continue;
        float dm = H2F(*dmin16) * m;
        for (int ii = 0; ii < 32; ii++)
            L[32 * j + ii] = (uint8_t)clampi(nearest_int((x[32 * j + ii] + dm) / d), 0, nmax);
    }
}

static void q_q4_K(const float *x, void *dst, int64_t nb) {
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        block_q4_K b;
        k_scales_mins(x, 15, -1.f, 0.1f, 20, b.scales, &b.d, &b.dmin, L);
        pack_q4_K(b.qs, L);
        memcpy((uint8_t *)dst + i * sizeof b, &b, sizeof b);
    }
}

static void q_q5_K(const float *x, void *dst, int64_t nb) {
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        block_q5_K b;
        k_scales_mins(x, 31, -0.5f, 0.1f, 15, b.scales, &b.d, &b.dmin, L);
        pack_q5_K(b.qs, b.qh, L);
        memcpy((uint8_t *)dst + i * sizeof b, &b, sizeof b);
    }
}

static void q_q6_K(const float *x, void *dst, int64_t nb) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        block_q6_K b;
        float max_scale = 0, max_abs = 0;
        for (int ib = 0; ib < QK_K / 16; ib++) {
            scales[ib] = group_scale_sym(16, 32, x + 16 * ib, L + 16 * ib);
            if (fabsf(scales[ib]) > max_abs) max_abs = fabsf(scales[ib]), max_scale = scales[ib];
        }
        if (max_abs < GROUP_MAX_EPS) {
            memset(&b, 0, sizeof b);
            memcpy((uint8_t *)dst + i * sizeof b, &b, sizeof b);
            continue;
        }
        float iscale = -128.f / max_scale;
        put_f16(&b.d, 1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ib++)
            b.scales[ib] = (int8_t)clampi(nearest_int(iscale * scales[ib]), -128, 127);
        for (int j = 0; j < QK_K / 16; j++) {
            float d = H2F(b.d) * b.scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (int8_t)(clampi(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
        }
        pack_q6_K(b.ql, b.qh, L);
        memcpy((uint8_t *)dst + i * sizeof b, &b, sizeof b);
    }
}

int ht_quantize_row(ht_type type, const float *src, void *dst, int64_t n) {
    const ht_type_info *ti = ht_type_get(type);
    if (!ti || n < 0 || n % ti->block_size) return -1;
    uint8_t *d = dst;
    switch (type) {
    case HT_F32:
        memcpy(dst, src, (size_t)n * 4);
        return 0;
    case HT_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = ht_f32_to_f16(src[i]);
            memcpy(d + 2 * i, &h, 2);
        }
        return 0;
    case HT_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = ht_f32_to_bf16(src[i]);
            memcpy(d + 2 * i, &h, 2);
        }
        return 0;
    case HT_Q4_0:
        q_q4_0(src, dst, n / QK);
        return 0;
    case HT_Q4_1:
        q_q4_1(src, dst, n / QK);
        return 0;
    case HT_Q5_0:
        q_q5_0(src, dst, n / QK);
        return 0;
    case HT_Q5_1:
        q_q5_1(src, dst, n / QK);
        return 0;
    case HT_Q8_0:
        q_q8_0(src, dst, n / QK);
        return 0;
    case HT_Q8_1:
        q_q8_1(src, dst, n / QK);
        return 0;
    case HT_Q2_K:
        q_q2_K(src, dst, n / QK_K);
        return 0;
    case HT_Q3_K:
        q_q3_K(src, dst, n / QK_K);
        return 0;
    case HT_Q4_K:
        q_q4_K(src, dst, n / QK_K);
        return 0;
    case HT_Q5_K:
        q_q5_K(src, dst, n / QK_K);
        return 0;
    case HT_Q6_K:
        q_q6_K(src, dst, n / QK_K);
        return 0;
    case HT_Q8_K:
        q_q8_K(src, dst, n / QK_K);
        return 0;
    default:
        return -1;
    }
}

/* ---- importance-weighted quantizers ---------------------------------------
 * Same formats; the free choices (scales, mins, sub-block scale integers)
 * minimise sum_j w_j (x_j - deq_j)^2 with per-element weights w_j from the
 * importance matrix. Each block is fitted on a copy scaled by a power of two
 * (exact but for underflow, so the fit is unchanged, but no sum can overflow or underflow); the
 * final levels are rounded against the scales actually stored, which makes
 * each level the best one for its element. Blocks the weights cannot help
 * (all weights 0, non-finite or extreme inputs) take the reference path. */

#define W_LEGACY_TRY 15 /* legacy symmetric: 31 inverse scales */
#define W_K_TRY      9  /* K-quant groups and super-block scales: 19 */
/* Every weight gets W_FLOOR times the block's mean weight added: columns the
 * calibration never lit still keep a sane fit (the imatrix is an estimate). */
#define W_FLOOR 0.02f

/* The block's weights (imat sanitised: NaN, inf, negative -> 0; divided by
 * the block's largest) and x scaled by 2^-e into [-1, 1]. False when the block
 * should take the reference path. */
static bool w_prepare(int n, const float *x, const float *imat, float *xs, float *qw, int *e) {
    float amax = 0, wmax = 0;
    for (int i = 0; i < n; i++) {
        if (!(fabsf(x[i]) <= 1e15f)) return false; /* non-finite or huge */
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]);
        float v = imat[i];
        if (!(v > 0) || v > 3.4e38f) v = 0;
        qw[i] = v;
        if (v > wmax) wmax = v;
    }
    if (amax < 1e-30f || wmax <= 0) return false;
    frexpf(amax, e);
    float sum = 0;
    for (int i = 0; i < n; i++) {
        qw[i] /= wmax;
        sum += qw[i];
        xs[i] = ldexpf(x[i], -*e);
    }
    float fl = W_FLOOR * sum / n;
    for (int i = 0; i < n; i++) qw[i] += fl;
    return true;
}

/* A group whose weights are all 0 still gets a sane fit: uniform weights. */
static void w_fill_zero_groups(int n, int gs, float *w) {
    for (int g = 0; g < n; g += gs) {
        float s = 0;
        for (int i = 0; i < gs; i++) s += w[g + i];
        if (!(s > 0))
            for (int i = 0; i < gs; i++) w[g + i] = 1.f;
    }
}

/* The inverse scale sgn * (nmax + 0.1k) / max, |k| <= ntry, whose levels
 * (rounded, clamped to [lo, hi]) have the best weighted least-squares fit
 * (largest sum(w x l)^2 / sum(w l^2)); the first of equals, sgn * nmax / max
 * when none fits. */
static float wbest_iscale(int n, const float *x, const float *w, float sgn, int nmax, float max,
                          int ntry, int lo, int hi) {
    float best = -1, best_is = sgn * nmax / max;
    for (int k = -ntry; k <= ntry; k++) {
        float iscale = sgn * (nmax + 0.1f * k) / max, sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_int(iscale * x[i]), lo, hi);
            sumlx += w[i] * x[i] * l;
            suml2 += w[i] * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx / suml2 > best) {
            best = sumlx * sumlx / suml2;
            best_is = iscale;
        }
    }
    return best_is;
}

/* Weighted symmetric fit x ~ s*l, l in -nmax..nmax-1 (L gets l): tries the
 * inverse scales -(nmax + 0.1k)/max, |k| <= ntry, each with its weighted
 * least-squares s, keeps the best, then moves single levels while that lowers
 * the error (coordinate descent). Returns s. */
static float wfit_sym(int n, int nmax, int ntry, const float *x, const float *w, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    const float best_is = wbest_iscale(n, x, w, -1.f, nmax, max, ntry, -nmax, nmax - 1);
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nearest_int(best_is * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        sumlx += w[i] * x[i] * l;
        suml2 += w[i] * l * l;
    }
    if (!(suml2 > 0)) return 0.f;
    for (int pass = 0; pass < 3; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            if (!(w[i] > 0)) continue;
            float s = sumlx / suml2;
            if (s == 0) break;
            int nl = clampi(nearest_int(x[i] / s), -nmax, nmax - 1);
            if (nl == L[i]) continue;
            float slx = sumlx + w[i] * x[i] * (nl - L[i]);
            float sl2 = suml2 + w[i] * (nl * nl - L[i] * L[i]);
            if (sl2 > 0 && slx * slx / sl2 > sumlx * sumlx / suml2) {
                L[i] = (int8_t)nl;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    return sumlx / suml2;
}

/* Weighted error of x ~ s*l + m for the levels L (0..nmax). */
static float werr_asym(int n, const float *x, const float *w, const uint8_t *L, float s, float m) {
    float err = 0;
    for (int i = 0; i < n; i++) {
        float diff = s * L[i] + m - x[i];
        err += w[i] * diff * diff;
    }
    return err;
}

/* Weighted least squares (s, m) for fixed levels; m <= 0 when neg_min.
 * False when the levels do not determine them. */
static bool wls_asym(int n, const float *x, const float *w, const uint8_t *L, bool neg_min,
                     float *s, float *m) {
    float sw = 0, sx = 0, sl = 0, sl2 = 0, sxl = 0;
    for (int i = 0; i < n; i++) {
        sw += w[i];
        sx += w[i] * x[i];
        sl += w[i] * L[i];
        sl2 += w[i] * L[i] * L[i];
        sxl += w[i] * L[i] * x[i];
    }
    float D = sw * sl2 - sl * sl;
    if (!(D > 0)) return false;
    *s = (sw * sxl - sx * sl) / D;
    *m = (sl2 * sx - sl * sxl) / D;
    if (neg_min && *m > 0) {
        *m = 0;
        *s = sxl / sl2;
    }
    return *s > 0;
}

/* Weighted asymmetric fit x ~ s*l + m, l in 0..nmax: starts from the min/max
 * fit, tries the inverse scales (nmax + rmin + rdelta*k)/(max - min),
 * k = 0..nstep, each with its weighted least-squares (s, m), keeps the lowest
 * weighted error, then alternates rounding and least squares twice. m <= 0
 * when neg_min (the K-quants store -m). Returns s; *m_out gets m. */
static float wfit_asym(int n, int nmax, const float *x, const float *w, float rmin, float rdelta,
                       int nstep, bool neg_min, float *m_out, uint8_t *L) {
    uint8_t Laux[32];
    float min = x[0], max = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
    }
    if (neg_min && min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *m_out = min;
        return 0.f;
    }
    float iscale = nmax / (max - min), s = (max - min) / nmax, m = min;
    for (int i = 0; i < n; i++) L[i] = (uint8_t)clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
    float best = werr_asym(n, x, w, L, s, m);
    for (int k = 0; k <= nstep; k++) {
        iscale = (rmin + rdelta * k + nmax) / (max - min);
        for (int i = 0; i < n; i++)
            Laux[i] = (uint8_t)clampi(nearest_int(iscale * (x[i] - min)), 0, nmax);
        float ts, tm;
        if (!wls_asym(n, x, w, Laux, neg_min, &ts, &tm)) continue;
        float err = werr_asym(n, x, w, Laux, ts, tm);
        if (err < best) {
            best = err, s = ts, m = tm;
            memcpy(L, Laux, (size_t)n);
        }
    }
    for (int it = 0; it < 2; it++) {
        float is = 1 / s, ts, tm;
        for (int i = 0; i < n; i++)
            Laux[i] = (uint8_t)clampi(nearest_int((x[i] - m) * is), 0, nmax);
        if (!wls_asym(n, x, w, Laux, neg_min, &ts, &tm)) break;
        float err = werr_asym(n, x, w, Laux, ts, tm);
        if (!(err < best)) break;
        best = err, s = ts, m = tm;
        memcpy(L, Laux, (size_t)n);
    }
    *m_out = m;
    return s;
}

/* Weighted fit of non-negative v ~ s*l, l in 0..nmax (sub-block scales or
 * mins of a K-quant block). Returns s (0 when all v are 0). */
static float wfit_pos(int n, int nmax, const float *v, const float *W, uint8_t *L) {
    float max = 0;
    for (int i = 0; i < n; i++)
        if (v[i] > max) max = v[i];
    if (!(max > 0)) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    const float best_is = wbest_iscale(n, v, W, 1.f, nmax, max, W_K_TRY, 0, nmax);
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(nearest_int(best_is * v[i]), 0, nmax);
        sumlx += W[i] * v[i] * L[i];
        suml2 += W[i] * L[i] * L[i];
    }
    return suml2 > 0 && sumlx > 0 ? sumlx / suml2 : max / nmax;
}

/* Best levels for x ~ d*l - dm (l in 0..nmax) and their weighted error. */
static float wround_asym(int n, int nmax, const float *x, const float *w, float d, float dm,
                         uint8_t *L) {
    float err = 0;
    float id = d ? 1 / d : 0;
    for (int i = 0; i < n; i++) {
        int l = d ? clampi(nearest_int((x[i] + dm) * id), 0, nmax) : 0;
        L[i] = (uint8_t)l;
        float diff = d * l - dm - x[i];
        err += w[i] * diff * diff;
    }
    return err;
}

/* Best levels for x ~ d*l (l in lo..hi) and their weighted error. */
static float wround_sym(int n, int lo, int hi, const float *x, const float *w, float d, int8_t *L) {
    float err = 0;
    float id = d ? 1 / d : 0;
    for (int i = 0; i < n; i++) {
        int l = d ? clampi(nearest_int(x[i] * id), lo, hi) : 0;
        L[i] = (int8_t)l;
        float diff = d * l - x[i];
        err += w[i] * diff * diff;
    }
    return err;
}

/* Weighted error of a dequantized block. */
static double werr_block(int n, const float *x, const float *y, const float *w) {
    double err = 0;
    for (int i = 0; i < n; i++) {
        double diff = (double)y[i] - x[i];
        err += w[i] * diff * diff;
    }
    return err;
}

/* The legacy 32-blocks. Each keeps the reference block when that one happens
 * to have the lower weighted error. */
static void w_keep_better(ht_type t, const float *x, const float *w, const void *ours, size_t size,
                          void *dst) {
    uint8_t ref[64];
    float yb[QK], yr[QK];
    ht_quantize_row(t, x, ref, QK);
    ht_dequantize_row(t, ours, yb, QK);
    ht_dequantize_row(t, ref, yr, QK);
    memcpy(dst, werr_block(QK, x, yb, w) <= werr_block(QK, x, yr, w) ? ours : ref, size);
}

static void wq_q4_0(const float *x, float *w, const float *xs, int e, void *dst) {
    block_q4_0 b;
    int8_t L[QK];
    float s = wfit_sym(QK, 8, W_LEGACY_TRY, xs, w, L);
    put_f16(&b.d, ldexpf(s, e));
    wround_sym(QK, -8, 7, x, w, H2F(b.d), L);
    for (int j = 0; j < QK / 2; j++) b.qs[j] = (uint8_t)((L[j] + 8) | ((L[j + QK / 2] + 8) << 4));
    w_keep_better(HT_Q4_0, x, w, &b, sizeof b, dst);
}

static void wq_q5_0(const float *x, float *w, const float *xs, int e, void *dst) {
    block_q5_0 b;
    int8_t L[QK];
    float s = wfit_sym(QK, 16, W_LEGACY_TRY, xs, w, L);
    put_f16(&b.d, ldexpf(s, e));
    wround_sym(QK, -16, 15, x, w, H2F(b.d), L);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
        int lo = L[j] + 16, hi = L[j + QK / 2] + 16;
        b.qs[j] = (uint8_t)((lo & 0xf) | ((hi & 0xf) << 4));
        qh |= (uint32_t)(lo >> 4) << j;
        qh |= (uint32_t)(hi >> 4) << (j + QK / 2);
    }
    memcpy(b.qh, &qh, 4);
    w_keep_better(HT_Q5_0, x, w, &b, sizeof b, dst);
}

/* Q4_1 / Q5_1 levels for x ~ d*l + m with the stored d and m. */
static void wq_asym_levels(const float *x, int nmax, float d, float m, uint8_t *L) {
    float id = d ? 1 / d : 0;
    for (int i = 0; i < QK; i++)
        L[i] = (uint8_t)(d ? clampi(nearest_int((x[i] - m) * id), 0, nmax) : 0);
}

static void wq_q4_1(const float *x, float *w, const float *xs, int e, void *dst) {
    block_q4_1 b;
    uint8_t L[QK];
    float m;
    float s = wfit_asym(QK, 15, xs, w, -1.f, 0.1f, 20, false, &m, L);
    put_f16(&b.d, ldexpf(s, e));
    put_f16(&b.m, ldexpf(m, e));
    wq_asym_levels(x, 15, H2F(b.d), H2F(b.m), L);
    for (int j = 0; j < QK / 2; j++) b.qs[j] = (uint8_t)(L[j] | (L[j + QK / 2] << 4));
    w_keep_better(HT_Q4_1, x, w, &b, sizeof b, dst);
}

static void wq_q5_1(const float *x, float *w, const float *xs, int e, void *dst) {
    block_q5_1 b;
    uint8_t L[QK];
    float m;
    float s = wfit_asym(QK, 31, xs, w, -0.5f, 0.1f, 15, false, &m, L);
    put_f16(&b.d, ldexpf(s, e));
    put_f16(&b.m, ldexpf(m, e));
    wq_asym_levels(x, 31, H2F(b.d), H2F(b.m), L);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
        int lo = L[j], hi = L[j + QK / 2];
        b.qs[j] = (uint8_t)((lo & 0xf) | ((hi & 0xf) << 4));
        qh |= (uint32_t)(lo >> 4) << j;
        qh |= (uint32_t)(hi >> 4) << (j + QK / 2);
    }
    memcpy(b.qh, &qh, 4);
    w_keep_better(HT_Q5_1, x, w, &b, sizeof b, dst);
}

/* K-quant weights: w_j = imat_j * sqrt(sigma2 + x_j^2), sigma2 = 2 mean(x^2)
 * over the block (on the scaled copy), then zero groups made uniform. */
static void wk_weights(const float *xs, float *w, int gs) {
    float sum_x2 = 0;
    for (int i = 0; i < QK_K; i++) sum_x2 += xs[i] * xs[i];
    float sigma2 = 2 * sum_x2 / QK_K;
    for (int i = 0; i < QK_K; i++) w[i] *= sqrtf(sigma2 + xs[i] * xs[i]);
    w_fill_zero_groups(QK_K, gs, w);
}

/* Asymmetric K-quant block (Q2_K: gs 16, nmax 3, smax 15; Q4_K / Q5_K: gs 32,
 * nmax 15 / 31, smax 63): group fits, then the integer sub-block scales and
 * mins fitted against the super-block d / dmin with weights of the error they
 * cause, then each group's (scale, min) pair re-chosen among the neighbours
 * of the rounded one by the actual weighted error. ls/lm get the integers, L
 * the levels. */
static void wk_asym(const float *x, const float *xs, const float *w, int e, int gs, int nmax,
                    int smax, float rmin, float rdelta, int nstep, uint8_t *ls, uint8_t *lm,
                    uint16_t *d16, uint16_t *dmin16, uint8_t *L) {
    int ng = QK_K / gs;
    float s[16], m[16], Ws[16], Wm[16];
    for (int j = 0; j < ng; j++) {
        const float *wj = w + gs * j;
        float mn;
        s[j] = wfit_asym(gs, nmax, xs + gs * j, wj, rmin, rdelta, nstep, true, &mn, L + gs * j);
        m[j] = -mn;
        Ws[j] = Wm[j] = 0;
        for (int i = 0; i < gs; i++) {
            int l = L[gs * j + i];
            Ws[j] += wj[i] * l * l;
            Wm[j] += wj[i];
        }
        if (!(Ws[j] > 0)) Ws[j] = Wm[j];
    }
    float ds = wfit_pos(ng, smax, s, Ws, ls), dm = wfit_pos(ng, smax, m, Wm, lm);
    put_f16(d16, ldexpf(ds, e));
    put_f16(dmin16, ldexpf(dm, e));
    float d = H2F(*d16), dmin = H2F(*dmin16);
    uint8_t Lt[32];
    for (int j = 0; j < ng; j++) {
        const float *xj = x + gs * j, *wj = w + gs * j;
        int s0 = ls[j], m0 = lm[j];
        float best = wround_asym(gs, nmax, xj, wj, d * s0, dmin * m0, L + gs * j);
        for (int a = -1; a <= 1; a++) {
            for (int c = -1; c <= 1; c++) {
                int sc = s0 + a, mc = m0 + c;
                if ((!a && !c) || sc < 0 || sc > smax || mc < 0 || mc > smax) continue;
                float err = wround_asym(gs, nmax, xj, wj, d * sc, dmin * mc, Lt);
                if (err < best) {
                    best = err;
                    ls[j] = (uint8_t)sc;
                    lm[j] = (uint8_t)mc;
                    memcpy(L + gs * j, Lt, (size_t)gs);
                }
            }
        }
    }
}

/* Symmetric K-quant block (Q3_K: nmax 4, sub-scales -32..31; Q6_K: nmax 32,
 * sub-scales -128..127), 16 groups of 16, same steps as wk_asym. */
static void wk_sym(const float *x, const float *xs, const float *w, int e, int nmax, int smax,
                   int8_t *ls, uint16_t *d16, int8_t *L) {
    float s[16], Ws[16];
    for (int j = 0; j < 16; j++) {
        const float *wj = w + 16 * j;
        s[j] = wfit_sym(16, nmax, W_K_TRY, xs + 16 * j, wj, L + 16 * j);
        float sw = 0;
        Ws[j] = 0;
        for (int i = 0; i < 16; i++) {
            int l = L[16 * j + i];
            Ws[j] += wj[i] * l * l;
            sw += wj[i];
        }
        if (!(Ws[j] > 0)) Ws[j] = sw;
    }
    float ds = wfit_sym(16, smax, W_K_TRY, s, Ws, ls);
    put_f16(d16, ldexpf(ds, e));
    float d = H2F(*d16);
    int8_t Lt[16];
    for (int j = 0; j < 16; j++) {
        const float *xj = x + 16 * j, *wj = w + 16 * j;
        int s0 = ls[j];
        float best = wround_sym(16, -nmax, nmax - 1, xj, wj, d * s0, L + 16 * j);
        for (int a = -1; a <= 1; a += 2) {
            int sc = s0 + a;
            if (sc < -smax || sc > smax - 1) continue;
            float err = wround_sym(16, -nmax, nmax - 1, xj, wj, d * sc, Lt);
            if (err < best) {
                best = err;
                ls[j] = (int8_t)sc;
                memcpy(L + 16 * j, Lt, 16);
            }
        }
    }
}

static void wq_q2_K(const float *x, float *w, const float *xs, int e, void *dst) {
    block_q2_K b;
    uint8_t L[QK_K], ls[16], lm[16];
    wk_weights(xs, w, 16);
    wk_asym(x, xs, w, e, 16, 3, 15, -0.5f, 0.1f, 15, ls, lm, &b.d, &b.dmin, L);
    for (int j = 0; j < 16; j++) b.scales[j] = (uint8_t)(ls[j] | (lm[j] << 4));
    pack_2bit(b.qs, L);
    memcpy(dst, &b, sizeof b);
}

static void wq_q3_K(const float *x, float *w, const float *xs, int e, void *dst) {
    block_q3_K b;
    int8_t L[QK_K], ls[16];
    wk_weights(xs, w, 16);
    wk_sym(x, xs, w, e, 4, 32, ls, &b.d, L);
    int l6[16];
    for (int j = 0; j < 16; j++) l6[j] = ls[j] + 32;
    pack_q3_scales(b.scales, l6);
    for (int j = 0; j < QK_K; j++) L[j] = (int8_t)(L[j] + 4);
    pack_q3_hmask(b.hmask, L);
    pack_2bit(b.qs, (const uint8_t *)L);
    memcpy(dst, &b, sizeof b);
}

static void wq_q4_K(const float *x, float *w, const float *xs, int e, void *dst) {
    block_q4_K b;
    uint8_t L[QK_K], ls[8], lm[8];
    wk_weights(xs, w, 32);
    wk_asym(x, xs, w, e, 32, 15, 63, -1.f, 0.1f, 20, ls, lm, &b.d, &b.dmin, L);
    memset(b.scales, 0, sizeof b.scales);
    k4_pack(b.scales, ls, lm);
    pack_q4_K(b.qs, L);
    memcpy(dst, &b, sizeof b);
}

static void wq_q5_K(const float *x, float *w, const float *xs, int e, void *dst) {
    block_q5_K b;
    uint8_t L[QK_K], ls[8], lm[8];
    wk_weights(xs, w, 32);
    wk_asym(x, xs, w, e, 32, 31, 63, -0.5f, 0.1f, 15, ls, lm, &b.d, &b.dmin, L);
    memset(b.scales, 0, sizeof b.scales);
    k4_pack(b.scales, ls, lm);
    pack_q5_K(b.qs, b.qh, L);
    memcpy(dst, &b, sizeof b);
}

static void wq_q6_K(const float *x, float *w, const float *xs, int e, void *dst) {
    block_q6_K b;
    int8_t L[QK_K];
    wk_weights(xs, w, 16);
    wk_sym(x, xs, w, e, 32, 128, b.scales, &b.d, L);
    for (int j = 0; j < QK_K; j++) L[j] = (int8_t)(L[j] + 32);
    pack_q6_K(b.ql, b.qh, L);
    memcpy(dst, &b, sizeof b);
}

typedef void (*wq_fn)(const float *x, float *w, const float *xs, int e, void *dst);
typedef void (*rq_fn)(const float *x, void *dst, int64_t nb);

int ht_quantize_row_w(ht_type type, const float *src, void *dst, int64_t n, const float *imat) {
    if (!imat) return ht_quantize_row(type, src, dst, n);
    const ht_type_info *ti = ht_type_get(type);
    if (!ti || n < 0 || n % ti->block_size) return -1;
    static const struct {
        ht_type type;
        wq_fn wq;
        rq_fn rq;
    } fits[] = {{HT_Q4_0, wq_q4_0, q_q4_0}, {HT_Q4_1, wq_q4_1, q_q4_1}, {HT_Q5_0, wq_q5_0, q_q5_0},
                {HT_Q5_1, wq_q5_1, q_q5_1}, {HT_Q2_K, wq_q2_K, q_q2_K}, {HT_Q3_K, wq_q3_K, q_q3_K},
                {HT_Q4_K, wq_q4_K, q_q4_K}, {HT_Q5_K, wq_q5_K, q_q5_K}, {HT_Q6_K, wq_q6_K, q_q6_K}};
    wq_fn wq = NULL;
    rq_fn rq = NULL;
    for (size_t k = 0; k < sizeof fits / sizeof fits[0]; k++)
        if (fits[k].type == type) wq = fits[k].wq, rq = fits[k].rq;
    if (!wq) return ht_quantize_row(type, src, dst, n);
    int bs = ti->block_size;
    float xs[QK_K], w[QK_K];
    uint8_t *d = dst;
    for (int64_t i = 0; i < n / bs; i++) {
        const float *x = src + i * bs;
        int e;
        uint8_t *blk = d + i * ti->type_size;
        bool ok = w_prepare(bs, x, imat + i * bs, xs, w, &e);
        if (ok) {
            /* A fitted scale past F16 range where the reference's is not:
             * keep the reference block. */
            wq(x, w, xs, e, blk);
            ht_dequantize_row(type, blk, xs, bs);
            for (int j = 0; j < bs; j++) ok = ok && isfinite(xs[j]);
        }
        if (!ok) rq(x, blk, 1);
    }
    return 0;
}
