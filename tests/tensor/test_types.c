/* Type table, row sizes and the F16 / BF16 conversions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "tensor/types.h"

static float bits_f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_type_table(void **state) {
    (void)state;
    struct {
        ht_type t;
        const char *name;
        int bs, ts;
    } want[] = {
        {HT_F32, "f32", 1, 4},           {HT_F16, "f16", 1, 2},       {HT_Q4_0, "q4_0", 32, 18},
        {HT_Q4_1, "q4_1", 32, 20},       {HT_Q5_0, "q5_0", 32, 22},   {HT_Q5_1, "q5_1", 32, 24},
        {HT_Q8_0, "q8_0", 32, 34},       {HT_Q8_1, "q8_1", 32, 36},   {HT_Q2_K, "q2_K", 256, 84},
        {HT_Q3_K, "q3_K", 256, 110},     {HT_Q4_K, "q4_K", 256, 144}, {HT_Q5_K, "q5_K", 256, 176},
        {HT_Q6_K, "q6_K", 256, 210},     {HT_Q8_K, "q8_K", 256, 292}, {HT_IQ4_NL, "iq4_nl", 32, 18},
        {HT_IQ4_XS, "iq4_xs", 256, 136}, {HT_I8, "i8", 1, 1},         {HT_I16, "i16", 1, 2},
        {HT_I32, "i32", 1, 4},           {HT_I64, "i64", 1, 8},       {HT_F64, "f64", 1, 8},
        {HT_BF16, "bf16", 1, 2},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const ht_type_info *ti = ht_type_get(want[i].t);
        assert_non_null(ti);
        assert_string_equal(ti->name, want[i].name);
        assert_int_equal(ti->block_size, want[i].bs);
        assert_int_equal(ti->type_size, want[i].ts);
        assert_true(ti->can_compute);
    }
    /* Ids ggml retired (4, 5: q4_2, q4_3) or never assigned, and out of range. */
    assert_null(ht_type_get(4));
    assert_null(ht_type_get(5));
    assert_null(ht_type_get(HT_TYPE_COUNT));
    assert_null(ht_type_get(UINT32_MAX));
    /* Known but not computable: still sized, so files holding them open. */
    const ht_type_info *iq2 = ht_type_get(16);
    assert_non_null(iq2);
    assert_false(iq2->can_compute);
    assert_int_equal(iq2->type_size, 66);
}

static void test_row_size(void **state) {
    (void)state;
    size_t n;
    hearth_err err;
    assert_int_equal(ht_row_size(HT_Q4_K, 4096, &n, &err), 0);
    assert_int_equal(n, 16 * 144);
    assert_int_equal(ht_row_size(HT_F32, 0, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(ht_row_size(HT_Q8_0, 48, &n, &err), -1);
    assert_non_null(strstr(err.msg, "multiple of 32"));
    assert_non_null(strstr(err.msg, "48"));
    assert_int_equal(ht_row_size(HT_F32, -1, &n, &err), -1);
    assert_int_equal(ht_row_size(HT_F64, INT64_MAX, &n, &err), -1);
    assert_non_null(strstr(err.msg, "overflow"));
    assert_int_equal(ht_row_size(99, 32, &n, &err), -1);
    assert_non_null(strstr(err.msg, "unknown tensor type id 99"));
}

/* Round trip through F16 is the identity for every half (NaNs stay NaN). */
static void test_f16_all_values(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ht_f16_to_f32((uint16_t)h);
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
            assert_true(isnan(f));
            assert_true(isnan(ht_f16_to_f32(ht_f32_to_f16(f))));
            continue;
        }
        assert_int_equal(ht_f32_to_f16(f), h);
        /* The value is what the bits say: sign * 2^(e-15) * 1.m, or subnormal. */
        int e = (h >> 10) & 31, m = h & 1023;
        double v = e == 0 ? ldexp(m, -24) : e == 31 ? INFINITY : ldexp(1024 + m, e - 25);
        if (h & 0x8000) v = -v;
        assert_true((double)f == v);
    }
}

/* F32 -> F16 picks the nearest half, ties to even. */
static void test_f16_rounding(void **state) {
    (void)state;
    assert_int_equal(ht_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(ht_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(ht_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(ht_f32_to_f16(65519.99f), 0x7bff);
    assert_int_equal(ht_f32_to_f16(65520.0f), 0x7c00); /* tie -> even, which is inf */
    assert_int_equal(ht_f32_to_f16(1e10f), 0x7c00);
    assert_int_equal(ht_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(ht_f32_to_f16(ldexpf(1, -24)), 0x0001);
    assert_int_equal(ht_f32_to_f16(ldexpf(1, -25)), 0x0000); /* tie -> even 0 */
    assert_int_equal(ht_f32_to_f16(ldexpf(3, -25)), 0x0002); /* tie 1.5 -> 2 */
    assert_int_equal(ht_f32_to_f16(ldexpf(1.5f, -24)), 0x0002);
    assert_int_equal(ht_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00); /* tie -> even */
    assert_int_equal(ht_f32_to_f16(1.0f + ldexpf(3, -11)), 0x3c02); /* tie -> even */
    assert_int_equal(ht_f32_to_f16(ldexpf(1023, -24) + ldexpf(1, -25)),
                     0x0400); /* carries to normal */
    assert_true((ht_f32_to_f16(NAN) & 0x7fff) > 0x7c00);
    /* Sweep: the result is never farther than half a unit from the input. */
    for (uint32_t u = 0x33000000; u < 0x477ff000; u += 0x1235) { /* up to 65520 (-> inf) */
        float f = bits_f(u);
        uint16_t h = ht_f32_to_f16(f);
        double got = ht_f16_to_f32(h), up = ht_f16_to_f32((uint16_t)(h + 1));
        double down = h ? ht_f16_to_f32((uint16_t)(h - 1)) : 0;
        double e = fabs(got - f);
        assert_true(e <= fabs(up - f) && e <= fabs(down - f) + 1e-30);
    }
}

static void test_bf16(void **state) {
    (void)state;
    assert_int_equal(ht_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(ht_f32_to_bf16(bits_f(0x3f808000)), 0x3f80); /* tie -> even */
    assert_int_equal(ht_f32_to_bf16(bits_f(0x3f818000)), 0x3f82); /* tie -> even */
    assert_int_equal(ht_f32_to_bf16(bits_f(0x3f808001)), 0x3f81);
    assert_int_equal(ht_f32_to_bf16(-2.5f), 0xc020);
    assert_true(ht_bf16_to_f32(0xc020) == -2.5f);
    assert_true(isnan(ht_bf16_to_f32(ht_f32_to_bf16(NAN))));
    assert_true(isinf(ht_bf16_to_f32(ht_f32_to_bf16(INFINITY))));
    for (uint32_t h = 0; h < 65536; h++) {
        float f = ht_bf16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        assert_int_equal(ht_f32_to_bf16(f), h);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_table),     cmocka_unit_test(test_row_size),
        cmocka_unit_test(test_f16_all_values), cmocka_unit_test(test_f16_rounding),
        cmocka_unit_test(test_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
