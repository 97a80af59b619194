/* AVX-512 on any AVX2 CPU, for tests: the avx512 variant's code run where
 * no AVX-512 is (HEARTH_VNNI_EMULATE; tests/kernels/avx512emu_*.c build the
 * whole variant again as "avx512emu").
 *
 * Included by avx2_q.c and avx2_kq.c after <immintrin.h>, in place of the
 * AVX-512 target: every 512-bit type becomes a pair of 256-bit halves
 * (elements 0..7 / 0..15 / 0..3 in lo, the rest in hi) and every AVX-512
 * intrinsic those files use is redefined as the same operation on the
 * halves. Each is exact: lane-wise arithmetic (add, sub, mul, fmadd, mullo,
 * shifts, conversions) is the same instruction per half, and vpdpbusd is
 * computed in 32-bit integers from 16-bit products (emu_dpbusd), which
 * cannot overflow or saturate. So a (row, token) value of the emulated
 * variant is bitwise the value the real one computes on an AVX-512 CPU,
 * given the same code; what the emulation cannot show is speed. Only the
 * intrinsics in use are here: a new one fails to compile in the emulated
 * build (the real one's target does not match) until it is added here. */
#ifndef HEARTH_KERNELS_AVX512_EMU_H
#define HEARTH_KERNELS_AVX512_EMU_H

#include <immintrin.h>
#include <stdint.h>

#define EMU_FN static inline __attribute__((target("avx2,fma,f16c"), always_inline))

typedef struct emu_m512 {
    __m256 lo, hi;
} emu_m512;
typedef struct emu_m512i {
    __m256i lo, hi;
} emu_m512i;
typedef struct emu_m512d {
    __m256d lo, hi;
} emu_m512d;

/* vpdpbusd on 256 bits: lane j += sum over its 4 bytes of (unsigned u) *
 * (signed s). The byte products (|p| <= 255 * 128) are summed in pairs by
 * madd (|sum| <= 65280, exact in 32 bits), then the pairs by hadd. */
EMU_FN __m256i emu_dpbusd(__m256i acc, __m256i u, __m256i s) {
    const __m256i z = _mm256_setzero_si256();
    /* bytes 0-7 (8-15) of each 128-bit lane widened to 16 bits, pairs summed */
    const __m256i lo = _mm256_madd_epi16(_mm256_unpacklo_epi8(u, z),
                                         _mm256_srai_epi16(_mm256_unpacklo_epi8(z, s), 8));
    const __m256i hi = _mm256_madd_epi16(_mm256_unpackhi_epi8(u, z),
                                         _mm256_srai_epi16(_mm256_unpackhi_epi8(z, s), 8));
    return _mm256_add_epi32(acc, _mm256_hadd_epi32(lo, hi)); /* lane j: bytes 4j..4j+3 */
}

/* a lane-wise op of two vectors, applied to both halves */
#define EMU_BIN(name, T, op)                                                                       \
    EMU_FN T name(T a, T b) {                                                                      \
        return (T){op(a.lo, b.lo), op(a.hi, b.hi)};                                                \
    }

EMU_BIN(emu512_add_ps, emu_m512, _mm256_add_ps)
EMU_BIN(emu512_sub_ps, emu_m512, _mm256_sub_ps)
EMU_BIN(emu512_mul_ps, emu_m512, _mm256_mul_ps)
EMU_BIN(emu512_add_epi32, emu_m512i, _mm256_add_epi32)
EMU_BIN(emu512_sub_epi32, emu_m512i, _mm256_sub_epi32)
EMU_BIN(emu512_mullo_epi32, emu_m512i, _mm256_mullo_epi32)

EMU_FN emu_m512 emu512_fmadd_ps(emu_m512 a, emu_m512 b, emu_m512 c) {
    return (emu_m512){_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
}

EMU_FN emu_m512i emu512_dpbusd_epi32(emu_m512i acc, emu_m512i u, emu_m512i s) {
    return (emu_m512i){emu_dpbusd(acc.lo, u.lo, s.lo), emu_dpbusd(acc.hi, u.hi, s.hi)};
}

EMU_FN emu_m512 emu512_setzero_ps(void) {
    return (emu_m512){_mm256_setzero_ps(), _mm256_setzero_ps()};
}
EMU_FN emu_m512i emu512_setzero_si512(void) {
    return (emu_m512i){_mm256_setzero_si256(), _mm256_setzero_si256()};
}
EMU_FN emu_m512 emu512_set1_ps(float v) {
    return (emu_m512){_mm256_set1_ps(v), _mm256_set1_ps(v)};
}
EMU_FN emu_m512i emu512_set1_epi32(int v) {
    return (emu_m512i){_mm256_set1_epi32(v), _mm256_set1_epi32(v)};
}

EMU_FN emu_m512 emu512_loadu_ps(const void *p) {
    const float *f = p;
    return (emu_m512){_mm256_loadu_ps(f), _mm256_loadu_ps(f + 8)};
}
EMU_FN void emu512_storeu_ps(void *p, emu_m512 v) {
    float *f = p;
    _mm256_storeu_ps(f, v.lo);
    _mm256_storeu_ps(f + 8, v.hi);
}
/* only the lanes whose mask bit is set are written */
EMU_FN void emu512_mask_storeu_ps(void *p, __mmask16 m, emu_m512 v) {
    float f[16], *o = p;
    _mm256_storeu_ps(f, v.lo);
    _mm256_storeu_ps(f + 8, v.hi);
    for (int i = 0; i < 16; i++)
        if (m >> i & 1) o[i] = f[i];
}
EMU_FN emu_m512i emu512_loadu_si512(const void *p) {
    const __m256i *q = p;
    return (emu_m512i){_mm256_loadu_si256(q), _mm256_loadu_si256(q + 1)};
}

EMU_FN emu_m512 emu512_cvtepi32_ps(emu_m512i v) {
    return (emu_m512){_mm256_cvtepi32_ps(v.lo), _mm256_cvtepi32_ps(v.hi)};
}
/* 16 halves -> 16 floats; 16 uint16 -> 16 int32 */
EMU_FN emu_m512 emu512_cvtph_ps(__m256i h) {
    return (emu_m512){_mm256_cvtph_ps(_mm256_castsi256_si128(h)),
                      _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1))};
}
EMU_FN emu_m512i emu512_cvtepu16_epi32(__m256i h) {
    return (emu_m512i){_mm256_cvtepu16_epi32(_mm256_castsi256_si128(h)),
                       _mm256_cvtepu16_epi32(_mm256_extracti128_si256(h, 1))};
}
EMU_FN emu_m512i emu512_slli_epi32(emu_m512i v, unsigned n) {
    return (emu_m512i){_mm256_slli_epi32(v.lo, (int)n), _mm256_slli_epi32(v.hi, (int)n)};
}

/* reinterpretations and halves */
EMU_FN emu_m512 emu512_castsi512_ps(emu_m512i v) {
    return (emu_m512){_mm256_castsi256_ps(v.lo), _mm256_castsi256_ps(v.hi)};
}
EMU_FN emu_m512d emu512_castps_pd(emu_m512 v) {
    return (emu_m512d){_mm256_castps_pd(v.lo), _mm256_castps_pd(v.hi)};
}
EMU_FN __m256 emu512_castps512_ps256(emu_m512 v) {
    return v.lo;
}
EMU_FN __m256d emu512_extractf64x4_pd(emu_m512d v, int i) {
    return i & 1 ? v.hi : v.lo;
}

/* ---- AVX512_BF16, as Intel's definition (SDM, VCVTNE2PS2BF16 and
 * VDPBF16PS) gives it: F32 -> BF16 rounds to nearest even, a denormal to a
 * zero of its sign, a NaN quieted; each pair product is an F32 FMA with
 * denormal inputs taken as zero and denormal results flushed to zero, the
 * odd element of the pair first. A BF16 vector is 32 values, 0..15 in lo. */
typedef struct emu_m512bh {
    __m256i lo, hi;
} emu_m512bh;

/* 8 F32 -> 8 BF16 in the low 16 bits of each 32-bit lane */
EMU_FN __m256i emu_bf16_8(__m256 f) {
    const __m256i u = _mm256_castps_si256(f);
    const __m256i expo = _mm256_and_si256(u, _mm256_set1_epi32(0x7f800000));
    const __m256i mag = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    const __m256i round = _mm256_srli_epi32(
        _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)),
                         _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1))),
        16);
    const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    const __m256i zero = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x8000));
    const __m256i is_nan = _mm256_cmpgt_epi32(mag, _mm256_set1_epi32(0x7f800000));
    const __m256i is_den = _mm256_cmpeq_epi32(expo, _mm256_setzero_si256());
    const __m256i r = _mm256_blendv_epi8(round, nan, is_nan);
    return _mm256_blendv_epi8(r, zero, is_den);
}

/* 16 F32 (two halves) -> 16 BF16 in order */
EMU_FN __m256i emu_bf16_16(__m256 lo, __m256 hi) {
    return _mm256_permute4x64_epi64(_mm256_packus_epi32(emu_bf16_8(lo), emu_bf16_8(hi)), 0xd8);
}

/* result 0..15 = b, 16..31 = a */
EMU_FN emu_m512bh emu512_cvtne2ps_pbh(emu_m512 a, emu_m512 b) {
    return (emu_m512bh){emu_bf16_16(b.lo, b.hi), emu_bf16_16(a.lo, a.hi)};
}

/* denormals (and zeros) to a zero of their sign */
EMU_FN __m256 emu_flush(__m256 v) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256 tiny =
        _mm256_cmp_ps(_mm256_andnot_ps(sign, v), _mm256_set1_ps(1.17549435e-38f), _CMP_LT_OQ);
    return _mm256_blendv_ps(v, _mm256_and_ps(v, sign), tiny);
}

/* 8 lanes: acc += a.odd * b.odd, then += a.even * b.even */
EMU_FN __m256 emu_dpbf16_8(__m256 acc, __m256i a, __m256i b) {
    const __m256i hi16 = _mm256_set1_epi32((int)0xffff0000u);
    const __m256 ao = emu_flush(_mm256_castsi256_ps(_mm256_and_si256(a, hi16)));
    const __m256 bo = emu_flush(_mm256_castsi256_ps(_mm256_and_si256(b, hi16)));
    const __m256 ae = emu_flush(_mm256_castsi256_ps(_mm256_slli_epi32(a, 16)));
    const __m256 be = emu_flush(_mm256_castsi256_ps(_mm256_slli_epi32(b, 16)));
    acc = emu_flush(_mm256_fmadd_ps(ao, bo, emu_flush(acc)));
    return emu_flush(_mm256_fmadd_ps(ae, be, acc));
}

EMU_FN emu_m512 emu512_dpbf16_ps(emu_m512 acc, emu_m512bh a, emu_m512bh b) {
    return (emu_m512){emu_dpbf16_8(acc.lo, a.lo, b.lo), emu_dpbf16_8(acc.hi, a.hi, b.hi)};
}

/* The names, each #undef'd first: compilers' headers define some (those
 * with an immediate operand, in clang's) as macros. */
#undef __m512bh
#define __m512bh emu_m512bh
#undef _mm512_cvtne2ps_pbh
#define _mm512_cvtne2ps_pbh emu512_cvtne2ps_pbh
#undef _mm512_dpbf16_ps
#define _mm512_dpbf16_ps emu512_dpbf16_ps
#undef __m512
#define __m512 emu_m512
#undef __m512i
#define __m512i emu_m512i
#undef __m512d
#define __m512d emu_m512d
#undef _mm512_add_ps
#define _mm512_add_ps emu512_add_ps
#undef _mm512_sub_ps
#define _mm512_sub_ps emu512_sub_ps
#undef _mm512_mul_ps
#define _mm512_mul_ps emu512_mul_ps
#undef _mm512_fmadd_ps
#define _mm512_fmadd_ps emu512_fmadd_ps
#undef _mm512_add_epi32
#define _mm512_add_epi32 emu512_add_epi32
#undef _mm512_sub_epi32
#define _mm512_sub_epi32 emu512_sub_epi32
#undef _mm512_mullo_epi32
#define _mm512_mullo_epi32 emu512_mullo_epi32
#undef _mm512_dpbusd_epi32
#define _mm512_dpbusd_epi32 emu512_dpbusd_epi32
#undef _mm512_setzero_ps
#define _mm512_setzero_ps emu512_setzero_ps
#undef _mm512_setzero_si512
#define _mm512_setzero_si512 emu512_setzero_si512
#undef _mm512_set1_ps
#define _mm512_set1_ps emu512_set1_ps
#undef _mm512_set1_epi32
#define _mm512_set1_epi32 emu512_set1_epi32
#undef _mm512_loadu_ps
#define _mm512_loadu_ps emu512_loadu_ps
#undef _mm512_storeu_ps
#define _mm512_storeu_ps emu512_storeu_ps
#undef _mm512_mask_storeu_ps
#define _mm512_mask_storeu_ps emu512_mask_storeu_ps
#undef _mm512_loadu_si512
#define _mm512_loadu_si512 emu512_loadu_si512
#undef _mm512_cvtepi32_ps
#define _mm512_cvtepi32_ps emu512_cvtepi32_ps
#undef _mm512_cvtph_ps
#define _mm512_cvtph_ps emu512_cvtph_ps
#undef _mm512_cvtepu16_epi32
#define _mm512_cvtepu16_epi32 emu512_cvtepu16_epi32
#undef _mm512_slli_epi32
#define _mm512_slli_epi32 emu512_slli_epi32
#undef _mm512_castsi512_ps
#define _mm512_castsi512_ps emu512_castsi512_ps
#undef _mm512_castps_pd
#define _mm512_castps_pd emu512_castps_pd
#undef _mm512_castps512_ps256
#define _mm512_castps512_ps256 emu512_castps512_ps256
#undef _mm512_extractf64x4_pd
#define _mm512_extractf64x4_pd emu512_extractf64x4_pd
#undef _mm256_dpbusd_epi32
#define _mm256_dpbusd_epi32 emu_dpbusd

#endif
