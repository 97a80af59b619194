#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "generate/sampler.h"

static sampler_params plain(void) {
    /* temperature 1, no truncation, no penalties */
    sampler_params p = sampler_default_params();
    p.temp = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

/* Checks the sampler's distribution against (id, prob) pairs in order. */
static void expect_dist(sampler *s, const float *logits, int n, const int32_t *ids,
                        const double *probs) {
    const int32_t *got_ids;
    const float *got_p;
    int32_t m = sampler_distribution(s, logits, &got_ids, &got_p);
    assert_int_equal(m, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(got_ids[i], ids[i]);
        assert_float_equal(got_p[i], probs[i], 1e-6);
    }
}

static void test_softmax_temperature_one(void **state) {
    (void)state;
    sampler_params p = plain();
    sampler *s = sampler_new(4, &p, NULL);
    float l[4] = {1, 2, 3, 4};
    double z = exp(1) + exp(2) + exp(3) + exp(4);
    int32_t ids[4] = {3, 2, 1, 0};
    double pr[4] = {exp(4) / z, exp(3) / z, exp(2) / z, exp(1) / z};
    expect_dist(s, l, 4, ids, pr);
    sampler_free(s);
}

static void test_top_k(void **state) {
    (void)state;
    sampler_params p = plain();
    p.top_k = 2;
    sampler *s = sampler_new(5, &p, NULL);
    float l[5] = {0.5f, 3, -1, 2, 1};
    double z = exp(3) + exp(2);
    int32_t ids[2] = {1, 3};
    double pr[2] = {exp(3) / z, exp(2) / z};
    expect_dist(s, l, 2, ids, pr);
    sampler_free(s);
}

static void set_log_probs(float *l, const double *p, int n) {
    for (int i = 0; i < n; i++) l[i] = (float)log(p[i]);
}

static void test_top_p(void **state) {
    (void)state;
    sampler_params p = plain();
    p.top_p = 0.7f;
    sampler *s = sampler_new(4, &p, NULL);
    double base[4] = {0.15, 0.5, 0.05, 0.3};
    float l[4];
    set_log_probs(l, base, 4);
    int32_t ids[2] = {1, 3};
    double pr[2] = {0.5 / 0.8, 0.3 / 0.8};
    expect_dist(s, l, 2, ids, pr);
    p.top_p = 0.45f; /* the first token alone covers it */
    assert_int_equal(sampler_set_params(s, &p, NULL), 0);
    int32_t ids1[1] = {1};
    double pr1[1] = {1.0};
    expect_dist(s, l, 1, ids1, pr1);
    sampler_free(s);
}

static void test_min_p(void **state) {
    (void)state;
    sampler_params p = plain();
    p.min_p = 0.2f; /* keep p >= 0.2 * 0.5 = 0.1 */
    sampler *s = sampler_new(4, &p, NULL);
    double base[4] = {0.15, 0.5, 0.05, 0.3};
    float l[4];
    set_log_probs(l, base, 4);
    int32_t ids[3] = {1, 3, 0};
    double pr[3] = {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95};
    expect_dist(s, l, 3, ids, pr);
    sampler_free(s);
}

static void test_temperature_reshapes_survivors(void **state) {
    (void)state;
    sampler_params p = plain();
    p.temp = 0.5f; /* p_i^(1/0.5) renormalised */
    sampler *s = sampler_new(4, &p, NULL);
    double base[4] = {0.15, 0.5, 0.05, 0.3};
    float l[4];
    set_log_probs(l, base, 4);
    double z = 0.25 + 0.09 + 0.0225 + 0.0025;
    int32_t ids[4] = {1, 3, 0, 2};
    double pr[4] = {0.25 / z, 0.09 / z, 0.0225 / z, 0.0025 / z};
    expect_dist(s, l, 4, ids, pr);
    sampler_free(s);
}

/* top-p is judged on what top-k kept (renormalised), as in llama.cpp's chain:
 * over the whole distribution it would keep two tokens, after top-k only one. */
static void test_chain_order_top_k_before_top_p(void **state) {
    (void)state;
    sampler_params p = plain();
    p.top_k = 2;
    p.top_p = 0.5f;
    sampler *s = sampler_new(4, &p, NULL);
    double base[4] = {0.4, 0.3, 0.2, 0.1};
    float l[4];
    set_log_probs(l, base, 4);
    int32_t ids[1] = {0};
    double pr[1] = {1.0};
    expect_dist(s, l, 1, ids, pr);
    /* without top-k, top-p 0.5 needs 0.4 + 0.3 */
    p.top_k = 0;
    sampler_set_params(s, &p, NULL);
    int32_t ids2[2] = {0, 1};
    double pr2[2] = {0.4 / 0.7, 0.3 / 0.7};
    expect_dist(s, l, 2, ids2, pr2);
    /* top-p and min-p together: the shorter prefix wins; min-p 0.6 keeps only
     * p >= 0.24, i.e. tokens 0 and 1; top-p 0.95 alone would keep 4 */
    p.top_p = 0.95f;
    p.min_p = 0.6f;
    sampler_set_params(s, &p, NULL);
    expect_dist(s, l, 2, ids2, pr2);
    sampler_free(s);
}

static void test_penalties(void **state) {
    (void)state;
    sampler_params p = plain();
    p.repeat_penalty = 2.0f;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    p.penalty_last_n = 3;
    sampler *s = sampler_new(4, &p, NULL);
    sampler_accept(s, 3); /* falls out of the window of 3 */
    sampler_accept(s, 0);
    sampler_accept(s, 0);
    sampler_accept(s, 1);
    float l[4] = {2, -1, 0.5f, 1};
    /* token 0: 2/2 - 2*0.25 - 0.5 = 0; token 1: -1*2 - 0.25 - 0.5 = -2.75;
     * token 2: 0.5 (never seen); token 3: 1 (left the window) */
    double q[4] = {0, -2.75, 0.5, 1};
    double z = 0;
    for (int i = 0; i < 4; i++) z += exp(q[i]);
    int32_t ids[4] = {3, 2, 0, 1};
    double pr[4] = {exp(1) / z, exp(0.5) / z, exp(0) / z, exp(-2.75) / z};
    expect_dist(s, l, 4, ids, pr);
    /* greedy picks through the penalties too: token 0 (logit 2) loses to 3 */
    p.temp = 0;
    sampler_set_params(s, &p, NULL);
    assert_int_equal(sampler_sample(s, l), 3);
    /* reset forgets the history: token 0 wins again */
    sampler_reset(s);
    assert_int_equal(sampler_sample(s, l), 0);
    sampler_free(s);
}

static void test_window_shrinks_on_set_params(void **state) {
    (void)state;
    sampler_params p = plain();
    p.repeat_penalty = 4.0f;
    p.penalty_last_n = 4;
    p.temp = 0;
    sampler *s = sampler_new(3, &p, NULL);
    float l[3] = {2, 1, 0};
    sampler_accept(s, 0);
    sampler_accept(s, 2);
    assert_int_equal(sampler_sample(s, l), 1); /* 0 penalised to 0.5 */
    p.penalty_last_n = 1;                      /* only token 2 remains in the window */
    assert_int_equal(sampler_set_params(s, &p, NULL), 0);
    assert_int_equal(sampler_sample(s, l), 0);
    hearth_err e;
    p.penalty_last_n = 5; /* beyond the size at creation */
    assert_int_equal(sampler_set_params(s, &p, &e), -1);
    assert_non_null(strstr(e.msg, "window"));
    sampler_free(s);
}

static void test_temperature_zero_is_greedy(void **state) {
    (void)state;
    enum { V = 1000 };
    float *l = malloc(V * sizeof *l);
    sampler_rng r;
    sampler_rng_seed(&r, 7);
    for (int i = 0; i < V; i++) l[i] = (float)(sampler_rng_uniform(&r) * 10 - 5);
    int best = 0;
    for (int i = 1; i < V; i++)
        if (l[i] > l[best]) best = i;
    for (uint64_t seed = 0; seed < 20; seed++) {
        sampler_params p = sampler_default_params();
        p.temp = 0;
        p.seed = seed;
        sampler *s = sampler_new(V, &p, NULL);
        assert_int_equal(sampler_sample(s, l), best);
        sampler_free(s);
    }
    free(l);
}

static void draw_sequence(uint64_t seed, int32_t *out, int n) {
    enum { V = 50 };
    float l[V];
    for (int i = 0; i < V; i++) l[i] = (float)sin(i * 1.7) * 2;
    sampler_params p = sampler_default_params();
    p.top_k = 0;
    p.min_p = 0;
    p.top_p = 1;
    p.temp = 1.5f;
    p.seed = seed;
    sampler *s = sampler_new(V, &p, NULL);
    for (int i = 0; i < n; i++) {
        out[i] = sampler_sample(s, l);
        sampler_accept(s, out[i]);
    }
    sampler_free(s);
}

static void test_same_seed_same_sequence(void **state) {
    (void)state;
    int32_t a[64], b[64], c[64];
    draw_sequence(42, a, 64);
    draw_sequence(42, b, 64);
    draw_sequence(43, c, 64);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
}

static void test_frequencies_match_softmax(void **state) {
    (void)state;
    enum { V = 8, N = 400000 };
    float l[V] = {0.3f, -1.2f, 2.0f, 0.0f, 1.1f, -3.0f, 0.7f, 1.9f};
    sampler_params p = plain();
    p.temp = 0.9f;
    p.seed = 12345;
    sampler *s = sampler_new(V, &p, NULL);
    long count[V] = {0};
    for (int i = 0; i < N; i++) count[sampler_sample(s, l)]++;
    double z = 0;
    for (int i = 0; i < V; i++) z += exp(l[i] / 0.9);
    for (int i = 0; i < V; i++) {
        double expect = exp(l[i] / 0.9) / z;
        double got = (double)count[i] / N;
        /* 5 standard deviations of a binomial frequency */
        double tol = 5 * sqrt(expect * (1 - expect) / N);
        assert_true(fabs(got - expect) <= tol);
    }
    sampler_free(s);
}

static void test_uniform_in_range_and_spread(void **state) {
    (void)state;
    sampler_rng r;
    sampler_rng_seed(&r, 1);
    int buckets[10] = {0};
    for (int i = 0; i < 100000; i++) {
        double u = sampler_rng_uniform(&r);
        assert_true(u >= 0 && u < 1);
        buckets[(int)(u * 10)]++;
    }
    for (int i = 0; i < 10; i++) assert_true(buckets[i] > 9500 && buckets[i] < 10500);
}

static void test_nan_and_inf_logits(void **state) {
    (void)state;
    sampler_params p = sampler_default_params();
    sampler *s = sampler_new(4, &p, NULL);
    float l[4] = {NAN, -INFINITY, 1.0f, NAN};
    for (int i = 0; i < 20; i++) assert_int_equal(sampler_sample(s, l), 2);
    float all[4] = {-INFINITY, -INFINITY, NAN, -INFINITY};
    int32_t t = sampler_sample(s, all); /* nothing sensible, but a valid id */
    assert_true(t >= 0 && t < 4);
    sampler_free(s);
}

static void test_bad_params_rejected(void **state) {
    (void)state;
    hearth_err e;
    sampler_params p = sampler_default_params();
    p.top_p = 0;
    assert_null(sampler_new(10, &p, &e));
    assert_non_null(strstr(e.msg, "top-p"));
    p = sampler_default_params();
    p.min_p = 1.5f;
    assert_null(sampler_new(10, &p, &e));
    assert_non_null(strstr(e.msg, "min-p"));
    p = sampler_default_params();
    p.repeat_penalty = 0;
    assert_null(sampler_new(10, &p, &e));
    p = sampler_default_params();
    p.temp = NAN;
    assert_null(sampler_new(10, &p, &e));
    p = sampler_default_params();
    assert_null(sampler_new(0, &p, &e));
    p.penalty_last_n = -1;
    assert_int_equal(sampler_params_check(&p, &e), -1);
}

/* A big vocabulary with the default chain (top-k 40 through the heap path) and
 * top-k off (min-p pre-filter and sort path) agree on the distribution when
 * top-k does not bind. */
static void test_large_vocab_paths_agree(void **state) {
    (void)state;
    enum { V = 20000 };
    float *l = malloc(V * sizeof *l);
    sampler_rng r;
    sampler_rng_seed(&r, 99);
    for (int i = 0; i < V; i++) l[i] = (float)(sampler_rng_uniform(&r) * 8);
    sampler_params p = plain();
    p.min_p = 0.9f; /* keeps only a handful */
    sampler *a = sampler_new(V, &p, NULL);
    p.top_k = 1000;
    sampler *b = sampler_new(V, &p, NULL);
    const int32_t *ia, *ib;
    const float *pa, *pb;
    int32_t na = sampler_distribution(a, l, &ia, &pa);
    int32_t nb = sampler_distribution(b, l, &ib, &pb);
    assert_int_equal(na, nb);
    assert_true(na >= 1 && na < 1000);
    for (int i = 0; i < na; i++) {
        assert_int_equal(ia[i], ib[i]);
        assert_float_equal(pa[i], pb[i], 1e-6);
        if (i) assert_true(l[ia[i - 1]] >= l[ia[i]]);
    }
    sampler_free(a);
    sampler_free(b);
    free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax_temperature_one),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_temperature_reshapes_survivors),
        cmocka_unit_test(test_chain_order_top_k_before_top_p),
        cmocka_unit_test(test_penalties),
        cmocka_unit_test(test_window_shrinks_on_set_params),
        cmocka_unit_test(test_temperature_zero_is_greedy),
        cmocka_unit_test(test_same_seed_same_sequence),
        cmocka_unit_test(test_frequencies_match_softmax),
        cmocka_unit_test(test_uniform_in_range_and_spread),
        cmocka_unit_test(test_nan_and_inf_logits),
        cmocka_unit_test(test_bad_params_rejected),
        cmocka_unit_test(test_large_vocab_paths_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
