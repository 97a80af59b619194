/* AVX2 tiles for F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_1, Q5_1 and IQ4_NL
 * weights (see avx2_impl.h).
 *
 *   F32, F16, BF16: F32 activations, FMA dot products (the reference's values
 *     up to summation order; F16 converted with F16C, BF16 by a shift); in
 *     the avx512 build, F16 and BF16 as BF16 products where the CPU has
 *     AVX512_BF16 (below, "BF16 products").
 *   the quantized types: activations quantized to act_q8 blocks of 32 (x ~ d
 *     * qx, d = max|x| / 127), each block product an integer dot product
 *     (maddubs/madd) scaled in F32, as the reference runtime does: the
 *     "fast" tier of the golden tests.
 *
 * The value of each (row, token) is fixed by one summation order, whatever
 * the path that computes it (test_kernels and test_avx2q check this bitwise):
 *   float types: one 8-lane accumulator, acc = fma(w[i..i+8), x[i..i+8), acc)
 *     over i = 0, 8, ...; then avx2_hsum8(acc), then the tail columns one
 *     scalar FMA each.
 *   Q8_0, Q4_0, Q5_0, IQ4_NL: per block b in order, S = the block's exact
 *     integer dot, acc = fma(float(S), dw * da, acc); y = acc.
 *   Q4_1, Q5_1: per block b in order, p = the 8 int32 lane sums of 4
 *     products each (elements 4k..4k+3 in lane k), acc = fma(float(p), dw *
 *     da, acc); then avx2_hsum8(acc) plus a scalar sum over blocks of m *
 *     (da * sum qa), one FMA each.
 * Two paths compute these:
 *   decode (few tokens): straight from the weights, a group of rows per
 *     activation load (8 float rows, 4 quantized rows whose block scales
 *     convert as one vector and whose block dots reduce to one vector of 4
 *     totals), one accumulator chain per row, and software prefetch of each
 *     row PF_DIST ahead, running on into the next group's rows at a row's
 *     end (4 KiB pages stop the hardware prefetcher); never outside the tile.
 *   batches (prefill): the tile's rows, SUB at a time, unpacked once into
 *     per-thread scratch, while the weights of the next chunk or rows are
 *     prefetched: F16 / BF16 -> F32 a column chunk at a time, then micro-
 *     kernels of 4 rows x 3 tokens (12 accumulators); Q8_0, Q4_0, Q5_0,
 *     IQ4_NL -> groups of 8 rows interleaved by 4 values (r8_unpack), so
 *     that one maddubs covers 8 rows x 4 values and a block's 8 row totals
 *     land in one register, x 4 tokens (Q4_0 / Q5_0 unsigned, with no sign
 *     step); Q4_1, Q5_1 -> their 32 values (unsigned) and F32 scales, 4
 *     rows x 3 tokens. In the avx512 build where the CPU has AMX (amx.h),
 *     batches of 4 tokens or more of the kinds without a min take each
 *     block's 16 x 16 integer dots in one tile product (amx_tile). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <cpuid.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/avx2_impl.h"

/* Built twice: as the AVX2 variant's tiles (avx2_q_type) and, from
 * avx512_q.c with HEARTH_VNNI defined, as the avx512 variant's (avx512_q_type):
 * the same code with AVX-512 VNNI's vpdpbusd in place of maddubs + madd, and
 * every signed kind (Q8_0, IQ4_NL) in the unsigned form below, so that a
 * 4-value product is one instruction, and batches on 16-row groups of
 * 512-bit vectors (r16_*). The integers and float steps are the same, so
 * each (row, token) value of a quantized type is bitwise the same in both
 * variants (test_avx2q). Float types run the same float tiles over 512-bit
 * vectors (FV, below): 16-lane sums, the same values up to summation order. */
#if defined(HEARTH_VNNI) && defined(HEARTH_VNNI_EMULATE)
/* tests/kernels/avx512emu_q.c: this build on any AVX2 CPU, with every
 * AVX-512 instruction computed exactly on 256-bit halves (avx512_emu.h) */
#include "kernels/avx512_emu.h"
#define Q_TYPE_OF avx512emu_q_type
#define DPBUSD    emu_dpbusd
#define Q_AVX512  1
#elif defined(HEARTH_VNNI)
#undef AVX2
#define AVX2      __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define Q_TYPE_OF avx512_q_type
#define DPBUSD    _mm256_dpbusd_epi32
#define Q_AVX512  1 /* 512-bit paths: float tiles (FV), 16-row batches (r16_*) */
#else
#define Q_TYPE_OF avx2_q_type
#endif

#define INLINE     AVX2 static inline __attribute__((always_inline))
#define MAX_ROWS   64 /* rows per tile */
#define MAX_TOKENS 64 /* tokens per tile */
#define SUB        16 /* batches: rows unpacked into scratch at a time */
#ifndef PF_DIST
#define PF_DIST 768 /* decode: prefetch distance in bytes, per row stream */
#endif
#ifndef PF_SHORT
#define PF_SHORT 16384 /* decode: a row group this short is prefetched as one span */
#endif
#define F_KC        256 /* float batches: columns per chunk */
#define F_MR        4   /* float micro-kernel: rows */
#define F_MT        3   /* and tokens (12 accumulators) */
#define Q_MR        4   /* quantized micro-kernel: rows */
#define Q_MT        3   /* and tokens */
#define Q_BATCH_MIN 3   /* tokens from which quantized tiles unpack the rows */
#define F_BATCH_MIN 2   /* the same for float tiles */

/* An activation block: 32 values x[i] ~ d * qs[i]; sum = sum of qs. */
typedef struct act_q8 {
    float d;
    int32_t sum;
    int8_t qs[32];
} act_q8;

static size_t act_q8_bytes(int64_t n) {
    return (size_t)(n / 32) * sizeof(act_q8);
}

/* x[0..n) (n a multiple of 32) -> n/32 blocks. */
AVX2 static void quantize_act(const float *x, int64_t n, void *out) {
    act_q8 *o = out;
    for (int64_t b = 0; b < n / 32; b++)
        avx2_quantize32(x + 32 * b, -1.0f, &o[b].d, &o[b].sum, o[b].qs);
}

static const avx2_act act_q8_fmt = {32, act_q8_bytes, quantize_act, 0};

/* Prefetches, for a group of rows [r, r + g) of a tile of nr rows whose
 * reading has reached byte off of each row and goes on by `step` bytes per
 * call: long rows, the bytes PF_DIST past off in the same rows, or once that
 * passes the row's end, at the start of the next group's rows; short rows
 * (the group within PF_SHORT bytes), the next group's rows as one span, at
 * the same pace (and the first group's own rows as for long rows). Nothing
 * outside the tile. */
INLINE void prefetch_ahead(const uint8_t *w, size_t rb, int r, int g, int nr, size_t off,
                           size_t step) {
    size_t o = off + PF_DIST;
    if ((size_t)g * rb <= PF_SHORT) {
        const size_t at = (size_t)(r + g) * rb + off * (size_t)g,
                     lim = (size_t)(r + 2 * g < nr ? r + 2 * g : nr) * rb;
        for (size_t k = 0; k <= (size_t)g * step; k += 64)
            if (at + k < lim) _mm_prefetch((const char *)(w + at + k), 3);
        if (r > 0) return;
    }
    if (o < rb) {
        for (int i = 0; i < g; i++) _mm_prefetch((const char *)(w + (size_t)(r + i) * rb + o), 3);
    } else if (r > 0 || (size_t)g * rb > PF_SHORT) {
        o -= rb;
        if (o < rb)
            for (int i = r + g; i < r + 2 * g && i < nr; i++)
                _mm_prefetch((const char *)(w + (size_t)i * rb + o), 3);
    }
}

/* Batches: the weights the next step will read (the next column chunk of
 * the rows, or the next rows of the tile) are prefetched a few lines per
 * micro-kernel call while the current ones are computed: a cursor over rows
 * [row, row_end) x bytes [off0, off1) of each. */
typedef struct pf_cursor {
    const uint8_t *w;
    size_t rb, off, off0, off1;
    int row, row_end;
    size_t step; /* bytes per call */
} pf_cursor;

/* A cursor over rows [r0, r1) x bytes [off0, off1) of w for about `calls`
 * micro-kernel calls. */
static pf_cursor pf_rect(const uint8_t *w, size_t rb, int r0, int r1, size_t off0, size_t off1,
                         size_t calls) {
    pf_cursor c = {w, rb, off0, off0, off1, r0, r1, 64};
    if (r1 <= r0 || off1 <= off0) c.row_end = r0;
    size_t total = r1 > r0 ? (size_t)(r1 - r0) * (off1 - off0) : 0;
    if (calls) c.step = (total / calls + 63) & ~(size_t)63;
    if (c.step < 64) c.step = 64;
    return c;
}

INLINE void pf_advance(pf_cursor *c) {
    for (size_t i = 0; i < c->step && c->row < c->row_end; i += 64) {
        _mm_prefetch((const char *)(c->w + (size_t)c->row * c->rb + c->off), _MM_HINT_T1);
        if ((c->off += 64) >= c->off1) {
            c->off = c->off0;
            c->row++;
        }
    }
}

/* ---- float types ------------------------------------------------------ */

/* Float weight kinds: the element size is 4 (F32) or 2 (F16, BF16). */
enum { W_F32, W_F16, W_BF16 };

/* 8 weights at element i of a row, as F32 (every conversion exact). */
INLINE __m256 ld_w8(const uint8_t *row, int64_t i, const int fk) {
    if (fk == W_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * i)));
    if (fk == W_BF16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(row + 2 * i))), 16));
    return _mm256_loadu_ps((const float *)row + i);
}

INLINE float w_at(const uint8_t *row, int64_t i, const int fk) {
    if (fk == W_F16) return avx2_f16(avx2_rd16(row + 2 * i));
    uint32_t u = fk == W_BF16 ? (uint32_t)avx2_rd16(row + 2 * i) << 16 : 0;
    if (fk == W_F32) memcpy(&u, row + 4 * i, 4);
    float v;
    memcpy(&v, &u, 4);
    return v;
}

#ifdef Q_AVX512
AVX2 static inline float avx512_hsum16(__m512 v) {
    return avx2_hsum8(
        _mm256_add_ps(_mm512_castps512_ps256(v),
                      _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}

/* 16 weights at element i of a row, as F32 (every conversion exact). */
INLINE __m512 ld_w16(const uint8_t *row, int64_t i, const int fk) {
    if (fk == W_F16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 2 * i)));
    if (fk == W_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(row + 2 * i))), 16));
    return _mm512_loadu_ps((const float *)row + i);
}

/* The float tiles below are written once over a vector of FV_N floats: in
 * the avx512 build 16 lanes (a 4 rows x 4 tokens micro-kernel), in the avx2
 * build 8 (4 x 3). A (row, token) value is acc = fma(w[i..i+FV_N),
 * x[i..i+FV_N), acc) over i = 0, FV_N, ..., then the vector's hsum, then the
 * tail columns one scalar FMA each, in decode and batches alike: the two
 * builds give the same values up to summation order (test_avx2q holds both
 * to a double-precision dot). */
#define FV          __m512
#define FV_N        16
#define FV_MR       4
#define FV_MT       4
#define FV_UNROLL_T _Pragma("GCC unroll 4")
#define fv_zero     _mm512_setzero_ps
#define fv_load     _mm512_loadu_ps
#define fv_store    _mm512_storeu_ps
#define fv_fma      _mm512_fmadd_ps
#define fv_hsum     avx512_hsum16
#define fv_ldw      ld_w16
#else
#define FV          __m256
#define FV_N        8
#define FV_MR       F_MR
#define FV_MT       F_MT
#define FV_UNROLL_T _Pragma("GCC unroll 3")
#define fv_zero     _mm256_setzero_ps
#define fv_load     _mm256_loadu_ps
#define fv_store    _mm256_storeu_ps
#define fv_fma      _mm256_fmadd_ps
#define fv_hsum     avx2_hsum8
#define fv_ldw      ld_w8
#endif

/* The end of a (row, token) value: hsum, then the columns [nv, n). */
INLINE float f_finish(FV acc, const uint8_t *row, const float *x, int64_t nv, int64_t n,
                      const int fk) {
    __m128 s = _mm_set_ss(fv_hsum(acc));
    for (int64_t i = nv; i < n; i++)
        s = _mm_fmadd_ss(_mm_set_ss(w_at(row, i, fk)), _mm_set_ss(x[i]), s);
    return _mm_cvtss_f32(s);
}

#define FT_P(name)        f_##name
#define FT_ATTR           AVX2
#define FT_INLINE         INLINE
#define FT_E              float
#define FT_V              FV
#define FT_STEP           FV_N
#define FT_LD             fv_load
#define FT_LDW            fv_ldw
#define FT_DOT(acc, w, x) fv_fma(w, x, acc)
#define FT_DIRECT(fk)     ((fk) == W_F32)
#define FT_STAGE          fv_store
#include "kernels/avx2_ftile.h"

/* A tile entry point: impl (f_tile, bf_tile, tile_quant) for one weight kind. */
#define TILE_OF_A(attr, name, impl, kind)                                                          \
    attr static void name(const uint8_t *w, size_t row_bytes, int nr, const uint8_t *act,          \
                          size_t act_stride, int nt, int64_t n, float *y, size_t ldy,              \
                          uint8_t *scratch) {                                                      \
        impl(w, row_bytes, nr, act, act_stride, nt, n, y, ldy, scratch, kind);                     \
    }
#define TILE_OF(name, impl, kind) TILE_OF_A(AVX2, name, impl, kind)
TILE_OF(tile_f32, f_tile, W_F32)
TILE_OF(tile_f16, f_tile, W_F16)
TILE_OF(tile_bf16, f_tile, W_BF16)

#ifdef Q_AVX512
/* ---- BF16 products (AVX512_BF16) -------------------------------------- */

/* Where the CPU has AVX512_BF16, F16 and BF16 weights are multiplied as
 * BF16 (vdpbf16ps: 32 products per instruction, twice the F32 FMA's 16):
 * the activations are rounded to BF16 once per call (act_bf16), F16
 * weights as they are read (F16 -> F32 exactly, then to BF16; BF16 weights
 * as they are), both round-to-nearest-even, and the products summed in F32.
 * A (row, token) value: acc = vdpbf16ps(acc, w[i..i+32), x[i..i+32)) over
 * i = 0, 32, ..., lane j taking the pair (i + 2j + 1, i + 2j) in that
 * order, then avx512_hsum16, then the tail columns one scalar FMA each of
 * the BF16 values: in decode (bf_rows) and batches (bf_micro) alike, so a
 * token's value is bitwise the same alone or in any batch, as for every
 * tile. The golden tests hold F16 files to their fast tier this way
 * (golden.*.f16.avx512emu); HEARTH_AVX512_BF16=0 turns it off. */
#ifdef HEARTH_VNNI_EMULATE
#define BF16 AVX2 /* avx512_emu.h computes the BF16 instructions */
#else
#define BF16                                                                                       \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16")))
#endif
#define BF_INLINE BF16 static inline __attribute__((always_inline))

/* F32 -> BF16 as vcvtne2ps2bf16 does it: round to nearest even, a
 * denormal to a zero of its sign, a NaN quieted. */
static inline uint16_t bf16_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float f32_of_bf16(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static size_t act_bf16_bytes(int64_t n) {
    return (size_t)n * 2;
}

/* A token's n values -> n BF16. */
BF16 static void quantize_bf16(const float *x, int64_t n, void *out) {
    uint16_t *o = out;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
        memcpy(o + i, &v, 64);
    }
    for (; i < n; i++) o[i] = bf16_of(x[i]);
}

static const avx2_act act_bf16_fmt = {0, act_bf16_bytes, quantize_bf16, 1};

/* 32 weights at element i of a row, as BF16 pairs. */
BF_INLINE __m512bh ld_wbh(const uint8_t *row, int64_t i, const int fk) {
    if (fk == W_F16) return _mm512_cvtne2ps_pbh(ld_w16(row, i + 16, fk), ld_w16(row, i, fk));
    __m512bh v;
    memcpy(&v, row + 2 * i, 64);
    return v;
}

BF_INLINE __m512bh ld_bh(const uint16_t *p) {
    __m512bh v;
    memcpy(&v, p, 64);
    return v;
}

/* The end of a (row, token) value: hsum, then the columns [nv, n). */
BF_INLINE float bf_finish(__m512 acc, const uint8_t *row, const uint16_t *x, int64_t nv, int64_t n,
                          const int fk) {
    __m128 s = _mm_set_ss(avx512_hsum16(acc));
    for (int64_t i = nv; i < n; i++) {
        const float wv =
            f32_of_bf16(fk == W_F16 ? bf16_of(w_at(row, i, fk)) : avx2_rd16(row + 2 * i));
        s = _mm_fmadd_ss(_mm_set_ss(wv), _mm_set_ss(f32_of_bf16(x[i])), s);
    }
    return _mm_cvtss_f32(s);
}

BF_INLINE void bf_stage(uint16_t *dst, __m512bh v) {
    memcpy(dst, &v, 64);
}

#define FT_P(name)        bf_##name
#define FT_ATTR           BF16
#define FT_INLINE         BF_INLINE
#define FT_E              uint16_t
#define FT_V              __m512bh
#define FT_STEP           32
#define FT_LD             ld_bh
#define FT_LDW            ld_wbh
#define FT_DOT(acc, w, x) _mm512_dpbf16_ps(acc, w, x)
#define FT_DIRECT(fk)     ((fk) == W_BF16)
#define FT_STAGE          bf_stage
#include "kernels/avx2_ftile.h"

TILE_OF_A(BF16, tile_f16_bf, bf_tile, W_F16)
TILE_OF_A(BF16, tile_bf16_bf, bf_tile, W_BF16)

/* Whether to multiply F16 / BF16 weights as BF16: the CPU has AVX512_BF16
 * (CPUID leaf 7 subleaf 1, EAX bit 5; the emulated build always) and
 * HEARTH_AVX512_BF16 is not "0". Read once. */
static bool bf_use(void) {
    static int use = -1; /* threads racing here all compute the same value */
    int on = __atomic_load_n(&use, __ATOMIC_RELAXED);
    if (on < 0) {
        const char *env = getenv("HEARTH_AVX512_BF16");
        on = !(env && !strcmp(env, "0"));
#ifndef HEARTH_VNNI_EMULATE
        unsigned a, b, c, d;
        on = on && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5));
#endif
        __atomic_store_n(&use, on, __ATOMIC_RELAXED);
    }
    return on;
}
#endif

/* ---- quantized types --------------------------------------------------- */

/* Block layouts (32 values, f16 d first):
 *   Q8_0   34 bytes {d, int8 qs[32]}: w = d * qs
 *   Q4_0   18 bytes {d, qs[16]}: element j = low nibble of qs[j], j+16 = high
 *          nibble; w = d * (nibble - 8)
 *   Q5_0   22 bytes {d, qh[4], qs[16]}: nibbles as Q4_0 | bit j of qh << 4;
 *          w = d * (q - 16)
 *   IQ4_NL 18 bytes {d, qs[16]}: nibbles as Q4_0 index a 16-value grid;
 *          w = d * grid[nibble]
 *   Q4_1   20 bytes {d, f16 m, qs[16]}: w = d * nibble + m
 *   Q5_1   24 bytes {d, f16 m, qh[4], qs[16]}: w = d * q + m (q as Q5_0)
 * Per block the integer part is the 8 lanes of sum q * qa (q signed for
 * Q8_0, Q4_0, Q5_0, IQ4_NL; Q4_0 / Q5_0 may also compute it as unsigned
 * values minus the offset times the activation sums: the same integers);
 * Q4_1 / Q5_1 add m * (da * sum qa) per block to a scalar accumulator,
 * added after the lanes' sum. */
enum { K_Q8_0, K_Q4_0, K_Q5_0, K_IQ4_NL, K_Q4_1, K_Q5_1 };

static const int q_bsize[6] = {34, 18, 22, 18, 20, 24};

static const int8_t iq4nl_grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                      1,    13,   25,  38,  53,  69,  89,  113};

INLINE int q_has_min(const int kind) {
    return kind == K_Q4_1 || kind == K_Q5_1;
}

/* Kinds whose products are taken in unsigned form: u = q + off (0..2 off),
 * times the signed activations a, minus off * sum a; the same integers as
 * sum q * a. Q4_0 / Q5_0 (off 8 / 16) in both builds; with VNNI also Q8_0
 * and IQ4_NL (off 128), since vpdpbusd takes one operand unsigned. */
#ifdef HEARTH_VNNI
#define Q_UNSIGNED(kind)                                                                           \
    ((kind) == K_Q4_0 || (kind) == K_Q5_0 || (kind) == K_Q8_0 || (kind) == K_IQ4_NL)
#else
#define Q_UNSIGNED(kind) ((kind) == K_Q4_0 || (kind) == K_Q5_0)
#endif

/* The offset times a block's activation sum, wrapping (non-finite
 * activations leave any sum) the same way in every path. */
static inline int32_t act_off(const act_q8 *a, const int kind) {
    const uint32_t off = kind == K_Q4_0 ? 8 : kind == K_Q5_0 ? 16 : 128;
    return (int32_t)((uint32_t)a->sum * off);
}

/* 16 bytes of nibbles -> 32 values 0..15 in element order: the bytes in
 * both halves, the upper half shifted down 4 (one variable shift, no
 * cross-lane insert). */
INLINE __m256i nibbles(const uint8_t *qs) {
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    return _mm256_and_si256(_mm256_srlv_epi32(v, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)),
                            _mm256_set1_epi8(0xf));
}

/* Nibbles | the 32 bits of qh << 4: 32 values 0..31. */
INLINE __m256i five_bits(const uint8_t *qh, const uint8_t *qs) {
    uint32_t h;
    memcpy(&h, qh, 4);
    /* byte i <- byte i/8 of qh, then test bit i%8 */
    __m256i hb = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)h),
        _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    hb = _mm256_cmpeq_epi8(_mm256_and_si256(hb, bit), bit);
    return _mm256_or_si256(nibbles(qs), _mm256_and_si256(hb, _mm256_set1_epi8(0x10)));
}

/* A block's 32 integer values q in element order (signed bytes; Q4_1 / Q5_1:
 * 0..31). */
INLINE __m256i q_block(const uint8_t *blk, const int kind) {
    switch (kind) {
    case K_Q8_0:
        return _mm256_loadu_si256((const __m256i *)(blk + 2));
    case K_Q4_0:
        return _mm256_sub_epi8(nibbles(blk + 2), _mm256_set1_epi8(8));
    case K_Q5_0:
        return _mm256_sub_epi8(five_bits(blk + 2, blk + 6), _mm256_set1_epi8(16));
    case K_IQ4_NL: {
        __m128i g = _mm_loadu_si128((const __m128i *)iq4nl_grid);
        return _mm256_shuffle_epi8(_mm256_set_m128i(g, g), nibbles(blk + 2));
    }
    case K_Q4_1:
        return nibbles(blk + 4);
    default:
        return five_bits(blk + 4, blk + 8);
    }
}

/* IQ4_NL's grid + 128 (unsigned form). */
static const uint8_t iq4nl_grid_u[16] = {1,   24,  45,  63,  79,  93,  106, 118,
                                         129, 141, 153, 166, 181, 197, 217, 241};

/* Q_UNSIGNED kinds: a block's values in unsigned form, before the offset. */
INLINE __m256i q_block_u(const uint8_t *blk, const int kind) {
    switch (kind) {
    case K_Q4_0:
        return nibbles(blk + 2);
    case K_Q8_0:
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(blk + 2)),
                                _mm256_set1_epi8((char)0x80));
    case K_IQ4_NL: {
        __m128i g = _mm_loadu_si128((const __m128i *)iq4nl_grid_u);
        return _mm256_shuffle_epi8(_mm256_set_m128i(g, g), nibbles(blk + 2));
    }
    default:
        return five_bits(blk + 2, blk + 6);
    }
}

/* The 8 lane sums of w * a, given |w| (or w unsigned) and a with w's signs
 * (|w| <= 255, |a| <= 127; without VNNI, sums of two products must fit
 * int16: |w| <= 128 where a is 127). */
INLINE __m256i q_lanes(__m256i absw, __m256i sa) {
#ifdef HEARTH_VNNI
    return DPBUSD(_mm256_setzero_si256(), absw, sa);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(absw, sa), _mm256_set1_epi16(1));
#endif
}

/* Four rows' 8-lane sums -> their four totals (exact integers). No phadd:
 * slow on Zen 3. */
INLINE __m128i q_totals4(__m256i p0, __m256i p1, __m256i p2, __m256i p3) {
    const __m256i s01 =
        _mm256_add_epi32(_mm256_unpacklo_epi32(p0, p1), _mm256_unpackhi_epi32(p0, p1));
    const __m256i s23 =
        _mm256_add_epi32(_mm256_unpacklo_epi32(p2, p3), _mm256_unpackhi_epi32(p2, p3));
    const __m256i v =
        _mm256_add_epi32(_mm256_unpacklo_epi64(s01, s23), _mm256_unpackhi_epi64(s01, s23));
    return _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
}

/* A block's 8 lane sums of w * a for one row (kinds without a min); Q4_0 /
 * Q5_0 before the offset, which the caller takes off the row totals. */
INLINE __m256i q_prod(const uint8_t *bg, __m256i qa, const int kind) {
    if (Q_UNSIGNED(kind)) return q_lanes(q_block_u(bg, kind), qa);
    const __m256i q = q_block(bg, kind);
    return q_lanes(_mm256_sign_epi8(q, q), _mm256_sign_epi8(qa, q));
}

/* Decode: G (4 or 1) rows from r of a tile against one token (nb blocks).
 * The 4 rows' scales are converted and multiplied as one vector; kinds
 * without a min reduce each block to the rows' integer totals first. */
INLINE void q_rows(const uint8_t *w, size_t rb, int r, const int G, int nr, const act_q8 *a,
                   int64_t nb, float *y, const int kind) {
    const int bs = q_bsize[kind];
    const int hm = q_has_min(kind);
    __m256 acc[4];
    __m128 accm[4];
    __m128 acc4 = _mm_setzero_ps(); /* kinds without a min: lane g = row g */
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
        acc[g] = _mm256_setzero_ps();
        accm[g] = _mm_setzero_ps();
    }
    const uint8_t *row = w + (size_t)r * rb;
    for (int64_t b = 0; b < nb; b++) {
        if ((b & 1) == 0) prefetch_ahead(w, rb, r, G, nr, (size_t)b * bs, 2 * (size_t)bs);
        const __m256i qa = _mm256_loadu_si256((const __m256i *)a[b].qs);
        const uint8_t *blk = row + (size_t)b * bs;
        /* Q4_0 / Q5_0: the offset (8 / 16) times the activations' sum */
        const int32_t off = Q_UNSIGNED(kind) ? act_off(&a[b], kind) : 0;
        __m128 d4;
        if (G == 4) {
            __m128i h = _mm_cvtsi32_si128(avx2_rd16(blk));
            h = _mm_insert_epi16(h, avx2_rd16(blk + rb), 1);
            h = _mm_insert_epi16(h, avx2_rd16(blk + 2 * rb), 2);
            h = _mm_insert_epi16(h, avx2_rd16(blk + 3 * rb), 3);
            d4 = _mm_mul_ps(_mm_cvtph_ps(h), _mm_set1_ps(a[b].d));
        } else {
            d4 = _mm_set_ss(avx2_f16(avx2_rd16(blk)) * a[b].d);
        }
        if (!hm) {
            if (G == 4) {
                const __m128i tot = _mm_sub_epi32(
                    q_totals4(q_prod(blk, qa, kind), q_prod(blk + rb, qa, kind),
                              q_prod(blk + 2 * rb, qa, kind), q_prod(blk + 3 * rb, qa, kind)),
                    _mm_set1_epi32(off));
                acc4 = _mm_fmadd_ps(_mm_cvtepi32_ps(tot), d4, acc4);
            } else {
                const int32_t tot =
                    (int32_t)((uint32_t)avx2_hsum8i(q_prod(blk, qa, kind)) - (uint32_t)off);
                acc4 = _mm_fmadd_ss(_mm_cvtsi32_ss(_mm_setzero_ps(), tot), d4, acc4);
            }
            continue;
        }
        __m256 sv[4];
        if (G == 4) {
            __m256 d8 = _mm256_set_m128(d4, d4);
            sv[0] = _mm256_permute_ps(d8, 0x00);
            sv[1] = _mm256_permute_ps(d8, 0x55);
            sv[2] = _mm256_permute_ps(d8, 0xaa);
            sv[3] = _mm256_permute_ps(d8, 0xff);
        } else {
            sv[0] = _mm256_broadcastss_ps(d4);
        }
        const __m128 ds = _mm_set_ss(a[b].d * (float)a[b].sum);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const uint8_t *bg = blk + (size_t)g * rb;
            const __m256i p = q_lanes(q_block(bg, kind), qa);
            accm[g] = _mm_fmadd_ss(_mm_set_ss(avx2_f16(avx2_rd16(bg + 2))), ds, accm[g]);
            acc[g] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), sv[g], acc[g]);
        }
    }
    if (!hm) {
        float t[4];
        _mm_storeu_ps(t, acc4);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) y[r + g] = t[g];
        return;
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) y[r + g] = avx2_hsum8(acc[g]) + _mm_cvtss_f32(accm[g]);
}

/* Batches of Q4_1 / Q5_1: a row unpacked in scratch: d[nb], m[nb] (F32),
 * then per block its 32 values (0..31). */
static size_t q_row_bytes(int64_t n) {
    return (size_t)(n / 32) * (8 + 32);
}

#define R8_BLK 544 /* bytes per block of an 8-row group (r8_unpack) */

/* Either batch layout for SUB rows: q_unpack's rows or r8_unpack's groups. */
static size_t q_scratch(int64_t n) {
    const size_t rows = q_row_bytes(n) * SUB, groups = (size_t)(n / 32) * R8_BLK * (SUB / 8);
    return (rows > groups ? rows : groups) + 64;
}

/* One row into scratch, prefetching PF_DIST ahead while below lim (the
 * tile's end). */
INLINE void q_unpack(const uint8_t *src, int64_t nb, uint8_t *dst, const uint8_t *lim,
                     const int kind) {
    const int bs = q_bsize[kind];
    float *d = (float *)dst, *m = d + nb;
    uint8_t *q = dst + 8 * nb;
    for (int64_t b = 0; b < nb; b++, src += bs) {
        if ((b & 1) == 0 && PF_DIST < lim - src) _mm_prefetch((const char *)(src + PF_DIST), 3);
        _mm256_storeu_si256((__m256i *)(q + 32 * b), q_block(src, kind));
        d[b] = avx2_f16(avx2_rd16(src));
        m[b] = avx2_f16(avx2_rd16(src + 2));
    }
}

/* R unpacked rows (at u, stride us bytes) x T tokens: y[t * ldy + g]. The
 * values are unsigned: maddubs takes them as they are. */
INLINE void q_micro(const uint8_t *u, size_t us, const act_q8 *const *a, int64_t nb, float *y,
                    size_t ldy, const int R, const int T) {
    __m256 acc[Q_MR][Q_MT];
    __m128 accm[Q_MR][Q_MT];
#pragma GCC unroll 4
    for (int g = 0; g < R; g++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            acc[g][t] = _mm256_setzero_ps();
            accm[g][t] = _mm_setzero_ps();
        }
    const uint8_t *q = u + 8 * nb;
    for (int64_t b = 0; b < nb; b++) {
        __m256i qa[Q_MT];
        __m256 da[Q_MT];
        __m128 ds[Q_MT];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            qa[t] = _mm256_loadu_si256((const __m256i *)a[t][b].qs);
            da[t] = _mm256_broadcast_ss(&a[t][b].d);
            ds[t] = _mm_set_ss(a[t][b].d * (float)a[t][b].sum);
        }
#pragma GCC unroll 4
        for (int g = 0; g < R; g++) {
            const float *dg = (const float *)(u + (size_t)g * us);
            const __m256i wq = _mm256_loadu_si256((const __m256i *)(q + (size_t)g * us + 32 * b));
            const __m256 dw = _mm256_broadcast_ss(dg + b);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                __m256i p = q_lanes(wq, qa[t]);
                acc[g][t] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw, da[t]), acc[g][t]);
                accm[g][t] = _mm_fmadd_ss(_mm_load_ss(dg + nb + b), ds[t], accm[g][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < R; g++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            y[(size_t)t * ldy + g] = avx2_hsum8(acc[g][t]) + _mm_cvtss_f32(accm[g][t]);
        }
}

AVX2 static void q_batch(const uint8_t *u, size_t us, int sr, const act_q8 *const *a, int nt,
                         int64_t nb, float *y, size_t ldy, pf_cursor *pc) {
    for (int g = 0; g < sr;) {
        const int gn = sr - g >= Q_MR ? Q_MR : 1;
        for (int t = 0; t < nt;) {
            const int tn = nt - t >= Q_MT ? Q_MT : 1;
            const uint8_t *ug = u + g * us;
            float *yg = y + (size_t)t * ldy + g;
            pf_advance(pc);
            if (gn == Q_MR && tn == Q_MT)
                q_micro(ug, us, a + t, nb, yg, ldy, Q_MR, Q_MT);
            else if (gn == Q_MR)
                q_micro(ug, us, a + t, nb, yg, ldy, Q_MR, 1);
            else if (tn == Q_MT)
                q_micro(ug, us, a + t, nb, yg, ldy, 1, Q_MT);
            else
                q_micro(ug, us, a + t, nb, yg, ldy, 1, 1);
            t += tn;
        }
        g += gn;
    }
}

/* Batches of kinds without a min: groups of 8 rows interleaved in scratch,
 * per block 544 bytes: the rows' scales d[8] (F32), then for each 4-value
 * group i (0..7) 32 bytes of |q| and 32 of q, bytes 4r..4r+3 = row r's
 * values 4i..4i+3. One maddubs then covers 8 rows x 4 values against 4
 * activations broadcast, and the 8 lanes of the sum are the rows' block
 * totals: one FMA per block for 8 rows, as decode's q_rows computes them. */
/* Q_UNSIGNED kinds keep their values unsigned (q + off) in the |q| slot and
 * take the offset off the integer sum, with no sign step. */
#define R8_UNSIGNED(kind) Q_UNSIGNED(kind)

/* Row r's block at w + r * rb + b * bs (r < nrow; else zero) in the batch
 * form (unsigned where R8_UNSIGNED) and its scale, for rows r0..r0+7,
 * prefetching PF_DIST ahead below lim. */
INLINE void r8_load(const uint8_t *w, size_t rb, int r0, int nrow, int64_t b, const uint8_t *lim,
                    __m256i v[8], float d[8], const int kind) {
    const int bs = q_bsize[kind];
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++) {
        if (r0 + r < nrow) {
            const uint8_t *src = w + (size_t)(r0 + r) * rb + (size_t)b * bs;
            if ((b & 1) == 0 && PF_DIST < lim - src) _mm_prefetch((const char *)(src + PF_DIST), 3);
            v[r] = R8_UNSIGNED(kind) ? q_block_u(src, kind) : q_block(src, kind);
            d[r] = avx2_f16(avx2_rd16(src));
        } else {
            v[r] = _mm256_setzero_si256();
            d[r] = 0.0f;
        }
    }
}

/* Rows [0, nrow) (nrow <= 8; missing rows are zero) of w -> one group. */
INLINE void r8_unpack(const uint8_t *w, size_t rb, int nrow, int64_t nb, uint8_t *dst,
                      const uint8_t *lim, const int kind) {
    for (int64_t b = 0; b < nb; b++) {
        __m256i v[8], g[8];
        float d[8];
        r8_load(w, rb, 0, nrow, b, lim, v, d, kind);
        uint8_t *o = dst + (size_t)b * R8_BLK;
        memcpy(o, d, 32);
        avx2_r8_transpose(v, g);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            _mm256_storeu_si256((__m256i *)(o + 32 + 64 * i),
                                R8_UNSIGNED(kind) ? g[i] : _mm256_sign_epi8(g[i], g[i]));
            _mm256_storeu_si256((__m256i *)(o + 64 + 64 * i), g[i]);
        }
    }
}

/* Tokens per r8_micro call. With VNNI a product step is one vpdpbusd
 * (latency 5), so 8 tokens' chains keep it busy. */
#ifdef HEARTH_VNNI
#define R8_T 8
#else
#define R8_T 4
#endif

/* One group x T tokens: out[t][0..8) = the 8 rows' results. */
INLINE void r8_micro(const uint8_t *grp, const act_q8 *const *a, int64_t nb, float (*out)[8],
                     const int T, const int kind) {
    __m256 acc[R8_T];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *o = grp + (size_t)b * R8_BLK;
        __m256i S[R8_T];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) S[t] = _mm256_setzero_si256();
#ifdef HEARTH_VNNI
            /* every kind unsigned: S = sum u * a (exact in int32: 32 * 255 *
             * 127), then minus off * sum a */
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            const __m256i uw = _mm256_loadu_si256((const __m256i *)(o + 32 + 64 * i));
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                int32_t a4;
                memcpy(&a4, a[t][b].qs + 4 * i, 4);
                S[t] = DPBUSD(S[t], uw, _mm256_set1_epi32(a4));
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            S[t] = _mm256_sub_epi32(S[t], _mm256_set1_epi32(act_off(&a[t][b], kind)));
#else
        const __m256i ones = _mm256_set1_epi16(1);
        if (R8_UNSIGNED(kind)) {
            /* u = q + off >= 0 times a straight into maddubs; int16 sums of
             * `per` products pairs: Q4_0 8 * 2 * 15 * 127, Q5_0 4 * 2 * 31 *
             * 127, both < 32768. Then S = sum u * a - off * sum a. */
            const int per = kind == K_Q4_0 ? 8 : 4;
#pragma GCC unroll 2
            for (int i0 = 0; i0 < 8; i0 += per) {
                __m256i S16[R8_T];
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) S16[t] = _mm256_setzero_si256();
#pragma GCC unroll 8
                for (int i = i0; i < i0 + per; i++) {
                    const __m256i uw = _mm256_loadu_si256((const __m256i *)(o + 32 + 64 * i));
#pragma GCC unroll 4
                    for (int t = 0; t < T; t++) {
                        int32_t a4;
                        memcpy(&a4, a[t][b].qs + 4 * i, 4);
                        S16[t] = _mm256_add_epi16(S16[t],
                                                  _mm256_maddubs_epi16(uw, _mm256_set1_epi32(a4)));
                    }
                }
#pragma GCC unroll 4
                for (int t = 0; t < T; t++)
                    S[t] = _mm256_add_epi32(S[t], _mm256_madd_epi16(S16[t], ones));
            }
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                S[t] = _mm256_sub_epi32(S[t], _mm256_set1_epi32(act_off(&a[t][b], kind)));
        }
        if (!R8_UNSIGNED(kind)) {
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                const __m256i aw = _mm256_loadu_si256((const __m256i *)(o + 32 + 64 * i));
                const __m256i sw = _mm256_loadu_si256((const __m256i *)(o + 64 + 64 * i));
#pragma GCC unroll 4
                for (int t = 0; t < T; t++) {
                    int32_t a4;
                    memcpy(&a4, a[t][b].qs + 4 * i, 4);
                    const __m256i sa = _mm256_sign_epi8(_mm256_set1_epi32(a4), sw);
                    S[t] = _mm256_add_epi32(S[t],
                                            _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sa), ones));
                }
            }
        }
#endif
        const __m256 d8 = _mm256_loadu_ps((const float *)o);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S[t]),
                                     _mm256_mul_ps(d8, _mm256_set1_ps(a[t][b].d)), acc[t]);
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) _mm256_storeu_ps(out[t], acc[t]);
}

/* Rows [0, sr) of a tile, unpacked into u, x nt tokens. */
INLINE void r8_batch(const uint8_t *w, size_t rb, int sr, const uint8_t *lim,
                     const act_q8 *const *a, int nt, int64_t nb, float *y, size_t ldy, uint8_t *u,
                     pf_cursor *pc, const int kind) {
    for (int g0 = 0; g0 < sr; g0 += 8) {
        const int gn = sr - g0 < 8 ? sr - g0 : 8;
        uint8_t *grp = u + (size_t)(g0 / 8) * (size_t)nb * R8_BLK;
        r8_unpack(w + (size_t)g0 * rb, rb, gn, nb, grp, lim, kind);
        for (int t0 = 0; t0 < nt; t0 += R8_T) {
            const int tn = nt - t0 < R8_T ? nt - t0 : R8_T;
            float out[R8_T][8];
            pf_advance(pc);
            switch (tn) {
#define R8_CASE(n)                                                                                 \
    case n:                                                                                        \
        r8_micro(grp, a + t0, nb, out, n, kind);                                                   \
        break;
                R8_CASE(1)
                R8_CASE(2)
                R8_CASE(3)
#ifdef HEARTH_VNNI
                R8_CASE(4)
                R8_CASE(5)
                R8_CASE(6)
                R8_CASE(7)
#endif
#undef R8_CASE
            default:
                r8_micro(grp, a + t0, nb, out, R8_T, kind);
                break;
            }
            for (int t = 0; t < tn; t++)
                memcpy(y + (size_t)(t0 + t) * ldy + g0, out[t], sizeof(float) * (size_t)gn);
        }
    }
}

#ifdef Q_AVX512
/* AVX-512 batches: groups of 16 rows, one 512-bit vpdpbusd for 16 rows x 4
 * values. Per block 576 bytes: the rows' scales d[16] (F32), then for each
 * 4-value group i (0..7) 64 bytes: rows 0-7 as r8_transpose makes them,
 * then rows 8-15. Every kind unsigned. Lane r computes row r as r8_micro's
 * lane does: the same integers and float steps. */
#define Q_R16   1
#define R16_BLK 576
_Static_assert(R16_BLK *(SUB / 16) <= R8_BLK * (SUB / 8), "q_scratch holds a 16-row group");

/* Rows [0, nrow) (nrow <= 16; missing rows are zero) of w -> one group. */
INLINE void r16_unpack(const uint8_t *w, size_t rb, int nrow, int64_t nb, uint8_t *dst,
                       const uint8_t *lim, const int kind) {
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *o = dst + (size_t)b * R16_BLK;
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256i v[8], g[8];
            float d[8];
            r8_load(w, rb, 8 * h, nrow, b, lim, v, d, kind);
            memcpy(o + 32 * h, d, 32);
            avx2_r8_transpose(v, g);
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++)
                _mm256_storeu_si256((__m256i *)(o + 64 + 64 * i + 32 * h), g[i]);
        }
    }
}

/* One group x T tokens: out[t][0..16) = the 16 rows' results. */
INLINE void r16_micro(const uint8_t *grp, const act_q8 *const *a, int64_t nb, float (*out)[16],
                      const int T, const int kind) {
    __m512 acc[R8_T];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *o = grp + (size_t)b * R16_BLK;
        __m512i S[R8_T];
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) S[t] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            const __m512i uw = _mm512_loadu_si512((const void *)(o + 64 + 64 * i));
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                int32_t a4;
                memcpy(&a4, a[t][b].qs + 4 * i, 4);
                S[t] = _mm512_dpbusd_epi32(S[t], uw, _mm512_set1_epi32(a4));
            }
        }
        const __m512 d16 = _mm512_loadu_ps((const float *)o);
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            S[t] = _mm512_sub_epi32(S[t], _mm512_set1_epi32(act_off(&a[t][b], kind)));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S[t]),
                                     _mm512_mul_ps(d16, _mm512_set1_ps(a[t][b].d)), acc[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) _mm512_storeu_ps(out[t], acc[t]);
}

/* Rows [0, sr) of a tile, unpacked into u, x nt tokens. */
INLINE void r16_batch(const uint8_t *w, size_t rb, int sr, const uint8_t *lim,
                      const act_q8 *const *a, int nt, int64_t nb, float *y, size_t ldy, uint8_t *u,
                      pf_cursor *pc, const int kind) {
    for (int g0 = 0; g0 < sr; g0 += 16) {
        const int gn = sr - g0 < 16 ? sr - g0 : 16;
        uint8_t *grp = u + (size_t)(g0 / 16) * (size_t)nb * R16_BLK;
        r16_unpack(w + (size_t)g0 * rb, rb, gn, nb, grp, lim, kind);
        for (int t0 = 0; t0 < nt; t0 += R8_T) {
            const int tn = nt - t0 < R8_T ? nt - t0 : R8_T;
            float out[R8_T][16];
            pf_advance(pc);
            switch (tn) {
#define R16_CASE(n)                                                                                \
    case n:                                                                                        \
        r16_micro(grp, a + t0, nb, out, n, kind);                                                  \
        break;
                R16_CASE(1)
                R16_CASE(2)
                R16_CASE(3)
                R16_CASE(4)
                R16_CASE(5)
                R16_CASE(6)
                R16_CASE(7)
#undef R16_CASE
            default:
                r16_micro(grp, a + t0, nb, out, R8_T, kind);
                break;
            }
            for (int t = 0; t < tn; t++)
                memcpy(y + (size_t)(t0 + t) * ldy + g0, out[t], sizeof(float) * (size_t)gn);
        }
    }
}

/* ---- AMX batches (kinds without a min) --------------------------------- */

/* Where amx_on(), batches of AMX_MIN tokens or more take a block's integer
 * dots for (up to) 16 tokens x 16 rows in one tdpbsud: A = the 16 tokens' 32
 * activation bytes, loaded straight from their act_q8 blocks, B = the
 * block's 16-row group as r16_unpack lays it out (8 rows of 16 x 4 unsigned
 * values: AMX's B layout already). C's row t is then token t's 16 row sums,
 * the integers r16_micro's vpdpbusd chains compute; the offset and float
 * steps are r16_micro's, so every value is bitwise as in the other paths. */
#define AMX_MIN 4 /* kernbench, 1536 -> 8960: 4, 8, 12 tokens 8-20% faster than r16 */
#ifdef HEARTH_VNNI_EMULATE
#define AMX_ATTR AVX2
#else
#define AMX_ATTR                                                                                   \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,amx-tile,amx-"       \
                          "int8")))
#endif
#define AMX_INLINE AMX_ATTR static inline __attribute__((always_inline))
#include "kernels/amx.h"

/* Tiles (numbers, not an enum: GCC's intrinsics paste them into register
 * names): two of each, C (tokens x 16 rows, int32), A (tokens x a block's
 * 32 bytes), B (8 x (16 rows x 4 values)), so that one block's product runs
 * while the one before is stored and the one before that scaled. */
#define AMX_C0 0
#define AMX_C1 1
#define AMX_A0 2
#define AMX_A1 3
#define AMX_B0 4
#define AMX_B1 5

/* The tiles for T tokens (1..16). Clears them. */
AMX_INLINE void amx_config(int T) {
    amx_cfg c;
    memset(&c, 0, sizeof(c));
    c.palette = 1;
    for (int i = 0; i < 2; i++) {
        c.rows[AMX_C0 + i] = (uint8_t)T, c.colsb[AMX_C0 + i] = 64;
        c.rows[AMX_A0 + i] = (uint8_t)T, c.colsb[AMX_A0 + i] = 32;
        c.rows[AMX_B0 + i] = 8, c.colsb[AMX_B0 + i] = 64;
    }
    AMX_CFG(&c);
}

/* Block b's product into tile C from tiles A, B. */
#define AMX_ISSUE(C, A, B, b)                                                                      \
    do {                                                                                           \
        AMX_LOAD(B, grp + (size_t)(b)*R16_BLK + 64, 64);                                           \
        AMX_LOAD(A, act + (size_t)(b) * sizeof(act_q8) + offsetof(act_q8, qs), as);                \
        AMX_ZERO(C);                                                                               \
        AMX_DPBSUD(C, A, B);                                                                       \
    } while (0)

/* Block b's stored products c into the accumulators: r16_micro's steps,
 * the offsets taken off as no[t * nb + b] = -act_off (wrapping: the same
 * bits). */
AMX_INLINE void amx_scale(const int32_t (*c)[16], const uint8_t *grp, const uint8_t *act, size_t as,
                          const int32_t *no, int64_t nb, int64_t b, __m512 *acc, const int T) {
    const __m512 d16 = _mm512_loadu_ps((const float *)(grp + (size_t)b * R16_BLK));
    const uint8_t *ab = act + (size_t)b * sizeof(act_q8);
#pragma GCC unroll 16
    for (int t = 0; t < T; t++) {
        const act_q8 *a = (const act_q8 *)(ab + (size_t)t * as);
        const __m512i S = _mm512_add_epi32(_mm512_loadu_si512((const void *)c[t]),
                                           _mm512_set1_epi32(no[(size_t)t * (size_t)nb + b]));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S), _mm512_mul_ps(d16, _mm512_set1_ps(a->d)),
                                 acc[t]);
    }
}

/* One group of gn rows x T tokens at act, act + as, ... (the tiles
 * configured for T): y[t * ldy + 0..gn) = the rows' results. Blocks
 * alternate between the two tile sets: block b + 1's product is issued
 * before block b's is stored and block b - 1's scaled. */
AMX_INLINE void amx_micro(const uint8_t *grp, const uint8_t *act, size_t as, const int32_t *no,
                          int64_t nb, float *y, size_t ldy, int gn, const int T) {
    __m512 acc[16];
    _Alignas(64) int32_t c[2][16][16];
#pragma GCC unroll 16
    for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();
    AMX_ISSUE(AMX_C0, AMX_A0, AMX_B0, 0);
    for (int64_t b = 0;; b += 2) {
        if (b + 1 < nb) AMX_ISSUE(AMX_C1, AMX_A1, AMX_B1, b + 1);
        AMX_STORE(AMX_C0, c[0], 64);
        if (b > 0) amx_scale(c[1], grp, act, as, no, nb, b - 1, acc, T);
        if (b + 1 >= nb) {
            amx_scale(c[0], grp, act, as, no, nb, b, acc, T);
            break;
        }
        if (b + 2 < nb) AMX_ISSUE(AMX_C0, AMX_A0, AMX_B0, b + 2);
        AMX_STORE(AMX_C1, c[1], 64);
        amx_scale(c[0], grp, act, as, no, nb, b, acc, T);
        if (b + 2 >= nb) {
            amx_scale(c[1], grp, act, as, no, nb, b + 1, acc, T);
            break;
        }
    }
    const __mmask16 m = (__mmask16)((1u << gn) - 1);
#pragma GCC unroll 16
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + (size_t)t * ldy, m, acc[t]);
}

/* Scratch of an AMX tile: every 16-row group of MAX_ROWS rows as
 * r16_unpack lays it out, then the offsets of MAX_TOKENS tokens. */
static size_t amx_scratch(int64_t n) {
    return (size_t)(n / 32) * (R16_BLK * (MAX_ROWS / 16) + 4 * MAX_TOKENS) + 64;
}

/* A whole tile (nr rows x nt tokens): its row groups unpacked once, then per
 * 16 tokens (their activations in L1) every group. */
AMX_INLINE void amx_tile(const uint8_t *w, size_t rb, int nr, const uint8_t *act, size_t as, int nt,
                         int64_t nb, float *y, size_t ldy, uint8_t *scratch, const int kind) {
    uint8_t *u = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    int32_t *no = (int32_t *)(u + (size_t)((nr + 15) / 16) * (size_t)nb * R16_BLK);
    for (int g0 = 0; g0 < nr; g0 += 16)
        r16_unpack(w + (size_t)g0 * rb, rb, nr - g0 < 16 ? nr - g0 : 16, nb,
                   u + (size_t)(g0 / 16) * (size_t)nb * R16_BLK, w + (size_t)nr * rb, kind);
    for (int t = 0; t < nt; t++) {
        const act_q8 *a = (const act_q8 *)(act + (size_t)t * as);
        for (int64_t b = 0; b < nb; b++)
            no[(size_t)t * (size_t)nb + b] = (int32_t)(0u - (uint32_t)act_off(&a[b], kind));
    }
    int cfg = 0; /* the tiles' token count */
    for (int t0 = 0; t0 < nt; t0 += 16) {
        const int tn = nt - t0 < 16 ? nt - t0 : 16;
        if (tn != cfg) amx_config(cfg = tn);
        for (int g0 = 0; g0 < nr; g0 += 16) {
            const int gn = nr - g0 < 16 ? nr - g0 : 16;
            const uint8_t *grp = u + (size_t)(g0 / 16) * (size_t)nb * R16_BLK;
            const uint8_t *at = act + (size_t)t0 * as;
            const int32_t *nt0 = no + (size_t)t0 * (size_t)nb;
            float *yt = y + (size_t)t0 * ldy + g0;
            if (tn == 16)
                amx_micro(grp, at, as, nt0, nb, yt, ldy, gn, 16);
            else
                amx_micro(grp, at, as, nt0, nb, yt, ldy, gn, tn);
        }
    }
    AMX_RELEASE();
}

/* Batch scratch of the kinds without a min. */
static size_t q0_scratch(int64_t n) {
    const size_t q = q_scratch(n), a = amx_scratch(n);
    return q > a ? q : a;
}

#define AMX_TILE(name, kind)                                                                       \
    AMX_ATTR static void name(const uint8_t *w, size_t rb, int nr, const uint8_t *act, size_t as,  \
                              int nt, int64_t nb, float *y, size_t ldy, uint8_t *scratch) {        \
        amx_tile(w, rb, nr, act, as, nt, nb, y, ldy, scratch, kind);                               \
    }
AMX_TILE(amx_q8_0, K_Q8_0)
AMX_TILE(amx_q4_0, K_Q4_0)
AMX_TILE(amx_q5_0, K_Q5_0)
AMX_TILE(amx_iq4_nl, K_IQ4_NL)

/* ---- AMX BF16 products (F16, BF16 weights) ----------------------------- */

/* Where amx_bf16_on() and BF16 products are on (bf_use), batches of AMF_MIN
 * tokens or more of F16 / BF16 rows of a multiple of 32 columns are
 * multiplied by tdpbf16ps: the weights and activations rounded to BF16 as
 * for the vdpbf16ps tiles, each (row, token) value summed in one F32
 * accumulator, pair after pair in column order, in a C tile across the
 * whole row. A = 16 tokens' 32 values in place, B = 16 rows' pairs
 * (converted and transposed once per tile into scratch); a tile's up to 4
 * row groups of 16 run as independent C tiles. Fewer tokens (decode) and
 * other row lengths take the vdpbf16ps tiles (bf_tile): tile products with
 * one token ran at 60% of the bandwidth limit, against 95-99% there. So
 * with AMX a token's value of these types in a batch is not bitwise its
 * value alone: the same BF16 products, summed in another order (the one
 * exception to the rule of avx2_q.c's header; test_avx2q holds the two to
 * float rounding). */
#define AMF_MIN 16
#ifdef HEARTH_VNNI_EMULATE
#define AMF_ATTR AVX2
#else
#define AMF_ATTR                                                                                   \
    __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16,"         \
                          "amx-tile,amx-bf16")))
#endif
#define AMF_INLINE AMF_ATTR static inline __attribute__((always_inline))

/* tiles: C for row groups 0..3, A, B (two, alternating) */
#define AMF_C0 0
#define AMF_C1 1
#define AMF_C2 2
#define AMF_C3 3
#define AMF_A  4
#define AMF_B0 5
#define AMF_B1 6

/* Scratch: 4 row groups x n / 32 steps x 1 KiB of weight pairs. */
static size_t amf_scratch(int64_t n) {
    const size_t steps = (size_t)(n / 32);
    return steps * 4096 + 64;
}

/* The tiles for T tokens (1..16). Clears them. */
AMF_INLINE void amf_config(int T) {
    amx_cfg c;
    memset(&c, 0, sizeof(c));
    c.palette = 1;
    for (int g = 0; g < 4; g++) c.rows[AMF_C0 + g] = (uint8_t)T, c.colsb[AMF_C0 + g] = 64;
    c.rows[AMF_A] = (uint8_t)T, c.colsb[AMF_A] = 64;
    for (int i = 0; i < 2; i++) c.rows[AMF_B0 + i] = 16, c.colsb[AMF_B0 + i] = 64;
    AMX_CFG(&c);
}

/* 16 rows x 32 values from column c0 of rows r (row r at w + r * rb; rows
 * from nrow on are zero) as BF16, 64 bytes per row, into dst. */
AMF_INLINE void amf_rows_bf(const uint8_t *w, size_t rb, int nrow, int64_t c0, uint8_t *dst,
                            const int fk) {
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++) {
        __m512bh v;
        if (r < nrow)
            v = ld_wbh(w + (size_t)r * rb, c0, fk);
        else
            memset(&v, 0, sizeof(v));
        memcpy(dst + 64 * r, &v, 64);
    }
}

/* 16 rows of 16 dwords (64 bytes each, at src) -> B layout: dword k of row r
 * to row k, dword r. */
AMF_INLINE void amf_transpose16(const uint8_t *src, uint8_t *dst) {
#pragma GCC unroll 2
    for (int rh = 0; rh < 2; rh++)
#pragma GCC unroll 2
        for (int kh = 0; kh < 2; kh++) {
            __m256i v[8], g[8];
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++)
                v[r] = _mm256_loadu_si256((const __m256i *)(src + 64 * (8 * rh + r) + 32 * kh));
            avx2_r8_transpose(v, g);
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++)
                _mm256_storeu_si256((__m256i *)(dst + 64 * (8 * kh + k) + 32 * rh), g[k]);
        }
}

/* The C tiles of G row groups, stored 1 KiB apart. */
#define AMF_STORE_G(G, p, stride)                                                                  \
    do {                                                                                           \
        AMX_STORE(AMF_C0, (p), (stride));                                                          \
        if ((G) > 1) AMX_STORE(AMF_C1, (p) + 1024, (stride));                                      \
        if ((G) > 2) AMX_STORE(AMF_C2, (p) + 2048, (stride));                                      \
        if ((G) > 3) AMX_STORE(AMF_C3, (p) + 3072, (stride));                                      \
    } while (0)

/* Batches: nt >= 16 tokens (act: BF16 rows, stride as) x nr <= 64 rows. */
AMF_INLINE void amf_batch(const uint8_t *w, size_t rb, int nr, const uint8_t *act, size_t as,
                          int nt, int64_t n, float *y, size_t ldy, uint8_t *scratch, const int fk) {
    const int64_t ns = n / 32;
    const int G = (nr + 15) / 16;
    uint8_t *u = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    _Alignas(64) uint8_t rows[1024];
    _Alignas(64) float cb[4][16][16];
    for (int g = 0; g < G; g++) /* weights: group g, step s at u + (g * ns + s) * 1024 */
        for (int64_t s = 0; s < ns; s++) {
            const int nrow = nr - 16 * g < 16 ? nr - 16 * g : 16;
            amf_rows_bf(w + (size_t)(16 * g) * rb, rb, nrow, 32 * s, rows, fk);
            amf_transpose16(rows, u + (size_t)(g * ns + s) * 1024);
        }
    int cfg = 0;
    for (int t0 = 0; t0 < nt; t0 += 16) {
        const int tn = nt - t0 < 16 ? nt - t0 : 16;
        if (tn != cfg) amf_config(cfg = tn);
        AMX_ZERO(AMF_C0);
        AMX_ZERO(AMF_C1);
        AMX_ZERO(AMF_C2);
        AMX_ZERO(AMF_C3);
        const uint8_t *at = act + (size_t)t0 * as;
        for (int64_t s = 0; s < ns; s++) {
            AMX_LOAD(AMF_A, at + 64 * s, as);
            const uint8_t *us = u + (size_t)s * 1024;
            const size_t gs = (size_t)ns * 1024;
            AMX_LOAD(AMF_B0, us, 64);
            AMX_DPBF16PS(AMF_C0, AMF_A, AMF_B0);
            if (G > 1) {
                AMX_LOAD(AMF_B1, us + gs, 64);
                AMX_DPBF16PS(AMF_C1, AMF_A, AMF_B1);
            }
            if (G > 2) {
                AMX_LOAD(AMF_B0, us + 2 * gs, 64);
                AMX_DPBF16PS(AMF_C2, AMF_A, AMF_B0);
            }
            if (G > 3) {
                AMX_LOAD(AMF_B1, us + 3 * gs, 64);
                AMX_DPBF16PS(AMF_C3, AMF_A, AMF_B1);
            }
        }
        AMF_STORE_G(G, (uint8_t *)cb, 64);
        for (int g = 0; g < G; g++) {
            const int gn = nr - 16 * g < 16 ? nr - 16 * g : 16;
            for (int t = 0; t < tn; t++)
                memcpy(y + (size_t)(t0 + t) * ldy + 16 * g, cb[g][t], sizeof(float) * (size_t)gn);
        }
    }
}

/* F16 / BF16 tiles where amx_bf16_on(): rows of other lengths as bf_tile. */
#define AMF_TILE(name, fk)                                                                         \
    AMF_ATTR static void name(const uint8_t *w, size_t rb, int nr, const uint8_t *act, size_t as,  \
                              int nt, int64_t n, float *y, size_t ldy, uint8_t *scratch) {         \
        if (nt < AMF_MIN || n % 32 || !scratch) {                                                  \
            bf_tile(w, rb, nr, act, as, nt, n, y, ldy, scratch, fk);                               \
            return;                                                                                \
        }                                                                                          \
        amf_batch(w, rb, nr, act, as, nt, n, y, ldy, scratch, fk);                                 \
        AMX_RELEASE();                                                                             \
    }
AMF_TILE(tile_f16_amx, W_F16)
AMF_TILE(tile_bf16_amx, W_BF16)

static size_t amf_f_scratch(int64_t n) {
    const size_t a = amf_scratch(n), b = bf_scratch(n);
    return a > b ? a : b;
}
#else
#define q0_scratch q_scratch
#endif

INLINE void tile_quant(const uint8_t *w, size_t rb, int nr, const uint8_t *act, size_t act_stride,
                       int nt, int64_t n, float *y, size_t ldy, uint8_t *scratch, const int kind) {
    const int64_t nb = n / 32;
    if (nt < Q_BATCH_MIN || !scratch) {
        for (int t = 0; t < nt; t++) {
            const act_q8 *a = (const act_q8 *)(act + (size_t)t * act_stride);
            float *yt = y + (size_t)t * ldy;
            int r = 0;
            for (; r + 4 <= nr; r += 4) q_rows(w, rb, r, 4, nr, a, nb, yt, kind);
            for (; r < nr; r++) q_rows(w, rb, r, 1, nr, a, nb, yt, kind);
        }
        return;
    }
#ifdef Q_R16
    if (!q_has_min(kind) && nt >= AMX_MIN && amx_on()) {
        (kind == K_Q8_0   ? amx_q8_0
         : kind == K_Q4_0 ? amx_q4_0
         : kind == K_Q5_0 ? amx_q5_0
                          : amx_iq4_nl)(w, rb, nr, act, act_stride, nt, nb, y, ldy, scratch);
        return;
    }
#endif
    const act_q8 *a[MAX_TOKENS];
    for (int t = 0; t < nt; t++) a[t] = (const act_q8 *)(act + (size_t)t * act_stride);
    const size_t us = q_row_bytes(n);
    uint8_t *u = (uint8_t *)(((uintptr_t)scratch + 31) & ~(uintptr_t)31);
    for (int r0 = 0; r0 < nr; r0 += SUB) {
        const int sr = nr - r0 < SUB ? nr - r0 : SUB;
        const int nx = nr - r0 - sr < SUB ? nr - r0 - sr : SUB; /* rows of the next sub-tile */
        if (!q_has_min(kind)) {
#ifdef Q_R16
            pf_cursor pc = pf_rect(w, rb, r0 + sr, r0 + sr + nx, 0, rb,
                                   (size_t)((nt + R8_T - 1) / R8_T) * (size_t)((sr + 15) / 16));
            r16_batch(w + (size_t)r0 * rb, rb, sr, w + (size_t)nr * rb, a, nt, nb, y + r0, ldy, u,
                      &pc, kind);
#else
            pf_cursor pc = pf_rect(w, rb, r0 + sr, r0 + sr + nx, 0, rb,
                                   (size_t)((nt + R8_T - 1) / R8_T) * (size_t)((sr + 7) / 8));
            r8_batch(w + (size_t)r0 * rb, rb, sr, w + (size_t)nr * rb, a, nt, nb, y + r0, ldy, u,
                     &pc, kind);
#endif
            continue;
        }
        for (int g = 0; g < sr; g++)
            q_unpack(w + (size_t)(r0 + g) * rb, nb, u + g * us, w + (size_t)nr * rb, kind);
        pf_cursor pc = pf_rect(w, rb, r0 + sr, r0 + sr + nx, 0, rb,
                               (size_t)((nt + Q_MT - 1) / Q_MT) * (size_t)((sr + Q_MR - 1) / Q_MR));
        q_batch(u, us, sr, a, nt, nb, y + r0, ldy, &pc);
    }
}

#define TILE_Q(name, kind) TILE_OF(name, tile_quant, kind)
TILE_Q(tile_q8_0, K_Q8_0)
TILE_Q(tile_q4_0, K_Q4_0)
TILE_Q(tile_q5_0, K_Q5_0)
TILE_Q(tile_iq4_nl, K_IQ4_NL)
TILE_Q(tile_q4_1, K_Q4_1)
TILE_Q(tile_q5_1, K_Q5_1)

/* Rows as F32, bitwise as the reference: F16 converted (exact), Q8_0 as
 * d * q (exact in F32). */
AVX2 static void deq_f16(const uint8_t *src, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, ld_w8(src, i, W_F16));
    for (; i < n; i++) y[i] = w_at(src, i, W_F16);
}

AVX2 static void deq_q8_0(const uint8_t *src, float *y, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, src += 34, y += 32) {
        const __m256 d = _mm256_set1_ps(avx2_f16(avx2_rd16(src)));
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            const __m256i q =
                _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(src + 2 + 8 * k)));
            _mm256_storeu_ps(y + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
        }
    }
}

static const avx2_type type_f32 = {NULL, tile_f32, MAX_ROWS, MAX_TOKENS, f_scratch, NULL};
static const avx2_type type_f16 = {NULL, tile_f16, MAX_ROWS, MAX_TOKENS, f_scratch, deq_f16};
static const avx2_type type_bf16 = {NULL, tile_bf16, MAX_ROWS, MAX_TOKENS, f_scratch, NULL};
#ifdef Q_AVX512
static const avx2_type type_f16_bf = {&act_bf16_fmt, tile_f16_bf, MAX_ROWS,
                                      MAX_TOKENS,    bf_scratch,  deq_f16};
static const avx2_type type_bf16_bf = {&act_bf16_fmt, tile_bf16_bf, MAX_ROWS,
                                       MAX_TOKENS,    bf_scratch,   NULL};
static const avx2_type type_f16_amx = {&act_bf16_fmt, tile_f16_amx,  MAX_ROWS,
                                       MAX_TOKENS,    amf_f_scratch, deq_f16};
static const avx2_type type_bf16_amx = {&act_bf16_fmt, tile_bf16_amx, MAX_ROWS,
                                        MAX_TOKENS,    amf_f_scratch, NULL};
#endif
static const avx2_type type_q8_0 = {&act_q8_fmt, tile_q8_0,  MAX_ROWS,
                                    MAX_TOKENS,  q0_scratch, deq_q8_0};
static const avx2_type type_q4_0 = {&act_q8_fmt, tile_q4_0, MAX_ROWS, MAX_TOKENS, q0_scratch, NULL};
static const avx2_type type_q5_0 = {&act_q8_fmt, tile_q5_0, MAX_ROWS, MAX_TOKENS, q0_scratch, NULL};
static const avx2_type type_iq4_nl = {&act_q8_fmt, tile_iq4_nl, MAX_ROWS,
                                      MAX_TOKENS,  q0_scratch,  NULL};
static const avx2_type type_q4_1 = {&act_q8_fmt, tile_q4_1, MAX_ROWS, MAX_TOKENS, q_scratch, NULL};
static const avx2_type type_q5_1 = {&act_q8_fmt, tile_q5_1, MAX_ROWS, MAX_TOKENS, q_scratch, NULL};

const avx2_type *Q_TYPE_OF(ht_type t) {
    switch (t) {
    case HT_F32:
        return &type_f32;
#ifdef Q_AVX512
    case HT_F16:
        return !bf_use() ? &type_f16 : amx_bf16_on() ? &type_f16_amx : &type_f16_bf;
    case HT_BF16:
        return !bf_use() ? &type_bf16 : amx_bf16_on() ? &type_bf16_amx : &type_bf16_bf;
#else
    case HT_F16:
        return &type_f16;
    case HT_BF16:
        return &type_bf16;
#endif
    case HT_Q8_0:
        return &type_q8_0;
    case HT_Q4_0:
        return &type_q4_0;
    case HT_Q5_0:
        return &type_q5_0;
    case HT_IQ4_NL:
        return &type_iq4_nl;
    case HT_Q4_1:
        return &type_q4_1;
    case HT_Q5_1:
        return &type_q5_1;
    default:
        return NULL;
    }
}

#else

#include "kernels/avx2_impl.h"

#endif
