/* Weights repacked at load (kern_repack, KERN_LAYOUT_R8: Q4_K, Q6_K): every op gives
 * bitwise the values of the matrix as the file stores it, in the variant
 * that repacked it (its own R8 tiles: one token, batches, slices of whole
 * groups, several matrices in one call, a pool) and in one that does not
 * run the layout (ref after kern_select: rows restored on the fly); and
 * the layout's byte moves are lossless. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kern_test_util.h"
#include "kernels/kernels.h"
#include "kernels/ref.h"
#include "kernels/repack.h"

/* kern_r8_pack then kern_r8_unpack of any row range gives the rows back. */
static void test_pack_lossless(void **state) {
    (void)state;
    const ht_type types[] = {HT_Q4_K, HT_Q6_K};
    for (int k = 0; k < 2; k++) {
        size_t rb;
        uint8_t *rows = ktu_random_matrix(types[k], 768, 8, &rb);
        assert_non_null(rows);
        assert_true(kern_r8_fits(types[k], 768, 8, rb));
        assert_int_equal(kern_r8_sb(types[k]), rb / 3 * 8);
        uint8_t *grp = malloc(8 * rb), *back = malloc(8 * rb);
        assert_true(grp && back);
        kern_r8_pack(types[k], rows, rb, grp);
        assert_memory_not_equal(grp, rows, 8 * rb); /* it did move bytes */
        for (int r0 = 0; r0 < 8; r0++)
            for (int n = 1; r0 + n <= 8; n++) {
                memset(back, 0xa5, 8 * rb);
                kern_r8_unpack(types[k], grp, rb, r0, n, back);
                assert_memory_equal(back, rows + (size_t)r0 * rb, (size_t)n * rb);
            }
        /* only whole 8-row groups of 256-column blocks */
        assert_false(kern_r8_fits(types[k], 768, 12, rb));
        assert_false(kern_r8_fits(types[k], 768, 8, rb + 1));
        free(rows);
        free(grp);
        free(back);
    }
    assert_false(kern_r8_fits(HT_Q8_0, 768, 8, 816)); /* and only these types */
    assert_int_equal(kern_r8_sb(HT_Q8_0), 0);
}

/* y = W x for both matrices, every token count, on the caller and a pool:
 * bitwise equal. */
static void check_same(const kern_mat *a, const kern_mat *b, tp_pool *pool, const float *x,
                       int64_t C) {
    const int Ts[] = {1, 2, 3, 5, 8, 64, 67};
    const size_t R = (size_t)a->n_rows;
    float *ya = malloc(sizeof(float) * R * 67), *yb = malloc(sizeof(float) * R * 67);
    assert_true(ya && yb);
    for (size_t k = 0; k < sizeof(Ts) / sizeof(Ts[0]); k++)
        for (int p = 0; p < 2; p++) {
            tp_pool *pl = p ? pool : NULL;
            kern_matmul(pl, a, x, (size_t)C, ya, R, Ts[k]);
            kern_matmul(pl, b, x, (size_t)C, yb, R, Ts[k]);
            for (size_t i = 0; i < R * (size_t)Ts[k]; i++)
                if (memcmp(&ya[i], &yb[i], sizeof(float)))
                    fail_msg("%s, %d tokens, pool %d: value %zu (row %zu) %.9g != %.9g",
                             kern_name(), Ts[k], p, i, i % R, (double)ya[i], (double)yb[i]);
        }
    free(ya);
    free(yb);
}

static void check_variant(const char *name, ht_type type, tp_pool *pool) {
    hearth_err err;
    assert_int_equal(kern_select(name, &err), 0);
    const int64_t C = 768, R = 72; /* 3 superblocks, 9 groups */
    size_t rb;
    uint8_t *orig = ktu_random_matrix(type, C, R, &rb);
    assert_non_null(orig);
    uint8_t *copy = malloc((size_t)R * rb);
    assert_non_null(copy);
    memcpy(copy, orig, (size_t)R * rb);
    kern_mat w, p;
    assert_int_equal(kern_mat_init(&w, type, C, R, orig, &err), 0);
    assert_int_equal(kern_mat_init(&p, type, C, R, copy, &err), 0);
    /* not with another buffer than the matrix's own */
    assert_false(kern_repack(pool, &p, orig));
    assert_true(kern_repack(pool, &p, copy));
    assert_int_equal(p.layout, KERN_LAYOUT_R8);
    assert_int_equal(kern_mat_row_align(&p), 8);
    assert_int_equal(kern_mat_row_align(&w), 1);
    assert_memory_not_equal(copy, orig, (size_t)R * rb);
    assert_false(kern_repack(pool, &p, copy)); /* once only */

    float *x = malloc(sizeof(float) * (size_t)C * 67);
    assert_non_null(x);
    for (int64_t i = 0; i < C * 67; i++) x[i] = ktu_frand();
    check_same(&w, &p, pool, x, C);
    /* views of whole groups (an expert of a stacked tensor) */
    const kern_mat ws = kern_mat_rows(&w, 16, 24), ps = kern_mat_rows(&p, 16, 24);
    check_same(&ws, &ps, pool, x, C);

    /* in one call with other matrices (q/k/v, gate/up): one of each layout
     * and a Q8_0 one */
    size_t rb8;
    void *q8 = ktu_random_matrix(HT_Q8_0, C, 40, &rb8);
    assert_non_null(q8);
    kern_mat w8;
    assert_int_equal(kern_mat_init(&w8, HT_Q8_0, C, 40, q8, &err), 0);
    enum { T = 9 };
    float *y1[3], *yn[3];
    const kern_mat *ms[3] = {&p, &w8, &w};
    kern_mm mm[3];
    for (int i = 0; i < 3; i++) {
        const size_t n = (size_t)ms[i]->n_rows * T;
        y1[i] = malloc(sizeof(float) * n);
        yn[i] = malloc(sizeof(float) * n);
        assert_true(y1[i] && yn[i]);
        kern_matmul(pool, ms[i], x, (size_t)C, y1[i], (size_t)ms[i]->n_rows, T);
        mm[i] = (kern_mm){ms[i], yn[i], (size_t)ms[i]->n_rows};
    }
    kern_matmul_n(pool, mm, 3, x, (size_t)C, T);
    for (int i = 0; i < 3; i++) {
        assert_memory_equal(y1[i], yn[i], sizeof(float) * (size_t)ms[i]->n_rows * T);
        free(y1[i]);
        free(yn[i]);
    }

    /* rows as F32 */
    float *ra = malloc(sizeof(float) * (size_t)C), *rp = malloc(sizeof(float) * (size_t)C);
    assert_true(ra && rp);
    for (int64_t r = 0; r < R; r++) {
        kern_get_row(&w, r, ra);
        kern_get_row(&p, r, rp);
        assert_memory_equal(ra, rp, sizeof(float) * (size_t)C);
    }

    /* the variant switched after the repack (ref does not run R8): rows
     * restored on the fly, ref's values */
    assert_int_equal(kern_select("ref", &err), 0);
    check_same(&w, &p, pool, x, C);
    kern_get_row(&w, 37, ra);
    kern_get_row(&p, 37, rp);
    assert_memory_equal(ra, rp, sizeof(float) * (size_t)C);
    /* and ref does not repack */
    kern_mat q = w;
    assert_false(kern_repack(pool, &q, orig));
    assert_int_equal(q.layout, KERN_LAYOUT_ROWS);

    free(ra);
    free(rp);
    free(q8);
    free(x);
    free(orig);
    free(copy);
}

static void test_variants(void **state) {
    (void)state;
    hearth_err err;
    tp_pool *pool = tp_new(3, &err);
    assert_non_null(pool);
    const char *before = kern_name();
    const char *names[] = {"avx2", "avx512", "avx512emu"};
    const bool have[] = {kern_avx2_supported(), kern_avx512_supported(),
                         kern_avx512emu_supported && kern_avx512emu_supported()};
    int ran = 0;
    for (int v = 0; v < 3; v++)
        if (have[v]) {
            check_variant(names[v], HT_Q4_K, pool);
            check_variant(names[v], HT_Q6_K, pool);
            ran++;
        }
    if (!ran) printf("no variant here runs KERN_LAYOUT_R8: only the byte moves were tested\n");
    assert_int_equal(kern_select(before, &err), 0);
    tp_free(pool);
}

/* What is not repacked stays as it was. */
static void test_refusals(void **state) {
    (void)state;
    hearth_err err;
    const char *before = kern_name();
    if (kern_avx2_supported()) assert_int_equal(kern_select("avx2", &err), 0);
    size_t rb;
    uint8_t *d = ktu_random_matrix(HT_Q4_K, 512, 12, &rb);
    assert_non_null(d);
    kern_mat w;
    assert_int_equal(kern_mat_init(&w, HT_Q4_K, 512, 12, d, &err), 0);
    assert_false(kern_repack(NULL, &w, d)); /* 12 rows: not whole groups */
    w.n_rows = 8;
    setenv("HEARTH_REPACK", "0", 1);
    assert_false(kern_repack(NULL, &w, d)); /* turned off */
    unsetenv("HEARTH_REPACK");
    assert_int_equal(w.layout, KERN_LAYOUT_ROWS);
    assert_int_equal(kern_repack(NULL, &w, d), kern_avx2_supported());
    void *q5 = ktu_random_matrix(HT_Q5_K, 512, 8, &rb);
    assert_non_null(q5);
    kern_mat w5;
    assert_int_equal(kern_mat_init(&w5, HT_Q5_K, 512, 8, q5, &err), 0);
    assert_false(kern_repack(NULL, &w5, q5)); /* no R8 tiles for Q5_K */
    free(q5);
    free(d);
    assert_int_equal(kern_select(before, &err), 0);
}

int main(void) {
    ktu_seed(0x2545f4914f6cdd1dull);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_lossless),
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
