/* The AVX2 matmul tiles' one promise beyond accuracy, over the shapes that
 * exercise every path of avx2_q.c: a (row, token) value is bitwise the same
 * alone (decode) and in a batch of any size (prefill: the register-tiled
 * micro-kernels and their row and token remainders, several unpacked row
 * sub-tiles, several token chunks), on one thread or a pool. Accuracy against
 * the reference is test_kernels' job; here the batch values are also checked
 * against a double-precision dot of the dequantized row with the rounded
 * activations, so that "identical" cannot mean "identically wrong". */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/kernels.h"
#include "kernels/ref.h"
#include "kern_test_util.h"

/* Token t of a batch of T equals token t alone, with pool p (NULL: caller),
 * and every value is close to the double-precision dot. */
static void check_type(ht_type type, tp_pool *pool, int64_t C, int64_t R, int T) {
    hearth_err err;
    size_t rb;
    void *wd = ktu_random_matrix(type, C, R, &rb);
    assert_non_null(wd);
    kern_mat w;
    assert_int_equal(kern_mat_init(&w, type, C, R, wd, &err), 0);
    float *x = malloc(sizeof(float) * (size_t)(C * T));
    float *yb = malloc(sizeof(float) * (size_t)(R * T)), *y1 = malloc(sizeof(float) * (size_t)R);
    float *row = malloc(sizeof(float) * (size_t)C);
    assert_true(x && yb && y1 && row);
    for (int64_t i = 0; i < C * T; i++) x[i] = ktu_frand();
    kern_matmul(pool, &w, x, (size_t)C, yb, (size_t)R, T);
    /* the one exception: with AMX, BF16 products of batches of 16 tokens or
     * more are summed in another order than alone (avx2_q.c): there the two
     * agree to float rounding of the sum of |products| */
    const bool loose = kern_act_bf16(type) && kern_amx() && T >= 16 && C % 32 == 0;
    for (int t = 0; t < T; t++) {
        kern_matmul(pool, &w, x + (size_t)t * C, (size_t)C, y1, (size_t)R, 1);
        for (int64_t r = 0; r < R && loose; r++) {
            ht_dequantize_row(type, (const uint8_t *)wd + (size_t)r * rb, row, C);
            double mag = 0;
            for (int64_t c = 0; c < C; c++)
                mag += fabs((double)ktu_bf16(row[c]) * ktu_bf16(x[(size_t)t * C + c]));
            if (!(fabs((double)y1[r] - yb[(size_t)t * R + r]) <= 1e-5 * mag))
                fail_msg("%s %lld x %lld, batch of %d (AMX): row %lld token %d: alone %.9g, in "
                         "the batch %.9g",
                         ht_type_get(type)->name, (long long)R, (long long)C, T, (long long)r, t,
                         y1[r], yb[(size_t)t * R + r]);
        }
        for (int64_t r = 0; r < R && !loose; r++)
            if (memcmp(&y1[r], &yb[(size_t)t * R + r], sizeof(float)))
                fail_msg("%s %lld x %lld, batch of %d%s: row %lld token %d: alone %.9g, in the "
                         "batch %.9g",
                         ht_type_get(type)->name, (long long)R, (long long)C, T,
                         pool ? " (pool)" : "", (long long)r, t, y1[r], yb[(size_t)t * R + r]);
    }
    /* close to the exact dot with the activations as the variant rounds them */
    const int64_t ab = kern_act_block(type);
    const bool bf = kern_act_bf16(type); /* or both rounded to BF16 */
    for (int64_t r = 0; r < R; r += 7) {
        ht_dequantize_row(type, (const uint8_t *)wd + (size_t)r * rb, row, C);
        for (int64_t c = 0; bf && c < C; c++) row[c] = ktu_bf16(row[c]);
        for (int t = 0; t < T; t += 5) {
            const float *xt = x + (size_t)t * C;
            double ref = 0, mag = 0;
            for (int64_t c0 = 0; c0<C; c0 += ab> 0 ? ab : C) {
                int64_t ce = ab > 0 ? c0 + ab : C;
                float amax = 0;
                for (int64_t c = c0; c < ce; c++) amax = fmaxf(amax, fabsf(xt[c]));
                for (int64_t c = c0; c < ce; c++) {
                    double xv = xt[c];
                    if (ab > 0) xv = (double)(amax / 127.0f) * nearbyintf(xt[c] * (127.0f / amax));
                    if (bf) xv = ktu_bf16(xt[c]);
                    ref += (double)row[c] * xv;
                    mag += fabs((double)row[c] * xv);
                }
            }
            double got = yb[(size_t)t * R + r];
            if (!(fabs(got - ref) <= 1e-5 * mag))
                fail_msg("%s row %lld token %d of %d: %.9g, expected %.9g", ht_type_get(type)->name,
                         (long long)r, t, T, got, ref);
        }
    }
    free(wd);
    free(x);
    free(yb);
    free(y1);
    free(row);
}

static const ht_type types[] = {HT_F32,  HT_F16,  HT_BF16, HT_Q8_0,  HT_Q4_0,
                                HT_Q5_0, HT_Q4_1, HT_Q5_1, HT_IQ4_NL};

/* Every batch size from 1 to 13 (the micro-kernels' token remainders), and
 * batches beyond one token chunk; row counts that leave remainders of every
 * row group and more than one unpacked sub-tile. */
static void test_batch_sizes(void **state) {
    (void)state;
    hearth_err err;
    tp_pool *pool = tp_new(3, &err);
    assert_non_null(pool);
    for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
        for (int T = 1; T <= 13; T++) check_type(types[k], NULL, 256, 71, T);
        check_type(types[k], NULL, 256, 39, 64);
        check_type(types[k], NULL, 512, 37, 67);
        check_type(types[k], pool, 256, 150, 9);
        check_type(types[k], pool, 256, 23, 70);
    }
    tp_free(pool);
}

/* Long rows (several column chunks of the float batch path, long decode
 * streams with prefetch into the next row group) and float rows with a tail. */
static void test_shapes(void **state) {
    (void)state;
    for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
        check_type(types[k], NULL, 2560, 21, 5);
        check_type(types[k], NULL, 1088, 66, 1);
    }
    for (int T = 1; T <= 7; T += 3) {
        check_type(HT_F32, NULL, 1043, 13, T);
        check_type(HT_F16, NULL, 1043, 13, T);
        check_type(HT_F16, NULL, 5, 9, T);
        check_type(HT_BF16, NULL, 1043, 13, T);
    }
}

/* The avx512 variant's quantized tiles (avx2_q.c and avx2_kq.c built with
 * VNNI, the signed kinds in unsigned form, 16-row batch groups) give bitwise
 * the avx2 variant's values: the same integers, the same float steps. Every
 * quantized type (the K-quants too), decode and batch shapes, one thread and
 * a pool; the weights are random bytes (Q8_0's -128 included). Run for the
 * real variant where the CPU has AVX-512 VNNI and for avx512emu, its code
 * with AVX-512 emulated on AVX2, everywhere. */
static void avx512_equals_avx2(const char *v512) {
    const char *start = kern_name();
    hearth_err err;
    tp_pool *pool = tp_new(3, &err);
    assert_non_null(pool);
    static const struct {
        int64_t C, R;
        int T;
    } shapes[] = {{256, 71, 1},  {256, 71, 2},  {256, 71, 5},   {256, 71, 8},
                  {256, 71, 9},  {512, 37, 17}, {256, 39, 64},  {256, 23, 70},
                  {2560, 21, 5}, {1088, 66, 1}, {1024, 150, 3}, {768, 17, 33}};
    /* not the float types: avx512 sums them in 16 lanes (check_type holds
     * both variants to a double-precision dot) */
    static const ht_type all[] = {HT_Q8_0, HT_Q4_0, HT_Q5_0, HT_Q4_1, HT_Q5_1, HT_IQ4_NL,
                                  HT_Q2_K, HT_Q3_K, HT_Q4_K, HT_Q5_K, HT_Q6_K};
    for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++)
        for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
            const ht_type type = all[k];
            const int64_t C = shapes[s].C, R = shapes[s].R;
            const int T = shapes[s].T;
            if (C % ht_type_get(type)->block_size) continue;
            size_t rb;
            void *wd = ktu_random_matrix(type, C, R, &rb);
            float *x = malloc(sizeof(float) * (size_t)(C * T));
            float *y2 = malloc(sizeof(float) * (size_t)(R * T));
            float *y5 = malloc(sizeof(float) * (size_t)(R * T));
            assert_true(wd && x && y2 && y5);
            for (int64_t i = 0; i < C * T; i++) x[i] = ktu_frand();
            kern_mat w;
            assert_int_equal(kern_mat_init(&w, type, C, R, wd, &err), 0);
            tp_pool *p = s % 2 ? pool : NULL;
            assert_int_equal(kern_select("avx2", &err), 0);
            kern_matmul(p, &w, x, (size_t)C, y2, (size_t)R, T);
            assert_int_equal(kern_select(v512, &err), 0);
            kern_matmul(p, &w, x, (size_t)C, y5, (size_t)R, T);
            for (int64_t i = 0; i < R * T; i++)
                if (memcmp(&y2[i], &y5[i], sizeof(float)))
                    fail_msg("%s %lld x %lld, %d tokens: row %lld token %lld: avx2 %.9g, "
                             "%s %.9g",
                             ht_type_get(type)->name, (long long)R, (long long)C, T,
                             (long long)(i % R), (long long)(i / R), y2[i], v512, y5[i]);
            free(wd);
            free(x);
            free(y2);
            free(y5);
        }
    tp_free(pool);
    assert_int_equal(kern_select(start, &err), 0);
}

static void test_avx512_equals_avx2(void **state) {
    (void)state;
    if (!kern_avx2_supported()) {
        printf("no AVX2 on this CPU: nothing to compare\n");
        return;
    }
    avx512_equals_avx2("avx512emu");
    if (kern_avx512_supported())
        avx512_equals_avx2("avx512");
    else
        printf("no AVX-512 VNNI on this CPU: only the emulated avx512 compared with avx2\n");
}

static const char *group_variant;

static int select_group_variant(void **state) {
    (void)state;
    return kern_select(group_variant, NULL);
}

int main(void) {
    ktu_seed(0x9e3779b97f4a7c15ull);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_sizes),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_avx512_equals_avx2),
    };
    /* each x86 variant this CPU runs (avx512emu: the avx512 code, emulated);
     * else whatever is active (ref) */
    const char *names[] = {"avx2", "avx512", "avx512emu"};
    const bool have[] = {kern_avx2_supported(), kern_avx512_supported(),
                         kern_avx512emu_supported && kern_avx512emu_supported()};
    int fails = 0, groups = 0;
    for (int v = 0; v < 3; v++) {
        if (!have[v]) continue;
        group_variant = names[v];
        fails += cmocka_run_group_tests_name(names[v], tests, select_group_variant, NULL);
        groups++;
    }
    if (!groups) fails += cmocka_run_group_tests_name(kern_name(), tests, NULL, NULL);
    return fails;
}
