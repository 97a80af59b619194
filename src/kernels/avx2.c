/* AVX2 + FMA + F16C kernels (x86-64), chosen when the CPU has them.
 *
 * matmul is the only op that differs from the reference:
 *   F32, F16 weights: F32 activations, FMA dot products (same values as ref
 *     up to summation order; F16 converted with F16C).
 *   Q8_0, Q4_0, Q5_0, Q4_K, Q6_K weights: activations are quantized once per
 *     call to 8-bit blocks of 32 (x ~ dx * qx, dx = max|x| / 127), and each
 *     block product is an integer dot product (maddubs/madd) scaled in F32 --
 *     what the reference runtime does too; this is the "fast" tier of the
 *     golden tests. K-quant activations are grouped per 256 (act_q8k) so that
 *     a superblock's 8 scale products are one vector; Q6_K's sub-block scales
 *     are applied in the integer domain.
 *   Batches (prefill): Q8_0, Q4_K and Q6_K rows run 4 tokens per pass (each weight block
 *     loaded once for 4 tokens); Q4_0/Q5_0 rows are unpacked to bytes once per
 *     tile of 16 rows and then run 4 rows per activation load.
 *   other types: the reference matmul.
 * A token's result is bitwise the same alone or in any batch, on any thread
 * count (test_kernels checks it). Everything else is the reference code.
 * Functions carry a target attribute, so the file builds without -mavx2 and
 * only runs where the CPU has AVX2. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/ref.h"

#define AVX2 __attribute__((target("avx2,fma,f16c")))

/* An activation block: 32 values x[i] ~ d * qs[i]; sum = sum of qs. */
typedef struct act_q8 {
    float d;
    int32_t sum;
    int8_t qs[32];
} act_q8;

static inline uint16_t rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

AVX2 static inline float f16(uint16_t h) {
    return _cvtsh_ss(h);
}

AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline int32_t hsum8i(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* 32 signed bytes a (|a| <= 128) times 32 signed bytes b (|b| <= 127):
 * eight int32 partial sums. */
AVX2 static inline __m256i dot_i8(__m256i a, __m256i b) {
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* 32 values -> qs[32] with x ~ d * qs (d = max|x| / 127), *sum = sum of qs. */
AVX2 static inline void quantize_block(const float *xb, float *d, int32_t *sum, int8_t *qs) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4], mx = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(xb + 8 * k);
        mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v[k]));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    float amax = _mm_cvtss_f32(m);
    __m256 vid = _mm256_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
    __m256i q[4];
    for (int k = 0; k < 4; k++)
        q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], vid),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    *sum = hsum8i(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    /* pack 32 int32 -> 32 int8, restoring order after the lane-wise packs */
    __m256i p01 = _mm256_packs_epi32(q[0], q[1]), p23 = _mm256_packs_epi32(q[2], q[3]);
    __m256i p = _mm256_packs_epi16(p01, p23);
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    *d = amax / 127.0f;
    _mm256_storeu_si256((__m256i *)qs, p);
}

/* x[0..n) (n a multiple of 32) -> n/32 blocks. */
AVX2 static void quantize_act(const float *x, int64_t n, act_q8 *out) {
    for (int64_t b = 0; b < n / 32; b++)
        quantize_block(x + 32 * b, &out[b].d, &out[b].sum, out[b].qs);
}

/* Activations for the K-quants: per 256 values, the 8 blocks of 32 of
 * act_q8 regrouped so their scales load as vectors: x[32j + i] ~ d[j] *
 * qs[32j + i], dsum[j] = d[j] * (sum of qs[32j..32j+32)) for Q4_K's mins,
 * sum16[l] = sum of qs[16l..16l+16) for Q6_K's offset. */
typedef struct act_q8k {
    float d[8];
    float dsum[8];
    int16_t sum16[16];
    int8_t qs[256];
} act_q8k;

/* x[0..n) (n a multiple of 256) -> n/256 superblocks. */
AVX2 static void quantize_act_k(const float *x, int64_t n, act_q8k *out) {
    for (int64_t b = 0; b < n / 256; b++)
        for (int j = 0; j < 8; j++) {
            int32_t sum;
            quantize_block(x + 256 * b + 32 * j, &out[b].d[j], &sum, out[b].qs + 32 * j);
            out[b].dsum[j] = out[b].d[j] * (float)sum;
            for (int h = 0; h < 2; h++) {
                int s16 = 0;
                for (int i = 0; i < 16; i++) s16 += out[b].qs[32 * j + 16 * h + i];
                out[b].sum16[2 * j + h] = (int16_t)s16;
            }
        }
}

/* ---- row dot products: one weight row against one token -------------- */

AVX2 static float dot_f32(const float *w, const float *x, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    float s = hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += w[i] * x[i];
    return s;
}

AVX2 static float dot_f16(const uint16_t *w, const float *x, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i)));
        __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8)));
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), a1);
    }
    float s = hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += f16(w[i]) * x[i];
    return s;
}

/* Q8_0: 34-byte blocks {f16 d, int8 qs[32]}. */
AVX2 static float dot_q8_0(const uint8_t *w, const act_q8 *a, int64_t nb) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++, w += 34) {
        __m256i qw = _mm256_loadu_si256((const __m256i *)(w + 2));
        __m256i qa = _mm256_loadu_si256((const __m256i *)a[b].qs);
        __m256 s = _mm256_cvtepi32_ps(dot_i8(qw, qa));
        acc = _mm256_fmadd_ps(s, _mm256_set1_ps(f16(rd16(w)) * a[b].d), acc);
    }
    return hsum8(acc);
}

/* One Q8_0 row against 4 tokens: each weight block loaded, its signs taken
 * and its scale converted once for the 4; per token the arithmetic of
 * dot_q8_0 (bitwise the same results). */
AVX2 static void dot_q8_0_x4(const uint8_t *w, const act_q8 *const *a, int64_t nb, float *y) {
    __m256 acc[4];
    for (int t = 0; t < 4; t++) acc[t] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++, w += 34) {
        __m256i qw = _mm256_loadu_si256((const __m256i *)(w + 2));
        __m256i aw = _mm256_sign_epi8(qw, qw);
        float dw = f16(rd16(w));
        for (int t = 0; t < 4; t++) {
            __m256i qa = _mm256_loadu_si256((const __m256i *)a[t][b].qs);
            __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(qa, qw)), ones);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * a[t][b].d), acc[t]);
        }
    }
    for (int t = 0; t < 4; t++) y[t] = hsum8(acc[t]);
}

/* Q4_0: 18-byte blocks {f16 d, qs[16]}: element j = low nibble of qs[j] - 8,
 * element j+16 = high nibble - 8. */
AVX2 static float dot_q4_0(const uint8_t *w, const act_q8 *a, int64_t nb) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0xf), eight = _mm256_set1_epi8(8);
    for (int64_t b = 0; b < nb; b++, w += 18) {
        __m128i v = _mm_loadu_si128((const __m128i *)(w + 2)); /* 16 bytes */
        __m256i q = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
        q = _mm256_sub_epi8(_mm256_and_si256(q, m4), eight);
        __m256i qa = _mm256_loadu_si256((const __m256i *)a[b].qs);
        __m256 s = _mm256_cvtepi32_ps(dot_i8(q, qa));
        acc = _mm256_fmadd_ps(s, _mm256_set1_ps(f16(rd16(w)) * a[b].d), acc);
    }
    return hsum8(acc);
}

/* Q5_0: 22-byte blocks {f16 d, qh[4], qs[16]}: element j = (low nibble of
 * qs[j] | bit j of qh << 4) - 16, element j+16 = (high nibble | bit j+16 of
 * qh << 4) - 16. Returns the 32 unsigned 5-bit values 0..31 in order. */
AVX2 static inline __m256i q5_0_u(const uint8_t *w) {
    const __m256i m4 = _mm256_set1_epi8(0xf);
    __m128i v = _mm_loadu_si128((const __m128i *)(w + 6));
    __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4);
    uint32_t qh;
    memcpy(&qh, w + 2, 4);
    /* byte i <- byte i/8 of qh, then test bit i%8 */
    __m256i hb = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)qh),
        _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    hb = _mm256_cmpeq_epi8(_mm256_and_si256(hb, bit), bit);
    return _mm256_or_si256(q, _mm256_and_si256(hb, _mm256_set1_epi8(0x10)));
}

AVX2 static float dot_q5_0(const uint8_t *w, const act_q8 *a, int64_t nb) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i sixteen = _mm256_set1_epi8(16);
    for (int64_t b = 0; b < nb; b++, w += 22) {
        __m256i q = _mm256_sub_epi8(q5_0_u(w), sixteen);
        __m256i qa = _mm256_loadu_si256((const __m256i *)a[b].qs);
        __m256 s = _mm256_cvtepi32_ps(dot_i8(q, qa));
        acc = _mm256_fmadd_ps(s, _mm256_set1_ps(f16(rd16(w)) * a[b].d), acc);
    }
    return hsum8(acc);
}

/* Q4_K: 144-byte superblocks of 256 {f16 d, f16 dmin, scales[12], qs[128]};
 * sub-block j (32 values) = d*sc_j*q - dmin*m_j, q a nibble: sub-blocks 2i and
 * 2i+1 are the low and high nibbles of qs[32i..32i+32); sc_j, m_j 6-bit.
 * Per superblock the 8 factors d*sc_j*da_j are one vector product, each
 * sub-block's integer dot one FMA with its factor; the min terms are
 * dmin * sum_j m_j * dsum_j, an 8-wide FMA. */
/* A Q4_K superblock's d * sc_j and dmin * m_j, j = 0..7, as vectors. */
AVX2 static inline void q4_K_scales(const uint8_t *w, __m256 *dsc, __m256 *dmn) {
    /* scales[12] -> sc[0..7] (bytes of u[0], u[1]) and m[0..7] (u[2], u[3]) */
    uint32_t u[4];
    memcpy(u, w + 4, 12);
    u[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
    uint32_t mlo = u[1] & 0x3f3f3f3f;
    u[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
    u[2] = mlo;
    u[0] &= 0x3f3f3f3f;
    __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
        _mm_cvtsi64_si128((long long)((uint64_t)u[0] | (uint64_t)u[1] << 32))));
    __m256 mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
        _mm_cvtsi64_si128((long long)((uint64_t)u[2] | (uint64_t)u[3] << 32))));
    *dsc = _mm256_mul_ps(_mm256_set1_ps(f16(rd16(w))), sc);
    *dmn = _mm256_mul_ps(_mm256_set1_ps(f16(rd16(w + 2))), mn);
}

/* Q4_K against nt <= 4 tokens (4: a batch; 1: dot_q4_K): per token the same
 * operations in the same order, so results agree bitwise. */
AVX2 static inline __attribute__((always_inline)) void
q4_K_tokens(const uint8_t *w, const act_q8k *const *a, const int nt, int64_t nsb, float *y) {
    __m256 acc[4], accm[4];
    for (int t = 0; t < 4; t++) acc[t] = accm[t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0xf), ones = _mm256_set1_epi16(1);
    for (int64_t s = 0; s < nsb; s++, w += 144) {
        __m256 dsc, dmn, f[4];
        q4_K_scales(w, &dsc, &dmn);
        for (int t = 0; t < nt; t++) {
            f[t] = _mm256_mul_ps(dsc, _mm256_loadu_ps(a[t][s].d));
            accm[t] = _mm256_fmadd_ps(dmn, _mm256_loadu_ps(a[t][s].dsum), accm[t]);
        }
        const uint8_t *qs = w + 16;
        for (int i = 0; i < 4; i++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * i));
            __m256i lo = _mm256_and_si256(v, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            for (int t = 0; t < nt; t++) {
                const int8_t *aq = a[t][s].qs + 64 * i;
                __m256i pl = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)aq)), ones);
                __m256i ph = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(aq + 32))), ones);
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(pl),
                                         _mm256_permutevar8x32_ps(f[t], _mm256_set1_epi32(2 * i)),
                                         acc[t]);
                acc[t] = _mm256_fmadd_ps(
                    _mm256_cvtepi32_ps(ph),
                    _mm256_permutevar8x32_ps(f[t], _mm256_set1_epi32(2 * i + 1)), acc[t]);
            }
        }
    }
    for (int t = 0; t < nt; t++) y[t] = hsum8(acc[t]) - hsum8(accm[t]);
}

AVX2 static float dot_q4_K(const uint8_t *w, const act_q8k *a, int64_t nsb) {
    float y;
    q4_K_tokens(w, &a, 1, nsb, &y);
    return y;
}

AVX2 static void dot_q4_K_x4(const uint8_t *w, const act_q8k *const *a, int64_t nsb, float *y) {
    q4_K_tokens(w, a, 4, nsb, y);
}

/* The 4 x 32 6-bit values (0..63) of one half (128 values) of a Q6_K
 * superblock, in element order. */
AVX2 static inline void q6_K_half(const uint8_t *ql, const uint8_t *qh, __m256i q[4]) {
    const __m256i m4 = _mm256_set1_epi8(0xf), m3 = _mm256_set1_epi8(3);
    __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
    __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    __m256i h = _mm256_loadu_si256((const __m256i *)qh);
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3), 4));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3), 4));
}

/* Q6_K: 210-byte superblocks of 256 {ql[128], qh[64], int8 scales[16], f16 d};
 * value = d * scale[l/16] * (6-bit q - 32). Per block j of 32: the unsigned
 * 6-bit values times the activations, the two scales applied in the integer
 * domain (madd), one FMA with d * da_j; the offset 32 comes off at the end as
 * 32 * sum_j d * da_j * (sc_2j * sum16_2j + sc_2j+1 * sum16_2j+1). */
AVX2 static inline __attribute__((always_inline)) void
q6_K_tokens(const uint8_t *w, const act_q8k *const *a, const int nt, int64_t nsb, float *y) {
    __m256 acc[4], acco[4];
    for (int t = 0; t < 4; t++) acc[t] = acco[t] = _mm256_setzero_ps();
    /* low 128 bits: int16 0 of each dword, high: int16 1 */
    const __m256i spread = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2,
                                            3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    for (int64_t s = 0; s < nsb; s++, w += 210) {
        /* the 16 scales as int16; dword j = (sc_2j, sc_2j+1), block j's pair */
        __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 192)));
        const float d = f16(rd16(w + 208));
        for (int t = 0; t < nt; t++) {
            __m256 f = _mm256_mul_ps(_mm256_set1_ps(d), _mm256_loadu_ps(a[t][s].d));
            __m256i off = _mm256_madd_epi16(sc, _mm256_loadu_si256((const __m256i *)a[t][s].sum16));
            acco[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(off), f, acco[t]);
        }
        for (int h = 0; h < 2; h++) {
            __m256i q[4];
            q6_K_half(w + 64 * h, w + 128 + 32 * h, q);
            for (int k = 0; k < 4; k++) {
                const int jb = 4 * h + k;
                __m256i sv = _mm256_shuffle_epi8(
                    _mm256_permutevar8x32_epi32(sc, _mm256_set1_epi32(jb)), spread);
                for (int t = 0; t < nt; t++) {
                    __m256i qa = _mm256_loadu_si256((const __m256i *)(a[t][s].qs + 32 * jb));
                    __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], qa), sv);
                    /* d * da_jb: the same product as lane jb of f above */
                    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),
                                             _mm256_set1_ps(d * a[t][s].d[jb]), acc[t]);
                }
            }
        }
    }
    for (int t = 0; t < nt; t++) y[t] = hsum8(acc[t]) - 32.0f * hsum8(acco[t]);
}

AVX2 static float dot_q6_K(const uint8_t *w, const act_q8k *a, int64_t nsb) {
    float y;
    q6_K_tokens(w, &a, 1, nsb, &y);
    return y;
}

AVX2 static void dot_q6_K_x4(const uint8_t *w, const act_q8k *const *a, int64_t nsb, float *y) {
    q6_K_tokens(w, a, 4, nsb, y);
}

/* ---- batches: weight rows unpacked once, used for every token --------- */

/* A weight row as unsigned bytes u[i] with, per block b of 32, a lane-scale
 * vector S[b] = {s x8}: w[i] = s * (u[i] - off), off = 8 (Q4_0) or 16 (Q5_0). For a batch,
 * unpacking nibbles once per row and then running plain u8 x s8 dot products beats unpacking again
 * for every token. The integer sums and every float operation (S * dx, FMA per block in block
 * order, minus the min terms) are those of the single-token dot_q* functions above, so a token gets
 * bitwise the same result alone or in a batch. */
typedef struct unpacked {
    uint8_t *u; /* [n] */
    float *S;   /* [n/32][8] */
} unpacked;

static size_t unpacked_bytes(int64_t n) {
    return sizeof(float) * (size_t)(n / 32) * 8 + (size_t)n;
}

static unpacked unpacked_at(uint8_t *p, int64_t n) {
    unpacked u;
    u.S = (float *)p;
    u.u = (uint8_t *)(u.S + 8 * (n / 32));
    return u;
}

static void set_S(float *S, float lo, float hi) {
    for (int i = 0; i < 4; i++) {
        S[i] = lo;
        S[4 + i] = hi;
    }
}

AVX2 static void unpack_q4_0(const uint8_t *w, int64_t n, unpacked *u) {
    const __m256i m4 = _mm256_set1_epi8(0xf);
    for (int64_t b = 0; b < n / 32; b++, w += 18) {
        __m128i v = _mm_loadu_si128((const __m128i *)(w + 2));
        __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), m4);
        _mm256_storeu_si256((__m256i *)(u->u + 32 * b), q);
        float d = f16(rd16(w));
        set_S(u->S + 8 * b, d, d);
    }
}

AVX2 static void unpack_q5_0(const uint8_t *w, int64_t n, unpacked *u) {
    for (int64_t b = 0; b < n / 32; b++, w += 22) {
        _mm256_storeu_si256((__m256i *)(u->u + 32 * b), q5_0_u(w));
        float d = f16(rd16(w));
        set_S(u->S + 8 * b, d, d);
    }
}

#define MICRO_ROWS 4

/* y[r] = row r . token, for nr <= MICRO_ROWS unpacked rows; off as above. */
AVX2 static inline __attribute__((always_inline)) void
dot_unpacked_rows(const unpacked *u, const int nr, const act_q8 *a, int64_t nb, const int off_shift,
                  float *y) {
    __m256 acc[MICRO_ROWS];
    for (int r = 0; r < MICRO_ROWS; r++) acc[r] = _mm256_setzero_ps();
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++) {
        __m256i qa = _mm256_loadu_si256((const __m256i *)a[b].qs);
        /* off * (sums of 4 activations per lane): turns u x qa into (u - off) x qa */
        __m256i offa = _mm256_setzero_si256();
        if (off_shift)
            offa = _mm256_slli_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(ones8, qa), ones16),
                                     off_shift);
        __m256 dv = _mm256_set1_ps(a[b].d);
        for (int r = 0; r < nr; r++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(u[r].u + 32 * b));
            __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, qa), ones16);
            p = _mm256_sub_epi32(p, offa);
            __m256 sv = _mm256_mul_ps(_mm256_loadu_ps(u[r].S + 8 * b), dv);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), sv, acc[r]);
        }
    }
    for (int r = 0; r < nr; r++) y[r] = hsum8(acc[r]);
}

/* dot_unpacked_rows over nr rows, MICRO_ROWS at a time, per weight type
 * (off = 8 for Q4_0, 16 for Q5_0). */
#define ROWS_FN(name, off_shift)                                                                   \
    AVX2 static void name(const unpacked *u, int nr, const act_q8 *a, int64_t nb, float *y) {      \
        int r = 0;                                                                                 \
        for (; r + MICRO_ROWS <= nr; r += MICRO_ROWS)                                              \
            dot_unpacked_rows(u + r, MICRO_ROWS, a, nb, off_shift, y + r);                         \
        for (; r < nr; r++) dot_unpacked_rows(u + r, 1, a, nb, off_shift, y + r);                  \
    }
ROWS_FN(rows_q4_0, 3)
ROWS_FN(rows_q5_0, 4)

/* ---- matmul ----------------------------------------------------------- */

#define TILE_ROWS         16
#define UNPACK_MIN_TOKENS 4 /* below this, unpacking per token is cheaper */

/* How a weight type is computed here. */
typedef enum mm_kind {
    MM_REF,   /* not here: the reference matmul */
    MM_FLOAT, /* F32 / F16 weights, F32 activations */
    MM_Q8,    /* 32-blocks against act_q8 (Q8_0, Q4_0, Q5_0) */
    MM_Q8K,   /* 256-superblocks against act_q8k (Q4_K, Q6_K) */
} mm_kind;

static mm_kind kind_of(ht_type t) {
    switch (t) {
    case HT_F32:
    case HT_F16:
        return MM_FLOAT;
    case HT_Q8_0:
    case HT_Q4_0:
    case HT_Q5_0:
        return MM_Q8;
    case HT_Q4_K:
    case HT_Q6_K:
        return MM_Q8K;
    default:
        return MM_REF;
    }
}

typedef struct mm_job {
    const kern_mat *w;
    int tile;
    const float *x;
    size_t ldx;
    const uint8_t *xq; /* quantized activations, xq_stride bytes per token */
    size_t xq_stride;
    float *y;
    size_t ldy;
    int n_tok;
    uint8_t *unp;     /* per thread: TILE_ROWS unpacked rows (Q4_0, Q5_0), or NULL */
    size_t unp_bytes; /* per thread */
} mm_job;

/* Batch of tokens, Q4_0 / Q5_0: the tile's rows unpacked once. */
AVX2 static void mm_tile_unpacked(const mm_job *j, const uint8_t *base, int64_t r0, int nr,
                                  uint8_t *mine) {
    const kern_mat *w = j->w;
    const int64_t n = w->n_cols, nb = n / 32;
    size_t rb = unpacked_bytes(n);
    unpacked u[TILE_ROWS];
    for (int r = 0; r < nr; r++) {
        u[r] = unpacked_at(mine + (size_t)r * rb, n);
        const uint8_t *row = base + (size_t)r * w->row_bytes;
        if (w->type == HT_Q4_0)
            unpack_q4_0(row, n, &u[r]);
        else
            unpack_q5_0(row, n, &u[r]);
    }
    for (int t = 0; t < j->n_tok; t++) {
        const act_q8 *at = (const act_q8 *)(j->xq + (size_t)t * j->xq_stride);
        float *yt = j->y + (size_t)t * j->ldy + r0;
        if (w->type == HT_Q4_0) /* constant arguments: unrolled, accumulators in registers */
            rows_q4_0(u, nr, at, nb, yt);
        else
            rows_q5_0(u, nr, at, nb, yt);
    }
}

AVX2 static void mm_task(void *ctx, int task, int thread) {
    const mm_job *j = ctx;
    const kern_mat *w = j->w;
    int64_t r0 = (int64_t)task * j->tile;
    int nr = (int)(w->n_rows - r0 < j->tile ? w->n_rows - r0 : j->tile);
    const uint8_t *base = (const uint8_t *)w->data + (size_t)r0 * w->row_bytes;
    const int64_t n = w->n_cols;
    if (j->unp) {
        mm_tile_unpacked(j, base, r0, nr, j->unp + (size_t)thread * j->unp_bytes);
        return;
    }
    int t = 0;
    if (w->type == HT_Q8_0 || w->type == HT_Q4_K ||
        w->type == HT_Q6_K) /* batches: 4 tokens per pass over a row */
        for (; t + 4 <= j->n_tok; t += 4) {
            const void *at[4];
            for (int k = 0; k < 4; k++) at[k] = j->xq + (size_t)(t + k) * j->xq_stride;
            for (int r = 0; r < nr; r++) {
                const uint8_t *row = base + (size_t)r * w->row_bytes;
                float v[4];
                if (w->type == HT_Q8_0)
                    dot_q8_0_x4(row, (const act_q8 *const *)at, n / 32, v);
                else if (w->type == HT_Q4_K)
                    dot_q4_K_x4(row, (const act_q8k *const *)at, n / 256, v);
                else
                    dot_q6_K_x4(row, (const act_q8k *const *)at, n / 256, v);
                for (int k = 0; k < 4; k++) j->y[(size_t)(t + k) * j->ldy + r0 + r] = v[k];
            }
        }
    for (; t < j->n_tok; t++) {
        const float *xt = j->x + (size_t)t * j->ldx;
        const void *at = j->xq ? j->xq + (size_t)t * j->xq_stride : NULL;
        float *yt = j->y + (size_t)t * j->ldy + r0;
        for (int r = 0; r < nr; r++) {
            const uint8_t *row = base + (size_t)r * w->row_bytes;
            float v;
            switch (w->type) {
            case HT_F32:
                v = dot_f32((const float *)row, xt, n);
                break;
            case HT_F16:
                v = dot_f16((const uint16_t *)row, xt, n);
                break;
            case HT_Q8_0:
                v = dot_q8_0(row, at, n / 32);
                break;
            case HT_Q4_0:
                v = dot_q4_0(row, at, n / 32);
                break;
            case HT_Q5_0:
                v = dot_q5_0(row, at, n / 32);
                break;
            case HT_Q4_K:
                v = dot_q4_K(row, at, n / 256);
                break;
            default:
                v = dot_q6_K(row, at, n / 256);
                break;
            }
            yt[r] = v;
        }
    }
}

/* Per calling thread, grown and never shrunk: the quantized activations of
 * the current call and the unpacked weight rows of batch calls (n_threads *
 * TILE_ROWS rows). Freed when the thread exits. */
typedef struct call_bufs {
    void *act; /* act_q8 [n_tok][n_cols/32] or act_q8k [n_tok][n_cols/256] */
    size_t act_bytes;
    void *unp; /* bytes */
    size_t unp_bytes;
} call_bufs;

static pthread_key_t bufs_key;
static pthread_once_t bufs_once = PTHREAD_ONCE_INIT;

static void bufs_free(void *p) {
    call_bufs *b = p;
    free(b->act);
    free(b->unp);
    free(b);
}

static void bufs_init(void) {
    if (pthread_key_create(&bufs_key, bufs_free) != 0) bufs_key = (pthread_key_t)-1;
}

static call_bufs *thread_bufs(void) {
    pthread_once(&bufs_once, bufs_init);
    if (bufs_key == (pthread_key_t)-1) return NULL;
    call_bufs *b = pthread_getspecific(bufs_key);
    if (!b && (b = calloc(1, sizeof(*b))) && pthread_setspecific(bufs_key, b) != 0) {
        free(b);
        b = NULL;
    }
    return b;
}

/* Makes *p hold at least need bytes; false on OOM (*p unchanged). */
static bool grow(void **p, size_t *cap, size_t need) {
    if (need <= *cap) return true;
    void *np = realloc(*p, need);
    if (!np) return false;
    *p = np;
    *cap = need;
    return true;
}

AVX2 static void avx2_matmul(tp_pool *pool, const kern_mat *w, const float *x, size_t ldx, float *y,
                             size_t ldy, int n_tok) {
    if (n_tok <= 0) return;
    mm_kind kind = kind_of(w->type);
    call_bufs *bufs = kind == MM_REF ? NULL : thread_bufs();
    if (!bufs) {
        kern_ref_matmul(pool, w, x, ldx, y, ldy, n_tok); /* needs no memory */
        return;
    }
    const uint8_t *xq = NULL;
    size_t stride = 0;
    if (kind == MM_Q8 || kind == MM_Q8K) {
        stride = kind == MM_Q8 ? (size_t)(w->n_cols / 32) * sizeof(act_q8)
                               : (size_t)(w->n_cols / 256) * sizeof(act_q8k);
        if (stride > SIZE_MAX / (size_t)n_tok ||
            !grow(&bufs->act, &bufs->act_bytes, stride * (size_t)n_tok)) {
            kern_ref_matmul(pool, w, x, ldx, y, ldy, n_tok);
            return;
        }
        for (int t = 0; t < n_tok; t++) {
            void *dst = (uint8_t *)bufs->act + stride * (size_t)t;
            if (kind == MM_Q8)
                quantize_act(x + (size_t)t * ldx, w->n_cols, dst);
            else
                quantize_act_k(x + (size_t)t * ldx, w->n_cols, dst);
        }
        xq = bufs->act;
    }
    int64_t tile = w->n_rows / (4 * (int64_t)tp_n_threads(pool));
    if (tile > TILE_ROWS) tile = TILE_ROWS;
    if (tile < 1) tile = 1;
    mm_job j = {w, (int)tile, x, ldx, xq, stride, y, ldy, n_tok, NULL, 0};
    size_t per = 0;
    if (n_tok >= UNPACK_MIN_TOKENS && (w->type == HT_Q4_0 || w->type == HT_Q5_0))
        per = unpacked_bytes(w->n_cols) * TILE_ROWS;
    if (per && per <= SIZE_MAX / (size_t)tp_n_threads(pool) &&
        grow(&bufs->unp, &bufs->unp_bytes, per * (size_t)tp_n_threads(pool))) {
        j.unp = bufs->unp;
        j.unp_bytes = per;
    }
    tp_run(pool, mm_task, &j, (int)((w->n_rows + tile - 1) / tile));
}

const kern_ops kern_ops_avx2 = {
    .name = "avx2",
    .matmul = avx2_matmul,
    .rmsnorm = kern_ref_rmsnorm,
    .softmax = kern_ref_softmax,
    .swiglu = kern_ref_swiglu,
    .rope = kern_ref_rope,
    .attention = kern_ref_attention,
};

/* CPUID: AVX2 (leaf 7 EBX bit 5), FMA (leaf 1 ECX bit 12), F16C (ECX bit
 * 29), and the OS saving YMM state (OSXSAVE, XCR0 bits 1-2). */
bool kern_avx2_supported(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    bool fma = c & (1u << 12), f16c = c & (1u << 29), osxsave = c & (1u << 27);
    if (!fma || !f16c || !osxsave) return false;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return b & (1u << 5);
}

#else /* not x86-64: no such variant */

#include "kernels/kernels.h"
const kern_ops kern_ops_avx2 = {.name = "avx2"};
bool kern_avx2_supported(void) {
    return false;
}

#endif
