#include "base/hugemem.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* bytes rounded up to whole huge pages; 0 on overflow. */
static size_t hm_len(size_t bytes) {
    if (bytes > SIZE_MAX - HM_HUGE_PAGE) return 0;
    return (bytes + HM_HUGE_PAGE - 1) / HM_HUGE_PAGE * HM_HUGE_PAGE;
}

void *hm_alloc(size_t bytes, bool huge, hearth_err *err) {
    const size_t len = hm_len(bytes);
    if (!bytes || !len || len > SIZE_MAX - HM_HUGE_PAGE) {
        hearth_errf(err, "cannot allocate %zu bytes of anonymous memory", bytes);
        return NULL;
    }
    /* Over-map by one huge page, keep the 2 MiB-aligned part, unmap the rest. */
    const size_t map_len = len + HM_HUGE_PAGE;
    uint8_t *map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        hearth_errf(err, "cannot map %zu bytes of anonymous memory: %s", map_len, strerror(errno));
        return NULL;
    }
    uint8_t *p = (uint8_t *)(((uintptr_t)map + HM_HUGE_PAGE - 1) & ~(uintptr_t)(HM_HUGE_PAGE - 1));
    if (p > map) munmap(map, (size_t)(p - map));
    if (map + map_len > p + len) munmap(p + len, (size_t)(map + map_len - (p + len)));
    /* Advice is a request: a kernel without THP refuses it, which
     * hm_huge_fraction then shows. */
    (void)madvise(p, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    return p;
}

void hm_free(void *p, size_t bytes) {
    if (p && bytes) munmap(p, hm_len(bytes));
}

double hm_huge_fraction(const void *p, size_t bytes) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f || !bytes) {
        if (f) fclose(f);
        return -1;
    }
    const uintptr_t lo_p = (uintptr_t)p, hi_p = lo_p + hm_len(bytes);
    char line[512];
    bool inside = false;
    long kb = 0;
    bool seen = false;
    /* Every mapping that overlaps the region: an mprotect or a partial
     * grant can split it into several. */
    while (fgets(line, sizeof line, f)) {
        uintptr_t lo, hi;
        if (line[0] != ' ' && strchr(line, '-') &&
            sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &lo, &hi) == 2) {
            inside = lo < hi_p && hi > lo_p;
            continue;
        }
        long v;
        if (inside && sscanf(line, "AnonHugePages: %ld kB", &v) == 1) {
            kb += v;
            seen = true;
        }
    }
    fclose(f);
    if (!seen) return -1;
    double frac = (double)kb * 1024.0 / (double)hm_len(bytes);
    return frac > 1 ? 1 : frac;
}

bool hm_thp_usable(void) {
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return false;
    char line[128] = "";
    bool ok = fgets(line, sizeof line, f) && !strstr(line, "[never]") &&
              (strstr(line, "[always]") || strstr(line, "[madvise]"));
    fclose(f);
    return ok;
}

size_t hm_proc_bytes(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256], fmt[96];
    snprintf(fmt, sizeof fmt, "%.64s: %%llu kB", key);
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, fmt, &kb) == 1) break;
    fclose(f);
    return kb > SIZE_MAX / 1024 ? SIZE_MAX : (size_t)kb * 1024;
}

size_t hm_mem_available(void) {
    return hm_proc_bytes("/proc/meminfo", "MemAvailable");
}
