/* Read bandwidth probe (see bandwidth.h). */
#include "base/bandwidth.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/hugemem.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BW_X86 1
#endif

#define MIB            ((size_t)1 << 20)
#define HUGE_PAGE      HM_HUGE_PAGE
#define BW_MAX_THREADS 512
#define CHUNK          ((size_t)1 << 20)

const char *bw_pages_name(bw_pages pages) {
    return pages == BW_PAGES_THP ? "2 MiB THP" : "4 KiB";
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Portable: eight independent 8-byte streams the compiler may widen. */
static uint64_t read_u64(const uint8_t *p, size_t n) {
    const uint64_t *q = (const uint64_t *)(const void *)p;
    uint64_t a[8] = {0};
    for (size_t i = 0; i + 8 <= n / 8; i += 8)
        for (int j = 0; j < 8; j++) a[j] ^= q[i + j];
    return a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
}

#ifdef BW_X86
/* 32-byte aligned loads, four 128-byte streams in flight per iteration. */
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a0 = _mm256_xor_si256(a0, _mm256_load_si256((const __m256i *)(const void *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256((const __m256i *)(const void *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256((const __m256i *)(const void *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256((const __m256i *)(const void *)(p + i + 96)));
    }
    __m256i a = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    return (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 3);
}
#endif

typedef uint64_t (*read_fn)(const uint8_t *p, size_t n);

typedef struct bw_job {
    const uint8_t *buf;
    size_t n_chunks;      /* of CHUNK bytes */
    _Atomic size_t *next; /* [passes]: next chunk to claim in each pass */
    int n_threads, passes;
    read_fn read;
    pthread_barrier_t start, done;
    pthread_mutex_t mu; /* guards go */
    pthread_cond_t cv;
    int go;         /* 0: wait, 1: run, -1: quit (a thread could not start) */
    double *t_pass; /* [passes], written by thread 0 */
} bw_job;

typedef struct bw_worker {
    bw_job *job;
    int id;
    uint64_t sink;
    double t0, t1; /* this pass: when this thread started and finished reading */
} bw_worker;

static void *worker(void *arg) {
    bw_worker *wk = arg;
    bw_job *j = wk->job;
    if (wk->id != 0) {
        pthread_mutex_lock(&j->mu);
        while (j->go == 0) pthread_cond_wait(&j->cv, &j->mu);
        int go = j->go;
        pthread_mutex_unlock(&j->mu);
        if (go < 0) return NULL;
    }
    for (int pass = 0; pass < j->passes; pass++) {
        pthread_barrier_wait(&j->start);
        wk->t0 = now_s();
        /* Chunks are claimed from a shared counter: on a busy machine a
         * descheduled thread reads less instead of holding up the pass. */
        for (size_t c; (c = atomic_fetch_add(&j->next[pass], 1)) < j->n_chunks;)
            wk->sink ^= j->read(j->buf + c * CHUNK, CHUNK);
        wk->t1 = now_s();
        pthread_barrier_wait(&j->done);
        /* The pass lasts from the first thread's start to the last one's end
         * (one clock per thread would miss a thread that ran alone while the
         * timing one was descheduled). */
        if (wk->id == 0) {
            double lo = wk->t0, hi = wk->t1; /* worker 0 is the first of the array */
            for (int i = 1; i < j->n_threads; i++) {
                lo = fmin(lo, wk[i].t0);
                hi = fmax(hi, wk[i].t1);
            }
            j->t_pass[pass] = hi - lo;
        }
    }
    return NULL;
}

int bw_measure(size_t bytes, int n_threads, bw_pages pages, int passes, bw_result *out,
               hearth_err *err) {
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    if (n_threads > BW_MAX_THREADS)
        return hearth_errf(err, "bandwidth: expected at most %d threads, found %d", BW_MAX_THREADS,
                           n_threads);
    if (passes < 1 || passes > 1000)
        return hearth_errf(err, "bandwidth: expected 1 to 1000 passes, found %d", passes);
    if (bytes < MIB || bytes > ((size_t)1 << 40))
        return hearth_errf(err, "bandwidth: expected a buffer of 1 MiB to 1 TiB, found %zu bytes",
                           bytes);
    /* The whole buffer is touched: one larger than the machine would swap or
     * wake the OOM killer, so refuse more than half of physical memory. */
    long phys_pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (phys_pages > 0 && page > 0 && bytes / (size_t)page > (size_t)phys_pages / 2)
        return hearth_errf(err,
                           "bandwidth: a buffer of %zu MiB is more than half of this machine's "
                           "%zu MiB of memory",
                           bytes >> 20, ((size_t)phys_pages * (size_t)page) >> 20);
    bytes = bytes / HUGE_PAGE * HUGE_PAGE;
    if (bytes < HUGE_PAGE) bytes = HUGE_PAGE;

    uint8_t *buf = hm_alloc(bytes, pages == BW_PAGES_THP, err);
    if (!buf) return hearth_err_prefix(err, "bandwidth");
    memset(buf, 0x5a, bytes); /* touch every page before timing */

    _Atomic size_t *next = malloc(sizeof *next * (size_t)(passes + 1));
    if (!next) {
        hm_free(buf, bytes);
        return hearth_errf(err, "bandwidth: out of memory");
    }
    for (int p = 0; p <= passes; p++) atomic_init(&next[p], 0);
    bw_job job = {.buf = buf,
                  .n_chunks = bytes / CHUNK,
                  .next = next,
                  .n_threads = n_threads,
                  .passes = passes + 1};
    job.read = read_u64;
#ifdef BW_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) job.read = read_avx2;
#endif
    double t_pass[1001];
    job.t_pass = t_pass;
    bw_worker wk[BW_MAX_THREADS];
    pthread_t th[BW_MAX_THREADS];
    if (pthread_barrier_init(&job.start, NULL, (unsigned)n_threads)) {
        free(next);
        hm_free(buf, bytes);
        return hearth_errf(err, "bandwidth: cannot create barriers");
    }
    if (pthread_barrier_init(&job.done, NULL, (unsigned)n_threads)) {
        pthread_barrier_destroy(&job.start);
        free(next);
        hm_free(buf, bytes);
        return hearth_errf(err, "bandwidth: cannot create barriers");
    }
    pthread_mutex_init(&job.mu, NULL);
    pthread_cond_init(&job.cv, NULL);
    int started = 1, rc = 0;
    for (int i = 0; i < n_threads; i++) wk[i] = (bw_worker){.job = &job, .id = i};
    for (; started < n_threads; started++) {
        if (pthread_create(&th[started], NULL, worker, &wk[started])) {
            rc = hearth_errf(err, "bandwidth: cannot start thread %d of %d", started, n_threads);
            break;
        }
    }
    /* Threads wait for `go` before the barriers (sized for all of them). */
    pthread_mutex_lock(&job.mu);
    job.go = rc ? -1 : 1;
    pthread_cond_broadcast(&job.cv);
    pthread_mutex_unlock(&job.mu);
    if (!rc) worker(&wk[0]);
    for (int i = 1; i < started; i++) pthread_join(th[i], NULL);
    pthread_mutex_destroy(&job.mu);
    pthread_cond_destroy(&job.cv);
    pthread_barrier_destroy(&job.start);
    pthread_barrier_destroy(&job.done);
    const double huge = rc ? -1 : hm_huge_fraction(buf, bytes);
    free(next);
    hm_free(buf, bytes);
    if (rc) return rc;

    /* Pass 0 warms up (TLB, prefetchers) and is not counted. */
    double best = 0, sum = 0;
    size_t streamed = bytes;
    for (int p = 1; p <= passes; p++) {
        double g = t_pass[p] > 0 ? (double)streamed / t_pass[p] / 1e9 : 0;
        if (g > best) best = g;
        sum += g;
    }
    uint64_t sink = 0;
    for (int i = 0; i < n_threads; i++) sink ^= wk[i].sink;
    *out = (bw_result){.gbs = best,
                       .mean_gbs = sum / passes,
                       .huge_fraction = huge,
                       .bytes = streamed,
                       .n_threads = n_threads,
                       .passes = passes};
    /* The sink keeps the loads alive; 0x5a bytes xor to a known value. */
    return sink == 0xdeadbeefcafef00dULL ? hearth_errf(err, "bandwidth: unexpected checksum") : 0;
}
