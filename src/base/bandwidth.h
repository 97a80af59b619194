/* Memory read bandwidth: what "the speed of light" of a memory-bound decode is
 * measured against.
 *
 * bw_measure streams a buffer of `bytes` with n_threads threads (all start
 * together after a barrier and claim 1 MiB chunks from a shared counter, so a
 * thread the OS deschedules on a busy machine does not stall the pass) and reports
 * the best of `passes` timed passes in GB/s (1e9 bytes per second). The
 * buffer is anonymous memory, touched before timing, backed by:
 *   BW_PAGES_4K:  4 KiB pages (madvise MADV_NOHUGEPAGE), as a file mapping is;
 *   BW_PAGES_THP: 2 MiB transparent huge pages (2 MiB-aligned, MADV_HUGEPAGE);
 *                 the kernel may refuse them: huge_fraction says how much of
 *                 the buffer it backed with huge pages (from /proc/self/smaps).
 * Loads are 32 bytes wide (AVX2, chosen at run time) or 8 bytes otherwise. */
#ifndef HEARTH_BASE_BANDWIDTH_H
#define HEARTH_BASE_BANDWIDTH_H

#include <stddef.h>

#include "base/error.h"

typedef enum bw_pages { BW_PAGES_4K = 0, BW_PAGES_THP = 1 } bw_pages;

typedef struct bw_result {
    double gbs;           /* best pass, GB/s */
    double mean_gbs;      /* mean over the passes */
    double huge_fraction; /* of the buffer in huge pages, -1 when unknown */
    size_t bytes;         /* buffer size actually streamed */
    int n_threads;
    int passes;
} bw_result;

/* bytes >= 1 MiB (rounded down to a multiple of 2 MiB, at least 2 MiB) and
 * at most half of physical memory (the buffer is touched whole);
 * n_threads <= 0: online CPUs; passes >= 1. -1 with a message on failure
 * (no memory, bad arguments, thread creation). */
int bw_measure(size_t bytes, int n_threads, bw_pages pages, int passes, bw_result *out,
               hearth_err *err);

const char *bw_pages_name(bw_pages pages); /* "4 KiB" or "2 MiB THP" */

#endif
