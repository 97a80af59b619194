/* SHA-256 (FIPS 180-4), incremental. Used by `hearth pull` to verify downloads
 * while they are written. Any chunking of the input gives the same digest. */
#ifndef HEARTH_NET_SHA256_H
#define HEARTH_NET_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32
#define SHA256_HEX_SIZE    65 /* 64 lowercase hex digits and a NUL */

typedef struct sha256_ctx {
    uint32_t h[8];
    uint64_t n_bytes;  /* total message length so far */
    uint8_t block[64]; /* pending partial block */
    size_t n_block;    /* bytes used in block */
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
/* Writes the digest; the context must be re-initialised before reuse. */
void sha256_final(sha256_ctx *c, uint8_t out[SHA256_DIGEST_SIZE]);

/* One-shot helper. */
void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_SIZE]);
/* Lowercase hex, NUL-terminated. */
void sha256_hex(const uint8_t digest[SHA256_DIGEST_SIZE], char out[SHA256_HEX_SIZE]);

#endif
