/* The avx512 variant's tiles on any AVX2 CPU: tests/kernels/avx512emu_*.c
 * build avx2_q.c and avx2_kq.c again as the avx512 variant's, with every
 * AVX-512 instruction emulated exactly on 256-bit halves
 * (src/kernels/avx512_emu.h). This checks the emulation itself (vpdpbusd
 * over every byte pair, each other intrinsic against its definition in
 * scalar code) and the emulated tiles bitwise against the AVX2 tiles for
 * every quantized type, the K-quants included: one token (decode) and
 * batches (the 512-bit 16-row groups r16_* and k16_*, their row and token
 * remainders, several row sub-tiles and token chunks). So the avx512
 * variant's own logic is tested on machines without AVX-512; on AVX-512
 * CPUs test_avx2q compares the real variant with avx2 as well. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "kernels/ref.h"
#include "kern_test_util.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <math.h>

#include "kernels/avx2_impl.h"
#include "kernels/avx512_emu.h"

/* y[T][R] = W x with the type's tiles, cut as avx2.c's driver cuts them. */
static void run_tiles(const avx2_type *ty, const uint8_t *w, size_t rb, int64_t C, int64_t R,
                      const float *x, int T, float *y) {
    const size_t st = ty->act->bytes(C);
    uint8_t *act = aligned_alloc(64, (st * (size_t)T + 63) & ~(size_t)63);
    const size_t sb = ty->scratch_bytes ? ty->scratch_bytes(C) : 0;
    uint8_t *scratch = sb ? aligned_alloc(64, (sb + 63) & ~(size_t)63) : NULL;
    assert_non_null(act);
    assert_true(!sb || scratch);
    for (int t = 0; t < T; t++) ty->act->quantize(x + (size_t)t * C, C, act + (size_t)t * st);
    if (T == 1) {
        ty->tile(w, rb, (int)R, act, st, 1, C, y, (size_t)R, scratch);
    } else {
        for (int64_t r0 = 0; r0 < R; r0 += ty->max_rows) {
            const int nr = (int)(R - r0 < ty->max_rows ? R - r0 : ty->max_rows);
            for (int t0 = 0; t0 < T; t0 += ty->max_tokens) {
                const int nt = T - t0 < ty->max_tokens ? T - t0 : ty->max_tokens;
                ty->tile(w + (size_t)r0 * rb, rb, nr, act + (size_t)t0 * st, st, nt, C,
                         y + (size_t)t0 * R + r0, (size_t)R, scratch);
            }
        }
    }
    free(act);
    free(scratch);
}

static const ht_type qtypes[] = {HT_Q8_0, HT_Q4_0, HT_Q5_0, HT_IQ4_NL, HT_Q4_1, HT_Q5_1,
                                 HT_Q2_K, HT_Q3_K, HT_Q4_K, HT_Q5_K,   HT_Q6_K};

static const avx2_type *avx2_of(ht_type t) {
    return avx2_q_type(t) ? avx2_q_type(t) : avx2_kq_type(t);
}

static const avx2_type *emu_of(ht_type t) {
    return avx512emu_q_type(t) ? avx512emu_q_type(t) : avx512emu_kq_type(t);
}

/* pattern 0: random activations; 1: every value +-1, so every block's
 * activations round to +-127 (the largest products, with Q8_0's -128) */
static void compare(ht_type type, int64_t C, int64_t R, int T, int pattern) {
    const avx2_type *a2 = avx2_of(type), *v = emu_of(type);
    assert_non_null(a2);
    assert_non_null(v);
    if (C % ht_type_get(type)->block_size) return;
    size_t rb;
    void *wd = ktu_random_matrix(type, C, R, &rb);
    float *x = malloc(sizeof(float) * (size_t)(C * T));
    float *y2 = malloc(sizeof(float) * (size_t)(R * T)),
          *yv = malloc(sizeof(float) * (size_t)(R * T));
    assert_true(wd && x && y2 && yv);
    for (int64_t i = 0; i < C * T; i++)
        x[i] = pattern ? ((i * 7 + i / 5) % 3 ? 1.0f : -1.0f) : ktu_frand();
    run_tiles(a2, wd, rb, C, R, x, T, y2);
    run_tiles(v, wd, rb, C, R, x, T, yv);
    for (int64_t i = 0; i < R * T; i++)
        if (memcmp(&y2[i], &yv[i], sizeof(float)))
            fail_msg("%s %lld x %lld, %d tokens, pattern %d: row %lld token %lld: avx2 %.9g, "
                     "vnni %.9g",
                     ht_type_get(type)->name, (long long)R, (long long)C, T, pattern,
                     (long long)(i % R), (long long)(i / R), y2[i], yv[i]);
    free(wd);
    free(x);
    free(y2);
    free(yv);
}

static void test_vnni_tiles_equal_avx2(void **state) {
    (void)state;
    if (!kern_avx2_supported()) {
        printf("no AVX2 on this CPU: nothing to compare\n");
        return;
    }
    for (size_t k = 0; k < sizeof(qtypes) / sizeof(qtypes[0]); k++)
        for (int pattern = 0; pattern < 2; pattern++) {
            for (int T = 1; T <= 17; T++) compare(qtypes[k], 256, 71, T, pattern);
            compare(qtypes[k], 2560, 21, 1, pattern);
            compare(qtypes[k], 2560, 21, 5, pattern);
            compare(qtypes[k], 512, 130, 64, pattern);
            compare(qtypes[k], 256, 23, 70, pattern);
            compare(qtypes[k], 1088, 9, 9, pattern);
        }
}

/* The emulated vpdpbusd on its own: every unsigned byte against every
 * signed byte, four products per lane. */
AVX2 static void test_emu_dpbusd(void **state) {
    (void)state;
    if (!kern_avx2_supported()) return;
    uint8_t u[32];
    int8_t s[32];
    int32_t acc[8], got[8];
    for (int rep = 0; rep < 256 * 8; rep++) {
        for (int i = 0; i < 32; i++) {
            u[i] = (uint8_t)(i < 4 ? 255 - rep % 256 : ktu_urand() * 256);
            s[i] = (int8_t)(i < 4 ? rep % 256 - 128 : (int)(ktu_urand() * 256) - 128);
        }
        for (int j = 0; j < 8; j++) acc[j] = (int32_t)(ktu_urand() * 2e6) - 1000000;
        _mm256_storeu_si256((__m256i *)got, emu_dpbusd(_mm256_loadu_si256((const __m256i *)acc),
                                                       _mm256_loadu_si256((const __m256i *)u),
                                                       _mm256_loadu_si256((const __m256i *)s)));
        for (int j = 0; j < 8; j++) {
            int32_t want = acc[j];
            for (int i = 4 * j; i < 4 * j + 4; i++) want += (int32_t)u[i] * s[i];
            assert_int_equal(got[j], want);
        }
    }
}

/* Every other emulated intrinsic against its definition, element by
 * element (element i of a 512-bit vector: lo for i < 8 floats, else hi). */
static float rnd_f(void) {
    return (float)((ktu_urand() - 0.5) * 1e3);
}

AVX2 static void test_emu_ops(void **state) {
    (void)state;
    if (!kern_avx2_supported()) return;
    float a[16], b[16], c[16], got[16];
    int32_t ia[16], ib[16], ig[16];
    uint16_t h[16];
    for (int rep = 0; rep < 200; rep++) {
        for (int i = 0; i < 16; i++) {
            a[i] = rnd_f();
            b[i] = rnd_f();
            c[i] = rnd_f();
            ia[i] = (int32_t)(ktu_urand() * 4294967296.0 - 2147483648.0);
            ib[i] = (int32_t)(ktu_urand() * 4294967296.0 - 2147483648.0);
            h[i] = (uint16_t)(ktu_urand() * 65536);
            if ((h[i] & 0x7c00) == 0x7c00) h[i] &= 0xbfff; /* no inf / NaN */
        }
        const __m512 va = _mm512_loadu_ps(a), vb = _mm512_loadu_ps(b), vc = _mm512_loadu_ps(c);
        const __m512i ja = _mm512_loadu_si512(ia), jb = _mm512_loadu_si512(ib);
        const __m256i vh = _mm256_loadu_si256((const __m256i *)h);
#define CHECK_F(expr, want)                                                                        \
    do {                                                                                           \
        _mm512_storeu_ps(got, expr);                                                               \
        for (int i = 0; i < 16; i++) {                                                             \
            const float w_ = (want);                                                               \
            assert_memory_equal(&got[i], &w_, 4);                                                  \
        }                                                                                          \
    } while (0)
#define CHECK_I(expr, want)                                                                        \
    do {                                                                                           \
        _mm512_storeu_ps(got, _mm512_castsi512_ps(expr));                                          \
        memcpy(ig, got, sizeof(ig));                                                               \
        for (int i = 0; i < 16; i++) assert_int_equal(ig[i], (int32_t)(want));                     \
    } while (0)
        CHECK_F(_mm512_add_ps(va, vb), a[i] + b[i]);
        CHECK_F(_mm512_sub_ps(va, vb), a[i] - b[i]);
        CHECK_F(_mm512_mul_ps(va, vb), a[i] * b[i]);
        CHECK_F(_mm512_fmadd_ps(va, vb, vc), fmaf(a[i], b[i], c[i]));
        CHECK_F(_mm512_set1_ps(a[3]), a[3]);
        CHECK_F(_mm512_setzero_ps(), 0.0f);
        CHECK_F(_mm512_cvtepi32_ps(ja), (float)ia[i]);
        CHECK_F(_mm512_cvtph_ps(vh), avx2_f16(h[i]));
        CHECK_I(_mm512_add_epi32(ja, jb), (uint32_t)ia[i] + (uint32_t)ib[i]);
        CHECK_I(_mm512_sub_epi32(ja, jb), (uint32_t)ia[i] - (uint32_t)ib[i]);
        CHECK_I(_mm512_mullo_epi32(ja, jb), (uint32_t)ia[i] * (uint32_t)ib[i]);
        CHECK_I(_mm512_set1_epi32(ia[5]), ia[5]);
        CHECK_I(_mm512_setzero_si512(), 0);
        CHECK_I(_mm512_cvtepu16_epi32(vh), h[i]);
        CHECK_I(_mm512_slli_epi32(ja, 16), (uint32_t)ia[i] << 16);
        /* the halves: low 8 floats, and the high 4 doubles (floats 8..15) */
        float half[8];
        _mm256_storeu_ps(half, _mm512_castps512_ps256(va));
        assert_memory_equal(half, a, sizeof(half));
        _mm256_storeu_ps(half, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(va), 1)));
        assert_memory_equal(half, a + 8, sizeof(half));
        /* vpdpbusd over 512 bits: lane j from bytes 4j..4j+3 */
        const __m512i d = _mm512_dpbusd_epi32(jb, ja, _mm512_loadu_si512(ib));
        _mm512_storeu_ps(got, _mm512_castsi512_ps(d));
        memcpy(ig, got, sizeof(ig));
        const uint8_t *ub = (const uint8_t *)ia;
        const int8_t *sb = (const int8_t *)ib;
        for (int j = 0; j < 16; j++) {
            uint32_t want = (uint32_t)ib[j];
            for (int k = 4 * j; k < 4 * j + 4; k++) want += (uint32_t)((int32_t)ub[k] * sb[k]);
            assert_int_equal(ig[j], (int32_t)want);
        }
#undef CHECK_F
#undef CHECK_I
    }
}

/* The emulated AVX512_BF16 instructions against Intel's definition:
 * conversion (ties to even, denormals to zero, NaN quieted, infinities
 * kept) and the pair dot (odd product first, F32 FMAs, denormals flushed). */
static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float flush(float f) {
    return fabsf(f) < 1.17549435e-38f ? copysignf(0.0f, f) : f;
}

AVX2 static void test_emu_bf16(void **state) {
    (void)state;
    if (!kern_avx2_supported()) return;
    /* special and tie values first, then random bit patterns and floats */
    static const uint32_t special[] = {0x00000000u, 0x80000000u, 0x00000001u, 0x807fffffu,
                                       0x00800000u, 0x7f800000u, 0xff800000u, 0x7fc00000u,
                                       0x7f800001u, 0xff810000u, 0x3f808000u, 0x3f818000u,
                                       0x3f807fffu, 0x3f808001u, 0x7f7fffffu, 0x477fe000u};
    float a[32], b[32], acc[16], got[16];
    uint16_t gh[32];
    for (int rep = 0; rep < 300; rep++) {
        for (int i = 0; i < 32; i++) {
            const int k = rep * 32 + i;
            a[i] = k < 16    ? float_of(special[k])
                   : rep % 2 ? float_of((uint32_t)(ktu_urand() * 4294967296.0))
                             : rnd_f();
            b[i] = rep % 3 ? rnd_f() : rnd_f() * 1e-30f; /* tiny: denormal products */
        }
        for (int j = 0; j < 16; j++) acc[j] = rep % 5 ? rnd_f() : 1e-39f * (float)(j - 8);
        /* conversion: elements 0..15 from the second operand */
        const __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(a + 16), _mm512_loadu_ps(a));
        memcpy(gh, &h, 64);
        for (int i = 0; i < 32; i++) {
            const uint32_t u = bits_of(a[i]);
            uint32_t want;
            if ((u & 0x7f800000u) == 0)
                want = (u >> 16) & 0x8000u;
            else if ((u & 0x7fffffffu) > 0x7f800000u)
                want = (u >> 16) | 0x40u;
            else
                want = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
            assert_int_equal(gh[i], want);
        }
        /* the pair dot, on finite values */
        for (int i = 0; i < 32; i++) {
            if (!isfinite(a[i])) a[i] = 1.5f;
            if (!isfinite(b[i])) b[i] = -0.75f;
        }
        const __m512bh ha = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(a + 16), _mm512_loadu_ps(a));
        const __m512bh hb = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(b + 16), _mm512_loadu_ps(b));
        uint16_t ua[32], ub[32];
        memcpy(ua, &ha, 64);
        memcpy(ub, &hb, 64);
        _mm512_storeu_ps(got, _mm512_dpbf16_ps(_mm512_loadu_ps(acc), ha, hb));
        for (int j = 0; j < 16; j++) {
            const float ao = flush(float_of((uint32_t)ua[2 * j + 1] << 16));
            const float bo = flush(float_of((uint32_t)ub[2 * j + 1] << 16));
            const float ae = flush(float_of((uint32_t)ua[2 * j] << 16));
            const float be = flush(float_of((uint32_t)ub[2 * j] << 16));
            const float want = flush(fmaf(ae, be, flush(fmaf(ao, bo, flush(acc[j])))));
            assert_int_equal(bits_of(got[j]), bits_of(want));
        }
    }
}

int main(void) {
    ktu_seed(0x2545f4914f6cdd1dull);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emu_dpbusd),
        cmocka_unit_test(test_emu_ops),
        cmocka_unit_test(test_emu_bf16),
        cmocka_unit_test(test_vnni_tiles_equal_avx2),
    };
    return cmocka_run_group_tests_name("vnni_emu", tests, NULL, NULL);
}

#else

int main(void) {
    printf("not x86-64: nothing to test\n");
    return 0;
}

#endif
