/* Quantize / dequantize: error bounds on random data for every quantizer,
 * exact bytes for hand-computed blocks, and every block decoder checked
 * against a per-element statement of its layout on random bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/types.h"

#include "test_rng.h"

enum { N = 256 * 64 };

/* Relative rms error bound of each format on Gaussian data. A uniform
 * quantizer with step s has rms error s/sqrt(12); for b bits over a block
 * whose range is about 4.4 sigma that is 4.4/(2^b-1)/3.46 sigma: ~0.5% for
 * 8 bits, ~2% for 6, ~4% for 5, ~8% for 4. Bounds leave ~25% headroom over
 * what these quantizers achieve (K-quants fit scales, so they do better than
 * their bit count suggests at 4+ bits; q2_K/q3_K are far coarser). */
static const struct {
    ht_type t;
    double bound;
} bounds[] = {
    {HT_F16, 1.0 / 2048}, {HT_BF16, 1.0 / 256}, {HT_Q8_0, 0.0075}, {HT_Q8_1, 0.0075},
    {HT_Q8_K, 0.009},     {HT_Q6_K, 0.023},     {HT_Q5_0, 0.055},  {HT_Q5_1, 0.05},
    {HT_Q5_K, 0.047},     {HT_Q4_0, 0.11},      {HT_Q4_1, 0.10},   {HT_Q4_K, 0.09},
    {HT_Q3_K, 0.19},      {HT_Q2_K, 0.37},
};

static double round_trip(ht_type t, const float *x, float *y, uint8_t *q) {
    assert_int_equal(ht_quantize_row(t, x, q, N), 0);
    ht_dequantize_row(t, q, y, N);
    double se = 0, sw = 0;
    for (int i = 0; i < N; i++) {
        double e = (double)y[i] - x[i];
        se += e * e;
        sw += (double)x[i] * x[i];
    }
    return sqrt(se / sw);
}

static void test_round_trip_bounds(void **state) {
    (void)state;
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    uint8_t *q = malloc(N * 4);
    for (int i = 0; i < N; i++) x[i] = 0.02f * trng_gauss();
    double rel[HT_TYPE_COUNT] = {0};
    for (size_t k = 0; k < sizeof bounds / sizeof *bounds; k++) {
        rel[bounds[k].t] = round_trip(bounds[k].t, x, y, q);
        printf("  %-5s relative rms error %.5f (bound %.4f)\n", ht_type_get(bounds[k].t)->name,
               rel[bounds[k].t], bounds[k].bound);
        assert_true(rel[bounds[k].t] > 0);
        assert_true(rel[bounds[k].t] <= bounds[k].bound);
    }
    /* More bits, less error. */
    assert_true(rel[HT_Q2_K] > rel[HT_Q3_K] && rel[HT_Q3_K] > rel[HT_Q4_K]);
    assert_true(rel[HT_Q4_K] > rel[HT_Q5_K] && rel[HT_Q5_K] > rel[HT_Q6_K]);
    assert_true(rel[HT_Q6_K] > rel[HT_Q8_0] && rel[HT_Q4_0] > rel[HT_Q5_0]);
    /* Shifted data: the formats with a min (q4_1, q5_1, K-quants) handle an
     * offset, the symmetric ones pay for it. */
    for (int i = 0; i < N; i++) x[i] = 1.0f + 0.02f * trng_gauss();
    assert_true(round_trip(HT_Q4_1, x, y, q) < round_trip(HT_Q4_0, x, y, q));
    /* All zeros stay zeros. */
    memset(x, 0, N * sizeof *x);
    for (size_t k = 0; k < sizeof bounds / sizeof *bounds; k++) {
        assert_int_equal(ht_quantize_row(bounds[k].t, x, q, N), 0);
        ht_dequantize_row(bounds[k].t, q, y, N);
        for (int i = 0; i < N; i++) assert_true(y[i] == 0);
    }
    free(x), free(y), free(q);
}

/* Q8_0 of -16..15: amax 16, d = 16/127 (f16 0x3008), q = round(x * 127/16)
 * with halves away from zero (roundf). */
static void test_q8_0_known_bytes(void **state) {
    (void)state;
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    uint8_t b[34];
    assert_int_equal(ht_quantize_row(HT_Q8_0, x, b, 32), 0);
    uint16_t d;
    memcpy(&d, b, 2);
    assert_int_equal(d, ht_f32_to_f16(16.0f / 127.0f));
    assert_int_equal(d, 0x3008);
    for (int j = 0; j < 32; j++) {
        double v = (j - 16) * (127.0 / 16.0);
        int want = (int)(v < 0 ? -floor(-v + 0.5) : floor(v + 0.5));
        assert_int_equal((int8_t)b[2 + j], want);
    }
    assert_int_equal((int8_t)b[2], -127);
    assert_int_equal((int8_t)b[2 + 8], -64); /* -63.5 rounds away from zero */
    assert_int_equal((int8_t)b[2 + 24], 64);
}

/* Q4_0 of values -8..7 (twice): the largest magnitude is -8, so d = 1 and
 * every value is exact: q = x + 8, low nibbles first half, high second. */
static void test_q4_0_known_bytes(void **state) {
    (void)state;
    float x[32], y[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j % 16 - 8);
    uint8_t b[18];
    assert_int_equal(ht_quantize_row(HT_Q4_0, x, b, 32), 0);
    assert_int_equal(b[0] | (b[1] << 8), 0x3c00);
    for (int j = 0; j < 16; j++) assert_int_equal(b[2 + j], j | (j << 4));
    ht_dequantize_row(HT_Q4_0, b, y, 32);
    assert_memory_equal(x, y, sizeof x);
    /* Q5_0 of -16..15: d = 1, exact; the fifth bits land in qh. */
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    uint8_t c[22];
    assert_int_equal(ht_quantize_row(HT_Q5_0, x, c, 32), 0);
    uint32_t qh;
    memcpy(&qh, c + 2, 4);
    assert_int_equal(qh, 0xffff0000u); /* q = j: bit 4 set for j >= 16 */
    ht_dequantize_row(HT_Q5_0, c, y, 32);
    assert_memory_equal(x, y, sizeof x);
}

static void test_quantize_rejects(void **state) {
    (void)state;
    float x[256] = {0};
    uint8_t q[1024];
    assert_int_equal(ht_quantize_row(HT_Q8_0, x, q, 31), -1);
    assert_int_equal(ht_quantize_row(HT_Q4_K, x, q, 128), -1);
    assert_int_equal(ht_quantize_row(HT_IQ4_XS, x, q, 256), -1);
    assert_int_equal(ht_quantize_row((ht_type)4, x, q, 32), -1);
}

/* NaN and inf inputs must not hit undefined float->int conversions (UBSan
 * checks this in CI); the output is whatever, but it is produced. */
static void test_nonfinite_inputs(void **state) {
    (void)state;
    float x[256], y[256];
    uint8_t q[1024];
    for (int i = 0; i < 256; i++) x[i] = i % 3 == 0 ? NAN : i % 3 == 1 ? INFINITY : -1e38f;
    for (size_t k = 0; k < sizeof bounds / sizeof *bounds; k++) {
        assert_int_equal(ht_quantize_row(bounds[k].t, x, q, 256), 0);
        ht_dequantize_row(bounds[k].t, q, y, 256);
    }
}

/* ---- per-element statements of each layout ---- */

static const int8_t kv_nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                 1,    13,   25,  38,  53,  69,  89,  113};

static float h(const uint8_t *p) {
    return ht_f16_to_f32((uint16_t)(p[0] | (p[1] << 8)));
}

/* Q4_K / Q5_K scale and min of group g from the 12 packed bytes. */
static void k4(const uint8_t *s, int g, int *sc, int *m) {
    if (g < 4) {
        *sc = s[g] & 63, *m = s[g + 4] & 63;
    } else {
        *sc = (s[g + 4] & 15) | ((s[g - 4] >> 6) << 4);
        *m = (s[g + 4] >> 4) | ((s[g] >> 6) << 4);
    }
}

static float elem(ht_type t, const uint8_t *b, int k) {
    switch (t) {
    case HT_Q4_1: {
        int q = k < 16 ? b[4 + k] & 15 : b[4 + k - 16] >> 4;
        return h(b) * q + h(b + 2);
    }
    case HT_Q5_1: {
        uint32_t qh =
            (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
        int q = (k < 16 ? b[8 + k] & 15 : b[8 + k - 16] >> 4) | (int)((qh >> k) & 1) << 4;
        return h(b) * q + h(b + 2);
    }
    case HT_IQ4_NL:
        return h(b) * kv_nl[k < 16 ? b[2 + k] & 15 : b[2 + k - 16] >> 4];
    case HT_Q2_K: { /* scales[16] qs[64] d dmin */
        int half = k / 128, plane = (k % 128) / 32, idx = k % 32;
        int sc = b[half * 8 + plane * 2 + idx / 16];
        int q = (b[16 + half * 32 + idx] >> (2 * plane)) & 3;
        return h(b + 80) * (sc & 15) * q - h(b + 82) * (sc >> 4);
    }
    case HT_Q3_K: { /* hmask[32] qs[64] scales[12] d */
        int half = k / 128, plane = (k % 128) / 32, idx = k % 32;
        int j = half * 8 + plane * 2 + idx / 16;
        const uint8_t *s = b + 96;
        int lo = j < 8 ? s[j] & 15 : s[j - 8] >> 4, hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        int q = (b[32 + half * 32 + idx] >> (2 * plane)) & 3;
        int hbit = (b[k % 32] >> (k / 32)) & 1;
        return h(b + 108) * ((lo | hi << 4) - 32) * (q - (hbit ? 0 : 4));
    }
    case HT_Q4_K: { /* d dmin scales[12] qs[128] */
        int g = k / 32, sc, m;
        k4(b + 4, g, &sc, &m);
        int byte = b[16 + (g / 2) * 32 + k % 32];
        int q = g % 2 ? byte >> 4 : byte & 15;
        return h(b) * sc * q - h(b + 2) * m;
    }
    case HT_Q5_K: { /* d dmin scales[12] qh[32] qs[128] */
        int g = k / 32, sc, m;
        k4(b + 4, g, &sc, &m);
        int byte = b[48 + (g / 2) * 32 + k % 32];
        int q = (g % 2 ? byte >> 4 : byte & 15) | ((b[16 + k % 32] >> g) & 1) << 4;
        return h(b) * sc * q - h(b + 2) * m;
    }
    case HT_Q6_K: { /* ql[128] qh[64] scales[16] d */
        int half = k / 128, quarter = (k % 128) / 32, l = k % 32;
        int byte = b[half * 64 + l + (quarter & 1) * 32];
        int lo = quarter < 2 ? byte & 15 : byte >> 4;
        int hi = (b[128 + half * 32 + l] >> (2 * quarter)) & 3;
        int sc = (int8_t)b[192 + half * 8 + l / 16 + 2 * quarter];
        return h(b + 208) * sc * ((lo | hi << 4) - 32);
    }
    case HT_IQ4_XS: { /* d scales_h scales_l[4] qs[128] */
        int ib = k / 32, j = k % 32;
        int sh = b[2] | b[3] << 8;
        int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 15) | ((sh >> (2 * ib)) & 3) << 4;
        int q = j < 16 ? b[8 + ib * 16 + j] & 15 : b[8 + ib * 16 + j - 16] >> 4;
        return h(b) * (ls - 32) * kv_nl[q];
    }
    default:
        fail_msg("no element formula");
        return 0;
    }
}

static void test_layouts_per_element(void **state) {
    (void)state;
    /* Where each format keeps its F16 scales (patched to sane values so the
     * random bytes decode to finite numbers). */
    const struct {
        ht_type t;
        int f16_at[2];
    } fmts[] = {
        {HT_Q4_1, {0, 2}},   {HT_Q5_1, {0, 2}},    {HT_IQ4_NL, {0, -1}},
        {HT_Q2_K, {80, 82}}, {HT_Q3_K, {108, -1}}, {HT_Q4_K, {0, 2}},
        {HT_Q5_K, {0, 2}},   {HT_Q6_K, {208, -1}}, {HT_IQ4_XS, {0, -1}},
    };
    uint8_t blk[4 * 292];
    float y[4 * 256];
    for (size_t f = 0; f < sizeof fmts / sizeof *fmts; f++) {
        const ht_type_info *ti = ht_type_get(fmts[f].t);
        for (int trial = 0; trial < 50; trial++) {
            for (size_t i = 0; i < sizeof blk; i++) blk[i] = (uint8_t)trng_next();
            for (int b = 0; b < 4; b++)
                for (int s = 0; s < 2; s++)
                    if (fmts[f].f16_at[s] >= 0) {
                        uint16_t v = ht_f32_to_f16((float)(trng_urand() * 0.01 + 1e-4));
                        memcpy(blk + b * ti->type_size + fmts[f].f16_at[s], &v, 2);
                    }
            ht_dequantize_row(fmts[f].t, blk, y, 4 * ti->block_size);
            for (int b = 0; b < 4; b++)
                for (int k = 0; k < ti->block_size; k++) {
                    float want = elem(fmts[f].t, blk + b * ti->type_size, k);
                    float got = y[b * ti->block_size + k];
                    if (fabsf(want - got) > 1e-6f * (1 + fabsf(want)))
                        fail_msg("%s block %d element %d: %g, expected %g", ti->name, b, k, got,
                                 want);
                }
        }
    }
}

int main(void) {
    trng_seed(88172645463325252ull);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_bounds), cmocka_unit_test(test_q8_0_known_bytes),
        cmocka_unit_test(test_q4_0_known_bytes),  cmocka_unit_test(test_quantize_rejects),
        cmocka_unit_test(test_nonfinite_inputs),  cmocka_unit_test(test_layouts_per_element),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
