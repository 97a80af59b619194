/* A persistent pool of worker threads for data-parallel loops.
 *
 * tp_run(pool, fn, ctx, n_tasks) calls fn(ctx, task, thread) once for every
 * task in [0, n_tasks), spread over the pool's threads (the calling thread
 * works too, as thread 0), and returns when all tasks are done. Tasks are
 * claimed one at a time from a shared counter, so uneven tasks balance.
 * `thread` is in [0, tp_n_threads(pool)) and is unique among the tasks running
 * at the same moment: use it to index per-thread scratch buffers.
 *
 * One tp_run at a time per pool: the pool is not re-entrant (fn must not call
 * tp_run on the same pool) and must not be driven by two threads at once.
 * A NULL pool runs every task on the calling thread (thread 0). */
#ifndef HEARTH_BASE_THREADPOOL_H
#define HEARTH_BASE_THREADPOOL_H

#include "base/error.h"

#define TP_MAX_THREADS 512

typedef struct tp_pool tp_pool;
typedef void (*tp_fn)(void *ctx, int task, int thread);

/* n_threads <= 0 means the number of online CPUs. Values above
 * TP_MAX_THREADS are an error. Returns NULL with a message on failure. */
tp_pool *tp_new(int n_threads, hearth_err *err);
void tp_free(tp_pool *pool);

/* Threads that run tasks, the caller included (1 for a NULL pool). */
int tp_n_threads(const tp_pool *pool);

void tp_run(tp_pool *pool, tp_fn fn, void *ctx, int n_tasks);

/* Online CPUs (at least 1). */
int tp_cpu_count(void);

/* Monotonic clock in seconds, for timings. */
double tp_now(void);

#endif
