/* Persistent worker threads; a run is published in one atomic word (run
 * generation | task count | next task), so a task is claimed with one
 * compare-and-swap that also proves the run is still the current one. The
 * caller works too and waits only for tasks that were claimed, never for a
 * worker to wake up: a worker that sleeps or is descheduled through a short
 * run (a decode step is hundreds of them) costs nothing, and the caller does
 * the tasks itself. Between runs workers spin (pause) for a bounded time,
 * then yield for a while, then sleep on a condition variable; the caller
 * takes the mutex to wake them only when some are asleep. */
#include "base/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The run word: generation (24 bits) | n_tasks (20 bits) | next (20 bits). */
#define IDX_BITS  20
#define IDX_MASK  ((1u << IDX_BITS) - 1)
#define ROUND_MAX ((int)IDX_MASK) /* tasks per published round */
#define GEN_SHIFT (2 * IDX_BITS)

static inline uint64_t word(uint64_t gen, uint64_t n, uint64_t next) {
    return (gen << GEN_SHIFT) | (n << IDX_BITS) | next;
}
static inline uint64_t w_gen(uint64_t w) {
    return w >> GEN_SHIFT;
}
static inline int w_n(uint64_t w) {
    return (int)((w >> IDX_BITS) & IDX_MASK);
}
static inline int w_next(uint64_t w) {
    return (int)(w & IDX_MASK);
}

/* Worker idle policy: spin this long, then sched_yield this long, then sleep. */
#define SPIN_SECONDS  50e-6
#define YIELD_SECONDS 2e-3

struct tp_pool {
    int n_threads; /* including the caller */
    pthread_t *threads;
    int n_started;
    pthread_mutex_t mu;
    pthread_cond_t start_cv;
    _Atomic uint64_t run; /* the run word */
    atomic_int done;      /* tasks of the current round finished */
    atomic_int sleeping;  /* workers blocked (or about to block) on start_cv */
    atomic_bool stop;
    /* the current round; stable while any of its tasks is unfinished */
    tp_fn fn;
    void *ctx;
    int base; /* task index of the round's first task */
};

typedef struct worker_arg {
    tp_pool *pool;
    int thread;
} worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* Claims and runs tasks of generation gen until none is left; returns the
 * number run. */
static int work(tp_pool *p, uint64_t gen, int thread) {
    int ran = 0;
    uint64_t w = atomic_load_explicit(&p->run, memory_order_acquire);
    for (;;) {
        if (w_gen(w) != gen || w_next(w) >= w_n(w)) break;
        if (!atomic_compare_exchange_weak_explicit(&p->run, &w, w + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue; /* w reloaded */
        /* the claimed task is unfinished, so the caller still waits in this
         * round: fn, ctx and base are those of generation gen */
        p->fn(p->ctx, p->base + w_next(w), thread);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
        ran++;
        w = atomic_load_explicit(&p->run, memory_order_acquire);
    }
    return ran;
}

static void *worker_main(void *arg) {
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    tp_pool *p = wa.pool;
    uint64_t seen = w_gen(atomic_load(&p->run));
    for (;;) {
        /* wait for a new generation: spin, then yield, then sleep */
        double t0 = 0;
        for (unsigned i = 0;; i++) {
            if (w_gen(atomic_load_explicit(&p->run, memory_order_acquire)) != seen ||
                atomic_load_explicit(&p->stop, memory_order_relaxed))
                break;
            if ((i & 63) != 0) {
                cpu_relax();
                continue;
            }
            double now = tp_now();
            if (i == 0) t0 = now;
            if (now - t0 < SPIN_SECONDS) {
                cpu_relax();
            } else if (now - t0 < SPIN_SECONDS + YIELD_SECONDS) {
                sched_yield();
            } else {
                atomic_fetch_add(&p->sleeping, 1);
                pthread_mutex_lock(&p->mu);
                while (w_gen(atomic_load(&p->run)) == seen && !atomic_load(&p->stop))
                    pthread_cond_wait(&p->start_cv, &p->mu);
                pthread_mutex_unlock(&p->mu);
                atomic_fetch_sub(&p->sleeping, 1);
                break;
            }
        }
        if (atomic_load(&p->stop)) break;
        seen = w_gen(atomic_load_explicit(&p->run, memory_order_acquire));
        work(p, seen, wa.thread);
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
    atomic_init(&p->run, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->sleeping, 0);
    atomic_init(&p->stop, false);
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
    free(p->threads);
    free(p);
}

int tp_n_threads(const tp_pool *p) {
    return p ? p->n_threads : 1;
}

/* One round of at most ROUND_MAX tasks starting at task `base`. */
static void run_round(tp_pool *p, tp_fn fn, void *ctx, int base, int n) {
    /* every task of the previous round is finished: no worker reads these */
    p->fn = fn;
    p->ctx = ctx;
    p->base = base;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    uint64_t gen = (w_gen(atomic_load(&p->run)) + 1) & ((1u << 24) - 1);
    atomic_store(&p->run, word(gen, (uint64_t)n, 0)); /* seq_cst: publishes the fields */
    if (atomic_load(&p->sleeping) > 0) { /* seq_cst pairs with the sleeper's increment */
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->start_cv);
        pthread_mutex_unlock(&p->mu);
    }
    work(p, gen, 0);
    /* wait for the tasks workers claimed: spin, then yield to let them run */
    for (unsigned i = 0; atomic_load_explicit(&p->done, memory_order_acquire) < n; i++)
        if (i < 2000)
            cpu_relax();
        else
            sched_yield();
}

void tp_run(tp_pool *p, tp_fn fn, void *ctx, int n_tasks) {
    if (n_tasks <= 0) return;
    if (!p || p->n_threads == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    for (int base = 0; base < n_tasks; base += ROUND_MAX)
        run_round(p, fn, ctx, base, n_tasks - base < ROUND_MAX ? n_tasks - base : ROUND_MAX);
}
