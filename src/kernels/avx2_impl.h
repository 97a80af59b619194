/* The AVX2 variant's pieces (inside the kernels module only).
 *
 * avx2.c is the matmul driver: it quantizes a call's activations once per
 * format, cuts the work into tiles of rows x tokens, runs them over the pool
 * and falls back to the reference matmul for types no file here handles.
 * The per-type tile kernels live in
 *   avx2_q.c   F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL
 *              (activations: F32, or act_q8 blocks of 32 with one scale each)
 *   avx2_kq.c  Q2_K..Q6_K (8-bit activation blocks of 32 grouped per 256)
 * and are found through avx2_q_type() / avx2_kq_type().
 *
 * The contract of a tile kernel, which test_kernels checks for every type:
 * y[t * ldy + r] = (row r) . (token t) for r < nr, t < nt, where row r is at
 * w + r * row_bytes and token t's activations at act + t * act_stride (for
 * float types: the token's F32 values). The value of each (r, t) must be
 * bitwise the same whatever nr, nt, the tile's position and the thread: a
 * token gets the same logits alone (decode) or in any batch (prefill), on any
 * thread count. Kernels may read (prefetch) nothing outside their rows. */
#ifndef HEARTH_KERNELS_AVX2_IMPL_H
#define HEARTH_KERNELS_AVX2_IMPL_H

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tensor/types.h"

#define AVX2 __attribute__((target("avx2,fma,f16c")))

/* An activation format: what a type's tiles read for one token. */
typedef struct avx2_act {
    int block;                       /* values sharing one scale (kern_act_block) */
    size_t (*bytes)(int64_t n_cols); /* bytes per token */
    void (*quantize)(const float *x, int64_t n_cols, void *out);
    int bf16; /* 1: the values as BF16 (block 0), kern_act_bf16 */
} avx2_act;

typedef void (*avx2_tile_fn)(const uint8_t *w, size_t row_bytes, int nr, const uint8_t *act,
                             size_t act_stride, int nt, int64_t n_cols, float *y, size_t ldy,
                             uint8_t *scratch);

typedef struct avx2_type {
    const avx2_act *act; /* NULL: F32 activations, act_stride = ldx * 4 */
    avx2_tile_fn tile;
    int max_rows;   /* the most rows the driver passes to one tile call of nt >= 2
                       (scratch); one-token calls may be given any number */
    int max_tokens; /* the most tokens */
    /* scratch bytes one thread needs for a tile of max_rows rows of n_cols, or NULL: none */
    size_t (*scratch_bytes)(int64_t n_cols);
    /* a row of n_cols as F32, bitwise what ht_dequantize_row writes (the
     * same products and differences in the same order), or NULL: that */
    void (*dequant)(const uint8_t *src, float *out, int64_t n_cols);
} avx2_type;

/* NULL where the file does not handle the type. */
const avx2_type *avx2_q_type(ht_type t);
const avx2_type *avx512_q_type(ht_type t); /* avx512_q.c: the same with VNNI */
const avx2_type *avx2_kq_type(ht_type t);
const avx2_type *avx512_kq_type(ht_type t); /* avx512_kq.c: the same with VNNI */
/* the avx512 ones on AVX2 (tests/kernels/avx512emu_*.c, avx512_emu.h) */
const avx2_type *avx512emu_q_type(ht_type t);
const avx2_type *avx512emu_kq_type(ht_type t);
/* Types run from KERN_LAYOUT_R8 (avx2_kq.c: Q4_K, Q6_K); the driver gives their
 * tiles whole 8-row groups (w at a group, nr a multiple of 8). */
const avx2_type *avx2_kq_r8_type(ht_type t);
const avx2_type *avx512_kq_r8_type(ht_type t);
const avx2_type *avx512emu_kq_r8_type(ht_type t);

/* ---- small shared helpers --------------------------------------------- */

static inline uint16_t avx2_rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

AVX2 static inline float avx2_f16(uint16_t h) {
    return _cvtsh_ss(h);
}

AVX2 static inline float avx2_hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline int32_t avx2_hsum8i(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* 32 values -> qs[32] with x ~ d * qs (d = max|x| / 127, round to nearest
 * even), *sum = sum of qs. amax_in >= 0: use it as max|x| (a scale shared
 * by several blocks); < 0: this block's own. */
AVX2 static inline void avx2_quantize32(const float *xb, float amax_in, float *d, int32_t *sum,
                                        int8_t *qs) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4], mx = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_loadu_ps(xb + 8 * k);
        mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v[k]));
    }
    float amax = amax_in;
    if (amax < 0) {
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        amax = _mm_cvtss_f32(m);
    }
    __m256 vid = _mm256_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
    __m256i q[4];
    for (int k = 0; k < 4; k++)
        q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], vid),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    *sum =
        avx2_hsum8i(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    /* pack 32 int32 -> 32 int8, restoring order after the lane-wise packs */
    __m256i p01 = _mm256_packs_epi32(q[0], q[1]), p23 = _mm256_packs_epi32(q[2], q[3]);
    __m256i p = _mm256_packs_epi16(p01, p23);
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    *d = amax / 127.0f;
    _mm256_storeu_si256((__m256i *)qs, p);
}

/* 8 rows' blocks v[r] -> g[i] (i < 8): bytes 4r..4r+3 = row r's values 4i..4i+3. */
AVX2 static inline __attribute__((always_inline)) void avx2_r8_transpose(const __m256i v[8],
                                                                         __m256i g[8]) {
    __m256i t[8], u[8];
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        t[2 * k] = _mm256_unpacklo_epi32(v[2 * k], v[2 * k + 1]);
        t[2 * k + 1] = _mm256_unpackhi_epi32(v[2 * k], v[2 * k + 1]);
    }
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) { /* rows 4h..4h+3: u[4h + j] = groups j, j + 4 of them */
        u[4 * h + 0] = _mm256_unpacklo_epi64(t[4 * h], t[4 * h + 2]);
        u[4 * h + 1] = _mm256_unpackhi_epi64(t[4 * h], t[4 * h + 2]);
        u[4 * h + 2] = _mm256_unpacklo_epi64(t[4 * h + 1], t[4 * h + 3]);
        u[4 * h + 3] = _mm256_unpackhi_epi64(t[4 * h + 1], t[4 * h + 3]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        g[j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x20);
        g[4 + j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x31);
    }
}

#endif
#endif
