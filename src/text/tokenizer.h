/* Tokenizers from GGUF metadata: SentencePiece ("llama": bigram merges by
 * score, byte fallback) and byte-level BPE ("gpt2": regex pre-tokenizer chosen
 * by tokenizer.ggml.pre, then merges by rank). Results match the reference
 * runtime (llama.cpp) token for token on the fixtures in ../shared.
 *
 * Promises:
 *  - tok_load() copies what it needs: the gguf_file may be closed after it.
 *  - Any byte string encodes without crashing: invalid UTF-8 is handled as the
 *    reference does (SPM: byte tokens; BPE: each invalid byte becomes U+FFFD).
 *  - Cost is about linear in the input (hash maps for text -> id and for
 *    merge pairs; heaps for the merge order); a 1 MB input takes well under a
 *    second. Inputs above TOK_MAX_INPUT bytes are refused with an error.
 *  - The detokenizer only ever emits whole, valid UTF-8 characters.
 * A tok_vocab is read-only after loading: several threads may encode and
 * detokenize with it at once (each with its own tok_detok). */
#ifndef HEARTH_TEXT_TOKENIZER_H
#define HEARTH_TEXT_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "gguf/gguf.h"

#define TOK_MAX_INPUT ((size_t)256 << 20) /* bytes of text per tok_encode call */

typedef struct tok_vocab tok_vocab;

typedef enum tok_kind {
    TOK_SPM = 1, /* tokenizer.ggml.model = "llama" */
    TOK_BPE = 2, /* tokenizer.ggml.model = "gpt2" */
} tok_kind;

/* Token attributes (tokenizer.ggml.token_type, as flags). */
enum {
    TOK_ATTR_NORMAL = 1 << 0,
    TOK_ATTR_UNKNOWN = 1 << 1,
    TOK_ATTR_CONTROL = 1 << 2,
    TOK_ATTR_USER_DEFINED = 1 << 3,
    TOK_ATTR_UNUSED = 1 << 4,
    TOK_ATTR_BYTE = 1 << 5,
};

tok_vocab *tok_load(const gguf_file *f, hearth_err *err);
void tok_free(tok_vocab *v);

/* Encodes text[0..len) into a malloc'd array *out of *n_out ids (free() it;
 * *out may be NULL when *n_out is 0).
 * add_special: BOS first when the model's add_bos_token rule says so (and EOS
 *   last per add_eos_token).
 * parse_special: control-token texts in the text (e.g. "<|im_start|>") become
 *   those tokens. User-defined tokens (e.g. "<think>") are always matched, as
 *   the reference does. */
int tok_encode(const tok_vocab *v, const char *text, size_t len, bool add_special,
               bool parse_special, int32_t **out, size_t *n_out, hearth_err *err);

/* Accessors. Special ids are -1 when the model has none. */
tok_kind tok_type(const tok_vocab *v);
const char *tok_pre(const tok_vocab *v); /* pre-tokenizer name ("" for SPM) */
int32_t tok_n_vocab(const tok_vocab *v);
int32_t tok_bos(const tok_vocab *v);
int32_t tok_eos(const tok_vocab *v);
int32_t tok_eot(const tok_vocab *v); /* end of turn: <|eot_id|>, <|im_end|>, ... */
int32_t tok_unk(const tok_vocab *v);
int32_t tok_pad(const tok_vocab *v);
bool tok_add_bos(const tok_vocab *v);
bool tok_add_space_prefix(const tok_vocab *v);
/* End of generation: EOS, EOT, EOM and the tokens the reference treats alike. */
bool tok_is_eog(const tok_vocab *v, int32_t id);
unsigned tok_attr(const tok_vocab *v, int32_t id); /* 0 for ids out of range */
/* Id of the token whose vocabulary text is exactly text[0..len), or -1. */
int32_t tok_token_to_id(const tok_vocab *v, const char *text, size_t len);
/* The vocabulary text of id (as stored: "▁the", "Ġthe", "<0x0A>"), or NULL. */
const char *tok_text(const tok_vocab *v, int32_t id, size_t *len);

/* The bytes id stands for (may be part of a UTF-8 character). Control and
 * unknown tokens give "" unless `special`. Fails for ids out of range. The
 * pointer stays valid as long as v. */
int tok_piece(const tok_vocab *v, int32_t id, bool special, const char **piece, size_t *len,
              hearth_err *err);

/* Streaming detokenizer: feed ids one at a time, get text that is always whole
 * UTF-8 characters (incomplete sequences are held back across calls; invalid
 * bytes become U+FFFD). */
enum {
    TOK_DETOK_SPECIAL = 1 << 0,     /* render control/unknown tokens' text */
    TOK_DETOK_STRIP_SPACE = 1 << 1, /* drop the leading space SPM's space prefix adds */
};
typedef struct tok_detok tok_detok;
tok_detok *tok_detok_new(const tok_vocab *v, unsigned flags, hearth_err *err);
void tok_detok_free(tok_detok *d);
void tok_detok_reset(tok_detok *d);
/* Returns the text completed by id (len may be 0), valid until the next call
 * on d; NULL with an error for an id out of range (d is unchanged then). */
const char *tok_detok_push(tok_detok *d, int32_t id, size_t *len, hearth_err *err);
/* Ends the stream: held-back bytes of an unfinished character become U+FFFD. */
const char *tok_detok_flush(tok_detok *d, size_t *len);

/* Whole-sequence detokenization (same flags); *out is malloc'd and
 * NUL-terminated. */
int tok_decode(const tok_vocab *v, const int32_t *ids, size_t n, unsigned flags, char **out,
               size_t *n_out, hearth_err *err);

#endif
