/* Thread pool: every task runs exactly once per tp_run, thread ids stay in
 * range and are never shared by two tasks running at once, and runs can
 * follow one another many times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "base/threadpool.h"

#define N_TASKS 1000

typedef struct run_ctx {
    atomic_int count[N_TASKS];
    atomic_int busy[TP_MAX_THREADS]; /* tasks currently running on thread i */
    atomic_int bad_thread;
    atomic_int overlap;
    int n_threads;
} run_ctx;

static void task(void *p, int t, int thread) {
    run_ctx *c = p;
    if (thread < 0 || thread >= c->n_threads) {
        atomic_fetch_add(&c->bad_thread, 1);
        return;
    }
    if (atomic_fetch_add(&c->busy[thread], 1) != 0) atomic_fetch_add(&c->overlap, 1);
    volatile double x = 0;
    for (int i = 0; i < (t % 7) * 50; i++) x += i; /* uneven work */
    (void)x;
    atomic_fetch_add(&c->count[t], 1);
    atomic_fetch_sub(&c->busy[thread], 1);
}

static void check_pool(tp_pool *pool, int n_threads) {
    static run_ctx c;
    for (int rep = 0; rep < 50; rep++) {
        for (int i = 0; i < N_TASKS; i++) atomic_store(&c.count[i], 0);
        for (int i = 0; i < TP_MAX_THREADS; i++) atomic_store(&c.busy[i], 0);
        atomic_store(&c.bad_thread, 0);
        atomic_store(&c.overlap, 0);
        c.n_threads = n_threads;
        int n = 1 + (rep * 37) % N_TASKS;
        tp_run(pool, task, &c, n);
        for (int i = 0; i < N_TASKS; i++) assert_int_equal(atomic_load(&c.count[i]), i < n ? 1 : 0);
        assert_int_equal(atomic_load(&c.bad_thread), 0);
        assert_int_equal(atomic_load(&c.overlap), 0);
    }
}

static void test_pools(void **state) {
    (void)state;
    check_pool(NULL, 1);
    assert_int_equal(tp_n_threads(NULL), 1);
    for (int n = 1; n <= 4; n++) {
        hearth_err err;
        tp_pool *p = tp_new(n, &err);
        assert_non_null(p);
        assert_int_equal(tp_n_threads(p), n);
        check_pool(p, n);
        tp_free(p);
    }
}

static void test_default_and_limits(void **state) {
    (void)state;
    hearth_err err;
    tp_pool *p = tp_new(0, &err);
    assert_non_null(p);
    assert_int_equal(tp_n_threads(p), tp_cpu_count());
    tp_free(p);
    assert_null(tp_new(TP_MAX_THREADS + 1, &err));
    assert_non_null(strstr(err.msg, "at most"));
    tp_free(NULL);
    double t0 = tp_now(), t1 = tp_now();
    assert_true(t1 >= t0);
}

/* More tasks than one published round holds (2^20 - 1): every task still
 * runs exactly once. */
static void count_task(void *p, int t, int thread) {
    (void)thread;
    atomic_fetch_add((atomic_llong *)p, (long long)t + 1);
}

static void test_many_tasks(void **state) {
    (void)state;
    hearth_err err;
    tp_pool *p = tp_new(2, &err);
    assert_non_null(p);
    const long long n = 2500000;
    atomic_llong sum;
    atomic_init(&sum, 0);
    tp_run(p, count_task, &sum, (int)n);
    assert_int_equal(atomic_load(&sum), n * (n + 1) / 2);
    tp_free(p);
}

/* Thousands of tiny runs back to back (a decode step), with idle gaps long
 * enough for workers to fall asleep in between: each run completes with
 * every task done once, whether or not the workers joined. */
static void test_short_runs_and_sleepers(void **state) {
    (void)state;
    hearth_err err;
    tp_pool *p = tp_new(3, &err);
    assert_non_null(p);
    for (int rep = 0; rep < 20000; rep++) {
        atomic_llong sum;
        atomic_init(&sum, 0);
        int n = 2 + rep % 5;
        tp_run(p, count_task, &sum, n);
        assert_int_equal(atomic_load(&sum), (long long)n * (n + 1) / 2);
        if (rep % 5000 == 4999) { /* let the workers go to sleep, then wake them */
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    tp_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pools),
        cmocka_unit_test(test_default_and_limits),
        cmocka_unit_test(test_many_tasks),
        cmocka_unit_test(test_short_runs_and_sleepers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
