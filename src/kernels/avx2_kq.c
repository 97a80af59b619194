/* AVX2 tiles for the K-quants Q2_K, Q3_K, Q4_K, Q5_K and Q6_K (see avx2_impl.h).
 *
 * Activations (act_k): 8-bit blocks of 32 with one float scale each (the
 * golden tests' "fast" tier; one scale per 256, as the reference runtime's
 * Q8_K, was measured too coarse: llama3-bpe.q4_k_m fell to top-1 0.906),
 * grouped per 256 with the integer sums of every 16 quants.
 *
 * Every type decodes a superblock of 256 weights to one form (k_sb):
 *   q[j]    the 32 unsigned values of sub-block j (elements 32j..32j+32)
 *   scv[k]  int16 multipliers of sub-blocks 2k, 2k+1: the per-16 scales of
 *           Q2_K, Q3_K, Q6_K in the integer domain (1 for Q4_K, Q5_K)
 *   aux     per-16 int16 that multiply the activations' 16-sums: Q2_K's mins,
 *           Q3_K's and Q6_K's offsets (4 and 32 times the scale)
 *   d, dm   their float scales; Q4_K, Q5_K: dsc_j = d * sc_j, dmn_j = dmin * m_j
 * Per (row, token) and superblock: maddubs of each sub-block, then a
 * transposing reduction by unpacks and adds (no phadd, slow on Zen 3) with
 * the int16 sums turned into int32 (madd with scv) as late as they fit, to
 * S: lane j = sub-block j's exact integer dot. Then with da_j the
 * activations' block scales, one or two FMAs of 8 lanes:
 *   Q4_K, Q5_K:  acc += cvt(S) * (dsc * da);  accm += dmn * (da_j * sum_j)
 *   Q3_K, Q6_K:  acc += cvt(S - madd(aux, bsum16)) * (d * da)
 *   Q2_K:        acc += cvt(S) * (d * da);  accm += cvt(madd(aux, bsum16)) * (dm * da)
 * and y = hsum(acc) - hsum(accm). The integers are exact (their bounds are
 * in the comments where they are formed; test_kquant runs the extremes), so
 * however a path computes them -- decoding in registers for one token, or
 * decoding a block of rows once into scratch and running register-tiled
 * rows x tokens micro-kernels for a batch -- a (row, token) gets bitwise the
 * same float operations in the same order, whatever nr, nt or the thread.
 *
 * Q4_K and Q6_K matrices repacked at load (KERN_LAYOUT_R8, repack.h) have tiles of
 * their own (r8_*, near the end): 8 rows' dots in one vector's lanes, the
 * same integers and float steps per (row, token), so the values do not
 * depend on the layout. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/avx2_impl.h"
#include "kernels/repack.h"

/* Built twice, like avx2_q.c: avx512_kq.c builds it with HEARTH_VNNI for
 * the avx512 variant (avx512_kq_type), where Q4_K, Q5_K and Q6_K batches run
 * 16-row groups with 512-bit vpdpbusd (k16_*, below) computing every (row,
 * token) with the same integers and float steps as here: bitwise the same
 * values. */
#if defined(HEARTH_VNNI) && defined(HEARTH_VNNI_EMULATE)
/* tests/kernels/avx512emu_kq.c: on any AVX2 CPU (see avx512_emu.h) */
#include "kernels/avx512_emu.h"
#define KQ_TYPE_OF    avx512emu_kq_type
#define KQ_R8_TYPE_OF avx512emu_kq_r8_type
#define K_DPBUSD      emu_dpbusd
#define K_R16         1
#elif defined(HEARTH_VNNI)
#undef AVX2
#define AVX2          __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define KQ_TYPE_OF    avx512_kq_type
#define KQ_R8_TYPE_OF avx512_kq_r8_type
#define K_DPBUSD      _mm256_dpbusd_epi32
#define K_R16         1
#else
#define KQ_TYPE_OF    avx2_kq_type
#define KQ_R8_TYPE_OF avx2_kq_r8_type
#endif

#define AI __attribute__((always_inline))
/* fixed-count loops over vectors: unrolled, so arrays of vectors stay in registers */
#define UNROLL    _Pragma("GCC unroll 16")
#define NO_UNROLL _Pragma("GCC unroll 1")

/* One token's 256 activations in blocks of 32:
 * x[32j + i] ~ d[j] * qs[32j + i], d[j] = max|x| / 127 over the block,
 * dsum[j] = d[j] * (sum of the block's qs), bsum[l] = sum of qs[16l..16l+16). */
typedef struct act_k {
    int8_t qs[256];
    int16_t bsum[16];
    float d[8];
    float dsum[8];
} act_k;

_Static_assert(sizeof(act_k) == 352, "act_k");

/* x[0..n) (n a multiple of 256) -> n/256 act_k. */
AVX2 static void quantize_act_k(const float *x, int64_t n, void *outv) {
    act_k *out = outv;
    for (int64_t b = 0; b < n / 256; b++) {
        act_k *o = &out[b];
        for (int j = 0; j < 8; j++) {
            int32_t sum;
            avx2_quantize32(x + 256 * b + 32 * j, -1.0f, &o->d[j], &sum, o->qs + 32 * j);
            o->dsum[j] = o->d[j] * (float)sum;
        }
        for (int l = 0; l < 16; l++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += o->qs[16 * l + i];
            o->bsum[l] = (int16_t)s;
        }
    }
}

/* SIZE_MAX where it would overflow: the driver then falls back to the reference. */
static size_t act_k_bytes(int64_t n) {
    const uint64_t nsb = (uint64_t)(n / 256);
    return nsb > SIZE_MAX / sizeof(act_k) ? SIZE_MAX : (size_t)nsb * sizeof(act_k);
}

static const avx2_act act_k_fmt = {32, act_k_bytes, quantize_act_k, 0};

/* ---- decoding one superblock to the common form ----------------------- */

enum { K_Q2, K_Q3, K_Q4, K_Q5, K_Q6 };

static const int k_block_bytes[] = {84, 110, 144, 176, 210};

/* Whether the type's aux term is an offset (subtracted in the integers). */
#define K_OFFSET(ty) ((ty) == K_Q3 || (ty) == K_Q6)
/* Whether sub-block scales are per 32 and applied in float (Q4_K, Q5_K). */
#define K_FLOAT_SCALES(ty) ((ty) == K_Q4 || (ty) == K_Q5)

/* scv[k] for per-16 scales (sc16 = the 16 scales as int16): the
 * multipliers of k_pair's int16 sums, which belong to 16-groups 4k, 4k+2
 * (low 128 bits) and 4k+1, 4k+3 (high), in int16 pairs. */
AVX2 static inline AI void k_scv16(__m256i sc16, __m256i scv[4]) {
    const __m256i lo = _mm256_permute2x128_si256(sc16, sc16, 0x00);
    const __m256i hi = _mm256_permute2x128_si256(sc16, sc16, 0x11);
    UNROLL
    for (int k = 0; k < 2; k++) {
        const char a = (char)(8 * k), b = (char)(8 * k + 4), c = (char)(8 * k + 2),
                   e = (char)(8 * k + 6);
        const __m256i m = _mm256_setr_epi8(a, a + 1, a, a + 1, b, b + 1, b, b + 1, a, a + 1, a,
                                           a + 1, b, b + 1, b, b + 1, c, c + 1, c, c + 1, e, e + 1,
                                           e, e + 1, c, c + 1, c, c + 1, e, e + 1, e, e + 1);
        scv[k] = _mm256_shuffle_epi8(lo, m);
        scv[k + 2] = _mm256_shuffle_epi8(hi, m);
    }
}

/* A superblock decoded to the common form (in registers). */
typedef struct k_sb {
    __m256i q[8];    /* the values of sub-block j, unsigned */
    __m256i scv[4];  /* k_pair multipliers: per-16 scales, or 1 (Q4_K, Q5_K) */
    __m256i aux;     /* per-16 scale types: mins or offsets per 16, int16 */
    __m256 dsc, dmn; /* Q4_K, Q5_K: d * sc_j and dmin * m_j */
    float d, dm;     /* per-16 scale types: the scales of the integer sums */
} k_sb;

/* Q4_K / Q5_K {f16 d, f16 dmin, scales[12]} -> d * sc_j and dmin * m_j
 * (6-bit sc_j, m_j: for j < 4 the low 6 bits of scales[j] and
 * scales[j + 4]; for j >= 4 a nibble of scales[j + 4] under the top 2 bits
 * of scales[j - 4] and scales[j]), all in vector registers. */
AVX2 static inline AI void k4_scales(const uint8_t *w, k_sb *o) {
    const __m128i x = _mm_loadu_si128((const __m128i *)w);
    /* bytes: s0-3, s8-11, s4-7, s8-11 and (top bits) -, s0-3, -, s4-7 */
    const __m128i a = _mm_shuffle_epi8(
        x, _mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15));
    const __m128i b = _mm_shuffle_epi8(
        x, _mm_setr_epi8(-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11));
    const __m128i lo =
        _mm_and_si128(a, _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0));
    const __m128i hn = _mm_and_si128(
        _mm_srli_epi16(a, 4), _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15));
    const __m128i tb = _mm_and_si128(_mm_srli_epi16(b, 2), _mm_set1_epi8(0x30));
    const __m128i sm = _mm_or_si128(_mm_or_si128(lo, hn), tb); /* sc[0..7], m[0..7] */
    const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sm));
    const __m256 mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8)));
    const __m128 dd = _mm_cvtph_ps(x); /* d, dmin */
    o->dsc = _mm256_mul_ps(_mm256_broadcastss_ps(dd), sc);
    o->dmn = _mm256_mul_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(dd)), mn);
}

/* Q2_K: 84 bytes {scales[16] (low nibble scale, high min, per 16), qs[64],
 * f16 d, f16 dmin}; element 128h + 32p + l = (qs[32h + l] >> 2p) & 3, times
 * d * scale - dmin * min of its 16. */
AVX2 static inline AI void dec_q2_K(const uint8_t *w, k_sb *o) {
    const __m128i s = _mm_loadu_si128((const __m128i *)w);
    const __m128i m4 = _mm_set1_epi8(0xf);
    k_scv16(_mm256_cvtepu8_epi16(_mm_and_si128(s, m4)), o->scv);
    o->aux = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), m4));
    const __m256i m3 = _mm256_set1_epi8(3);
    UNROLL
    for (int h = 0; h < 2; h++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(w + 16 + 32 * h));
        o->q[4 * h + 0] = _mm256_and_si256(v, m3);
        o->q[4 * h + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 2), m3);
        o->q[4 * h + 2] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m3);
        o->q[4 * h + 3] = _mm256_and_si256(_mm256_srli_epi16(v, 6), m3);
    }
    o->d = avx2_f16(avx2_rd16(w + 80));
    o->dm = avx2_f16(avx2_rd16(w + 82));
}

/* Q3_K: 110 bytes {hmask[32], qs[64], scales[12] (16 6-bit, minus 32), f16
 * d}; element 128h + 32p + l = ((qs[32h + l] >> 2p) & 3) + 4 * (bit 4h + p
 * of hmask[l]) - 4, times d * scale of its 16. Stored unsigned (0..7); the
 * offset 4 is aux = 4 * scale. */
AVX2 static inline AI void dec_q3_K(const uint8_t *w, k_sb *o) {
    uint32_t u[3];
    memcpy(u, w + 96, 12);
    const uint32_t k1 = 0x03030303, k2 = 0x0f0f0f0f;
    const uint32_t a0 = (u[0] & k2) | ((u[2] & k1) << 4);
    const uint32_t a1 = (u[1] & k2) | (((u[2] >> 2) & k1) << 4);
    const uint32_t a2 = ((u[0] >> 4) & k2) | (((u[2] >> 4) & k1) << 4);
    const uint32_t a3 = ((u[1] >> 4) & k2) | (((u[2] >> 6) & k1) << 4);
    const __m128i s8 =
        _mm_sub_epi8(_mm_setr_epi32((int)a0, (int)a1, (int)a2, (int)a3), _mm_set1_epi8(32));
    const __m256i s16 = _mm256_cvtepi8_epi16(s8);
    k_scv16(s16, o->scv);
    o->aux = _mm256_slli_epi16(s16, 2);
    const __m256i m3 = _mm256_set1_epi8(3), b2 = _mm256_set1_epi8(4);
    const __m256i hm = _mm256_loadu_si256((const __m256i *)w);
    UNROLL
    for (int h = 0; h < 2; h++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(w + 32 + 32 * h));
        UNROLL
        for (int p = 0; p < 4; p++) {
            const int j = 4 * h + p;
            __m256i hb = j <= 2 ? _mm256_slli_epi16(hm, 2 - j) : _mm256_srli_epi16(hm, j - 2);
            __m256i lo = p ? _mm256_srli_epi16(v, 2 * p) : v;
            o->q[j] = _mm256_or_si256(_mm256_and_si256(lo, m3), _mm256_and_si256(hb, b2));
        }
    }
    o->d = avx2_f16(avx2_rd16(w + 108));
    o->dm = 0;
}

/* Q4_K: 144 bytes {f16 d, f16 dmin, scales[12], qs[128]}; sub-blocks 2i and
 * 2i+1 are the low and high nibbles of qs[32i..32i+32), value d * sc_j * q -
 * dmin * m_j. */
AVX2 static inline AI void dec_q4_K(const uint8_t *w, k_sb *o) {
    k4_scales(w, o);
    UNROLL
    for (int k = 0; k < 4; k++) o->scv[k] = _mm256_set1_epi16(1);
    const __m256i m4 = _mm256_set1_epi8(0xf);
    UNROLL
    for (int i = 0; i < 4; i++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(w + 16 + 32 * i));
        o->q[2 * i] = _mm256_and_si256(v, m4);
        o->q[2 * i + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
}

/* Q5_K: 176 bytes {f16 d, f16 dmin, scales[12], qh[32], qs[128]}: Q4_K's
 * nibbles plus 16 * (bit j of qh[l]) for element l of sub-block j. */
AVX2 static inline AI void dec_q5_K(const uint8_t *w, k_sb *o) {
    k4_scales(w, o);
    UNROLL
    for (int k = 0; k < 4; k++) o->scv[k] = _mm256_set1_epi16(1);
    const __m256i m4 = _mm256_set1_epi8(0xf), b4 = _mm256_set1_epi8(0x10);
    const __m256i hm = _mm256_loadu_si256((const __m256i *)(w + 16));
    UNROLL
    for (int i = 0; i < 4; i++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(w + 48 + 32 * i));
        UNROLL
        for (int k = 0; k < 2; k++) {
            const int j = 2 * i + k;
            __m256i hb = j <= 4 ? _mm256_slli_epi16(hm, 4 - j) : _mm256_srli_epi16(hm, j - 4);
            __m256i lo = k ? _mm256_srli_epi16(v, 4) : v;
            o->q[j] = _mm256_or_si256(_mm256_and_si256(lo, m4), _mm256_and_si256(hb, b4));
        }
    }
}

/* Q6_K: 210 bytes {ql[128], qh[64], int8 scales[16], f16 d}; half h of 128:
 * element 128h + 32k + l has the low nibble of ql[64h + l] (k = 0, 1: bytes
 * l, l + 32; k = 2, 3: their high nibbles) and bits 2k..2k+1 of qh[32h + l]
 * on top; value d * scale * (q - 32). The offset is aux = 32 * scale. */
AVX2 static inline AI void dec_q6_K(const uint8_t *w, k_sb *o) {
    const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 192)));
    k_scv16(s16, o->scv);
    o->aux = _mm256_slli_epi16(s16, 5);
    const __m256i m4 = _mm256_set1_epi8(0xf), m3 = _mm256_set1_epi8(0x30);
    UNROLL
    for (int h = 0; h < 2; h++) {
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(w + 64 * h));
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(w + 64 * h + 32));
        const __m256i hb = _mm256_loadu_si256((const __m256i *)(w + 128 + 32 * h));
        o->q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                          _mm256_and_si256(_mm256_slli_epi16(hb, 4), m3));
        o->q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                          _mm256_and_si256(_mm256_slli_epi16(hb, 2), m3));
        o->q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                          _mm256_and_si256(hb, m3));
        o->q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                          _mm256_and_si256(_mm256_srli_epi16(hb, 2), m3));
    }
    o->d = avx2_f16(avx2_rd16(w + 208));
    o->dm = 0;
}

AVX2 static inline AI void k_decode(const int ty, const uint8_t *w, k_sb *o) {
    switch (ty) {
    case K_Q2:
        dec_q2_K(w, o);
        break;
    case K_Q3:
        dec_q3_K(w, o);
        break;
    case K_Q4:
        dec_q4_K(w, o);
        break;
    case K_Q5:
        dec_q5_K(w, o);
        break;
    default:
        dec_q6_K(w, o);
        break;
    }
}

/* ---- one (row, token) superblock: shared by every path ---------------- */

/* Where the int16 sums become int32 (madd): as late as they fit. Q4_K's
 * sums of 16 products fit int16 (16 * 15 * 128 < 32768), Q5_K's of 8, and
 * the per-16 scale types need their scales after the first level. */
#define K_MADD_LEVEL(ty) ((ty) == K_Q4 ? 3 : (ty) == K_Q5 ? 2 : 1)

/* Sub-block pair k (2k, 2k+1) against activations aq: maddubs, then int16
 * sums of 4 products (they fit: 4 * 63 * 128 < 32768) of one 16-group each;
 * at level 1 times scv in madd. Lanes (int16 pairs or int32) 0, 2 (low 128
 * bits: elements 0-15 of the sub-block; 4, 6: elements 16-31) belong to
 * sub-block 2k and 1, 3 (5, 7) to 2k+1. No phadd: 2 cycles a piece on Zen 3. */
AVX2 static inline AI __m256i k_pair(const int ty, __m256i q0, __m256i q1, __m256i scv,
                                     const int8_t *aq) {
    const __m256i m0 = _mm256_maddubs_epi16(q0, _mm256_loadu_si256((const __m256i *)aq));
    const __m256i m1 = _mm256_maddubs_epi16(q1, _mm256_loadu_si256((const __m256i *)(aq + 32)));
    const __m256i h =
        _mm256_add_epi16(_mm256_unpacklo_epi32(m0, m1), _mm256_unpackhi_epi32(m0, m1));
    return K_MADD_LEVEL(ty) == 1 ? _mm256_madd_epi16(h, scv) : h;
}

/* Two k_pair results (pairs 2i, 2i+1) -> lane l of 4 (0-3: elements 0-15,
 * 4-7: 16-31) = sub-block 4i + l % 4. */
AVX2 static inline AI __m256i k_quad(const int ty, __m256i ta, __m256i tb) {
    const __m256i lo = _mm256_unpacklo_epi64(ta, tb), hi = _mm256_unpackhi_epi64(ta, tb);
    if (K_MADD_LEVEL(ty) == 1) return _mm256_add_epi32(lo, hi);
    const __m256i v = _mm256_add_epi16(lo, hi);
    return K_MADD_LEVEL(ty) == 2 ? _mm256_madd_epi16(v, _mm256_set1_epi16(1)) : v;
}

/* Two k_quad results -> lane j (int32) = sub-block j's integer dot. */
AVX2 static inline AI __m256i k_reduce(const int ty, __m256i v0, __m256i v1) {
    const __m256i lo = _mm256_permute2x128_si256(v0, v1, 0x20);
    const __m256i hi = _mm256_permute2x128_si256(v0, v1, 0x31);
    if (K_MADD_LEVEL(ty) < 3) return _mm256_add_epi32(lo, hi);
    return _mm256_madd_epi16(_mm256_add_epi16(lo, hi), _mm256_set1_epi16(1));
}

/* The float step of one superblock: S = the 8 sub-block dots. */
AVX2 static inline AI void k_accum(const int ty, __m256i S, const k_sb *w, const act_k *a,
                                   __m256 *acc, __m256 *accm) {
    const __m256 da = _mm256_loadu_ps(a->d);
    if (K_FLOAT_SCALES(ty)) {
        *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S), _mm256_mul_ps(w->dsc, da), *acc);
        *accm = _mm256_fmadd_ps(w->dmn, _mm256_loadu_ps(a->dsum), *accm);
        return;
    }
    const __m256i imin =
        _mm256_madd_epi16(w->aux, _mm256_loadu_si256((const __m256i *)a->bsum)); /* lane j */
    if (K_OFFSET(ty)) {
        *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(S, imin)),
                               _mm256_mul_ps(_mm256_set1_ps(w->d), da), *acc);
    } else {
        *acc =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(S), _mm256_mul_ps(_mm256_set1_ps(w->d), da), *acc);
        *accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(imin), _mm256_mul_ps(_mm256_set1_ps(w->dm), da),
                                *accm);
    }
}

AVX2 static inline AI float k_finish(const int ty, __m256 acc, __m256 accm) {
    return K_OFFSET(ty) ? avx2_hsum8(acc) : avx2_hsum8(acc) - avx2_hsum8(accm);
}

/* ---- one token: decode in registers ----------------------------------- */

/* Software prefetch distance (bytes) of the one-token path, within the tile. */
#ifndef KQ_PF_DIST
#define KQ_PF_DIST 2048
#endif

/* Rows [0, nr) of the tile against one token: y[r]. */
AVX2 static inline AI void k_rows_1tok(const int ty, const uint8_t *w, size_t row_bytes, int nr,
                                       const act_k *a, int64_t nsb, float *y) {
    const int bb = k_block_bytes[ty];
    const uint8_t *end = w + (size_t)nr * row_bytes;
    for (int r = 0; r < nr; r++) {
        const uint8_t *wr = w + (size_t)r * row_bytes;
        __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
        for (int64_t s = 0; s < nsb; s++) {
            const uint8_t *ws = wr + s * bb;
#if KQ_PF_DIST > 0
            if ((size_t)(end - ws) > KQ_PF_DIST + 3 * 64) {
                _mm_prefetch((const char *)ws + KQ_PF_DIST, _MM_HINT_T0);
                _mm_prefetch((const char *)ws + KQ_PF_DIST + 64, _MM_HINT_T0);
                if (bb > 128) _mm_prefetch((const char *)ws + KQ_PF_DIST + 128, _MM_HINT_T0);
            }
#else
            (void)end;
#endif
            k_sb sb;
            k_decode(ty, ws, &sb);
            const act_k *as = &a[s];
            __m256i t[4];
            UNROLL
            for (int k = 0; k < 4; k++)
                t[k] = k_pair(ty, sb.q[2 * k], sb.q[2 * k + 1], sb.scv[k], as->qs + 64 * k);
            k_accum(ty, k_reduce(ty, k_quad(ty, t[0], t[1]), k_quad(ty, t[2], t[3])), &sb, as, &acc,
                    &accm);
        }
        y[r] = k_finish(ty, acc, accm);
    }
}

/* ---- batches: rows decoded once into scratch -------------------------- */

/* A decoded superblock in memory (640 bytes). */
typedef struct k_dec {
    uint8_t q[256];
    int16_t scv[4][16];
    int16_t aux[16];
    float dsc[8], dmn[8];
    float d, dm;
    uint8_t pad[24];
} k_dec;

_Static_assert(sizeof(k_dec) == 512, "k_dec");

#define DEC_ROWS 8 /* rows decoded into scratch at once */

AVX2 static inline AI void k_decode_rows(const int ty, const uint8_t *w, size_t row_bytes, int nr,
                                         int64_t nsb, k_dec *out) {
    const int bb = k_block_bytes[ty];
    for (int r = 0; r < nr; r++)
        for (int64_t s = 0; s < nsb; s++) {
            k_sb sb;
            k_dec *o = &out[(size_t)r * nsb + s];
            k_decode(ty, w + (size_t)r * row_bytes + s * bb, &sb);
            UNROLL
            for (int j = 0; j < 8; j++) {
                _mm256_storeu_si256((__m256i *)(o->q + 32 * j), sb.q[j]);
                if (!K_FLOAT_SCALES(ty) && j < 4)
                    _mm256_storeu_si256((__m256i *)o->scv[j], sb.scv[j]);
            }
            if (K_FLOAT_SCALES(ty)) {
                _mm256_storeu_ps(o->dsc, sb.dsc);
                _mm256_storeu_ps(o->dmn, sb.dmn);
            } else {
                _mm256_storeu_si256((__m256i *)o->aux, sb.aux);
                o->d = sb.d;
                o->dm = sb.dm;
            }
        }
}

/* R decoded rows x T tokens, all superblocks: y[t * ldy + r]. */
AVX2 static inline AI void k_micro(const int ty, const int R, const int T, const k_dec *w,
                                   int64_t nsb, const act_k *const *a, float *y, size_t ldy) {
    __m256 acc[2][4], accm[2][4];
    UNROLL
    for (int r = 0; r < R; r++) UNROLL
    for (int t = 0; t < T; t++) acc[r][t] = accm[r][t] = _mm256_setzero_ps();
    for (int64_t s = 0; s < nsb; s++) {
        __m256i u[2][4][2], t0[2][4];
        UNROLL
        for (int k = 0; k < 4; k++) {
            __m256i q0[2], q1[2], s0[2];
            UNROLL
            for (int r = 0; r < R; r++) {
                const k_dec *ws = &w[r * nsb + s];
                q0[r] = _mm256_loadu_si256((const __m256i *)(ws->q + 64 * k));
                q1[r] = _mm256_loadu_si256((const __m256i *)(ws->q + 64 * k + 32));
                s0[r] = K_FLOAT_SCALES(ty) ? _mm256_set1_epi16(1)
                                           : _mm256_loadu_si256((const __m256i *)ws->scv[k]);
            }
            UNROLL
            for (int t = 0; t < T; t++) UNROLL
            for (int r = 0; r < R; r++) {
                __m256i p = k_pair(ty, q0[r], q1[r], s0[r], a[t][s].qs + 64 * k);
                if (k % 2 == 0)
                    t0[r][t] = p;
                else
                    u[r][t][k / 2] = k_quad(ty, t0[r][t], p);
            }
        }
        UNROLL
        for (int r = 0; r < R; r++) {
            const k_dec *ws = &w[r * nsb + s];
            k_sb sb;
            if (K_FLOAT_SCALES(ty)) {
                sb.dsc = _mm256_loadu_ps(ws->dsc);
                sb.dmn = _mm256_loadu_ps(ws->dmn);
            } else {
                sb.aux = _mm256_loadu_si256((const __m256i *)ws->aux);
                sb.d = ws->d;
                sb.dm = ws->dm;
            }
            UNROLL
            for (int t = 0; t < T; t++) {
                const __m256i S = k_reduce(ty, u[r][t][0], u[r][t][1]);
                k_accum(ty, S, &sb, a[t] + s, &acc[r][t], &accm[r][t]);
            }
        }
    }
    UNROLL
    for (int r = 0; r < R; r++) UNROLL
    for (int t = 0; t < T; t++) y[(size_t)t * ldy + r] = k_finish(ty, acc[r][t], accm[r][t]);
}

#ifdef K_R16
/* ---- AVX-512 batches: 16-row groups ----------------------------------- */

/* A superblock of a 16-row group in scratch (K16_BLK bytes):
 *   q     8 sub-blocks x 8 4-value groups x 64 bytes: bytes 4r..4r+3 of the
 *         first 32 (rows 0-7) and of the last 32 (rows 8-15) = row r's
 *         values 32j + 4g..32j + 4g + 3 (avx2_r8_transpose), unsigned
 *   then  Q4_K / Q5_K: dsc[8][16], dmn[8][16] (F32, [sub-block][row])
 *         Q6_K: sc[16][16] (int32 per-16 scales, [16-group][row]), d[16] */
#define K16_BLK 5184
#define K16_T   8 /* tokens per micro-kernel call */

#define K_R16_TYPE(ty) ((ty) == K_Q4 || (ty) == K_Q5 || (ty) == K_Q6)

/* Rows [0, nr) (nr <= 16; missing rows zero) of nsb superblocks -> out. */
AVX2 static inline AI void k16_unpack(const int ty, const uint8_t *w, size_t row_bytes, int nr,
                                      int64_t nsb, uint8_t *out) {
    const int bb = k_block_bytes[ty];
    for (int64_t s = 0; s < nsb; s++) {
        uint8_t *o = out + (size_t)s * K16_BLK;
        for (int h = 0; h < 2; h++) {
            __m256i q[8][8]; /* [row][sub-block] */
            for (int r = 0; r < 8; r++) {
                const int row = 8 * h + r;
                if (row >= nr) {
                    UNROLL
                    for (int j = 0; j < 8; j++) q[r][j] = _mm256_setzero_si256();
                    if (K_FLOAT_SCALES(ty))
                        for (int j = 0; j < 8; j++) {
                            ((float *)(o + 4096))[16 * j + row] = 0.0f;
                            ((float *)(o + 4608))[16 * j + row] = 0.0f;
                        }
                    else {
                        for (int g = 0; g < 16; g++) ((int32_t *)(o + 4096))[16 * g + row] = 0;
                        ((float *)(o + 5120))[row] = 0.0f;
                    }
                    continue;
                }
                const uint8_t *src = w + (size_t)row * row_bytes + (size_t)s * bb;
                k_sb sb;
                k_decode(ty, src, &sb);
                UNROLL
                for (int j = 0; j < 8; j++) q[r][j] = sb.q[j];
                if (K_FLOAT_SCALES(ty)) {
                    float dsc[8], dmn[8];
                    _mm256_storeu_ps(dsc, sb.dsc);
                    _mm256_storeu_ps(dmn, sb.dmn);
                    for (int j = 0; j < 8; j++) {
                        ((float *)(o + 4096))[16 * j + row] = dsc[j];
                        ((float *)(o + 4608))[16 * j + row] = dmn[j];
                    }
                } else { /* Q6_K: 16 int8 scales at byte 192 */
                    for (int g = 0; g < 16; g++)
                        ((int32_t *)(o + 4096))[16 * g + row] = (int8_t)src[192 + g];
                    ((float *)(o + 5120))[row] = sb.d;
                }
            }
            UNROLL
            for (int j = 0; j < 8; j++) {
                __m256i v[8], g[8];
                UNROLL
                for (int r = 0; r < 8; r++) v[r] = q[r][j];
                avx2_r8_transpose(v, g);
                UNROLL
                for (int i = 0; i < 8; i++)
                    _mm256_storeu_si256((__m256i *)(o + 64 * (8 * j + i) + 32 * h), g[i]);
            }
        }
    }
}

/* avx2_hsum8's tree over the 8 lanes, here 8 vectors: lane by lane the same sums. */
AVX2 static inline AI __m512 k16_sum8(const __m512 v[8]) {
    return _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(v[0], v[4]), _mm512_add_ps(v[2], v[6])),
                         _mm512_add_ps(_mm512_add_ps(v[1], v[5]), _mm512_add_ps(v[3], v[7])));
}

/* 16 unpacked rows x T tokens, all superblocks: out[t][r]. Per (row, token)
 * the float steps of k_accum / k_finish: lane j of their 8-lane
 * accumulators is a 16-row vector here, one sub-block j at a time over all
 * superblocks (so that 8 tokens share each weight load), kept in accj until
 * the 8 are summed in avx2_hsum8's order. */
AVX2 static inline AI void k16_micro(const int ty, const int T, const uint8_t *dec, int64_t nsb,
                                     const act_k *const *a, float (*out)[16]) {
    __m512 accj[8][K16_T], accm[8][K16_T];
    for (int j = 0; j < 8; j++) {
        __m512 acc[K16_T], am[K16_T];
        UNROLL
        for (int t = 0; t < T; t++) acc[t] = am[t] = _mm512_setzero_ps();
        for (int64_t s = 0; s < nsb; s++) {
            const uint8_t *o = dec + (size_t)s * K16_BLK;
            __m512i uw[8];
            UNROLL
            for (int g = 0; g < 8; g++)
                uw[g] = _mm512_loadu_si512((const void *)(o + 64 * (8 * j + g)));
            if (K_FLOAT_SCALES(ty)) {
                const __m512 dsc = _mm512_loadu_ps((const float *)(o + 4096) + 16 * j);
                const __m512 dmn = _mm512_loadu_ps((const float *)(o + 4608) + 16 * j);
                UNROLL
                for (int t = 0; t < T; t++) {
                    const act_k *as = a[t] + s;
                    __m512i S = _mm512_setzero_si512();
                    UNROLL
                    for (int g = 0; g < 8; g++) {
                        int32_t a4;
                        memcpy(&a4, as->qs + 32 * j + 4 * g, 4);
                        S = _mm512_dpbusd_epi32(S, uw[g], _mm512_set1_epi32(a4));
                    }
                    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S),
                                             _mm512_mul_ps(dsc, _mm512_set1_ps(as->d[j])), acc[t]);
                    am[t] = _mm512_fmadd_ps(dmn, _mm512_set1_ps(as->dsum[j]), am[t]);
                }
            } else { /* Q6_K: per 16-group l: sc_l * (dot_l - 32 * bsum_l) */
                const int32_t *sc = (const int32_t *)(o + 4096);
                const __m512i sc0 = _mm512_loadu_si512((const void *)(sc + 32 * j));
                const __m512i sc1 = _mm512_loadu_si512((const void *)(sc + 32 * j + 16));
                const __m512 d = _mm512_loadu_ps((const float *)(o + 5120));
                UNROLL
                for (int t = 0; t < T; t++) {
                    const act_k *as = a[t] + s;
                    __m512i S0 = _mm512_setzero_si512(), S1 = _mm512_setzero_si512();
                    UNROLL
                    for (int g = 0; g < 4; g++) {
                        int32_t a0, a1;
                        memcpy(&a0, as->qs + 32 * j + 4 * g, 4);
                        memcpy(&a1, as->qs + 32 * j + 16 + 4 * g, 4);
                        S0 = _mm512_dpbusd_epi32(S0, uw[g], _mm512_set1_epi32(a0));
                        S1 = _mm512_dpbusd_epi32(S1, uw[4 + g], _mm512_set1_epi32(a1));
                    }
                    S0 = _mm512_sub_epi32(S0, _mm512_set1_epi32(32 * as->bsum[2 * j]));
                    S1 = _mm512_sub_epi32(S1, _mm512_set1_epi32(32 * as->bsum[2 * j + 1]));
                    const __m512i S =
                        _mm512_add_epi32(_mm512_mullo_epi32(S0, sc0), _mm512_mullo_epi32(S1, sc1));
                    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S),
                                             _mm512_mul_ps(d, _mm512_set1_ps(as->d[j])), acc[t]);
                }
            }
        }
        UNROLL
        for (int t = 0; t < T; t++) {
            accj[j][t] = acc[t];
            accm[j][t] = am[t];
        }
    }
    UNROLL
    for (int t = 0; t < T; t++) {
        __m512 v[8], m[8];
        UNROLL
        for (int j = 0; j < 8; j++) {
            v[j] = accj[j][t];
            m[j] = accm[j][t];
        }
        __m512 y = k16_sum8(v);
        if (K_FLOAT_SCALES(ty)) y = _mm512_sub_ps(y, k16_sum8(m));
        _mm512_storeu_ps(out[t], y);
    }
}

AVX2 static inline AI void k16_tile(const int ty, const uint8_t *w, size_t row_bytes, int nr,
                                    const uint8_t *act, size_t act_stride, int nt, int64_t nsb,
                                    float *y, size_t ldy, uint8_t *scratch) {
    for (int r0 = 0; r0 < nr; r0 += 16) {
        const int rn = nr - r0 < 16 ? nr - r0 : 16;
        k16_unpack(ty, w + (size_t)r0 * row_bytes, row_bytes, rn, nsb, scratch);
        for (int t0 = 0; t0 < nt; t0 += K16_T) {
            const int tn = nt - t0 < K16_T ? nt - t0 : K16_T;
            const act_k *at[K16_T];
            for (int t = 0; t < tn; t++)
                at[t] = (const act_k *)(act + (size_t)(t0 + t) * act_stride);
            float out[K16_T][16];
            switch (tn) {
#define K16_CASE(n)                                                                                \
    case n:                                                                                        \
        k16_micro(ty, n, scratch, nsb, at, out);                                                   \
        break;
                K16_CASE(1)
                K16_CASE(2)
                K16_CASE(3)
                K16_CASE(4)
                K16_CASE(5)
                K16_CASE(6)
                K16_CASE(7)
#undef K16_CASE
            default:
                k16_micro(ty, K16_T, scratch, nsb, at, out);
                break;
            }
            for (int t = 0; t < tn; t++)
                memcpy(y + (size_t)(t0 + t) * ldy + r0, out[t], sizeof(float) * (size_t)rn);
        }
    }
}
#endif

#define MICRO_R 2
#define MICRO_T 4

/* Decoded rows dec[0..rb) (rb <= DEC_ROWS) x nt tokens: y[t * ldy + r]. */
AVX2 static inline AI void k_dec_tile(const int ty, const k_dec *dec, int rb, int64_t nsb,
                                      const uint8_t *act, size_t act_stride, int nt, float *y,
                                      size_t ldy) {
    for (int t0 = 0; t0 < nt; t0 += MICRO_T) {
        const int tn = nt - t0 < MICRO_T ? nt - t0 : MICRO_T;
        const act_k *at[4];
        for (int t = 0; t < tn; t++) at[t] = (const act_k *)(act + (size_t)(t0 + t) * act_stride);
        float *yt = y + (size_t)t0 * ldy;
        for (int r = 0; r < rb; r += MICRO_R) {
            const k_dec *wr = dec + (size_t)r * nsb;
            const bool two = MICRO_R > 1 && r + 1 < rb;
            switch (tn * 2 + two) {
            case 2:
                k_micro(ty, 1, 1, wr, nsb, at, yt + r, ldy);
                break;
            case 3:
                k_micro(ty, 2, 1, wr, nsb, at, yt + r, ldy);
                break;
            case 4:
                k_micro(ty, 1, 2, wr, nsb, at, yt + r, ldy);
                break;
            case 5:
                k_micro(ty, 2, 2, wr, nsb, at, yt + r, ldy);
                break;
            case 6:
                k_micro(ty, 1, 3, wr, nsb, at, yt + r, ldy);
                break;
            case 7:
                k_micro(ty, 2, 3, wr, nsb, at, yt + r, ldy);
                break;
            case 8:
                k_micro(ty, 1, 4, wr, nsb, at, yt + r, ldy);
                break;
            default:
                k_micro(ty, 2, 4, wr, nsb, at, yt + r, ldy);
                break;
            }
        }
    }
}

/* Q4_K's, compiled once for k_tile and the repacked tiles. */
AVX2 static void k_dec_tile_q4(const k_dec *dec, int rb, int64_t nsb, const uint8_t *act,
                               size_t act_stride, int nt, float *y, size_t ldy) {
    k_dec_tile(K_Q4, dec, rb, nsb, act, act_stride, nt, y, ldy);
}

AVX2 static inline AI void k_tile(const int ty, const uint8_t *w, size_t row_bytes, int nr,
                                  const uint8_t *act, size_t act_stride, int nt, int64_t n,
                                  float *y, size_t ldy, uint8_t *scratch) {
    const int64_t nsb = n / 256;
    if (nt == 1) {
        k_rows_1tok(ty, w, row_bytes, nr, (const act_k *)act, nsb, y);
        return;
    }
#ifdef K_R16
    if (K_R16_TYPE(ty)) {
        k16_tile(ty, w, row_bytes, nr, act, act_stride, nt, nsb, y, ldy, scratch);
        return;
    }
#endif
    k_dec *dec = (k_dec *)scratch;
    for (int r0 = 0; r0 < nr; r0 += DEC_ROWS) {
        const int rb = nr - r0 < DEC_ROWS ? nr - r0 : DEC_ROWS;
        k_decode_rows(ty, w + (size_t)r0 * row_bytes, row_bytes, rb, nsb, dec);
        if (ty == K_Q4)
            k_dec_tile_q4(dec, rb, nsb, act, act_stride, nt, y + r0, ldy);
        else
            k_dec_tile(ty, dec, rb, nsb, act, act_stride, nt, y + r0, ldy);
    }
}

static size_t k_scratch_bytes(int64_t n) {
    const uint64_t nsb = (uint64_t)(n / 256);
#ifdef K_R16
    const size_t per = DEC_ROWS * sizeof(k_dec) > K16_BLK ? DEC_ROWS * sizeof(k_dec) : K16_BLK;
#else
    const size_t per = DEC_ROWS * sizeof(k_dec);
#endif
    return nsb > SIZE_MAX / per ? SIZE_MAX : (size_t)nsb * per;
}

#define MAX_ROWS   64
#define MAX_TOKENS 64

/* ---- rows as F32 (embedding rows, MLA's attn_kv_b rows) ---------------- */

/* 8 values v[0..8) (unsigned bytes) as F32 times f, minus m (Q4_K / Q5_K:
 * the reference's d * sc * q - dmin * m with d * sc and dmin * m rounded
 * first) or times f alone (m NULL: Q6_K's (d * sc) * (q - 32)). */
AVX2 static inline AI void k_deq8(const uint8_t *v, int off, __m256 f, const __m256 *m, float *y) {
    __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)v));
    if (off) q = _mm256_sub_epi32(q, _mm256_set1_epi32(off));
    __m256 x = _mm256_mul_ps(_mm256_cvtepi32_ps(q), f);
    if (m) x = _mm256_sub_ps(x, *m);
    _mm256_storeu_ps(y, x);
}

AVX2 static inline AI void k_dequant(const int ty, const uint8_t *src, float *y, int64_t n) {
    const int bb = k_block_bytes[ty];
    for (int64_t s = 0; s < n / 256; s++, src += bb, y += 256) {
        k_sb sb;
        k_decode(ty, src, &sb);
        uint8_t q[256];
        UNROLL
        for (int j = 0; j < 8; j++) _mm256_storeu_si256((__m256i *)(q + 32 * j), sb.q[j]);
        if (K_FLOAT_SCALES(ty)) {
            float dsc[8], dmn[8];
            _mm256_storeu_ps(dsc, sb.dsc);
            _mm256_storeu_ps(dmn, sb.dmn);
            for (int j = 0; j < 8; j++) {
                const __m256 f = _mm256_set1_ps(dsc[j]), m = _mm256_set1_ps(dmn[j]);
                UNROLL
                for (int k = 0; k < 4; k++)
                    k_deq8(q + 32 * j + 8 * k, 0, f, &m, y + 32 * j + 8 * k);
            }
        } else { /* Q6_K: 16 int8 scales at byte 192 */
            for (int g = 0; g < 16; g++) {
                const __m256 f = _mm256_set1_ps(sb.d * (float)(int8_t)src[192 + g]);
                k_deq8(q + 16 * g, 32, f, NULL, y + 16 * g);
                k_deq8(q + 16 * g + 8, 32, f, NULL, y + 16 * g + 8);
            }
        }
    }
}

#define K_TILE(name, ty, deq)                                                                      \
    AVX2 static void name(const uint8_t *w, size_t row_bytes, int nr, const uint8_t *act,          \
                          size_t act_stride, int nt, int64_t n, float *y, size_t ldy,              \
                          uint8_t *scratch) {                                                      \
        k_tile(ty, w, row_bytes, nr, act, act_stride, nt, n, y, ldy, scratch);                     \
    }                                                                                              \
    static const avx2_type type_##name = {&act_k_fmt,      name, MAX_ROWS, MAX_TOKENS,             \
                                          k_scratch_bytes, deq};
AVX2 static void deq_q4_K(const uint8_t *src, float *y, int64_t n) {
    k_dequant(K_Q4, src, y, n);
}
AVX2 static void deq_q5_K(const uint8_t *src, float *y, int64_t n) {
    k_dequant(K_Q5, src, y, n);
}
AVX2 static void deq_q6_K(const uint8_t *src, float *y, int64_t n) {
    k_dequant(K_Q6, src, y, n);
}
K_TILE(tile_q2_K, K_Q2, NULL)
K_TILE(tile_q3_K, K_Q3, NULL)
K_TILE(tile_q4_K, K_Q4, deq_q4_K)
K_TILE(tile_q5_K, K_Q5, deq_q5_K)
K_TILE(tile_q6_K, K_Q6, deq_q6_K)

/* ---- KERN_LAYOUT_R8: Q4_K with 8 rows in the lanes (repack.h) ---------- */

/* Per row (lane), the sum over sub-blocks j of v[j] in avx2_hsum8's order:
 * ((j0 + j4) + (j2 + j6)) + ((j1 + j5) + (j3 + j7)). */
AVX2 static inline AI __m256 r8_sum_j(const __m256 v[8]) {
    const __m256 t0 = _mm256_add_ps(v[0], v[4]), t1 = _mm256_add_ps(v[1], v[5]);
    const __m256 t2 = _mm256_add_ps(v[2], v[6]), t3 = _mm256_add_ps(v[3], v[7]);
    return _mm256_add_ps(_mm256_add_ps(t0, t2), _mm256_add_ps(t1, t3));
}

/* Tokens per r8_q4k call in batches: the quants are decoded once for all. */
#define R8_T 4

#ifndef R8_PF_DIST
#define R8_PF_DIST 2304 /* prefetch distance in bytes (two group superblocks) */
#endif

/* T tokens (a[t]: token t's nsb superblocks) against a group of 8 rows:
 * y[t * ldy + r], r < 8. Per sub-block j, lane r gets row r's exact
 * integer dot S_j (maddubs of 4 values against the token's 4 broadcast,
 * summed in int16: at most 8 * 2 * 15 * 127 = 30480; or vpdpbusd), then the
 * float steps k_accum takes for lane j of row r, here in lane r of
 * accumulator j, and the end sum in avx2_hsum8's order: ((j0 + j4) + (j2 +
 * j6)) + ((j1 + j5) + (j3 + j7)). So each (row, token) value is bitwise
 * k_rows_1tok's on the rows restored, with no horizontal reduction per
 * (row, superblock) and each activation broadcast once for 8 rows. */
AVX2 static inline AI void r8_q4k(const int T, const uint8_t *w, const uint8_t *pf_end,
                                  const act_k *const *a, int64_t nsb, float *y, size_t ldy) {
    __m256 acc[R8_T][8], accm[R8_T][8];
    UNROLL
    for (int t = 0; t < T; t++) UNROLL
    for (int j = 0; j < 8; j++) acc[t][j] = accm[t][j] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0xf), m6 = _mm256_set1_epi8(63),
                  m30 = _mm256_set1_epi8(0x30);
    for (int64_t s = 0; s < nsb; s++) {
        const uint8_t *ws = w + s * KERN_R8_SB;
        /* the tile's rows are one stream (groups are contiguous): the 18
         * lines R8_PF_DIST ahead of this superblock's, up to the tile's end,
         * one per quant step below (a burst of 18 measured slower) */
        const bool pf = R8_PF_DIST > 0 && ws + R8_PF_DIST + KERN_R8_SB <= pf_end;
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)ws));
        const __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(ws + 16)));
        /* the 6-bit scales and mins of sub-blocks 0-3 and 4-7, [j][row] bytes
         * (k4_scales' unpacking, on 8 rows at once) */
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(ws + 32));
        const __m256i b4 = _mm256_loadu_si256((const __m256i *)(ws + 64));
        const __m256i b8 = _mm256_loadu_si256((const __m256i *)(ws + 96));
        uint8_t sm[4][32] __attribute__((aligned(32))); /* sc 0-3, m 0-3, sc 4-7, m 4-7 */
        _mm256_store_si256((__m256i *)sm[0], _mm256_and_si256(b0, m6));
        _mm256_store_si256((__m256i *)sm[1], _mm256_and_si256(b4, m6));
        _mm256_store_si256((__m256i *)sm[2],
                           _mm256_or_si256(_mm256_and_si256(b8, m4),
                                           _mm256_and_si256(_mm256_srli_epi16(b0, 2), m30)));
        _mm256_store_si256((__m256i *)sm[3],
                           _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b8, 4), m4),
                                           _mm256_and_si256(_mm256_srli_epi16(b4, 2), m30)));
        /* not unrolled (compile time: this is instantiated for 4 token
         * counts in 3 builds); j is then a run-time index */
        NO_UNROLL
        for (int i = 0; i < 4; i++) {
            __m256i S[R8_T][2];
            UNROLL
            for (int t = 0; t < T; t++) S[t][0] = S[t][1] = _mm256_setzero_si256();
            UNROLL
            for (int g = 0; g < 8; g++) {
                if (pf && 8 * i + g < KERN_R8_SB / 64)
                    _mm_prefetch((const char *)ws + R8_PF_DIST + 64 * (8 * i + g), _MM_HINT_T0);
                const __m256i v =
                    _mm256_loadu_si256((const __m256i *)(ws + 128 + 256 * i + 32 * g));
                const __m256i q[2] = {_mm256_and_si256(v, m4),
                                      _mm256_and_si256(_mm256_srli_epi16(v, 4), m4)};
                UNROLL
                for (int t = 0; t < T; t++) UNROLL
                for (int h = 0; h < 2; h++) {
                    int32_t a4;
                    memcpy(&a4, a[t][s].qs + 64 * i + 32 * h + 4 * g, 4);
#ifdef K_DPBUSD
                    S[t][h] = K_DPBUSD(S[t][h], q[h], _mm256_set1_epi32(a4));
#else
                    S[t][h] = _mm256_add_epi16(S[t][h],
                                               _mm256_maddubs_epi16(q[h], _mm256_set1_epi32(a4)));
#endif
                }
            }
            UNROLL
            for (int h = 0; h < 2; h++) {
                const int j = 2 * i + h;
                const uint8_t *sc = sm[j < 4 ? 0 : 2] + 8 * (j & 3);
                const uint8_t *mn = sm[j < 4 ? 1 : 3] + 8 * (j & 3);
                const __m256 dsc = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
                                                        _mm_loadl_epi64((const __m128i *)sc))));
                const __m256 dmn = _mm256_mul_ps(dm, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
                                                         _mm_loadl_epi64((const __m128i *)mn))));
                UNROLL
                for (int t = 0; t < T; t++) {
#ifdef K_DPBUSD
                    const __m256i Sj = S[t][h];
#else
                    const __m256i Sj = _mm256_madd_epi16(S[t][h], _mm256_set1_epi16(1));
#endif
                    acc[t][j] = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(Sj),
                        _mm256_mul_ps(dsc, _mm256_broadcast_ss(&a[t][s].d[j])), acc[t][j]);
                    accm[t][j] =
                        _mm256_fmadd_ps(dmn, _mm256_broadcast_ss(&a[t][s].dsum[j]), accm[t][j]);
                }
            }
        }
    }
    UNROLL
    for (int t = 0; t < T; t++)
        _mm256_storeu_ps(y + (size_t)t * ldy, _mm256_sub_ps(r8_sum_j(acc[t]), r8_sum_j(accm[t])));
}

#ifndef R8_UNPACK_MIN_T
#define R8_UNPACK_MIN_T 16
#endif

/* Batches on a repacked matrix by the row-layout tile: each group's 8 rows
 * restored into scratch by unpack, then tile on them, with its own scratch
 * after the MAX_ROWS rows (r8_restored_scratch). */
typedef void (*r8_unpack_fn)(const uint8_t *grp, size_t row_bytes, int64_t nsb, uint8_t *rows);

static void r8_restored_tile(r8_unpack_fn unpack, avx2_tile_fn tile, const uint8_t *w,
                             size_t row_bytes, int nr, const uint8_t *act, size_t act_stride,
                             int nt, int64_t n, float *y, size_t ldy, uint8_t *scratch) {
    const size_t gb = KERN_R8_ROWS * row_bytes;
    for (int r = 0; r < nr; r += KERN_R8_ROWS)
        unpack(w + (size_t)(r / KERN_R8_ROWS) * gb, row_bytes, n / 256,
               scratch + (size_t)r * row_bytes);
    tile(scratch, row_bytes, nr, act, act_stride, nt, n, y, ldy,
         scratch + (size_t)MAX_ROWS * row_bytes);
}

/* The row tiles' scratch plus MAX_ROWS rows of sb bytes per superblock. */
static size_t r8_restored_scratch(int64_t n, size_t sb) {
    const size_t k = k_scratch_bytes(n), rows = (size_t)MAX_ROWS * (size_t)(n / 256) * sb;
    return k > SIZE_MAX - rows ? SIZE_MAX : k + rows;
}

#ifdef K_R16
/* A group's 8 rows restored (kern_r8_unpack's bytes): the quants by
 * avx2_r8_transpose, which is its own inverse on 8 x 8 4-byte values. */
AVX2 static void r8_q4k_unpack(const uint8_t *grp, size_t row_bytes, int64_t nsb, uint8_t *rows) {
    for (int64_t s = 0; s < nsb; s++) {
        const uint8_t *gs = grp + s * KERN_R8_SB;
        uint8_t *o = rows + s * 144;
        /* d, dmin: row r's 4 bytes in int32 lane r (of dd[r / 4]) */
        const __m128i dv = _mm_loadu_si128((const __m128i *)gs);
        const __m128i mv = _mm_loadu_si128((const __m128i *)(gs + 16));
        const __m128i dd[2] = {_mm_unpacklo_epi16(dv, mv), _mm_unpackhi_epi16(dv, mv)};
        /* scales, [k][row] -> [row][k]: bytes of planes 2m, 2m+1 paired per
         * row (a[m]), then 4 planes per row in int32s (b), then 8 (c) */
        __m128i a[6], b[6];
        for (int m = 0; m < 6; m++)
            a[m] = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(gs + 32 + 16 * m)),
                                     _mm_loadl_epi64((const __m128i *)(gs + 40 + 16 * m)));
        for (int m = 0; m < 3; m++) { /* b[2m]: rows 0-3, planes 4m..4m+3; b[2m+1]: rows 4-7 */
            b[2 * m] = _mm_unpacklo_epi16(a[2 * m], a[2 * m + 1]);
            b[2 * m + 1] = _mm_unpackhi_epi16(a[2 * m], a[2 * m + 1]);
        }
        for (int h = 0; h < 2; h++) { /* rows 4h..4h+3 */
            const __m128i c[2] = {_mm_unpacklo_epi32(b[h], b[2 + h]),
                                  _mm_unpackhi_epi32(b[h], b[2 + h])};
            int32_t d4[4], s8[4];
            _mm_storeu_si128((__m128i *)d4, dd[h]);
            _mm_storeu_si128((__m128i *)s8, b[4 + h]);
            for (int q = 0; q < 4; q++) {
                uint8_t *rb = o + (size_t)(4 * h + q) * row_bytes;
                memcpy(rb, &d4[q], 4);
                _mm_storel_epi64((__m128i *)(rb + 4),
                                 q & 1 ? _mm_unpackhi_epi64(c[q / 2], c[q / 2]) : c[q / 2]);
                memcpy(rb + 12, &s8[q], 4);
            }
        }
        UNROLL
        for (int i = 0; i < 4; i++) {
            __m256i v[8], t[8];
            UNROLL
            for (int g = 0; g < 8; g++)
                v[g] = _mm256_loadu_si256((const __m256i *)(gs + 128 + 256 * i + 32 * g));
            avx2_r8_transpose(v, t);
            UNROLL
            for (int r = 0; r < 8; r++)
                _mm256_storeu_si256((__m256i *)(o + (size_t)r * row_bytes + 16 + 32 * i), t[r]);
        }
    }
}
#endif

#ifndef K_R16
/* A group's 8 rows (nsb superblocks) decoded into scratch as k_decode_rows
 * decodes the rows restored: out[r * nsb + s], bitwise the same (the same
 * products d * sc, dmin * m), by transposes of 8 x 8 4-byte values. */
AVX2 static void r8_q4k_decode(const uint8_t *grp, int64_t nsb, k_dec *out) {
    const __m256i m4 = _mm256_set1_epi8(0xf), m6 = _mm256_set1_epi8(63),
                  m30 = _mm256_set1_epi8(0x30);
    for (int64_t s = 0; s < nsb; s++) {
        const uint8_t *gs = grp + s * KERN_R8_SB;
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)gs));
        const __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(gs + 16)));
        const __m256i b0 = _mm256_loadu_si256((const __m256i *)(gs + 32));
        const __m256i b4 = _mm256_loadu_si256((const __m256i *)(gs + 64));
        const __m256i b8 = _mm256_loadu_si256((const __m256i *)(gs + 96));
        uint8_t sm[4][32] __attribute__((aligned(32))); /* as in r8_q4k */
        _mm256_store_si256((__m256i *)sm[0], _mm256_and_si256(b0, m6));
        _mm256_store_si256((__m256i *)sm[1], _mm256_and_si256(b4, m6));
        _mm256_store_si256((__m256i *)sm[2],
                           _mm256_or_si256(_mm256_and_si256(b8, m4),
                                           _mm256_and_si256(_mm256_srli_epi16(b0, 2), m30)));
        _mm256_store_si256((__m256i *)sm[3],
                           _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b8, 4), m4),
                                           _mm256_and_si256(_mm256_srli_epi16(b4, 2), m30)));
        for (int k = 0; k < 2; k++) { /* k = 0: d * sc_j; 1: dmin * m_j; lane = row */
            __m256i v[8], t[8];
            UNROLL
            for (int j = 0; j < 8; j++) {
                const uint8_t *p = sm[(j < 4 ? 0 : 2) + k] + 8 * (j & 3);
                const __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
                v[j] = _mm256_castps_si256(_mm256_mul_ps(k ? dm : d, _mm256_cvtepi32_ps(q)));
            }
            avx2_r8_transpose(v, t);
            for (int r = 0; r < 8; r++)
                _mm256_storeu_si256(
                    (__m256i *)(k ? out[(size_t)r * nsb + s].dmn : out[(size_t)r * nsb + s].dsc),
                    t[r]);
        }
        UNROLL
        for (int i = 0; i < 4; i++) {
            __m256i v[8], t[8];
            UNROLL
            for (int g = 0; g < 8; g++)
                v[g] = _mm256_loadu_si256((const __m256i *)(gs + 128 + 256 * i + 32 * g));
            avx2_r8_transpose(v, t);
            for (int r = 0; r < 8; r++) {
                uint8_t *q = out[(size_t)r * nsb + s].q + 64 * i;
                _mm256_storeu_si256((__m256i *)q, _mm256_and_si256(t[r], m4));
                _mm256_storeu_si256((__m256i *)(q + 32),
                                    _mm256_and_si256(_mm256_srli_epi16(t[r], 4), m4));
            }
        }
    }
}
#endif

/* The tile: group by group, R8_T tokens at a time. */
AVX2 static void tile_q4_K_r8(const uint8_t *w, size_t row_bytes, int nr, const uint8_t *act,
                              size_t act_stride, int nt, int64_t n, float *y, size_t ldy,
                              uint8_t *scratch) {
    const int64_t nsb = n / 256;
    const size_t gb = KERN_R8_ROWS * row_bytes;
    const uint8_t *end = w + (size_t)nr * row_bytes;
    if (nt >= R8_UNPACK_MIN_T) {
#ifdef K_R16 /* the 16-row AVX-512 tiles, on the rows restored */
        r8_restored_tile(r8_q4k_unpack, tile_q4_K, w, row_bytes, nr, act, act_stride, nt, n, y, ldy,
                         scratch);
#else /* each group decoded as k_tile decodes 8 rows, then its micro-kernels */
        for (int r = 0; r < nr; r += KERN_R8_ROWS) {
            r8_q4k_decode(w + (size_t)(r / KERN_R8_ROWS) * gb, nsb, (k_dec *)scratch);
            k_dec_tile_q4((const k_dec *)scratch, KERN_R8_ROWS, nsb, act, act_stride, nt, y + r,
                          ldy);
        }
#endif
        return;
    }
    for (int r = 0; r < nr; r += KERN_R8_ROWS) {
        const uint8_t *grp = w + (size_t)(r / KERN_R8_ROWS) * gb;
        for (int t0 = 0; t0 < nt; t0 += R8_T) {
            const int tn = nt - t0 < R8_T ? nt - t0 : R8_T;
            const act_k *at[R8_T];
            for (int t = 0; t < tn; t++)
                at[t] = (const act_k *)(act + (size_t)(t0 + t) * act_stride);
            float *yt = y + (size_t)t0 * ldy + r;
            switch (tn) {
            case 1:
                r8_q4k(1, grp, end, at, nsb, yt, ldy);
                break;
            case 2:
                r8_q4k(2, grp, end, at, nsb, yt, ldy);
                break;
            case 3:
                r8_q4k(3, grp, end, at, nsb, yt, ldy);
                break;
            default:
                r8_q4k(R8_T, grp, end, at, nsb, yt, ldy);
                break;
            }
        }
    }
}

/* The driver starts and ends tiles of an R8 matrix on 8-row groups. */
/* ---- KERN_LAYOUT_R8 for Q6_K ------------------------------------------ */

/* Tokens per r8_q6k call: its int32 sums take 4 registers a token. */
#define R8_T6 2

/* T tokens against a group of 8 Q6_K rows: y[t * ldy + r]. Lane r of the
 * sum of sub-block j = 4h + k gets row r's exact sum over its two 16-groups
 * G of sc_G * (values . activations) (maddubs of 4 values against the
 * token's 4 broadcast, two runs summed in int16: at most 2 * 2 * 63 * 127 =
 * 32004; then madd with sc_G in both halves of the lane), minus the offset
 * term madd(32 * sc pairs, bsum pair); then the float step k_accum takes for
 * lane j of a row (acc += cvt(S - offsets) * (d * da_j)) and avx2_hsum8's
 * sum order. So each value is bitwise k_rows_1tok's on the rows restored. */
AVX2 static inline AI void r8_q6k(const int T, const uint8_t *w, const uint8_t *pf_end,
                                  const act_k *const *a, int64_t nsb, float *y, size_t ldy) {
    __m256 acc[R8_T6][8];
    UNROLL
    for (int t = 0; t < T; t++) UNROLL
    for (int j = 0; j < 8; j++) acc[t][j] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0xf), m30 = _mm256_set1_epi8(0x30);
    for (int64_t s = 0; s < nsb; s++) {
        const uint8_t *ws = w + s * KERN_R8_SB6;
        const bool pf = R8_PF_DIST > 0 && ws + R8_PF_DIST + KERN_R8_SB6 <= pf_end;
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)ws));
        /* not unrolled (compile time) */
        NO_UNROLL
        for (int h = 0; h < 2; h++) {
            __m256i S[R8_T6][4];
            UNROLL
            for (int t = 0; t < T; t++) UNROLL
            for (int k = 0; k < 4; k++) S[t][k] = _mm256_setzero_si256();
            UNROLL
            for (int gp = 0; gp < 4; gp++) { /* runs 2gp, 2gp + 1: 16-group gp / 2 */
                __m256i m[R8_T6][4];
                UNROLL
                for (int u = 0; u < 2; u++) {
                    const int g = 2 * gp + u;
                    /* two of the superblock's 27 lines per step (16 steps) */
                    const int line = 2 * (8 * h + 2 * gp + u);
                    if (pf && line <= KERN_R8_SB6 / 64)
                        _mm_prefetch((const char *)ws + R8_PF_DIST + 64 * line, _MM_HINT_T0);
                    if (pf && line + 1 <= KERN_R8_SB6 / 64)
                        _mm_prefetch((const char *)ws + R8_PF_DIST + 64 * (line + 1), _MM_HINT_T0);
                    const __m256i L0 =
                        _mm256_loadu_si256((const __m256i *)(ws + 144 + 512 * h + 32 * g));
                    const __m256i L1 =
                        _mm256_loadu_si256((const __m256i *)(ws + 400 + 512 * h + 32 * g));
                    const __m256i H =
                        _mm256_loadu_si256((const __m256i *)(ws + 1168 + 256 * h + 32 * g));
                    const __m256i q[4] = {
                        _mm256_or_si256(_mm256_and_si256(L0, m4),
                                        _mm256_and_si256(_mm256_slli_epi16(H, 4), m30)),
                        _mm256_or_si256(_mm256_and_si256(L1, m4),
                                        _mm256_and_si256(_mm256_slli_epi16(H, 2), m30)),
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L0, 4), m4),
                                        _mm256_and_si256(H, m30)),
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(L1, 4), m4),
                                        _mm256_and_si256(_mm256_srli_epi16(H, 2), m30))};
                    UNROLL
                    for (int t = 0; t < T; t++) UNROLL
                    for (int k = 0; k < 4; k++) {
                        int32_t a4;
                        memcpy(&a4, a[t][s].qs + 128 * h + 32 * k + 4 * g, 4);
                        const __m256i p = _mm256_maddubs_epi16(q[k], _mm256_set1_epi32(a4));
                        m[t][k] = u ? _mm256_add_epi16(m[t][k], p) : p;
                    }
                }
                UNROLL
                for (int k = 0; k < 4; k++) {
                    const int G = 2 * (4 * h + k) + gp / 2;
                    const __m128i pl = _mm_loadl_epi64((const __m128i *)(ws + 16 + 8 * G));
                    const __m256i scp = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(pl, pl));
                    UNROLL
                    for (int t = 0; t < T; t++)
                        S[t][k] = _mm256_add_epi32(S[t][k], _mm256_madd_epi16(m[t][k], scp));
                }
            }
            UNROLL
            for (int k = 0; k < 4; k++) {
                const int j = 4 * h + k;
                const __m128i p0 = _mm_loadl_epi64((const __m128i *)(ws + 16 + 16 * j));
                const __m128i p1 = _mm_loadl_epi64((const __m128i *)(ws + 24 + 16 * j));
                const __m256i aux =
                    _mm256_slli_epi16(_mm256_cvtepi8_epi16(_mm_unpacklo_epi8(p0, p1)), 5);
                UNROLL
                for (int t = 0; t < T; t++) {
                    int32_t b2;
                    memcpy(&b2, &a[t][s].bsum[2 * j], 4);
                    const __m256i imin = _mm256_madd_epi16(aux, _mm256_set1_epi32(b2));
                    acc[t][j] = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(_mm256_sub_epi32(S[t][k], imin)),
                        _mm256_mul_ps(d, _mm256_broadcast_ss(&a[t][s].d[j])), acc[t][j]);
                }
            }
        }
    }
    UNROLL
    for (int t = 0; t < T; t++) _mm256_storeu_ps(y + (size_t)t * ldy, r8_sum_j(acc[t]));
}

/* A Q6_K group's 8 rows restored: ql and qh runs by avx2_r8_transpose. */
AVX2 static void r8_q6k_unpack(const uint8_t *grp, size_t row_bytes, int64_t nsb, uint8_t *rows) {
    for (int64_t s = 0; s < nsb; s++) {
        const uint8_t *gs = grp + s * KERN_R8_SB6;
        uint8_t *o = rows + s * 210;
        for (int r = 0; r < KERN_R8_ROWS; r++) {
            uint8_t *b = o + (size_t)r * row_bytes;
            memcpy(b + 208, gs + 2 * r, 2);
            for (int k = 0; k < 16; k++) b[192 + k] = gs[16 + 8 * k + r];
        }
        UNROLL
        for (int c = 0; c < 6; c++) { /* ql of h, p (c < 4: c = 2h + p), then qh of h = c - 4 */
            const int src = c < 4 ? 144 + 256 * c : 1168 + 256 * (c - 4);
            const int dst = c < 4 ? 32 * c : 128 + 32 * (c - 4);
            __m256i v[8], t[8];
            UNROLL
            for (int g = 0; g < 8; g++)
                v[g] = _mm256_loadu_si256((const __m256i *)(gs + src + 32 * g));
            avx2_r8_transpose(v, t);
            UNROLL
            for (int r = 0; r < 8; r++)
                _mm256_storeu_si256((__m256i *)(o + (size_t)r * row_bytes + dst), t[r]);
        }
    }
}

/* The Q6_K tile: group by group, R8_T6 tokens at a time; batches of
 * R8_UNPACK_MIN_T or more on the rows restored, by k_tile. */
AVX2 static void tile_q6_K_r8(const uint8_t *w, size_t row_bytes, int nr, const uint8_t *act,
                              size_t act_stride, int nt, int64_t n, float *y, size_t ldy,
                              uint8_t *scratch) {
    const int64_t nsb = n / 256;
    const size_t gb = KERN_R8_ROWS * row_bytes;
    const uint8_t *end = w + (size_t)nr * row_bytes;
    if (nt >= R8_UNPACK_MIN_T) {
        r8_restored_tile(r8_q6k_unpack, tile_q6_K, w, row_bytes, nr, act, act_stride, nt, n, y, ldy,
                         scratch);
        return;
    }
    for (int r = 0; r < nr; r += KERN_R8_ROWS) {
        const uint8_t *grp = w + (size_t)(r / KERN_R8_ROWS) * gb;
        for (int t0 = 0; t0 < nt; t0 += R8_T6) {
            const act_k *at[R8_T6];
            at[0] = (const act_k *)(act + (size_t)t0 * act_stride);
            float *yt = y + (size_t)t0 * ldy + r;
            if (nt - t0 >= 2) {
                at[1] = (const act_k *)(act + (size_t)(t0 + 1) * act_stride);
                r8_q6k(2, grp, end, at, nsb, yt, ldy);
            } else {
                r8_q6k(1, grp, end, at, nsb, yt, ldy);
            }
        }
    }
}

static size_t r8_scratch_bytes6(int64_t n) {
    return r8_restored_scratch(n, 210);
}

static const avx2_type type_tile_q6_K_r8 = {&act_k_fmt, tile_q6_K_r8,      MAX_ROWS,
                                            MAX_TOKENS, r8_scratch_bytes6, NULL};

static size_t r8_scratch_bytes(int64_t n) {
    return r8_restored_scratch(n, 144);
}

static const avx2_type type_tile_q4_K_r8 = {&act_k_fmt, tile_q4_K_r8,     MAX_ROWS,
                                            MAX_TOKENS, r8_scratch_bytes, NULL};

const avx2_type *KQ_R8_TYPE_OF(ht_type t) {
    return t == HT_Q4_K ? &type_tile_q4_K_r8 : t == HT_Q6_K ? &type_tile_q6_K_r8 : NULL;
}

const avx2_type *KQ_TYPE_OF(ht_type t) {
    switch (t) {
    case HT_Q2_K:
        return &type_tile_q2_K;
    case HT_Q3_K:
        return &type_tile_q3_K;
    case HT_Q4_K:
        return &type_tile_q4_K;
    case HT_Q5_K:
        return &type_tile_q5_K;
    case HT_Q6_K:
        return &type_tile_q6_K;
    default:
        return NULL;
    }
}

#else

#include "kernels/avx2_impl.h"

#endif
