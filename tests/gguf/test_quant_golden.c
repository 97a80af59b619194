/* hearth's quantizers against the reference runtime's: quantizing the golden
 * F32 weights must reproduce the quantized golden files block for block (the
 * files were made without an importance matrix, i.e. with the reference
 * quantizers). A block may differ only where float rounding can legitimately
 * go either way (e.g. FMA contraction in the other build); such blocks must be
 * rare and no worse than the file's own block. */
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

typedef struct tally {
    long blocks[HT_TYPE_COUNT], same[HT_TYPE_COUNT];
} tally;

static double block_err(ht_type t, const void *blk, const float *w, int bs) {
    float y[256];
    ht_dequantize_row(t, blk, y, bs);
    double e = 0;
    for (int i = 0; i < bs; i++) e += ((double)y[i] - w[i]) * ((double)y[i] - w[i]);
    return e;
}

static void compare(const char *model, const char *variant, tally *ty) {
    char pq[512], pf[512];
    snprintf(pq, sizeof pq, "%s/golden/models/%s.%s.gguf", shared(), model, variant);
    snprintf(pf, sizeof pf, "%s/golden/models/%s.f32.gguf", shared(), model);
    FILE *probe = fopen(pq, "rb");
    if (!probe) return;
    fclose(probe);
    hearth_err err;
    gguf_file *q = gguf_open(pq, &err), *f = gguf_open(pf, &err);
    if (!q || !f) fail_msg("%s", err.msg);
    for (uint64_t i = 0; i < gguf_n_tensors(q); i++) {
        const gguf_tensor *tq = gguf_tensor_at(q, i);
        if (tq->type == HT_F32) continue;
        char *name = gguf_str_dup(tq->name);
        const gguf_tensor *tf = gguf_find_tensor(f, name);
        assert_non_null(tf);
        const ht_type_info *ti = ht_type_get(tq->type);
        int64_t n = gguf_tensor_n_elements(tq);
        uint8_t *mine = malloc(tq->nbytes);
        assert_non_null(mine);
        size_t row;
        assert_int_equal(ht_row_size(tq->type, tq->ne[0], &row, NULL), 0);
        for (int64_t r = 0; r < n / tq->ne[0]; r++)
            assert_int_equal(ht_quantize_row(tq->type, (const float *)tf->data + r * tq->ne[0],
                                             mine + r * row, tq->ne[0]),
                             0);
        const uint8_t *theirs = tq->data;
        for (int64_t b = 0; b < n / ti->block_size; b++) {
            const uint8_t *a = mine + b * ti->type_size, *c = theirs + b * ti->type_size;
            ty->blocks[tq->type]++;
            if (memcmp(a, c, (size_t)ti->type_size) == 0) {
                ty->same[tq->type]++;
                continue;
            }
            const float *w = (const float *)tf->data + b * ti->block_size;
            double em = block_err(tq->type, a, w, ti->block_size);
            double et = block_err(tq->type, c, w, ti->block_size);
            if (em > et * 1.5 + 1e-12)
                fail_msg("%s %s block %lld: differs and is worse (err %g vs %g)", pq, name,
                         (long long)b, em, et);
        }
        free(mine);
        free(name);
    }
    gguf_close(q);
    gguf_close(f);
}

static void test_quantizers_match_reference_files(void **state) {
    (void)state;
    const char *models[] = {"llama-spm",       "llama3-bpe",  "qwen2-chatml",
                            "qwen2-r1distill", "deepseek-v3", "deepseek-v2-lite"};
    const char *variants[] = {"f16", "q8_0", "q6_k", "q4_k_m", "q4_0"};
    tally ty;
    memset(&ty, 0, sizeof ty);
    for (size_t m = 0; m < sizeof models / sizeof *models; m++)
        for (size_t v = 0; v < sizeof variants / sizeof *variants; v++)
            compare(models[m], variants[v], &ty);
    for (int t = 0; t < HT_TYPE_COUNT; t++) {
        if (!ty.blocks[t]) continue;
        double frac = (double)ty.same[t] / (double)ty.blocks[t];
        printf("  %-5s %8ld blocks, %8ld identical (%.4f%%)\n", ht_type_get(t)->name, ty.blocks[t],
               ty.same[t], 100 * frac);
        if (frac < 0.999)
            fail_msg("%s: only %.4f%% of blocks identical to the reference files",
                     ht_type_get(t)->name, 100 * frac);
    }
    ht_type seen[] = {HT_F16, HT_Q8_0, HT_Q6_K, HT_Q4_K, HT_Q4_0, HT_Q5_0, HT_Q5_1};
    for (size_t i = 0; i < sizeof seen / sizeof *seen; i++) assert_true(ty.blocks[seen[i]] > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantizers_match_reference_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
