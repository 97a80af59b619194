#include "cli_util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int opt_int(const char *cmd, const char *opt, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || isspace((unsigned char)*s) || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "hearth %s: %s: expected an integer in [%ld, %ld], found '%s'\n", cmd, opt,
                lo, hi, s ? s : "");
        return -1;
    }
    *out = (int)v;
    return 0;
}

int opt_u64(const char *cmd, const char *opt, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = s ? strtoull(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || *s == '-' || *s == '+' || isspace((unsigned char)*s)) {
        fprintf(stderr, "hearth %s: %s: expected an integer in [0, 2^64), found '%s'\n", cmd, opt,
                s ? s : "");
        return -1;
    }
    *out = v;
    return 0;
}

int opt_float(const char *cmd, const char *opt, const char *s, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || isspace((unsigned char)*s) || *end || errno || !isfinite(v) || v < lo ||
        v > hi) {
        fprintf(stderr, "hearth %s: %s: expected a number in [%g, %g], found '%s'\n", cmd, opt, lo,
                hi, s ? s : "");
        return -1;
    }
    *out = (float)v;
    return 0;
}

char *cli_read_stream(const char *cmd, FILE *f, const char *name, size_t max, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) {
            fprintf(stderr, "hearth %s: %s: out of memory after %zu bytes\n", cmd, name, n);
            return NULL;
        }
        if (n == cap) {
            if (cap > max) break; /* more than max bytes were read */
            char *b = realloc(buf, 2 * cap + 1);
            if (!b) free(buf);
            buf = b;
            cap *= 2;
            continue;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    if (ferror(f)) {
        fprintf(stderr, "hearth %s: %s: read failed: %s\n", cmd, name, strerror(errno));
        free(buf);
        return NULL;
    }
    if (n > max) {
        fprintf(stderr, "hearth %s: %s: longer than the limit of %zu bytes\n", cmd, name, max);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

char *cli_read_file(const char *cmd, const char *path, size_t max, size_t *len) {
    if (!strcmp(path, "-")) return cli_read_stream(cmd, stdin, "stdin", max, len);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "hearth %s: %s: %s\n", cmd, path, strerror(errno));
        return NULL;
    }
    char *buf = cli_read_stream(cmd, f, path, max, len);
    fclose(f);
    return buf;
}

char *cli_printable(char *s) {
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) *p = '?';
    return s;
}
