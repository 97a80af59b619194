/* Errors as values. A function that can fail takes a `hearth_err *` last,
 * returns -1 (or NULL) on failure and leaves a message that says what was
 * expected and what was found, naming the file, key or tensor. Only main()
 * decides to exit. `err` may be NULL when the caller does not want the text. */
#ifndef HEARTH_BASE_ERROR_H
#define HEARTH_BASE_ERROR_H

#include <stddef.h>

typedef struct hearth_err {
    char msg[1024];
} hearth_err;

/* Formats the message into err (if not NULL) and returns -1. */
int hearth_errf(hearth_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes an existing message: "context: old message". Returns -1. */
int hearth_err_prefix(hearth_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
