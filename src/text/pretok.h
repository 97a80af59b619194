/* Pre-tokenizer for byte-level BPE (internal to src/text): splits text into
 * words with the regex list that `tokenizer.ggml.pre` names, on PCRE2 (UTF +
 * UCP). Each regex in the list splits every piece left by the previous one
 * into matched and unmatched parts, both kept, in order (the reference
 * tokenizer's semantics). The input must be valid UTF-8 (the tokenizer
 * sanitizes it first). */
#ifndef HEARTH_TEXT_PRETOK_H
#define HEARTH_TEXT_PRETOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct tok_span {
    size_t off, len; /* bytes */
} tok_span;

typedef struct tok_spans {
    tok_span *v;
    size_t n, cap;
} tok_spans;

typedef struct tok_pretok tok_pretok;

/* Per-name settings besides the regexes. */
typedef struct tok_pretok_info {
    bool ignore_merges; /* a word that is a whole token is emitted as is (llama3) */
    bool add_bos;       /* default for add_bos_token when the file does not say */
} tok_pretok_info;

/* NULL with an error naming `name` when it is unknown. */
tok_pretok *tok_pretok_new(const char *name, tok_pretok_info *info, hearth_err *err);
void tok_pretok_free(tok_pretok *p);

/* Match state for one thread (PCRE2 match data, JIT stack); reuse it across
 * calls: creating one costs more than splitting a short text. */
typedef struct tok_pretok_ctx tok_pretok_ctx;
tok_pretok_ctx *tok_pretok_ctx_new(hearth_err *err);
void tok_pretok_ctx_free(tok_pretok_ctx *c);

/* Splits text[0..n) (valid UTF-8) into out (cleared first; grown as needed);
 * tmp is scratch of the same kind. */
int tok_pretok_split(const tok_pretok *p, tok_pretok_ctx *c, const uint8_t *text, size_t n,
                     tok_spans *out, tok_spans *tmp, hearth_err *err);

/* Comma-separated list of the names hearth knows (for error messages). */
const char *tok_pretok_known(void);
/* The i-th entry of the table as '|'-separated aliases; NULL past the end (tests). */
const char *tok_pretok_name_at(size_t i);

#endif
