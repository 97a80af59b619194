/* The K-quant matmul (Q2_K..Q6_K) of the active variant beyond test_kernels:
 * weights written by the reference quantizer (realistic scales) and random
 * bytes, every tail of a tile (rows and tokens 1..9) against the
 * dequantize-then-dot truth with the activation rounding kern_act_block()
 * reports, batches bitwise equal to single tokens, and the integer worst
 * cases (every quant and scale at its extreme, activations at +-127, which
 * would overflow any 16-bit or saturating sum that did not fit). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/kernels.h"
#include "kern_test_util.h"

static const ht_type ktypes[] = {HT_Q2_K, HT_Q3_K, HT_Q4_K, HT_Q5_K, HT_Q6_K};
enum { NK = sizeof(ktypes) / sizeof(ktypes[0]) };

/* y[t][r] expected from dequantized rows and the variant's rounding of x. */
static void expect(ht_type type, const uint8_t *w, size_t rb, int64_t C, int R, const float *x,
                   int T, double *ref, double *mag) {
    const int64_t ab0 = kern_act_block(type), ab = ab0 > 0 ? ab0 : 32;
    float *row = malloc(sizeof(float) * C);
    assert_non_null(row);
    for (int r = 0; r < R; r++) {
        ht_dequantize_row(type, w + (size_t)r * rb, row, C);
        for (int t = 0; t < T; t++) {
            double s = 0, m = 0;
            for (int64_t c0 = 0; c0 < C; c0 += ab) {
                float amax = 0;
                for (int64_t c = c0; c < c0 + ab; c++) amax = fmaxf(amax, fabsf(x[t * C + c]));
                const float id = amax > 0 ? 127.0f / amax : 0.0f;
                for (int64_t c = c0; c < c0 + ab; c++) {
                    double xv = x[t * C + c];
                    if (ab0 > 0) xv = (double)(amax / 127.0f) * nearbyintf(x[t * C + c] * id);
                    s += (double)row[c] * xv;
                    m += fabs((double)row[c] * xv);
                }
            }
            ref[(size_t)t * R + r] = s;
            mag[(size_t)t * R + r] = m;
        }
    }
    free(row);
}

/* Runs W[R][C] x[T][C] in one batch, checks it against the truth and each
 * token alone against the batch (bitwise), on the pool and without. */
static void check(ht_type type, const uint8_t *w, size_t rb, int64_t C, int R, const float *x,
                  int T, tp_pool *pool) {
    kern_mat m;
    hearth_err err;
    assert_int_equal(kern_mat_init(&m, type, C, R, w, &err), 0);
    float *y = malloc(sizeof(float) * T * R), *y1 = malloc(sizeof(float) * R);
    double *ref = malloc(sizeof(double) * T * R), *mag = malloc(sizeof(double) * T * R);
    assert_true(y && y1 && ref && mag);
    expect(type, w, rb, C, R, x, T, ref, mag);
    kern_matmul(pool, &m, x, C, y, R, T);
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) {
            double got = y[t * R + r], want = ref[t * R + r];
            if (!(fabs(got - want) <= 1e-5 * mag[t * R + r] + 1e-30))
                fail_msg("%s [%d x %lld] T=%d: row %d tok %d got %.9g expected %.9g (mag %g)",
                         ht_type_get(type)->name, R, (long long)C, T, r, t, got, want,
                         mag[t * R + r]);
        }
    for (int t = 0; t < T; t++) {
        kern_matmul(t % 2 ? pool : NULL, &m, x + t * C, C, y1, R, 1);
        if (memcmp(y1, y + t * R, sizeof(float) * R))
            fail_msg("%s [%d x %lld]: token %d of %d alone differs from the batch",
                     ht_type_get(type)->name, R, (long long)C, t, T);
    }
    free(y);
    free(y1);
    free(ref);
    free(mag);
}

static uint8_t *quantized(ht_type type, int64_t C, int R, size_t *rb) {
    hearth_err err;
    assert_int_equal(ht_row_size(type, C, rb, &err), 0);
    uint8_t *w = malloc(*rb * R);
    float *row = malloc(sizeof(float) * C);
    assert_true(w && row);
    for (int r = 0; r < R; r++) {
        /* mostly small values, a few outliers, some all-positive rows */
        for (int64_t c = 0; c < C; c++) {
            double v = ktu_urand() * 2 - 1;
            if (ktu_urand() < 0.02) v *= 20;
            row[c] = (float)(r % 5 == 4 ? fabs(v) : v);
        }
        assert_int_equal(ht_quantize_row(type, row, w + (size_t)r * *rb, C), 0);
    }
    free(row);
    return w;
}

static float *activations(int64_t C, int T) {
    float *x = malloc(sizeof(float) * C * T);
    assert_non_null(x);
    for (int64_t i = 0; i < C * T; i++) {
        double v = ktu_urand() * 2 - 1;
        if (ktu_urand() < 0.01) v *= 50; /* outliers */
        x[i] = (float)v;
    }
    for (int64_t c = 0; c < 256 && T > 2; c++) x[2 * C + c] = 0; /* a zero block */
    return x;
}

/* Quantizer-written weights, every rows x tokens tail of a tile. */
static void test_kquant_tails(void **state) {
    (void)state;
    hearth_err err;
    tp_pool *pool = tp_new(3, &err);
    assert_non_null(pool);
    const int64_t C = 1024;
    for (int k = 0; k < NK; k++) {
        size_t rb;
        uint8_t *w = quantized(ktypes[k], C, 9, &rb);
        float *x = activations(C, 9);
        for (int R = 1; R <= 9; R += 2)
            for (int T = 1; T <= 9; T++) check(ktypes[k], w, rb, C, R, x, T, T % 3 ? NULL : pool);
        free(w);
        free(x);
    }
    tp_free(pool);
}

/* Random bytes (any scale, any quant) with moderate F16 scales, a larger
 * matrix over several tiles and a batch beyond one token chunk. */
static void test_kquant_random_bytes(void **state) {
    (void)state;
    hearth_err err;
    tp_pool *pool = tp_new(2, &err);
    assert_non_null(pool);
    const int64_t C = 2560;
    const int R = 150, T = 70;
    float *x = activations(C, T);
    for (int k = 0; k < NK; k++) {
        size_t rb;
        uint8_t *w = ktu_random_matrix(ktypes[k], C, R, &rb);
        assert_non_null(w);
        check(ktypes[k], w, rb, C, R, x, T, pool);
        free(w);
    }
    free(x);
    tp_free(pool);
}

/* Every quant and scale at its extreme and activations at +-max: the
 * largest integer sums the kernels can meet must come out exact. */
static void test_kquant_extremes(void **state) {
    (void)state;
    const int64_t C = 512;
    const int R = 5, T = 3;
    float *x = malloc(sizeof(float) * C * T);
    assert_non_null(x);
    for (int64_t c = 0; c < C; c++) {
        x[c] = 1.0f;                         /* all +127 */
        x[C + c] = -1.0f;                    /* all -127 */
        x[2 * C + c] = c % 2 ? 1.0f : -1.0f; /* alternating */
    }
    for (int k = 0; k < NK; k++) {
        size_t rb;
        hearth_err err;
        assert_int_equal(ht_row_size(ktypes[k], C, &rb, &err), 0);
        const size_t bs = (size_t)ht_type_get(ktypes[k])->type_size;
        uint8_t *w = malloc(rb * R);
        assert_non_null(w);
        for (int r = 0; r < R; r++)
            for (size_t b = 0; b < rb / bs; b++) {
                uint8_t *blk = w + (size_t)r * rb + b * bs;
                /* rows: all bits set, all clear, 0x80, 0x7f, and all set with
                 * Q6_K's scales at -128 (its largest products) */
                const uint8_t fill[5] = {0xff, 0x00, 0x80, 0x7f, 0xff};
                memset(blk, fill[r], bs);
                if (r == 4 && ktypes[k] == HT_Q6_K) memset(blk + 192, 0x80, 16);
                const uint16_t h = ht_f32_to_f16(0.01f);
                switch (ktypes[k]) {
                case HT_Q2_K:
                    memcpy(blk + 80, &h, 2);
                    memcpy(blk + 82, &h, 2);
                    break;
                case HT_Q3_K:
                    memcpy(blk + 108, &h, 2);
                    break;
                case HT_Q6_K:
                    memcpy(blk + 208, &h, 2);
                    break;
                default: /* Q4_K, Q5_K */
                    memcpy(blk, &h, 2);
                    memcpy(blk + 2, &h, 2);
                    break;
                }
            }
        check(ktypes[k], w, rb, C, R, x, T, NULL);
        free(w);
    }
    free(x);
}

int main(void) {
    ktu_seed(0x9e3779b97f4a7c15ull);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kquant_tails),
        cmocka_unit_test(test_kquant_random_bytes),
        cmocka_unit_test(test_kquant_extremes),
    };
    return cmocka_run_group_tests_name(kern_name(), tests, NULL, NULL);
}
