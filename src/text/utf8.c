/* UTF-8 decoding and encoding; see utf8.h for the two decoders' contracts. */
#include "text/utf8.h"

size_t tok_utf8_lead_len(uint8_t c) {
    static const uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}

int tok_utf8_next(const uint8_t *s, size_t n, uint32_t *cp, size_t *bad) {
    *bad = 1;
    *cp = TOK_UTF8_REPLACEMENT;
    if (n == 0) return 0;
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0; /* no overlongs */
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return -1;
    }
    for (size_t i = 1; i < len; i++) {
        if (i >= n) return 0; /* valid so far, incomplete */
        uint8_t b = s[i];
        uint8_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) {
            *bad = i; /* the maximal valid prefix is one replaced unit */
            return -1;
        }
        v = (v << 6) | (b & 0x3F);
    }
    *cp = v;
    return (int)len;
}

size_t tok_utf8_next_lenient(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t c = s[0];
    if (!(c & 0x80)) {
        *cp = c;
        return 1;
    }
    size_t len = 0;
    uint32_t v = 0;
    if (!(c & 0x40)) {
        len = 0;
    } else if (!(c & 0x20)) {
        len = 2;
        v = c & 0x1F;
    } else if (!(c & 0x10)) {
        len = 3;
        v = c & 0x0F;
    } else if (!(c & 0x08)) {
        len = 4;
        v = c & 0x07;
    }
    if (len == 0 || len > n) {
        *cp = TOK_UTF8_REPLACEMENT;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = TOK_UTF8_REPLACEMENT;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

size_t tok_utf8_encode(uint32_t cp, uint8_t out[4]) {
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = TOK_UTF8_REPLACEMENT;
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

bool tok_utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t bad;
        int k = tok_utf8_next(s + i, n - i, &cp, &bad);
        if (k <= 0) return false;
        i += (size_t)k;
    }
    return true;
}
