/* Importance-weighted quantizers (ht_quantize_row_w): NULL imat gives the
 * reference bytes, a spread-out imat lowers the imat-weighted error, a
 * constant imat costs no plain error, and hostile imat (NaN, inf, negative,
 * all-zero blocks) still gives finite, sane blocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/types.h"

#include "test_rng.h"

enum { N = 4096, ROWS = 12 };

static const ht_type all_types[] = {HT_F32,  HT_F16,  HT_BF16, HT_Q4_0, HT_Q4_1,
                                    HT_Q5_0, HT_Q5_1, HT_Q8_0, HT_Q8_1, HT_Q2_K,
                                    HT_Q3_K, HT_Q4_K, HT_Q5_K, HT_Q6_K, HT_Q8_K};

/* Weighted types and the largest ratio (imat-weighted error with imat /
 * without) each must reach on spread-out imatrices. Measured (x86-64, gcc
 * -O3): q4_0 0.53, q4_1 0.20, q5_0 0.42, q5_1 0.19, q2_K 0.19, q3_K 0.50,
 * q4_K 0.28, q5_K 0.27, q6_K 0.46; the bounds leave ~25% headroom. */
static const struct {
    ht_type t;
    double max_ratio;
} weighted[] = {
    {HT_Q4_0, 0.65}, {HT_Q4_1, 0.30}, {HT_Q5_0, 0.55}, {HT_Q5_1, 0.30}, {HT_Q2_K, 0.30},
    {HT_Q3_K, 0.65}, {HT_Q4_K, 0.40}, {HT_Q5_K, 0.40}, {HT_Q6_K, 0.60},
};

static size_t row_bytes(ht_type t, int64_t n) {
    size_t sz = 0;
    hearth_err err = {0};
    assert_int_equal(ht_row_size(t, n, &sz, &err), 0);
    return sz;
}

/* Gaussian weights with a few outliers. */
static void weights_row(float *x, int n) {
    for (int i = 0; i < n; i++) {
        x[i] = 0.02f * trng_gauss();
        if (trng_next() % 100 == 0) x[i] *= 6;
    }
}

/* Log-uniform over 4 orders of magnitude, 2% of columns 100x hotter. */
static void spread_imat(float *im, int n) {
    for (int i = 0; i < n; i++) {
        im[i] = (float)pow(10.0, 4 * trng_urand() - 2);
        if (trng_next() % 50 == 0) im[i] *= 100;
    }
}

/* sum_j w_j (x_j - y_j)^2 (w NULL: plain error). */
static double err_of(const float *x, const float *y, const float *w, int n) {
    double e = 0;
    for (int i = 0; i < n; i++) {
        double d = (double)y[i] - x[i];
        e += (w ? w[i] : 1.0) * d * d;
    }
    return e;
}

static void test_null_imat_is_reference(void **state) {
    (void)state;
    float *x = malloc(N * sizeof *x);
    uint8_t *a = malloc(N * 4), *b = malloc(N * 4);
    for (int r = 0; r < 6; r++) {
        for (int i = 0; i < N; i++) {
            float v = trng_gauss();
            switch (r) {
            case 0:
                x[i] = 0.02f * v;
                break;
            case 1:
                x[i] = (i / 64) % 3 ? 0.f : v;
                break; /* zero blocks */
            case 2:
                x[i] = 1e-30f * v;
                break; /* tiny */
            case 3:
                x[i] = 1e30f * v;
                break; /* huge */
            case 4:
                x[i] = (float)ldexp(v, (int)(trng_next() % 60) - 30);
                break;
            default:
                x[i] = 1.0f + 0.01f * v;
                break; /* offset */
            }
        }
        for (size_t k = 0; k < sizeof all_types / sizeof *all_types; k++) {
            ht_type t = all_types[k];
            size_t sz = row_bytes(t, N);
            memset(a, 0x55, sz);
            memset(b, 0xaa, sz);
            assert_int_equal(ht_quantize_row(t, x, a, N), 0);
            assert_int_equal(ht_quantize_row_w(t, x, b, N, NULL), 0);
            assert_memory_equal(a, b, sz);
        }
    }
    free(x);
    free(a);
    free(b);
}

static void test_rejects(void **state) {
    (void)state;
    float x[64] = {0}, im[64] = {0};
    uint8_t q[256];
    assert_int_equal(ht_quantize_row_w(HT_Q4_0, x, q, 31, im), -1);
    assert_int_equal(ht_quantize_row_w(HT_Q4_K, x, q, 64, im), -1);
    assert_int_equal(ht_quantize_row_w(HT_IQ4_NL, x, q, 32, im), -1);
    assert_int_equal(ht_quantize_row_w((ht_type)99, x, q, 32, im), -1);
    assert_int_equal(ht_quantize_row_w(HT_Q4_0, x, q, -32, NULL), -1);
}

/* Types without a weighted algorithm ignore imat. */
static void test_unweighted_types_ignore_imat(void **state) {
    (void)state;
    static const ht_type t[] = {HT_F32, HT_F16, HT_BF16, HT_Q8_0, HT_Q8_1, HT_Q8_K};
    float *x = malloc(N * sizeof *x), *im = malloc(N * sizeof *im);
    uint8_t *a = malloc(N * 4), *b = malloc(N * 4);
    weights_row(x, N);
    spread_imat(im, N);
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        size_t sz = row_bytes(t[k], N);
        assert_int_equal(ht_quantize_row(t[k], x, a, N), 0);
        assert_int_equal(ht_quantize_row_w(t[k], x, b, N, im), 0);
        assert_memory_equal(a, b, sz);
    }
    free(x);
    free(im);
    free(a);
    free(b);
}

static void test_weighted_error_drops(void **state) {
    (void)state;
    float *x = malloc(N * sizeof *x), *im = malloc(N * sizeof *im), *one = malloc(N * sizeof *one);
    float *y = malloc(N * sizeof *y);
    uint8_t *q = malloc(N * 4);
    for (int i = 0; i < N; i++) one[i] = 1.f;
    for (size_t k = 0; k < sizeof weighted / sizeof *weighted; k++) {
        ht_type t = weighted[k].t;
        double ew = 0, e0 = 0, pc = 0, p0 = 0;
        for (int r = 0; r < ROWS; r++) {
            weights_row(x, N);
            spread_imat(im, N);
            assert_int_equal(ht_quantize_row(t, x, q, N), 0);
            ht_dequantize_row(t, q, y, N);
            e0 += err_of(x, y, im, N);
            p0 += err_of(x, y, NULL, N);
            assert_int_equal(ht_quantize_row_w(t, x, q, N, im), 0);
            ht_dequantize_row(t, q, y, N);
            ew += err_of(x, y, im, N);
            assert_int_equal(ht_quantize_row_w(t, x, q, N, one), 0);
            ht_dequantize_row(t, q, y, N);
            pc += err_of(x, y, NULL, N);
        }
        printf(
            "  %-5s weighted error ratio %.3f (max %.2f), constant-imat plain error ratio %.3f\n",
            ht_type_get(t)->name, ew / e0, weighted[k].max_ratio, pc / p0);
        assert_true(e0 > 0 && ew > 0);
        assert_true(ew <= weighted[k].max_ratio * e0);
        assert_true(pc <= 1.05 * p0);
    }
    free(x);
    free(im);
    free(one);
    free(y);
    free(q);
}

/* A row whose blocks all hold a NaN, or whose imat is all 0, gets the
 * reference bytes. */
static void test_fallback_blocks(void **state) {
    (void)state;
    float *x = malloc(N * sizeof *x), *im = malloc(N * sizeof *im);
    uint8_t *a = malloc(N * 4), *b = malloc(N * 4);
    for (size_t k = 0; k < sizeof weighted / sizeof *weighted; k++) {
        ht_type t = weighted[k].t;
        size_t sz = row_bytes(t, N);
        weights_row(x, N);
        for (int i = 0; i < N; i++) im[i] = 0;
        assert_int_equal(ht_quantize_row(t, x, a, N), 0);
        assert_int_equal(ht_quantize_row_w(t, x, b, N, im), 0);
        assert_memory_equal(a, b, sz);
        spread_imat(im, N);
        for (int i = 0; i < N; i += 32) x[i + (int)(trng_next() % 32)] = i % 64 ? NAN : -INFINITY;
        assert_int_equal(ht_quantize_row(t, x, a, N), 0);
        assert_int_equal(ht_quantize_row_w(t, x, b, N, im), 0);
        assert_memory_equal(a, b, sz);
    }
    free(x);
    free(im);
    free(a);
    free(b);
}

static void test_hostile_imat(void **state) {
    (void)state;
    float *x = malloc(N * sizeof *x), *im = malloc(N * sizeof *im), *y = malloc(N * sizeof *y);
    uint8_t *q = malloc(N * 4);
    for (size_t k = 0; k < sizeof weighted / sizeof *weighted; k++) {
        ht_type t = weighted[k].t;
        double eh = 0, e0 = 0;
        for (int r = 0; r < 4; r++) {
            weights_row(x, N);
            spread_imat(im, N);
            for (int i = 0; i < N; i++) {
                switch (trng_next() % 16) {
                case 0:
                    im[i] = NAN;
                    break;
                case 1:
                    im[i] = INFINITY;
                    break;
                case 2:
                    im[i] = -im[i];
                    break;
                case 3:
                    im[i] = -INFINITY;
                    break;
                case 4:
                    im[i] = 1e-40f;
                    break; /* subnormal */
                case 5:
                    im[i] = 3e38f;
                    break; /* near FLT_MAX */
                default:
                    break;
                }
            }
            /* whole blocks (and groups) of 0, NaN, inf, and a lone hot entry */
            for (int i = 256; i < 512; i++) im[i] = 0;
            for (int i = 512; i < 768; i++) im[i] = NAN;
            for (int i = 768; i < 1024; i++) im[i] = INFINITY;
            for (int i = 1024; i < 1280; i++) im[i] = i == 1100 ? 1e30f : 0;
            for (int i = 1280; i < 1536; i++) im[i] = (i / 16) % 2 ? 0 : -1;
            for (int i = 1536; i < 1792; i++) im[i] = (i / 16) % 2 ? 0 : 1;
            assert_int_equal(ht_quantize_row_w(t, x, q, N, im), 0);
            ht_dequantize_row(t, q, y, N);
            for (int i = 0; i < N; i++) assert_true(isfinite(y[i]));
            eh += err_of(x, y, NULL, N);
            assert_int_equal(ht_quantize_row(t, x, q, N), 0);
            ht_dequantize_row(t, q, y, N);
            e0 += err_of(x, y, NULL, N);
        }
        printf("  %-5s hostile-imat plain error ratio %.3f\n", ht_type_get(t)->name, eh / e0);
        assert_true(eh <= 3.0 * e0);
    }
    free(x);
    free(im);
    free(y);
    free(q);
}

/* Extreme magnitudes on the weighted path: no UB (the sanitizer build checks),
 * and where the scales fit in F16 the result is finite and no worse than
 * 3x the reference plain error. */
static void test_extreme_inputs(void **state) {
    (void)state;
    static const float mags[] = {1e-35f, 1e-20f, 1e-6f, 1e3f, 1e10f, 1e20f};
    float *x = malloc(N * sizeof *x), *im = malloc(N * sizeof *im), *y = malloc(N * sizeof *y);
    uint8_t *q = malloc(N * 4);
    for (size_t k = 0; k < sizeof weighted / sizeof *weighted; k++) {
        ht_type t = weighted[k].t;
        for (size_t m = 0; m < sizeof mags / sizeof *mags; m++) {
            for (int i = 0; i < N; i++) x[i] = mags[m] * trng_gauss();
            spread_imat(im, N);
            assert_int_equal(ht_quantize_row_w(t, x, q, N, im), 0);
            if (mags[m] > 1e4f) continue; /* F16 scales overflow, as in the reference */
            ht_dequantize_row(t, q, y, N);
            double ew = 0, e0;
            for (int i = 0; i < N; i++) {
                assert_true(isfinite(y[i]));
                double d = ((double)y[i] - x[i]) / mags[m];
                ew += d * d;
            }
            assert_int_equal(ht_quantize_row(t, x, q, N), 0);
            ht_dequantize_row(t, q, y, N);
            e0 = 0;
            for (int i = 0; i < N; i++) {
                double d = ((double)y[i] - x[i]) / mags[m];
                e0 += d * d;
            }
            assert_true(ew <= 3.0 * e0);
        }
    }
    free(x);
    free(im);
    free(y);
    free(q);
}

/* Near the F16 limit: wherever the reference block dequantizes to finite
 * values, so does the weighted one. */
static void test_f16_limit(void **state) {
    (void)state;
    static const float amax[] = {6e4f, 2.4e5f, 4.9e5f, 5.2e5f, 1e6f, 2e6f, 2e7f, 2.5e8f};
    float *x = malloc(N * sizeof *x), *im = malloc(N * sizeof *im), *y = malloc(N * sizeof *y);
    uint8_t *q = malloc(N * 4);
    int checked = 0;
    for (size_t k = 0; k < sizeof weighted / sizeof *weighted; k++) {
        ht_type t = weighted[k].t;
        for (size_t m = 0; m < sizeof amax / sizeof *amax; m++) {
            for (int i = 0; i < N; i++) x[i] = amax[m] * (float)(2 * trng_urand() - 1);
            for (int i = 0; i < N; i += 32)
                x[i + (int)(trng_next() % 32)] = i % 64 ? amax[m] : -amax[m];
            spread_imat(im, N);
            assert_int_equal(ht_quantize_row(t, x, q, N), 0);
            ht_dequantize_row(t, q, y, N);
            bool finite = true;
            for (int i = 0; i < N; i++) finite = finite && isfinite(y[i]);
            if (!finite) continue;
            checked++;
            assert_int_equal(ht_quantize_row_w(t, x, q, N, im), 0);
            ht_dequantize_row(t, q, y, N);
            for (int i = 0; i < N; i++) assert_true(isfinite(y[i]));
        }
    }
    assert_true(checked >= 20);
    free(x);
    free(im);
    free(y);
    free(q);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_imat_is_reference),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_unweighted_types_ignore_imat),
        cmocka_unit_test(test_weighted_error_drops),
        cmocka_unit_test(test_fallback_blocks),
        cmocka_unit_test(test_hostile_imat),
        cmocka_unit_test(test_extreme_inputs),
        cmocka_unit_test(test_f16_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
