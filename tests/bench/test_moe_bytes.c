/* Bytes per generated token, measured: the kernels' byte counter over one
 * decode token must agree with bench_model_bytes' arithmetic (non-expert
 * weights, one embedding row, the chosen experts, the KV cache attended)
 * within 10%, for the tiny shapes in the mixes hearth bench writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_shape.h"
#include "bench/bench_sol.h"
#include "kernels/kernels.h"
#include "model/deepseek2.h"
#include "model/model.h"

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/hearth-moe-bytes-XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    return rmdir(tmpdir);
}

enum { N_PROMPT = 5 };

/* Writes the shape, prefills N_PROMPT tokens, then counts one decode token
 * at position N_PROMPT (it attends N_PROMPT + 1 cache positions). */
static void check(const char *name, bench_ftype ft) {
    const bench_shape *s = bench_shape_find(name);
    assert_non_null(s);
    char path[512];
    snprintf(path, sizeof path, "%s/%s.%s.gguf", tmpdir, name, bench_ftype_name(ft));
    hearth_err err;
    int rc = bench_shape_write(s, ft, 3, path, 1, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);

    model_params mp = model_default_params();
    mp.n_threads = 2;
    model *m = model_load(path, &mp, &err);
    if (!m) fprintf(stderr, "%s\n", err.msg);
    assert_non_null(m);
    const model_hparams *hp = model_hparams_of(m);
    model_ctx *c = model_ctx_new(m, 16, 8, &err);
    assert_non_null(c);
    float *logits = malloc(sizeof(float) * (size_t)hp->n_vocab);
    assert_non_null(logits);
    int32_t tok[N_PROMPT + 1];
    for (int i = 0; i <= N_PROMPT; i++) tok[i] = (int32_t)((i * 97 + 13) % hp->n_vocab);

    /* Counting is off by default: the prefill adds nothing. */
    kern_count_reset();
    assert_int_equal(model_eval(c, tok, N_PROMPT, 0, logits, MODEL_LOGITS_LAST, &err), 0);
    assert_int_equal(kern_count_bytes(), 0);

    uint64_t exp0 = ds2_expert_bytes_read(m);
    kern_count_enable(true);
    assert_int_equal(model_eval(c, &tok[N_PROMPT], 1, N_PROMPT, logits, MODEL_LOGITS_LAST, &err),
                     0);
    kern_count_enable(false);
    uint64_t measured = kern_count_bytes();
    uint64_t experts = ds2_expert_bytes_read(m) - exp0;
    kern_count_reset();
    for (int i = 0; i < hp->n_vocab; i++) assert_true(isfinite(logits[i]));

    bench_bytes b;
    assert_int_equal(bench_model_bytes(m, N_PROMPT + 1, &b, &err), 0);
    double rel = fabs((double)measured - (double)b.total) / (double)b.total;
    printf("%s %s: computed %llu B/token (weights %llu, embd row %llu, experts %llu, kv %llu), "
           "measured %llu (%+.2f%%)\n",
           name, bench_ftype_name(ft), (unsigned long long)b.total, (unsigned long long)b.weights,
           (unsigned long long)b.embd_row, (unsigned long long)b.experts, (unsigned long long)b.kv,
           (unsigned long long)measured,
           100.0 * ((double)measured - (double)b.total) / (double)b.total);
    assert_true(rel <= 0.10);
    /* The MoE model's own counter: exactly the chosen experts' slices. */
    if (!strcmp(s->arch, "deepseek2"))
        assert_int_equal(experts, b.experts);
    else
        assert_int_equal(b.experts, 0);

    free(logits);
    model_ctx_free(c);
    model_free(m);
    assert_int_equal(unlink(path), 0);
}

static void test_deepseek2_q8_0(void **state) {
    (void)state;
    check("tiny-deepseek2-moe", BENCH_Q8_0);
}

static void test_deepseek2_q4_k_m(void **state) {
    (void)state;
    check("tiny-deepseek2-moe", BENCH_Q4_K_M);
}

static void test_qwen2_q8_0(void **state) {
    (void)state;
    check("tiny-qwen2", BENCH_Q8_0);
}

static void test_qwen2_q4_k_m(void **state) {
    (void)state;
    check("tiny-qwen2", BENCH_Q4_K_M);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deepseek2_q8_0),
        cmocka_unit_test(test_deepseek2_q4_k_m),
        cmocka_unit_test(test_qwen2_q8_0),
        cmocka_unit_test(test_qwen2_q4_k_m),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
