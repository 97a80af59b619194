/* AVX2 + FMA + F16C kernels (x86-64), chosen when the CPU has them.
 *
 * matmul is the only op that differs from the reference:
 *   F32, F16 weights: F32 activations, FMA dot products (same values as ref
 *     up to summation order).
 *   Q8_0, Q4_0, Q4_K, Q6_K weights: activations are quantized once per call
 *     to 8-bit blocks of 32 (x ~ dx * qx, dx = max|x| / 127), and each block
 *     product is an integer dot product (maddubs) scaled in F32 -- what the
 *     reference runtime does too; this is the "fast" tier of the golden tests.
 *   other types: the reference matmul.
 * Everything else is the reference code. Functions carry a target attribute,
 * so the file builds without -mavx2 and only runs where the CPU has AVX2. */
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

/* x[0..n) (n a multiple of 32) -> n/32 blocks. */
AVX2 static void quantize_act(const float *x, int64_t n, act_q8 *out) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + 32 * b;
        __m256 v[4], mx = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v[k]));
        }
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        float amax = _mm_cvtss_f32(m);
        float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
        __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        for (int k = 0; k < 4; k++)
            q[k] = _mm256_cvtps_epi32(_mm256_round_ps(
                _mm256_mul_ps(v[k], vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        int32_t sum =
            hsum8i(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
        /* pack 32 int32 -> 32 int8, restoring order after the lane-wise packs */
        __m256i p01 = _mm256_packs_epi32(q[0], q[1]), p23 = _mm256_packs_epi32(q[2], q[3]);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        out[b].d = d;
        out[b].sum = sum;
        _mm256_storeu_si256((__m256i *)out[b].qs, p);
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

/* Q4_K: 144-byte superblocks of 256 {f16 d, f16 dmin, scales[12], qs[128]};
 * sub-block j (32 values) = d*sc_j*q - dmin*m_j, q a nibble: sub-blocks 2i and
 * 2i+1 are the low and high nibbles of qs[32i..32i+32). */
static inline void k4_scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

AVX2 static float dot_q4_K(const uint8_t *w, const act_q8 *a, int64_t nsb) {
    __m256 acc = _mm256_setzero_ps();
    float mins = 0;
    const __m256i m4 = _mm256_set1_epi8(0xf);
    for (int64_t s = 0; s < nsb; s++, w += 144, a += 8) {
        float d = f16(rd16(w)), dmin = f16(rd16(w + 2));
        const uint8_t *scales = w + 4, *qs = w + 16;
        for (int i = 0; i < 4; i++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * i));
            __m256i lo = _mm256_and_si256(v, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            for (int h = 0; h < 2; h++) {
                int j = 2 * i + h, sc, m;
                k4_scale_min(j, scales, &sc, &m);
                const act_q8 *ab = &a[j];
                __m256i qa = _mm256_loadu_si256((const __m256i *)ab->qs);
                /* nibbles are unsigned: maddubs directly */
                __m256i p = _mm256_maddubs_epi16(h ? hi : lo, qa);
                p = _mm256_madd_epi16(p, _mm256_set1_epi16(1));
                /* same arithmetic as dot_unpacked_rows (bitwise equal results) */
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * (float)sc * ab->d),
                                      acc);
                mins += dmin * (float)m * ab->d * (float)ab->sum;
            }
        }
    }
    return hsum8(acc) - mins;
}

/* Q6_K: 210-byte superblocks of 256 {ql[128], qh[64], int8 scales[16], f16 d};
 * value = d * scale[l/16] * (6-bit q - 32), see the reference dequantizer
 * for the bit layout. */
AVX2 static float dot_q6_K(const uint8_t *w, const act_q8 *a, int64_t nsb) {
    __m256 acc = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0xf), m3 = _mm256_set1_epi8(3);
    const __m256i off = _mm256_set1_epi8(32);
    for (int64_t s = 0; s < nsb; s++, w += 210, a += 8) {
        const uint8_t *ql = w, *qh = w + 128;
        const int8_t *sc = (const int8_t *)(w + 192);
        float d = f16(rd16(w + 208));
        for (int n = 0; n < 2; n++, ql += 64, qh += 32, sc += 8) {
            __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i h = _mm256_loadu_si256((const __m256i *)qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(h, m3), 4));
            q[1] = _mm256_or_si256(
                _mm256_and_si256(l1, m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m3), 4));
            q[2] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m3), 4));
            q[3] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m3), 4));
            for (int k = 0; k < 4; k++) {
                const act_q8 *ab = &a[4 * n + k];
                __m256i qs = _mm256_sub_epi8(q[k], off); /* -32..31 */
                __m256i qa = _mm256_loadu_si256((const __m256i *)ab->qs);
                /* values 0..15 use scale sc[2k], 16..31 sc[2k+1]; the same
                 * arithmetic as dot_unpacked_rows, so batches and single tokens agree
                 * bitwise */
                __m256 sv = _mm256_set_m128(_mm_set1_ps(d * (float)sc[2 * k + 1] * ab->d),
                                            _mm_set1_ps(d * (float)sc[2 * k] * ab->d));
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8(qs, qa)), sv, acc);
            }
        }
    }
    return hsum8(acc);
}

/* ---- batches: weight rows unpacked once, used for every token --------- */

/* A weight row as unsigned bytes u[i] with, per block b of 32, a lane-scale
 * vector S[b] = {s_lo x4, s_hi x4} (the scales of its two halves of 16) and
 * a min term mn[b]: w[i] = s * (u[i] - off) - mn[b], off = 8 (Q4_0), 32
 * (Q6_K) or 0 (Q4_K). For a batch, unpacking nibbles once per row and then
 * running plain u8 x s8 dot products beats unpacking again for every token.
 * The integer sums and every float operation (S * dx, FMA per block in
 * block order, minus the min terms) are those of the single-token dot_q*
 * functions above, so a token gets bitwise the same result alone or in a
 * batch. */
typedef struct unpacked {
    uint8_t *u; /* [n] */
    float *S;   /* [n/32][8] */
    float *mn;  /* [n/32] */
} unpacked;

static size_t unpacked_bytes(int64_t n) {
    return sizeof(float) * (size_t)(n / 32) * 9 + (size_t)n;
}

static unpacked unpacked_at(uint8_t *p, int64_t n) {
    unpacked u;
    u.S = (float *)p;
    u.mn = u.S + 8 * (n / 32);
    u.u = (uint8_t *)(u.mn + n / 32);
    return u;
}

static void set_S(float *S, float lo, float hi) {
    for (int i = 0; i < 4; i++) {
        S[i] = lo;
        S[4 + i] = hi;
    }
}

AVX2 static void unpack_q4_0(const uint8_t *w, int64_t n, unpacked *u) {
    for (int64_t b = 0; b < n / 32; b++, w += 18) {
        float d = f16(rd16(w));
        for (int i = 0; i < 16; i++) {
            u->u[32 * b + i] = w[2 + i] & 0xf;
            u->u[32 * b + 16 + i] = w[2 + i] >> 4;
        }
        set_S(u->S + 8 * b, d, d);
        u->mn[b] = 0;
    }
}

AVX2 static void unpack_q4_K(const uint8_t *w, int64_t n, unpacked *u) {
    for (int64_t sb = 0; sb < n / 256; sb++, w += 144) {
        float d = f16(rd16(w)), dmin = f16(rd16(w + 2));
        const uint8_t *qs = w + 16;
        uint8_t *q = u->u + 256 * sb;
        for (int i = 0; i < 4; i++)
            for (int l = 0; l < 32; l++) {
                q[64 * i + l] = qs[32 * i + l] & 0xf;
                q[64 * i + 32 + l] = qs[32 * i + l] >> 4;
            }
        for (int j = 0; j < 8; j++) {
            int sc, m;
            k4_scale_min(j, w + 4, &sc, &m);
            float s = d * (float)sc;
            set_S(u->S + 8 * (8 * sb + j), s, s);
            u->mn[8 * sb + j] = dmin * (float)m;
        }
    }
}

AVX2 static void unpack_q6_K(const uint8_t *w, int64_t n, unpacked *u) {
    for (int64_t sb = 0; sb < n / 256; sb++, w += 210) {
        const uint8_t *ql = w, *qh = w + 128;
        const int8_t *sc = (const int8_t *)(w + 192);
        float d = f16(rd16(w + 208));
        uint8_t *q = u->u + 256 * sb;
        for (int h = 0; h < 2; h++, ql += 64, qh += 32, q += 128)
            for (int l = 0; l < 32; l++) {
                q[l] = (uint8_t)((ql[l] & 0xf) | ((qh[l] & 3) << 4));
                q[l + 32] = (uint8_t)((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4));
                q[l + 64] = (uint8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
                q[l + 96] = (uint8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
            }
        /* block 4h+k of the superblock uses scales sc[8h+2k], sc[8h+2k+1] */
        for (int b = 0; b < 8; b++) {
            set_S(u->S + 8 * (8 * sb + b), d * (float)sc[2 * b], d * (float)sc[2 * b + 1]);
            u->mn[8 * sb + b] = 0;
        }
    }
}

#define MICRO_ROWS 4

/* y[r] = row r . token, for nr <= MICRO_ROWS unpacked rows; off as above. */
AVX2 static inline __attribute__((always_inline)) void
dot_unpacked_rows(const unpacked *u, const int nr, const act_q8 *a, int64_t nb, const int off_shift,
                  const bool has_mins, float *y) {
    __m256 acc[MICRO_ROWS];
    float mins[MICRO_ROWS];
    for (int r = 0; r < MICRO_ROWS; r++) {
        acc[r] = _mm256_setzero_ps();
        mins[r] = 0;
    }
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
            if (has_mins) mins[r] += u[r].mn[b] * a[b].d * (float)a[b].sum;
        }
    }
    for (int r = 0; r < nr; r++) y[r] = hsum8(acc[r]) - mins[r];
}

/* dot_unpacked_rows over nr rows, MICRO_ROWS at a time, per weight type
 * (off = 8, 0, 32; Q4_K alone has min terms). */
#define ROWS_FN(name, off_shift, has_mins)                                                         \
    AVX2 static void name(const unpacked *u, int nr, const act_q8 *a, int64_t nb, float *y) {      \
        int r = 0;                                                                                 \
        for (; r + MICRO_ROWS <= nr; r += MICRO_ROWS)                                              \
            dot_unpacked_rows(u + r, MICRO_ROWS, a, nb, off_shift, has_mins, y + r);               \
        for (; r < nr; r++) dot_unpacked_rows(u + r, 1, a, nb, off_shift, has_mins, y + r);        \
    }
ROWS_FN(rows_q4_0, 3, false)
ROWS_FN(rows_q4_K, 0, true)
ROWS_FN(rows_q6_K, 5, false)

/* ---- matmul ----------------------------------------------------------- */

#define TILE_ROWS 16

typedef struct mm_job {
    const kern_mat *w;
    int tile;
    const float *x;
    size_t ldx;
    const act_q8 *xq; /* [n_tok][n_cols/32] when quantized */
    float *y;
    size_t ldy;
    int n_tok;
    uint8_t *unp;     /* per thread: TILE_ROWS unpacked rows, or NULL */
    size_t unp_bytes; /* per thread */
} mm_job;

AVX2 static void mm_task(void *ctx, int task, int thread) {
    (void)thread;
    const mm_job *j = ctx;
    const kern_mat *w = j->w;
    int64_t r0 = (int64_t)task * j->tile;
    int nr = (int)(w->n_rows - r0 < j->tile ? w->n_rows - r0 : j->tile);
    const uint8_t *base = (const uint8_t *)w->data + (size_t)r0 * w->row_bytes;
    const int64_t n = w->n_cols, nb = n / 32;
    if (j->unp) { /* batch: unpack the tile's rows once */
        uint8_t *mine = j->unp + (size_t)thread * j->unp_bytes;
        size_t rb = unpacked_bytes(n);
        unpacked u[TILE_ROWS];
        for (int r = 0; r < nr; r++) {
            u[r] = unpacked_at(mine + (size_t)r * rb, n);
            const uint8_t *row = base + (size_t)r * w->row_bytes;
            if (w->type == HT_Q4_0)
                unpack_q4_0(row, n, &u[r]);
            else if (w->type == HT_Q4_K)
                unpack_q4_K(row, n, &u[r]);
            else
                unpack_q6_K(row, n, &u[r]);
        }
        for (int t = 0; t < j->n_tok; t++) {
            const act_q8 *at = j->xq + (size_t)t * nb;
            float *yt = j->y + (size_t)t * j->ldy + r0;
            switch (w->type) { /* constant arguments: unrolled, accumulators in registers */
            case HT_Q4_0:
                rows_q4_0(u, nr, at, nb, yt);
                break;
            case HT_Q4_K:
                rows_q4_K(u, nr, at, nb, yt);
                break;
            default:
                rows_q6_K(u, nr, at, nb, yt);
                break;
            }
        }
        return;
    }
    for (int t = 0; t < j->n_tok; t++) {
        const float *xt = j->x + (size_t)t * j->ldx;
        const act_q8 *at = j->xq ? j->xq + (size_t)t * nb : NULL;
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
                v = dot_q8_0(row, at, nb);
                break;
            case HT_Q4_0:
                v = dot_q4_0(row, at, nb);
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
    void *act; /* act_q8 [n_tok][n_cols/32] */
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

#define UNPACK_MIN_TOKENS 4 /* below this, unpacking per token is cheaper */

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
    bool quant =
        w->type == HT_Q8_0 || w->type == HT_Q4_0 || w->type == HT_Q4_K || w->type == HT_Q6_K;
    if (!quant && w->type != HT_F32 && w->type != HT_F16) {
        kern_ref_matmul(pool, w, x, ldx, y, ldy, n_tok);
        return;
    }
    call_bufs *bufs = thread_bufs();
    const act_q8 *xq = NULL;
    if (quant) {
        size_t nb = (size_t)(w->n_cols / 32);
        if (!bufs || nb * (size_t)n_tok > SIZE_MAX / sizeof(act_q8) ||
            !grow(&bufs->act, &bufs->act_bytes, nb * (size_t)n_tok * sizeof(act_q8))) {
            kern_ref_matmul(pool, w, x, ldx, y, ldy, n_tok); /* needs no memory */
            return;
        }
        for (int t = 0; t < n_tok; t++)
            quantize_act(x + (size_t)t * ldx, w->n_cols, (act_q8 *)bufs->act + nb * t);
        xq = bufs->act;
    }
    int64_t tile = w->n_rows / (4 * (int64_t)tp_n_threads(pool));
    if (tile > TILE_ROWS) tile = TILE_ROWS;
    if (tile < 1) tile = 1;
    mm_job j = {w, (int)tile, x, ldx, xq, y, ldy, n_tok, NULL, 0};
    if (n_tok >= UNPACK_MIN_TOKENS &&
        (w->type == HT_Q4_0 || w->type == HT_Q4_K || w->type == HT_Q6_K)) {
        size_t per = unpacked_bytes(w->n_cols) * TILE_ROWS;
        if (grow(&bufs->unp, &bufs->unp_bytes, per * (size_t)tp_n_threads(pool))) {
            j.unp = bufs->unp;
            j.unp_bytes = per;
        }
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
