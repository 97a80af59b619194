/* What every hearth command shares: strict number parsing of option values
 * and reading a whole input (a file or stdin) with a size bound. Both print
 * "hearth CMD: ..." on failure, so callers only choose the exit status. */
#ifndef HEARTH_TOOLS_CLI_UTIL_H
#define HEARTH_TOOLS_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Strict parsers: the whole string must be the number (no sign for opt_u64,
 * no leading space), within [lo, hi]. On failure they print
 * "hearth CMD: OPT: expected ..., found 'S'" and return -1. s may be NULL
 * (a missing value). */
int opt_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out);
int opt_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
int opt_float(const char *cmd, const char *opt, const char *s, double lo, double hi, float *out);

/* All of f (called `name` in messages), NUL-terminated, at most max bytes.
 * NULL after printing "hearth CMD: NAME: ..." when it cannot be read or is
 * longer than max (never truncated). The caller frees. */
char *cli_read_stream(const char *cmd, FILE *f, const char *name, size_t max, size_t *len);
/* The same for the file at path ("-" is stdin). */
char *cli_read_file(const char *cmd, const char *path, size_t max, size_t *len);

/* Replaces control bytes (< 0x20, 0x7f) in s with '?', so text from a file
 * (a model's name or architecture) cannot drive the terminal. Returns s. */
char *cli_printable(char *s);

#endif
