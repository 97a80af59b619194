/* The avx512 variant's quantized tiles (avx2_q.c built with HEARTH_VNNI) on
 * any AVX2 CPU: this file builds them again with vpdpbusd emulated exactly
 * (HEARTH_VNNI_EMULATE) and checks them bitwise against the AVX2 tiles, for
 * every type, one token (decode) and batches (the 8-token micro-kernels and
 * their remainders, several row sub-tiles and token chunks). That covers
 * the VNNI path's own logic (the unsigned forms and their offsets, IQ4_NL's
 * shifted grid, decode, the 8-token blocking of the 8-row batch kernel) on
 * machines without AVX-512. The real build's batches use 512-bit 16-row
 * groups (r16_*), which no AVX2 CPU can run: on AVX-512 CPUs test_avx2q
 * compares the real avx512 variant, those included, with avx2. */
#define HEARTH_VNNI         1
#define HEARTH_VNNI_EMULATE 1
#include "kernels/avx2_q.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "kernels/ref.h"
#include "kern_test_util.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

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

static const ht_type qtypes[] = {HT_Q8_0, HT_Q4_0, HT_Q5_0, HT_IQ4_NL, HT_Q4_1, HT_Q5_1};

/* pattern 0: random activations; 1: every value +-1, so every block's
 * activations round to +-127 (the largest products, with Q8_0's -128) */
static void compare(ht_type type, int64_t C, int64_t R, int T, int pattern) {
    const avx2_type *a2 = avx2_q_type(type), *v = avx512emu_q_type(type);
    assert_non_null(a2);
    assert_non_null(v);
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

int main(void) {
    ktu_seed(0x2545f4914f6cdd1dull);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emu_dpbusd),
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
