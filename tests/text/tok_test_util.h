/* Helpers shared by the tokenizer tests (header-only, static). */
#ifndef HEARTH_TESTS_TOK_TEST_UTIL_H
#define HEARTH_TESTS_TOK_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "text/tokenizer.h"

/* $HEARTH_SHARED/<rel> into buf; fails the test when HEARTH_SHARED is unset. */
static inline void shared_path(char *buf, size_t cap, const char *rel) {
    const char *root = getenv("HEARTH_SHARED");
    if (!root) {
        fprintf(stderr, "HEARTH_SHARED is not set\n");
        fail();
    }
    snprintf(buf, cap, "%s/%s", root, rel);
}

/* Whole file, NUL-terminated; NULL (and a message) when unreadable. */
static inline char *read_all(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 4096 > cap) buf = realloc(buf, cap *= 2);
        size_t k = fread(buf + n, 1, cap - n - 1, fp);
        if (k == 0) break;
        n += k;
    }
    fclose(fp);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

/* Opens a GGUF under $HEARTH_SHARED and loads its tokenizer (asserting). */
static inline tok_vocab *load_vocab(const char *rel) {
    char path[4096];
    shared_path(path, sizeof path, rel);
    hearth_err e = {{0}};
    gguf_file *f = gguf_open(path, &e);
    if (!f) fprintf(stderr, "%s: %s\n", path, e.msg);
    assert_non_null(f);
    tok_vocab *v = tok_load(f, &e);
    if (!v) fprintf(stderr, "%s: %s\n", path, e.msg);
    gguf_close(f); /* the vocabulary must not need the file any more */
    assert_non_null(v);
    return v;
}

#endif
