/* AVX2 tiles for the K-quants Q4_K and Q6_K (see avx2_impl.h).
 *
 * Activations are quantized to 8-bit blocks of 32, grouped per 256 (act_q8k)
 * so that a superblock's 8 scale products are one vector; each block product
 * is an integer dot product scaled in F32 (the golden tests' "fast" tier);
 * Q6_K's sub-block scales are applied in the integer domain. Batches run 4
 * tokens per pass over a row. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/avx2_impl.h"

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
AVX2 static void quantize_act_k(const float *x, int64_t n, void *outv) {
    act_q8k *out = outv;
    for (int64_t b = 0; b < n / 256; b++)
        for (int j = 0; j < 8; j++) {
            int32_t sum;
            avx2_quantize32(x + 256 * b + 32 * j, -1.0f, &out[b].d[j], &sum, out[b].qs + 32 * j);
            out[b].dsum[j] = out[b].d[j] * (float)sum;
            for (int h = 0; h < 2; h++) {
                int s16 = 0;
                for (int i = 0; i < 16; i++) s16 += out[b].qs[32 * j + 16 * h + i];
                out[b].sum16[2 * j + h] = (int16_t)s16;
            }
        }
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
    *dsc = _mm256_mul_ps(_mm256_set1_ps(avx2_f16(avx2_rd16(w))), sc);
    *dmn = _mm256_mul_ps(_mm256_set1_ps(avx2_f16(avx2_rd16(w + 2))), mn);
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
    for (int t = 0; t < nt; t++) y[t] = avx2_hsum8(acc[t]) - avx2_hsum8(accm[t]);
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
        const float d = avx2_f16(avx2_rd16(w + 208));
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
    for (int t = 0; t < nt; t++) y[t] = avx2_hsum8(acc[t]) - 32.0f * avx2_hsum8(acco[t]);
}

AVX2 static float dot_q6_K(const uint8_t *w, const act_q8k *a, int64_t nsb) {
    float y;
    q6_K_tokens(w, &a, 1, nsb, &y);
    return y;
}

AVX2 static void dot_q6_K_x4(const uint8_t *w, const act_q8k *const *a, int64_t nsb, float *y) {
    q6_K_tokens(w, a, 4, nsb, y);
}

static size_t act_q8k_bytes(int64_t n) {
    return (size_t)(n / 256) * sizeof(act_q8k);
}

static const avx2_act act_q8k_fmt = {32, act_q8k_bytes, quantize_act_k};

#define MAX_ROWS   16
#define MAX_TOKENS 64

#define TILE_K(name, dot_fn, dot_x4_fn)                                                            \
    AVX2 static void name(const uint8_t *w, size_t row_bytes, int nr, const uint8_t *act,          \
                          size_t act_stride, int nt, int64_t n, float *y, size_t ldy,              \
                          uint8_t *scratch) {                                                      \
        (void)scratch;                                                                             \
        int t = 0;                                                                                 \
        for (; t + 4 <= nt; t += 4) {                                                              \
            const act_q8k *at[4];                                                                  \
            for (int k = 0; k < 4; k++)                                                            \
                at[k] = (const act_q8k *)(act + (size_t)(t + k) * act_stride);                     \
            for (int r = 0; r < nr; r++) {                                                         \
                float v[4];                                                                        \
                dot_x4_fn(w + (size_t)r * row_bytes, at, n / 256, v);                              \
                for (int k = 0; k < 4; k++) y[(size_t)(t + k) * ldy + r] = v[k];                   \
            }                                                                                      \
        }                                                                                          \
        for (; t < nt; t++)                                                                        \
            for (int r = 0; r < nr; r++)                                                           \
                y[(size_t)t * ldy + r] =                                                           \
                    dot_fn(w + (size_t)r * row_bytes,                                              \
                           (const act_q8k *)(act + (size_t)t * act_stride), n / 256);              \
    }
TILE_K(tile_q4_K, dot_q4_K, dot_q4_K_x4)
TILE_K(tile_q6_K, dot_q6_K, dot_q6_K_x4)

static const avx2_type type_q4_K = {&act_q8k_fmt, tile_q4_K, MAX_ROWS, MAX_TOKENS, NULL};
static const avx2_type type_q6_K = {&act_q8k_fmt, tile_q6_K, MAX_ROWS, MAX_TOKENS, NULL};

const avx2_type *avx2_kq_type(ht_type t) {
    switch (t) {
    case HT_Q4_K:
        return &type_q4_K;
    case HT_Q6_K:
        return &type_q6_K;
    default:
        return NULL;
    }
}

#else

#include "kernels/avx2_impl.h"

#endif
