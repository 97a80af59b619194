/* Persistent worker threads woken per tp_run by a generation counter; tasks
 * are claimed from an atomic counter. Between runs, workers and the caller
 * first spin briefly on the counters (a decode step is hundreds of short
 * runs back to back, and a condition-variable wake costs ~25 us), then sleep
 * on condition variables. */
#include "base/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct tp_pool {
    int n_threads; /* including the caller */
    pthread_t *threads;
    int n_started;
    pthread_mutex_t mu;
    pthread_cond_t start_cv;
    pthread_cond_t done_cv;
    _Atomic uint64_t gen; /* bumped for every run */
    atomic_bool stop;
    atomic_int running; /* workers not yet finished with the current run */
    /* the current run */
    tp_fn fn;
    void *ctx;
    int n_tasks;
    atomic_int next;
};

typedef struct worker_arg {
    tp_pool *pool;
    int thread;
} worker_arg;

/* Spin ~1-15 us of pause instructions before sleeping: short, so that an
 * oversubscribed machine loses little. */
#define SPIN_ITERS 300

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void work(tp_pool *p, int thread) {
    for (;;) {
        int t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= p->n_tasks) break;
        p->fn(p->ctx, t, thread);
    }
}

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    tp_pool *p = wa.pool;
    uint64_t seen = 0;
    for (;;) {
        for (int i = 0; i < SPIN_ITERS && atomic_load(&p->gen) == seen && !atomic_load(&p->stop);
             i++)
            cpu_relax();
        if (atomic_load(&p->gen) == seen) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->start_cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = atomic_load(&p->gen); /* acquire: fn, ctx, n_tasks of this run are visible */
        work(p, wa.thread);
        if (atomic_fetch_sub(&p->running, 1) == 1) { /* the last one: wake the caller */
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

int tp_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > TP_MAX_THREADS) n = TP_MAX_THREADS;
    return (int)n;
}

double tp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

tp_pool *tp_new(int n_threads, hearth_err *err) {
    if (n_threads <= 0) n_threads = tp_cpu_count();
    if (n_threads > TP_MAX_THREADS) {
        hearth_errf(err, "thread pool: expected at most %d threads, asked for %d", TP_MAX_THREADS,
                    n_threads);
        return NULL;
    }
    tp_pool *p = calloc(1, sizeof(*p));
    if (!p) {
        hearth_errf(err, "thread pool: out of memory");
        return NULL;
    }
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    atomic_init(&p->next, 0);
    atomic_init(&p->gen, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->running, 0);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof(pthread_t));
        if (!p->threads) {
            hearth_errf(err, "thread pool: out of memory");
            tp_free(p);
            return NULL;
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof(*wa));
        int rc = -1;
        if (wa) {
            wa->pool = p;
            wa->thread = i;
            rc = pthread_create(&p->threads[i - 1], NULL, worker_main, wa);
        }
        if (rc != 0) {
            free(wa);
            hearth_errf(err, "thread pool: could not start thread %d of %d (%s)", i, n_threads,
                        rc > 0 ? strerror(rc) : "out of memory");
            tp_free(p);
            return NULL;
        }
        p->n_started++;
    }
    return p;
}

void tp_free(tp_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->start_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start_cv);
    pthread_cond_destroy(&p->done_cv);
    free(p->threads);
    free(p);
}

int tp_n_threads(const tp_pool *p) {
    return p ? p->n_threads : 1;
}

void tp_run(tp_pool *p, tp_fn fn, void *ctx, int n_tasks) {
    if (n_tasks <= 0) return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    /* Workers are all idle here (the previous run waited for them). */
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store(&p->running, p->n_threads - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->gen, 1); /* release: publishes the fields above */
    pthread_cond_broadcast(&p->start_cv);
    pthread_mutex_unlock(&p->mu);
    work(p, 0);
    for (int i = 0; i < SPIN_ITERS && atomic_load(&p->running) > 0; i++) cpu_relax();
    if (atomic_load(&p->running) > 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->running) > 0) pthread_cond_wait(&p->done_cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
