/* The quantized golden models were quantized from the same weights as their
 * .f32 siblings: dequantizing every tensor must land within each format's
 * error bound of the F32 tensor. This checks the block decoders against files
 * written by another runtime's quantizer.
 *
 * Bounds, per tensor, as rms(error) / rms(weights) ("rel"):
 *  q8_0 : step amax/127 per 32  -> rel about 0.5%;    bound 1%
 *  q6_K : 6-bit, 16-elem scales -> about 1-2%;        bound 4%
 *  q5_*: 5-bit per 32           -> about 3%;          bound 6%
 *  q4_*: 4-bit per 32 / 256     -> about 6-8%;        bound 12%
 *  f16  : 11-bit mantissa       -> rel < 2^-11
 * plus a per-element bound for the simple formats: |err| <= d/2 (q8_0, with
 * the F16 rounding of d) and <= |d| (q4_0, where the clamp at +7 costs up to a
 * full step). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

static const char *shared(void) {
    const char *s = getenv("HEARTH_SHARED");
    return s ? s : "../shared";
}

static double rel_bound(ht_type t) {
    switch (t) {
    case HT_F32:
        return 0;
    case HT_F16:
        return 1.0 / 2048;
    case HT_Q8_0:
        return 0.01;
    case HT_Q6_K:
        return 0.04;
    case HT_Q5_0:
    case HT_Q5_1:
    case HT_Q5_K:
        return 0.06;
    case HT_Q4_0:
    case HT_Q4_1:
    case HT_Q4_K:
        return 0.12;
    default:
        return -1;
    }
}

typedef struct stats {
    double worst_rel[HT_TYPE_COUNT];
    int n_tensors[HT_TYPE_COUNT];
} stats;

static void compare_file(const char *model, const char *variant, stats *st) {
    char pq[512], pf[512];
    snprintf(pq, sizeof pq, "%s/golden/models/%s.%s.gguf", shared(), model, variant);
    snprintf(pf, sizeof pf, "%s/golden/models/%s.f32.gguf", shared(), model);
    FILE *probe = fopen(pq, "rb");
    if (!probe) return; /* not every model has every variant */
    fclose(probe);
    hearth_err err;
    gguf_file *q = gguf_open(pq, &err);
    if (!q) fail_msg("%s", err.msg);
    gguf_file *f = gguf_open(pf, &err);
    if (!f) fail_msg("%s", err.msg);
    assert_int_equal(gguf_n_tensors(q), gguf_n_tensors(f));
    for (uint64_t i = 0; i < gguf_n_tensors(q); i++) {
        const gguf_tensor *tq = gguf_tensor_at(q, i);
        char *name = gguf_str_dup(tq->name);
        const gguf_tensor *tf = gguf_find_tensor(f, name);
        if (!tf) fail_msg("%s: tensor %s missing from the f32 file", pq, name);
        assert_int_equal(tf->type, HT_F32);
        for (int d = 0; d < 4; d++) assert_int_equal(tq->ne[d], tf->ne[d]);
        int64_t n = gguf_tensor_n_elements(tq), ne0 = tq->ne[0];
        float *y = malloc((size_t)n * sizeof *y);
        assert_non_null(y);
        size_t row;
        assert_int_equal(ht_row_size(tq->type, ne0, &row, NULL), 0);
        for (int64_t r = 0; r < n / ne0; r++)
            ht_dequantize_row(tq->type, (const uint8_t *)tq->data + r * row, y + r * ne0, ne0);
        const float *w = tf->data;
        double se = 0, sw = 0;
        int bs = ht_type_get(tq->type)->block_size;
        for (int64_t b = 0; b < n; b += bs) {
            double blk_d = 0; /* the block's scale, recomputed from the f16 in the file */
            if (tq->type == HT_Q8_0 || tq->type == HT_Q4_0) {
                uint16_t h;
                memcpy(&h, (const uint8_t *)tq->data + (b / bs) * ht_type_get(tq->type)->type_size,
                       2);
                blk_d = fabs(ht_f16_to_f32(h));
            }
            for (int64_t j = b; j < b + bs; j++) {
                double e = (double)y[j] - w[j];
                se += e * e;
                sw += (double)w[j] * w[j];
                if (!isfinite(y[j]))
                    fail_msg("%s %s: non-finite value at %lld", pq, name, (long long)j);
                if (tq->type == HT_Q8_0 && fabs(e) > blk_d * 0.5625 + 1e-7)
                    fail_msg("%s %s[%lld]: q8_0 error %g > d/2 (d %g)", pq, name, (long long)j, e,
                             blk_d);
                if (tq->type == HT_Q4_0 && fabs(e) > blk_d * 1.07 + 1e-7)
                    fail_msg("%s %s[%lld]: q4_0 error %g > d (d %g)", pq, name, (long long)j, e,
                             blk_d);
                if (tq->type == HT_F32 && e != 0)
                    fail_msg("%s %s[%lld]: f32 tensor differs", pq, name, (long long)j);
            }
        }
        double rel = sw > 0 ? sqrt(se / sw) : sqrt(se);
        double bound = rel_bound(tq->type);
        if (bound < 0) fail_msg("%s %s: unexpected type %s", pq, name, ht_type_get(tq->type)->name);
        if (rel > bound)
            fail_msg("%s %s (%s): relative rms error %.4g above bound %.4g", pq, name,
                     ht_type_get(tq->type)->name, rel, bound);
        if (rel > st->worst_rel[tq->type]) st->worst_rel[tq->type] = rel;
        st->n_tensors[tq->type]++;
        free(y);
        free(name);
    }
    gguf_close(q);
    gguf_close(f);
}

static void test_quantized_match_f32(void **state) {
    (void)state;
    const char *models[] = {"llama-spm",       "llama3-bpe",  "qwen2-chatml",
                            "qwen2-r1distill", "deepseek-v3", "deepseek-v2-lite"};
    const char *variants[] = {"f16", "q8_0", "q6_k", "q4_k_m", "q4_0"};
    stats st = {{0}, {0}};
    for (size_t m = 0; m < sizeof models / sizeof *models; m++)
        for (size_t v = 0; v < sizeof variants / sizeof *variants; v++)
            compare_file(models[m], variants[v], &st);
    int quantized = 0;
    for (int t = 0; t < HT_TYPE_COUNT; t++) {
        if (!st.n_tensors[t]) continue;
        printf("  %-6s %4d tensors, worst relative rms error %.5f\n", ht_type_get(t)->name,
               st.n_tensors[t], st.worst_rel[t]);
        if (t != HT_F32) quantized += st.n_tensors[t];
    }
    /* The formats the golden files use were all seen. */
    ht_type seen[] = {HT_F16, HT_Q8_0, HT_Q6_K, HT_Q4_K, HT_Q4_0, HT_Q5_0, HT_Q5_1};
    for (size_t i = 0; i < sizeof seen / sizeof *seen; i++) assert_true(st.n_tensors[seen[i]] > 0);
    assert_true(quantized > 500);
    /* Sanity of the bound itself: a decoder that returned zeros would score rel 1. */
    assert_true(st.worst_rel[HT_Q8_0] > 0 && st.worst_rel[HT_Q8_0] < 0.01);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantized_match_f32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
