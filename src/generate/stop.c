#include "generate/stop.h"

#include <stdlib.h>
#include <string.h>

struct stop_filter {
    int n;
    char *str[STOP_MAX_STRINGS];
    size_t len[STOP_MAX_STRINGS];
    size_t max_len;
    char *pend; /* (cap,) held tail + the chunk being examined */
    size_t n_pend, cap;
    int which; /* matched stop string, -1 while running */
};

stop_filter *stop_new(const char *const *stops, int n, hearth_err *err) {
    if (n < 0 || n > STOP_MAX_STRINGS) {
        hearth_errf(err, "at most %d stop strings, got %d", STOP_MAX_STRINGS, n);
        return NULL;
    }
    stop_filter *f = calloc(1, sizeof *f);
    if (!f) goto oom;
    f->which = -1;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(stops[i]);
        if (l == 0 || l > STOP_MAX_LEN) {
            hearth_errf(err, "stop string %d: expected 1 to %d bytes, got %zu", i + 1, STOP_MAX_LEN,
                        l);
            stop_free(f);
            return NULL;
        }
        f->str[i] = strdup(stops[i]);
        if (!f->str[i]) goto oom;
        f->len[i] = l;
        f->n = i + 1;
        if (l > f->max_len) f->max_len = l;
    }
    f->cap = 2 * f->max_len + 64;
    f->pend = malloc(f->cap);
    if (!f->pend) goto oom;
    return f;
oom:
    stop_free(f);
    hearth_errf(err, "stop strings: out of memory");
    return NULL;
}

void stop_free(stop_filter *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->str[i]);
    free(f->pend);
    free(f);
}

int stop_which(const stop_filter *f) {
    return f->which;
}

void stop_reset(stop_filter *f) {
    f->n_pend = 0;
    f->which = -1;
}

/* Examines pend: emits up to the earliest stop (returns true) or up to the
 * longest tail that is a prefix of some stop string, which stays held. */
static bool scan(stop_filter *f, stop_emit_fn emit, void *ud) {
    size_t best = (size_t)-1;
    for (int i = 0; i < f->n; i++) {
        if (f->len[i] > f->n_pend) continue;
        const char *hit = memmem(f->pend, f->n_pend, f->str[i], f->len[i]);
        if (hit && (size_t)(hit - f->pend) < best) {
            best = (size_t)(hit - f->pend);
            f->which = i;
        }
    }
    if (best != (size_t)-1) {
        if (best) emit(ud, f->pend, best);
        f->n_pend = 0;
        return true;
    }
    /* Longest held tail: the earliest start s whose suffix pend[s..) is a
     * proper prefix of a stop string. Tails are shorter than max_len. */
    size_t keep_from = f->n_pend;
    size_t lo = f->n_pend > f->max_len ? f->n_pend - f->max_len + 1 : 0;
    for (size_t s = lo; s < f->n_pend && keep_from == f->n_pend; s++) {
        size_t tl = f->n_pend - s;
        for (int i = 0; i < f->n; i++)
            if (f->len[i] > tl && !memcmp(f->pend + s, f->str[i], tl)) {
                keep_from = s;
                break;
            }
    }
    if (keep_from) emit(ud, f->pend, keep_from);
    memmove(f->pend, f->pend + keep_from, f->n_pend - keep_from);
    f->n_pend -= keep_from;
    return false;
}

bool stop_feed(stop_filter *f, const char *text, size_t len, stop_emit_fn emit, void *ud) {
    if (f->which >= 0) return true;
    if (f->n == 0) {
        if (len) emit(ud, text, len);
        return false;
    }
    while (len) {
        /* the held tail is < max_len, so there is always room for max_len + 64 */
        size_t room = f->cap - f->n_pend, k = len < room ? len : room;
        memcpy(f->pend + f->n_pend, text, k);
        f->n_pend += k;
        text += k;
        len -= k;
        if (scan(f, emit, ud)) return true;
    }
    return false;
}

void stop_flush(stop_filter *f, stop_emit_fn emit, void *ud) {
    if (f->which < 0 && f->n_pend) emit(ud, f->pend, f->n_pend);
    f->n_pend = 0;
}
