/* AVX2 tiles for F32, F16, Q8_0, Q4_0 and Q5_0 weights (see avx2_impl.h).
 *
 *   F32, F16: F32 activations, FMA dot products (the reference's values up to
 *     summation order; F16 converted with F16C).
 *   Q8_0, Q4_0, Q5_0: activations quantized to act_q8 blocks of 32 (x ~ d *
 *     qx, d = max|x| / 127), each block product an integer dot product
 *     (maddubs/madd) scaled in F32, as the reference runtime does: the
 *     "fast" tier of the golden tests.
 *   Batches: Q8_0 rows run 4 tokens per pass (each weight block loaded once
 *     for 4 tokens); Q4_0/Q5_0 rows are unpacked to bytes once per tile and
 *     then run 4 rows per activation load. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/avx2_impl.h"

/* An activation block: 32 values x[i] ~ d * qs[i]; sum = sum of qs. */
typedef struct act_q8 {
    float d;
    int32_t sum;
    int8_t qs[32];
} act_q8;

/* 32 signed bytes a (|a| <= 128) times 32 signed bytes b (|b| <= 127):
 * eight int32 partial sums. */
AVX2 static inline __m256i dot_i8(__m256i a, __m256i b) {
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

static size_t act_q8_bytes(int64_t n) {
    return (size_t)(n / 32) * sizeof(act_q8);
}

/* x[0..n) (n a multiple of 32) -> n/32 blocks. */
AVX2 static void quantize_act(const float *x, int64_t n, void *out) {
    act_q8 *o = out;
    for (int64_t b = 0; b < n / 32; b++)
        avx2_quantize32(x + 32 * b, -1.0f, &o[b].d, &o[b].sum, o[b].qs);
}

static const avx2_act act_q8_fmt = {32, act_q8_bytes, quantize_act};

AVX2 static float dot_f32(const float *w, const float *x, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    float s = avx2_hsum8(_mm256_add_ps(a0, a1));
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
    float s = avx2_hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += avx2_f16(w[i]) * x[i];
    return s;
}

/* Q8_0: 34-byte blocks {f16 d, int8 qs[32]}. */
AVX2 static float dot_q8_0(const uint8_t *w, const act_q8 *a, int64_t nb) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++, w += 34) {
        __m256i qw = _mm256_loadu_si256((const __m256i *)(w + 2));
        __m256i qa = _mm256_loadu_si256((const __m256i *)a[b].qs);
        __m256 s = _mm256_cvtepi32_ps(dot_i8(qw, qa));
        acc = _mm256_fmadd_ps(s, _mm256_set1_ps(avx2_f16(avx2_rd16(w)) * a[b].d), acc);
    }
    return avx2_hsum8(acc);
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
        float dw = avx2_f16(avx2_rd16(w));
        for (int t = 0; t < 4; t++) {
            __m256i qa = _mm256_loadu_si256((const __m256i *)a[t][b].qs);
            __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(qa, qw)), ones);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * a[t][b].d), acc[t]);
        }
    }
    for (int t = 0; t < 4; t++) y[t] = avx2_hsum8(acc[t]);
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
        acc = _mm256_fmadd_ps(s, _mm256_set1_ps(avx2_f16(avx2_rd16(w)) * a[b].d), acc);
    }
    return avx2_hsum8(acc);
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
        acc = _mm256_fmadd_ps(s, _mm256_set1_ps(avx2_f16(avx2_rd16(w)) * a[b].d), acc);
    }
    return avx2_hsum8(acc);
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
        float d = avx2_f16(avx2_rd16(w));
        set_S(u->S + 8 * b, d, d);
    }
}

AVX2 static void unpack_q5_0(const uint8_t *w, int64_t n, unpacked *u) {
    for (int64_t b = 0; b < n / 32; b++, w += 22) {
        _mm256_storeu_si256((__m256i *)(u->u + 32 * b), q5_0_u(w));
        float d = avx2_f16(avx2_rd16(w));
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
    for (int r = 0; r < nr; r++) y[r] = avx2_hsum8(acc[r]);
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

/* ---- tiles ------------------------------------------------------------ */

#define MAX_ROWS   16
#define MAX_TOKENS 64

AVX2 static void tile_f32(const uint8_t *w, size_t row_bytes, int nr, const uint8_t *act,
                          size_t act_stride, int nt, int64_t n, float *y, size_t ldy,
                          uint8_t *scratch) {
    (void)scratch;
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++)
            y[(size_t)t * ldy + r] = dot_f32((const float *)(w + (size_t)r * row_bytes),
                                             (const float *)(act + (size_t)t * act_stride), n);
}

AVX2 static void tile_f16(const uint8_t *w, size_t row_bytes, int nr, const uint8_t *act,
                          size_t act_stride, int nt, int64_t n, float *y, size_t ldy,
                          uint8_t *scratch) {
    (void)scratch;
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++)
            y[(size_t)t * ldy + r] = dot_f16((const uint16_t *)(w + (size_t)r * row_bytes),
                                             (const float *)(act + (size_t)t * act_stride), n);
}

AVX2 static void tile_q8_0(const uint8_t *w, size_t row_bytes, int nr, const uint8_t *act,
                           size_t act_stride, int nt, int64_t n, float *y, size_t ldy,
                           uint8_t *scratch) {
    (void)scratch;
    int t = 0;
    for (; t + 4 <= nt; t += 4) { /* 4 tokens per pass over a row */
        const act_q8 *at[4];
        for (int k = 0; k < 4; k++) at[k] = (const act_q8 *)(act + (size_t)(t + k) * act_stride);
        for (int r = 0; r < nr; r++) {
            float v[4];
            dot_q8_0_x4(w + (size_t)r * row_bytes, at, n / 32, v);
            for (int k = 0; k < 4; k++) y[(size_t)(t + k) * ldy + r] = v[k];
        }
    }
    for (; t < nt; t++)
        for (int r = 0; r < nr; r++)
            y[(size_t)t * ldy + r] = dot_q8_0(
                w + (size_t)r * row_bytes, (const act_q8 *)(act + (size_t)t * act_stride), n / 32);
}

#define UNPACK_MIN_TOKENS 4 /* below this, unpacking per token is cheaper */

static size_t scratch_unpacked(int64_t n) {
    return unpacked_bytes(n) * MAX_ROWS;
}

/* Q4_0 / Q5_0: for a batch, the tile's rows unpacked once into scratch. */
#define TILE_UNPACKED(name, T, dot_fn, unpack_fn, rows_fn)                                         \
    AVX2 static void name(const uint8_t *w, size_t row_bytes, int nr, const uint8_t *act,          \
                          size_t act_stride, int nt, int64_t n, float *y, size_t ldy,              \
                          uint8_t *scratch) {                                                      \
        if (nt < UNPACK_MIN_TOKENS) {                                                              \
            for (int t = 0; t < nt; t++)                                                           \
                for (int r = 0; r < nr; r++)                                                       \
                    y[(size_t)t * ldy + r] =                                                       \
                        dot_fn(w + (size_t)r * row_bytes,                                          \
                               (const act_q8 *)(act + (size_t)t * act_stride), n / 32);            \
            return;                                                                                \
        }                                                                                          \
        size_t rb = unpacked_bytes(n);                                                             \
        unpacked u[MAX_ROWS];                                                                      \
        for (int r = 0; r < nr; r++) {                                                             \
            u[r] = unpacked_at(scratch + (size_t)r * rb, n);                                       \
            unpack_fn(w + (size_t)r * row_bytes, n, &u[r]);                                        \
        }                                                                                          \
        for (int t = 0; t < nt; t++)                                                               \
            rows_fn(u, nr, (const act_q8 *)(act + (size_t)t * act_stride), n / 32,                 \
                    y + (size_t)t * ldy);                                                          \
    }
TILE_UNPACKED(tile_q4_0, HT_Q4_0, dot_q4_0, unpack_q4_0, rows_q4_0)
TILE_UNPACKED(tile_q5_0, HT_Q5_0, dot_q5_0, unpack_q5_0, rows_q5_0)

static const avx2_type type_f32 = {NULL, tile_f32, MAX_ROWS, MAX_TOKENS, NULL};
static const avx2_type type_f16 = {NULL, tile_f16, MAX_ROWS, MAX_TOKENS, NULL};
static const avx2_type type_q8_0 = {&act_q8_fmt, tile_q8_0, MAX_ROWS, MAX_TOKENS, NULL};
static const avx2_type type_q4_0 = {&act_q8_fmt, tile_q4_0, MAX_ROWS, MAX_TOKENS, scratch_unpacked};
static const avx2_type type_q5_0 = {&act_q8_fmt, tile_q5_0, MAX_ROWS, MAX_TOKENS, scratch_unpacked};

const avx2_type *avx2_q_type(ht_type t) {
    switch (t) {
    case HT_F32:
        return &type_f32;
    case HT_F16:
        return &type_f16;
    case HT_Q8_0:
        return &type_q8_0;
    case HT_Q4_0:
        return &type_q4_0;
    case HT_Q5_0:
        return &type_q5_0;
    default:
        return NULL;
    }
}

#else

#include "kernels/avx2_impl.h"

#endif
