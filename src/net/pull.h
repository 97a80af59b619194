/* `hearth pull`: download a model into the store, resumably and verified.
 *
 * Sources: hf://ORG/REPO/PATH/FILE.gguf[@REVISION] (fetched from
 * $HEARTH_HF_ENDPOINT/ORG/REPO/resolve/REVISION/PATH/FILE.gguf, default
 * endpoint https://huggingface.co, revision main) or a plain http(s) URL.
 *
 * Promises:
 * - Bytes go to STORE/NAME.partial; the final name appears (rename(2)) only
 *   after the size and SHA-256 checks pass. On any failure the final name is
 *   not created and the error says what failed, expected vs found.
 * - A rerun resumes: it hashes the bytes already in NAME.partial, asks for the
 *   rest with Range, appends on 206 with a matching Content-Range, starts over
 *   on 200. A hash mismatch deletes the partial file (it can never verify).
 * - Expected hash: --sha256, else the first X-Linked-ETag of the redirect chain
 *   that is a SHA-256, else such an ETag. Without one the digest is reported
 *   as unverified.
 * - Size: Content-Length, or the Content-Range total, checked against the
 *   hub's X-Linked-Size; a short body is an error, a body longer than the
 *   announced size (or than HEARTH_PULL_MAX_BYTES when none is announced) is
 *   aborted as soon as the excess arrives.
 * - Redirects: at most PULL_MAX_REDIRECTS, http/https only, never https to
 *   http. HF_TOKEN goes (as a Bearer token) only to the hub's own origin, for
 *   hf:// sources; it is never forwarded to the host a redirect points at.
 * - Timeouts: connect (HEARTH_PULL_CONNECT_TIMEOUT s, default 30) and low
 *   speed (below HEARTH_PULL_LOW_SPEED_LIMIT bytes/s, default 1024, for
 *   HEARTH_PULL_LOW_SPEED_TIME s, default 30).
 * Network only happens in pull_run(). */
#ifndef HEARTH_NET_PULL_H
#define HEARTH_NET_PULL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/error.h"
#include "net/sha256.h"
#include "net/store.h"

#define PULL_MAX_REDIRECTS 5
#define PULL_URL_MAX       4096
#define PULL_DEFAULT_HF    "https://huggingface.co"
#define PULL_SIZE_UNKNOWN  UINT64_MAX

typedef struct pull_source {
    char url[PULL_URL_MAX];          /* the first URL to request */
    char name[STORE_NAME_MAX];       /* default file name in the store */
    bool hub;                        /* an hf:// source: HF_TOKEN may go to hub_origin */
    char hub_endpoint[PULL_URL_MAX]; /* for hub sources: the endpoint used */
} pull_source;

/* Parses an hf:// spec or an http(s) URL. hf_endpoint NULL: $HEARTH_HF_ENDPOINT
 * or PULL_DEFAULT_HF. No network. */
int pull_parse_source(const char *spec, const char *hf_endpoint, pull_source *out, hearth_err *err);

typedef enum pull_progress {
    PULL_PROGRESS_NONE,  /* silent */
    PULL_PROGRESS_TTY,   /* one line redrawn in place */
    PULL_PROGRESS_LINES, /* a line every HEARTH_PULL_PROGRESS_INTERVAL s (default 5) */
} pull_progress;

typedef struct pull_opts {
    const char *source; /* hf://... or http(s)://... */
    const char *name;   /* file name in the store; NULL: the source's */
    const char *sha256; /* expected digest (64 hex); NULL: from the hub's headers */
    bool force;         /* download even when NAME is already in the store */
    pull_progress progress;
    FILE *log; /* notes ("resuming at ...") and progress; NULL: silent */
} pull_opts;

typedef struct pull_result {
    char path[PULL_URL_MAX]; /* the final file */
    uint64_t size;
    char sha256[SHA256_HEX_SIZE]; /* computed digest ("" when already_present unverified) */
    bool verified;                /* matched an expected digest */
    char hash_source[32];         /* "--sha256", "X-Linked-ETag", "ETag" or "" */
    uint64_t resumed_from;        /* bytes kept from an earlier partial download */
    bool already_present;         /* NAME was there already; nothing downloaded */
} pull_result;

int pull_run(const pull_opts *o, pull_result *r, hearth_err *err);

/* Pieces exposed for the unit tests. */

/* 0 when a redirect from `from` to `to` may be followed: http(s) only, and not
 * https -> http. */
int pull_redirect_check(const char *from, const char *to, hearth_err *err);
/* Same scheme, host (case-insensitive) and port (defaults filled in). */
bool pull_same_origin(const char *a, const char *b);
/* "bytes START-END/TOTAL" -> 0 (total PULL_SIZE_UNKNOWN for "*");
 * "bytes * /TOTAL" (no space) -> 1 with *start = *end = PULL_SIZE_UNKNOWN; malformed -> -1. */
int pull_parse_content_range(const char *v, uint64_t *start, uint64_t *end, uint64_t *total);
/* An (E)Tag value that is a SHA-256: quotes, a W/ prefix and blanks dropped,
 * 64 hex digits, lowercased into out. False otherwise. */
bool pull_hex_digest(const char *v, char out[SHA256_HEX_SIZE]);

#endif
