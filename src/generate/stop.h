/* Stop strings, matched across token boundaries.
 *
 * Text goes in as it is generated; what comes out is the text that can no
 * longer be part of a stop string. A tail that might be the start of a stop
 * string is held back until the next feed decides it. When a stop string
 * appears, the text before it is emitted, it and everything after it are
 * dropped, and the filter reports the stop. The stop string itself is never
 * emitted. At the end of generation, stop_flush releases the held tail.
 *
 * Memory: a buffer of twice the longest stop string, allocated at creation. */
#ifndef HEARTH_GENERATE_STOP_H
#define HEARTH_GENERATE_STOP_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

#define STOP_MAX_STRINGS 64
#define STOP_MAX_LEN     1024

typedef void (*stop_emit_fn)(void *ud, const char *text, size_t len);

typedef struct stop_filter stop_filter;

/* Copies the n strings (empty ones are rejected; at most STOP_MAX_STRINGS, each
 * at most STOP_MAX_LEN bytes). n = 0 gives a filter that passes everything. */
stop_filter *stop_new(const char *const *stops, int n, hearth_err *err);
void stop_free(stop_filter *f);

/* Feeds text; emits what is safe. Returns true when a stop string was found
 * (then, and after, further feeds emit nothing). */
bool stop_feed(stop_filter *f, const char *text, size_t len, stop_emit_fn emit, void *ud);
/* Emits the held tail (unless stopped). */
void stop_flush(stop_filter *f, stop_emit_fn emit, void *ud);
/* Index of the stop string that matched, or -1. */
int stop_which(const stop_filter *f);
/* Forget held text and the stop, for the next generation. */
void stop_reset(stop_filter *f);

#endif
