/* Helpers shared by the fuzz harnesses (header-only, each harness is one
 * translation unit). Reference files (vocabularies, chat templates) come from
 * ../shared: $HEARTH_SHARED if set, else the path CMake compiled in. */
#ifndef HEARTH_FUZZ_COMMON_H
#define HEARTH_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef HEARTH_SHARED_DEFAULT
#define HEARTH_SHARED_DEFAULT "../shared"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "$HEARTH_SHARED/rel" in a static buffer. */
static inline const char *fz_shared(const char *rel) {
    static char buf[4096];
    const char *dir = getenv("HEARTH_SHARED");
    if (!dir || !*dir) dir = HEARTH_SHARED_DEFAULT;
    snprintf(buf, sizeof buf, "%s/%s", dir, rel);
    return buf;
}

/* Whole file, malloc'd and NUL-terminated; NULL if unreadable. */
static inline char *fz_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n + 1 >= cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
        }
        size_t r = fread(b + n, 1, cap - n - 1, f);
        if (r == 0) break;
        n += r;
    }
    fclose(f);
    if (!b) return NULL;
    b[n] = 0;
    if (len) *len = n;
    return b;
}

/* A harness property violation: crash loudly so libFuzzer keeps the input. */
#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond);          \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

/* Splits data at NUL bytes into up to max fields (the last takes the rest).
 * Each field is copied into a malloc'd NUL-terminated string (free with fz_free_fields). */
static inline int fz_split(const uint8_t *data, size_t size, char **field, size_t *flen, int max) {
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= size && n < max; i++) {
        if (i == size || (data[i] == 0 && n < max - 1)) {
            size_t l = i - start;
            field[n] = malloc(l + 1);
            if (!field[n]) return n;
            memcpy(field[n], data + start, l);
            field[n][l] = 0;
            flen[n] = l;
            n++;
            start = i + 1;
            if (i == size) break;
        }
    }
    return n;
}

static inline void fz_free_fields(char **field, int n) {
    for (int i = 0; i < n; i++) free(field[i]);
}

/* True if s[0..n) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static inline int fz_valid_utf8(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3, cp = c & 0x07;
        } else {
            return 0;
        }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (p[i + j] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000)) return 0;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += k + 1;
    }
    return 1;
}

#endif
