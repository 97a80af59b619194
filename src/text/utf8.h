/* UTF-8 helpers for the tokenizer and the streaming detokenizer.
 *
 * Two decoders on purpose:
 *  - tok_utf8_next() is strict (RFC 3629: no overlongs, no surrogates, nothing
 *    above U+10FFFF) and is what the detokenizer uses to decide what is a whole
 *    character;
 *  - tok_utf8_next_lenient() mirrors the reference tokenizer (llama.cpp), which
 *    takes the length from the lead byte and checks only that the continuation
 *    bytes are 10xxxxxx; an invalid byte becomes U+FFFD and consumes one byte.
 *    The BPE pre-tokenizer must see the text exactly as the reference does. */
#ifndef HEARTH_TEXT_UTF8_H
#define HEARTH_TEXT_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOK_UTF8_REPLACEMENT 0xFFFDu

/* Length of the sequence a lead byte announces (1..4; 1 for continuation and
 * invalid bytes), as the reference tokenizer computes it. */
size_t tok_utf8_lead_len(uint8_t c);

/* Strict decode of one character at s[0..n). Returns its length (1..4) and
 * sets *cp; returns 0 if s starts with an incomplete but so far valid sequence
 * (more bytes could complete it); returns -1 if s[0] starts an invalid
 * sequence (*cp = U+FFFD; the caller skips `*bad` bytes, at least 1). */
int tok_utf8_next(const uint8_t *s, size_t n, uint32_t *cp, size_t *bad);

/* Lenient decode (see above). n > 0. Returns the number of bytes consumed. */
size_t tok_utf8_next_lenient(const uint8_t *s, size_t n, uint32_t *cp);

/* Encodes cp (surrogates and values above U+10FFFF become U+FFFD) into out[4];
 * returns the length. */
size_t tok_utf8_encode(uint32_t cp, uint8_t out[4]);

/* True if s[0..n) is entirely valid UTF-8 (strict). */
bool tok_utf8_valid(const uint8_t *s, size_t n);

#endif
