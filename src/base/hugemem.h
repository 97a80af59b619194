/* Anonymous memory in 2 MiB transparent huge pages (THP), or explicitly in
 * 4 KiB pages: what model weights are copied into (gguf_open_ex's
 * GGUF_LOAD_COPY) and what the bandwidth probe streams, so both live in
 * the same kind of pages.
 *
 * A decode reads every weight once per token: with 4 KiB pages that is a TLB
 * miss and a page walk every 4 KiB, and the hardware prefetchers stop at each
 * page boundary. The development machines read 33-51 GB/s from huge pages
 * against 25-33 GB/s from 4 KiB ones (../shared/bench/README.md). Huge pages
 * are a request: the kernel may refuse them (THP "never", fragmented memory),
 * and hm_huge_fraction says what it granted. */
#ifndef HEARTH_BASE_HUGEMEM_H
#define HEARTH_BASE_HUGEMEM_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

#define HM_HUGE_PAGE ((size_t)2 << 20)

/* bytes (> 0) of zeroed, readable and writable anonymous memory at a 2 MiB
 * boundary, advised MADV_HUGEPAGE (huge) or MADV_NOHUGEPAGE; pages are
 * backed when first touched. NULL with a message on failure. */
void *hm_alloc(size_t bytes, bool huge, hearth_err *err);
/* Frees what hm_alloc(bytes, ...) returned (NULL: nothing). */
void hm_free(void *p, size_t bytes);

/* Share (0..1) of [p, p + bytes) from hm_alloc that the kernel backs with
 * huge pages, from /proc/self/smaps; -1 when it cannot tell. */
double hm_huge_fraction(const void *p, size_t bytes);

/* Whether the kernel grants MADV_HUGEPAGE requests: THP "always" or
 * "madvise" in /sys/kernel/mm/transparent_hugepage/enabled. */
bool hm_thp_usable(void);

/* MemAvailable of /proc/meminfo in bytes; 0 when unknown. */
size_t hm_mem_available(void);
/* A "KEY: N kB" line of a /proc file (meminfo, self/status) in bytes; 0 when
 * unknown. */
size_t hm_proc_bytes(const char *path, const char *key);

#endif
