/* Tokenizers: loading from GGUF, SPM and BPE encoding, special-token
 * partitioning, pieces and the streaming detokenizer. The algorithms follow
 * the reference runtime (llama.cpp's llama-vocab.cpp) so that ids agree:
 *
 *  SPM: spaces become U+2581 ("▁"), one is prefixed when add_space_prefix and
 *       the fragment starts the text or follows a special token; the text is
 *       cut into UTF-8 characters (length from the lead byte); adjacent pairs
 *       whose concatenation is a token are merged best score first (ties: the
 *       leftmost); what is not a token at the end falls back to <0xXX> bytes.
 *  BPE: the pre-tokenizer (pretok.c) cuts the text into words; each byte of a
 *       word starts as the symbol for its GPT-2 byte-to-unicode character;
 *       adjacent symbol pairs listed in tokenizer.ggml.merges merge lowest
 *       rank first (ties: the leftmost).
 *
 * Symbols are ids into one string table: ids < n_vocab are tokens, ids above
 * are merge parts/results that are not tokens (rare, but the reference merges
 * by text, so they must merge too). Merge pairs are keyed by (left id, right id). */
#include "text/tokenizer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/pretok.h"
#include "text/utf8.h"

#define TOK_MAX_VOCAB    (1 << 24)
#define TOK_MAX_TOKEN    (1 << 16) /* bytes of one token text */
#define TOK_TRIE_MAX_LEN 64        /* longer special texts are found with memmem */
#define SYM_DEAD         (-2)
/* Merging a word queues about three pairs per byte; past this many bytes the
 * queue stops fitting in cache and a 1 MB word would take a second. Longer
 * words (only ever seen in hostile or degenerate input: a megabyte of one
 * letter) are merged in pieces of this size, which can differ from the
 * reference at the cuts. SPM text is cut where no token can span the cut
 * first (exact), and at this size only when there is no such place. */
#define TOK_MAX_WORD 8192
#define TOK_SPM_SEG  1024 /* SPM: cut at an exact place once a piece is this long */

struct tok_vocab {
    tok_kind kind;
    char pre[64];
    int32_t n_vocab;

    /* String table: symbol i is arena[sym_off[i] .. + sym_len[i]). */
    char *arena;
    size_t arena_len, arena_cap;
    size_t *sym_off;
    uint32_t *sym_len;
    int32_t n_sym, sym_cap;
    int32_t *map; /* open addressing: symbol id or -1 */
    size_t map_mask;

    float *score;  /* (n_vocab,) */
    uint8_t *attr; /* (n_vocab,) TOK_ATTR_* */
    uint8_t *eog;  /* (n_vocab,) */
    size_t max_len;

    /* BPE merges: key (left+1)<<32 | (right+1) -> rank, result symbol. */
    uint64_t *pk;
    int32_t *prank, *pres;
    size_t pmask;

    /* Pieces as rendered with special = true. */
    char *pieces;
    size_t *piece_off;
    uint32_t *piece_len;
    size_t max_piece;

    /* Special tokens (control, user-defined, unknown), longest text first. */
    int32_t *special;
    int32_t n_special;
    /* Trie over the special texts up to TOK_TRIE_MAX_LEN bytes: node 0 is the
     * root; edges (node<<8 | byte)+1 -> child in an open-addressing table;
     * trie_sp[node] = index into special[] of the text ending there, or -1. */
    int32_t *trie_sp;
    int32_t n_nodes;
    uint64_t *tk;
    int32_t *tv;
    size_t tmask;

    int32_t bos, eos, eot, eom, unk, pad;
    bool add_bos, add_eos, add_space_prefix, ignore_merges;
    bool spm_cut; /* SPM: no token has a "▁" after a character other than "▁" */

    int32_t spm_byte[256]; /* SPM byte fallback token per byte, or -1 */
    int32_t byte_sym[256]; /* BPE: symbol of the byte's mapped character, or -1 */
    int32_t single[256];   /* BPE: token whose text is this one byte, or -1 */
    uint8_t enc[256][2];   /* BPE: UTF-8 of the byte's mapped character */
    uint8_t enc_len[256];
    int16_t dec[324]; /* BPE: mapped code point -> byte, -1 if none */

    tok_pretok *pretok;
};

/* ---- hashing and the string table ---------------------------------------- */

static uint64_t hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

static int32_t map_find(const tok_vocab *v, const void *s, size_t n) {
    if (n == 0 || n > v->max_len) return -1;
    size_t h = hash_bytes(s, n) & v->map_mask;
    for (;;) {
        int32_t id = v->map[h];
        if (id < 0) return -1;
        if (v->sym_len[id] == n && memcmp(v->arena + v->sym_off[id], s, n) == 0) return id;
        h = (h + 1) & v->map_mask;
    }
}

/* Appends a symbol (not yet in the map) and indexes it. The map was sized
 * for every symbol load can create, so it never fills. */
static int32_t sym_add(tok_vocab *v, const void *s, size_t n, bool index, hearth_err *err) {
    if (v->n_sym == v->sym_cap) {
        int32_t cap = v->sym_cap ? v->sym_cap * 2 : 1024;
        size_t *off = realloc(v->sym_off, (size_t)cap * sizeof *off);
        if (off) v->sym_off = off;
        uint32_t *len = realloc(v->sym_len, (size_t)cap * sizeof *len);
        if (len) v->sym_len = len;
        if (!off || !len) return hearth_errf(err, "out of memory for the vocabulary");
        v->sym_cap = cap;
    }
    if (v->arena_len + n + 1 > v->arena_cap) {
        size_t cap = v->arena_cap ? v->arena_cap : 1 << 16;
        while (cap < v->arena_len + n + 1) cap *= 2;
        char *a = realloc(v->arena, cap);
        if (!a) return hearth_errf(err, "out of memory for the vocabulary text");
        v->arena = a;
        v->arena_cap = cap;
    }
    int32_t id = v->n_sym++;
    if (n) memcpy(v->arena + v->arena_len, s, n);
    v->arena[v->arena_len + n] = 0;
    v->sym_off[id] = v->arena_len;
    v->sym_len[id] = (uint32_t)n;
    v->arena_len += n + 1;
    if (n > v->max_len) v->max_len = n;
    if (index && n > 0) {
        size_t h = hash_bytes(s, n) & v->map_mask;
        while (v->map[h] >= 0) h = (h + 1) & v->map_mask;
        v->map[h] = id;
    }
    return id;
}

static int32_t sym_get(tok_vocab *v, const void *s, size_t n, hearth_err *err) {
    int32_t id = map_find(v, s, n);
    if (id >= 0) return id;
    return sym_add(v, s, n, true, err);
}

static const char *sym_text(const tok_vocab *v, int32_t id) {
    return v->arena + v->sym_off[id];
}

static bool pair_find(const tok_vocab *v, int32_t l, int32_t r, int32_t *rank, int32_t *res) {
    if (!v->pk) return false;
    uint64_t key = ((uint64_t)(uint32_t)(l + 1) << 32) | (uint32_t)(r + 1);
    size_t h = hash_u64(key) & v->pmask;
    for (;;) {
        if (v->pk[h] == 0) return false;
        if (v->pk[h] == key) {
            *rank = v->prank[h];
            *res = v->pres[h];
            return true;
        }
        h = (h + 1) & v->pmask;
    }
}

/* ---- loading ---------------------------------------------------------------- */

static int32_t trie_child(const tok_vocab *v, int32_t node, uint8_t c) {
    uint64_t key = (((uint64_t)node << 8) | c) + 1;
    size_t h = hash_u64(key) & v->tmask;
    for (;;) {
        if (v->tk[h] == 0) return -1;
        if (v->tk[h] == key) return v->tv[h];
        h = (h + 1) & v->tmask;
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int build_special(tok_vocab *v, hearth_err *err) {
    int32_t n = 0;
    for (int32_t i = 0; i < v->n_vocab; i++)
        if ((v->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN)) &&
            v->sym_len[i] > 0)
            n++;
    v->special = malloc(((size_t)n + 1) * sizeof *v->special);
    if (!v->special) return hearth_errf(err, "out of memory for the special tokens");
    /* Longest text first, then lowest id: sort keys (~len << 32 | id). */
    uint64_t *keys = malloc(((size_t)n + 1) * sizeof *keys);
    if (!keys) return hearth_errf(err, "out of memory for the special tokens");
    n = 0;
    size_t trie_bytes = 0;
    for (int32_t i = 0; i < v->n_vocab; i++)
        if ((v->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN)) &&
            v->sym_len[i] > 0) {
            keys[n++] = ((uint64_t)(UINT32_MAX - v->sym_len[i]) << 32) | (uint32_t)i;
            if (v->sym_len[i] <= TOK_TRIE_MAX_LEN) trie_bytes += v->sym_len[i];
        }
    qsort(keys, (size_t)n, sizeof *keys, cmp_u64);
    for (int32_t k = 0; k < n; k++) v->special[k] = (int32_t)(uint32_t)keys[k];
    free(keys);
    v->n_special = n;

    v->trie_sp = malloc((trie_bytes + 1) * sizeof *v->trie_sp);
    v->tmask = pow2_at_least(2 * trie_bytes + 2) - 1;
    v->tk = calloc(v->tmask + 1, sizeof *v->tk);
    v->tv = malloc((v->tmask + 1) * sizeof *v->tv);
    if (!v->trie_sp || !v->tk || !v->tv) return hearth_errf(err, "out of memory for the trie");
    v->n_nodes = 1;
    v->trie_sp[0] = -1;
    for (int32_t s = 0; s < n; s++) {
        int32_t id = v->special[s];
        size_t len = v->sym_len[id];
        if (len > TOK_TRIE_MAX_LEN) continue;
        const uint8_t *t = (const uint8_t *)sym_text(v, id);
        int32_t node = 0;
        for (size_t k = 0; k < len; k++) {
            int32_t child = trie_child(v, node, t[k]);
            if (child < 0) {
                child = v->n_nodes++;
                v->trie_sp[child] = -1;
                uint64_t key = (((uint64_t)node << 8) | t[k]) + 1;
                size_t h = hash_u64(key) & v->tmask;
                while (v->tk[h] != 0) h = (h + 1) & v->tmask;
                v->tk[h] = key;
                v->tv[h] = child;
            }
            node = child;
        }
        if (v->trie_sp[node] < 0) v->trie_sp[node] = s;
    }
    return 0;
}

/* GPT-2's byte-to-unicode table: printable bytes map to themselves, the rest
 * to U+0100 + k in byte order. */
static void build_byte_map(tok_vocab *v) {
    for (int i = 0; i < 324; i++) v->dec[i] = -1;
    int k = 0;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        uint32_t cp = keep ? (uint32_t)b : (uint32_t)(256 + k++);
        uint8_t u[4];
        size_t n = tok_utf8_encode(cp, u);
        memcpy(v->enc[b], u, n);
        v->enc_len[b] = (uint8_t)n;
        v->dec[cp] = (int16_t)b;
    }
}

static int parse_byte_token(const char *s, size_t n) {
    /* "<0xXX>" */
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int val = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                       : -1;
        if (d < 0) return -1;
        val = val * 16 + d;
    }
    return val;
}

static int build_pieces(tok_vocab *v, hearth_err *err) {
    size_t total = 0;
    for (int32_t i = 0; i < v->n_vocab; i++) total += v->sym_len[i] + 1;
    v->pieces = malloc(total + 1);
    v->piece_off = malloc((size_t)v->n_vocab * sizeof *v->piece_off);
    v->piece_len = malloc((size_t)v->n_vocab * sizeof *v->piece_len);
    if (!v->pieces || !v->piece_off || !v->piece_len)
        return hearth_errf(err, "out of memory for the token pieces");
    size_t at = 0;
    for (int32_t i = 0; i < v->n_vocab; i++) {
        const char *t = sym_text(v, i);
        size_t n = v->sym_len[i], len = 0;
        char *out = v->pieces + at;
        unsigned a = v->attr[i];
        if (a & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED)) {
            memcpy(out, t, n);
            len = n;
        } else if (a & TOK_ATTR_NORMAL) {
            if (v->kind == TOK_SPM) { /* "▁" (E2 96 81) -> ' ' */
                for (size_t k = 0; k < n;) {
                    if (k + 3 <= n && memcmp(t + k, "\xE2\x96\x81", 3) == 0) {
                        out[len++] = ' ';
                        k += 3;
                    } else {
                        out[len++] = t[k++];
                    }
                }
            } else { /* undo the byte-to-unicode mapping */
                for (size_t k = 0; k < n;) {
                    uint32_t cp;
                    size_t step = tok_utf8_next_lenient((const uint8_t *)t + k, n - k, &cp);
                    if (cp < 324 && v->dec[cp] >= 0 && cp != TOK_UTF8_REPLACEMENT) {
                        out[len++] = (char)v->dec[cp];
                    } else {
                        memcpy(out + len, t + k, step);
                        len += step;
                    }
                    k += step;
                }
            }
        } else if (a & TOK_ATTR_BYTE) {
            int b = parse_byte_token(t, n);
            if (b >= 0) {
                out[len++] = (char)b;
            } else {
                memcpy(out, t, n);
                len = n;
            }
        }
        v->piece_off[i] = at;
        v->piece_len[i] = (uint32_t)len;
        if (len > v->max_piece) v->max_piece = len;
        at += len;
    }
    return 0;
}

/* "<｜end▁of▁sentence｜>" (octal escapes: a hex escape would swallow the "e") */
#define DEEPSEEK_EOS "<\357\275\234end\342\226\201of\342\226\201sentence\357\275\234>"

static const char *const eot_texts[] = {
    "<|eot_id|>",      "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>",      "_<EOT>",  DEEPSEEK_EOS,
};
static const char *const eog_texts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    DEEPSEEK_EOS,
    /* fill-in-the-middle pad / repo / file separators end generation too */
    "<|fim_pad|>",
    "<fim-pad>",
    "<fim_pad>",
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
    "<|file_sep|>",
};

static int32_t find_text(const tok_vocab *v, const char *s) {
    int32_t id = map_find(v, s, strlen(s));
    return id < v->n_vocab ? id : -1;
}

/* A special token id key: absent, negative or out of range keeps the default
 * (as the reference does); a non-integer value is an error. */
static int opt_id(const gguf_file *f, const char *key, int32_t *id, int32_t n_vocab,
                  hearth_err *err) {
    if (*id >= n_vocab) *id = -1; /* a default out of range is no token */
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return 0;
    bool integer = kv->type == GGUF_INT8 || kv->type == GGUF_UINT8 || kv->type == GGUF_INT16 ||
                   kv->type == GGUF_UINT16 || kv->type == GGUF_INT32 || kv->type == GGUF_UINT32 ||
                   kv->type == GGUF_INT64 || kv->type == GGUF_UINT64;
    if (!integer)
        return hearth_errf(err, "key '%s': expected an integer token id, found %s", key,
                           gguf_vtype_name(kv->type));
    int64_t x;
    hearth_err ignore;
    if (gguf_get_i64(f, key, &x, &ignore) == 0 && x >= 0 && x < n_vocab) *id = (int32_t)x;
    return 0;
}

void tok_free(tok_vocab *v) {
    if (!v) return;
    free(v->arena);
    free(v->sym_off);
    free(v->sym_len);
    free(v->map);
    free(v->score);
    free(v->attr);
    free(v->eog);
    free(v->pk);
    free(v->prank);
    free(v->pres);
    free(v->pieces);
    free(v->piece_off);
    free(v->piece_len);
    free(v->special);
    free(v->trie_sp);
    free(v->tk);
    free(v->tv);
    tok_pretok_free(v->pretok);
    free(v);
}

static int load_merges(tok_vocab *v, const gguf_arr *m, hearth_err *err) {
    v->pmask = pow2_at_least(2 * m->n + 2) - 1;
    v->pk = calloc(v->pmask + 1, sizeof *v->pk);
    v->prank = malloc((v->pmask + 1) * sizeof *v->prank);
    v->pres = malloc((v->pmask + 1) * sizeof *v->pres);
    char *buf = malloc(2 * (size_t)TOK_MAX_TOKEN + 2);
    if (!v->pk || !v->prank || !v->pres || !buf) {
        free(buf);
        return hearth_errf(err, "out of memory for %" PRIu64 " merges", m->n);
    }
    for (uint64_t i = 0; i < m->n; i++) {
        gguf_str s = gguf_arr_str(m, i);
        if (s.len < 3 || s.len > 2 * (uint64_t)TOK_MAX_TOKEN) continue;
        const char *sp =
            memchr(s.ptr + 1, ' ', s.len - 1); /* "a b"; the first part is never empty */
        if (!sp) continue;
        size_t nl = (size_t)(sp - s.ptr), nr = s.len - nl - 1;
        if (nr == 0 || nl > TOK_MAX_TOKEN || nr > TOK_MAX_TOKEN) continue;
        int32_t l = sym_get(v, s.ptr, nl, err);
        if (l < 0) goto fail;
        int32_t r = sym_get(v, sp + 1, nr, err);
        if (r < 0) goto fail;
        memcpy(buf, s.ptr, nl);
        memcpy(buf + nl, sp + 1, nr);
        int32_t res = sym_get(v, buf, nl + nr, err);
        if (res < 0) goto fail;
        uint64_t key = ((uint64_t)(uint32_t)(l + 1) << 32) | (uint32_t)(r + 1);
        size_t h = hash_u64(key) & v->pmask;
        while (v->pk[h] != 0 && v->pk[h] != key) h = (h + 1) & v->pmask;
        if (v->pk[h] == key) continue; /* the first (lowest rank) listing wins */
        v->pk[h] = key;
        v->prank[h] = (int32_t)i;
        v->pres[h] = res;
    }
    free(buf);
    return 0;
fail:
    free(buf);
    return hearth_err_prefix(err, "tokenizer.ggml.merges");
}

tok_vocab *tok_load(const gguf_file *f, hearth_err *err) {
    gguf_arr toks = {0}, merges = {0}, scores = {0}, types = {0};
    tok_pretok_info info = {0};
    gguf_str model;
    tok_vocab *v = calloc(1, sizeof *v);
    if (!v) {
        hearth_errf(err, "out of memory for the tokenizer");
        return NULL;
    }
    if (gguf_get_str(f, "tokenizer.ggml.model", &model, err)) goto fail;
    if (gguf_str_eq(model, "llama")) {
        v->kind = TOK_SPM;
    } else if (gguf_str_eq(model, "gpt2")) {
        v->kind = TOK_BPE;
    } else {
        hearth_errf(err,
                    "tokenizer.ggml.model is '%.*s'; hearth supports 'llama' (SentencePiece) "
                    "and 'gpt2' (byte-level BPE)",
                    (int)(model.len > 64 ? 64 : model.len), model.ptr);
        goto fail;
    }

    if (gguf_get_arr(f, "tokenizer.ggml.tokens", &toks, err)) goto fail;
    if (toks.type != GGUF_STRING || toks.n == 0 || toks.n > TOK_MAX_VOCAB) {
        hearth_errf(err,
                    "tokenizer.ggml.tokens: expected 1..%d strings, found %" PRIu64
                    " elements of type %s",
                    TOK_MAX_VOCAB, toks.n, gguf_vtype_name(toks.type));
        goto fail;
    }
    v->n_vocab = (int32_t)toks.n;
    if (v->kind == TOK_BPE) {
        if (gguf_get_arr(f, "tokenizer.ggml.merges", &merges, err)) goto fail;
        if (merges.type != GGUF_STRING || merges.n > 4 * (uint64_t)TOK_MAX_VOCAB) {
            hearth_errf(err,
                        "tokenizer.ggml.merges: expected up to %d strings, found %" PRIu64
                        " elements of type %s",
                        4 * TOK_MAX_VOCAB, merges.n, gguf_vtype_name(merges.type));
            goto fail;
        }
    }
    if (gguf_has(f, "tokenizer.ggml.scores")) {
        if (gguf_get_arr(f, "tokenizer.ggml.scores", &scores, err)) goto fail;
        bool num =
            scores.type == GGUF_FLOAT32 || scores.type == GGUF_FLOAT64 || scores.type == GGUF_INT32;
        if (!num || scores.n < toks.n) {
            hearth_errf(err,
                        "tokenizer.ggml.scores: expected %" PRIu64 " numbers, found %" PRIu64
                        " elements of type %s",
                        toks.n, scores.n, gguf_vtype_name(scores.type));
            goto fail;
        }
    }
    if (gguf_has(f, "tokenizer.ggml.token_type")) {
        if (gguf_get_arr(f, "tokenizer.ggml.token_type", &types, err)) goto fail;
        bool integer = types.type == GGUF_INT32 || types.type == GGUF_UINT32 ||
                       types.type == GGUF_INT8 || types.type == GGUF_UINT8 ||
                       types.type == GGUF_INT16 || types.type == GGUF_UINT16 ||
                       types.type == GGUF_INT64 || types.type == GGUF_UINT64;
        if (!integer || types.n < toks.n) {
            hearth_errf(err,
                        "tokenizer.ggml.token_type: expected %" PRIu64 " integers, found %" PRIu64
                        " elements of type %s",
                        toks.n, types.n, gguf_vtype_name(types.type));
            goto fail;
        }
    }

    /* The map holds every token and every merge part/result that is not one. */
    const uint64_t max_syms = toks.n + 3 * merges.n;
    v->map_mask = pow2_at_least((size_t)(2 * max_syms + 2)) - 1;
    v->map = malloc((v->map_mask + 1) * sizeof *v->map);
    v->score = malloc(toks.n * sizeof *v->score);
    v->attr = malloc(toks.n);
    v->eog = calloc(toks.n, 1);
    if (!v->map || !v->score || !v->attr || !v->eog) {
        hearth_errf(err, "out of memory for %" PRIu64 " tokens", toks.n);
        goto fail;
    }
    memset(v->map, 0xff, (v->map_mask + 1) * sizeof *v->map);
    v->max_len = TOK_MAX_TOKEN * 2; /* lets map_find see every length while loading */
    for (int32_t i = 0; i < v->n_vocab; i++) {
        gguf_str s = gguf_arr_str(&toks, (uint64_t)i);
        if (s.len > TOK_MAX_TOKEN) {
            hearth_errf(err, "tokenizer.ggml.tokens[%d]: %" PRIu64 " bytes, more than %d", i, s.len,
                        TOK_MAX_TOKEN);
            goto fail;
        }
        int32_t dup = map_find(v, s.ptr, s.len);
        if (dup >= 0) {
            hearth_errf(err, "tokenizer.ggml.tokens: ids %d and %d have the same text '%.*s'", dup,
                        i, (int)(s.len > 64 ? 64 : s.len), s.ptr);
            goto fail;
        }
        if (sym_add(v, s.ptr, s.len, true, err) < 0) goto fail;
        v->score[i] = scores.n ? (float)gguf_arr_float(&scores, (uint64_t)i) : 0.0f;
        uint8_t a = TOK_ATTR_NORMAL;
        if (types.n) {
            switch (gguf_arr_int(&types, (uint64_t)i)) {
            case 1:
                a = TOK_ATTR_NORMAL;
                break;
            case 2:
                a = TOK_ATTR_UNKNOWN;
                break;
            case 3:
                a = TOK_ATTR_CONTROL;
                break;
            case 4:
                a = TOK_ATTR_USER_DEFINED;
                break;
            case 5:
                a = TOK_ATTR_UNUSED;
                break;
            case 6:
                a = TOK_ATTR_BYTE;
                break;
            default:
                a = 0;
                break; /* undefined: never rendered */
            }
        }
        v->attr[i] = a;
    }

    /* Pre-tokenizer and defaults per kind. */
    if (v->kind == TOK_BPE) {
        gguf_str pre = {"default", 7};
        if (gguf_has(f, "tokenizer.ggml.pre") && gguf_get_str(f, "tokenizer.ggml.pre", &pre, err))
            goto fail;
        if (pre.len >= sizeof v->pre) {
            hearth_errf(err, "unknown pre-tokenizer '%.*s' (tokenizer.ggml.pre)", 60, pre.ptr);
            goto fail;
        }
        memcpy(v->pre, pre.ptr, pre.len);
        v->pre[pre.len] = 0;
        if (strlen(v->pre) != pre.len) {
            hearth_errf(err, "tokenizer.ggml.pre contains a NUL byte");
            goto fail;
        }
        v->pretok = tok_pretok_new(v->pre, &info, err);
        if (!v->pretok) goto fail;
        v->ignore_merges = info.ignore_merges;
        v->add_bos = info.add_bos;
        v->add_space_prefix = false;
        v->bos = v->eos = 11; /* the reference's defaults for gpt2 vocabularies */
        v->unk = v->pad = -1;
    } else {
        v->add_bos = true;
        v->add_space_prefix = true;
        v->bos = 1;
        v->eos = 2;
        v->unk = 0;
        v->pad = -1;
    }
    v->eot = v->eom = -1;
    if (gguf_opt_bool(f, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix, err) ||
        gguf_opt_bool(f, "tokenizer.ggml.add_bos_token", &v->add_bos, err) ||
        gguf_opt_bool(f, "tokenizer.ggml.add_eos_token", &v->add_eos, err) ||
        opt_id(f, "tokenizer.ggml.bos_token_id", &v->bos, v->n_vocab, err) ||
        opt_id(f, "tokenizer.ggml.eos_token_id", &v->eos, v->n_vocab, err) ||
        opt_id(f, "tokenizer.ggml.eot_token_id", &v->eot, v->n_vocab, err) ||
        opt_id(f, "tokenizer.ggml.eom_token_id", &v->eom, v->n_vocab, err) ||
        opt_id(f, "tokenizer.ggml.unknown_token_id", &v->unk, v->n_vocab, err) ||
        opt_id(f, "tokenizer.ggml.padding_token_id", &v->pad, v->n_vocab, err))
        goto fail;
    if (v->add_bos && v->bos < 0) {
        hearth_errf(err,
                    "tokenizer.ggml.add_bos_token is true but the vocabulary has no BOS token");
        goto fail;
    }
    if (v->add_eos && v->eos < 0) {
        hearth_errf(err,
                    "tokenizer.ggml.add_eos_token is true but the vocabulary has no EOS token");
        goto fail;
    }

    /* End of turn / message / generation by text where the file is silent;
     * such tokens count as control tokens, as in the reference. */
    if (v->eot < 0)
        for (size_t i = 0; i < sizeof eot_texts / sizeof eot_texts[0] && v->eot < 0; i++)
            v->eot = find_text(v, eot_texts[i]);
    if (v->eom < 0) v->eom = find_text(v, "<|eom_id|>");
    for (size_t i = 0; i < sizeof eog_texts / sizeof eog_texts[0]; i++) {
        int32_t id = find_text(v, eog_texts[i]);
        if (id >= 0) {
            v->eog[id] = 1;
            v->attr[id] |= TOK_ATTR_CONTROL;
        }
    }
    int32_t ends[3] = {v->eos, v->eot, v->eom};
    for (int i = 0; i < 3; i++)
        if (ends[i] >= 0) {
            v->eog[ends[i]] = 1;
            if (i > 0) v->attr[ends[i]] |= TOK_ATTR_CONTROL;
        }

    if (v->kind == TOK_BPE && load_merges(v, &merges, err)) goto fail;
    /* Longest text any lookup can match. */
    v->max_len = 0;
    for (int32_t i = 0; i < v->n_sym; i++)
        if (v->sym_len[i] > v->max_len) v->max_len = v->sym_len[i];

    v->spm_cut = v->kind == TOK_SPM;
    for (int32_t i = 0; i < v->n_vocab && v->spm_cut; i++) {
        const uint8_t *t = (const uint8_t *)sym_text(v, i);
        size_t n = v->sym_len[i];
        bool has = false;
        for (size_t k = 1; k + 3 <= n; k++)
            if (memcmp(t + k, "\xE2\x96\x81", 3) == 0) {
                has = true;
                if (k < 3 || memcmp(t + k - 3, "\xE2\x96\x81", 3) != 0) v->spm_cut = false;
            }
        if (has && !tok_utf8_valid(t, n)) v->spm_cut = false;
    }

    build_byte_map(v);
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        v->single[b] = find_text(v, (const char[]){(char)c, 0});
        if (c == 0) v->single[b] = -1;
        int32_t s = map_find(v, v->enc[b], v->enc_len[b]);
        v->byte_sym[b] = s;
        char hex[8];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        int32_t t = find_text(v, hex);
        if (t < 0) t = map_find(v, &c, 1) < v->n_vocab ? map_find(v, &c, 1) : -1;
        if (t < 0) t = v->unk;
        v->spm_byte[b] = t;
    }
    if (build_special(v, err) || build_pieces(v, err)) goto fail;
    return v;
fail:
    tok_free(v);
    return NULL;
}

/* ---- accessors ------------------------------------------------------------------ */

tok_kind tok_type(const tok_vocab *v) {
    return v->kind;
}
const char *tok_pre(const tok_vocab *v) {
    return v->pre;
}
int32_t tok_n_vocab(const tok_vocab *v) {
    return v->n_vocab;
}
int32_t tok_bos(const tok_vocab *v) {
    return v->bos;
}
int32_t tok_eos(const tok_vocab *v) {
    return v->eos;
}
int32_t tok_eot(const tok_vocab *v) {
    return v->eot;
}
int32_t tok_unk(const tok_vocab *v) {
    return v->unk;
}
int32_t tok_pad(const tok_vocab *v) {
    return v->pad;
}
bool tok_add_bos(const tok_vocab *v) {
    return v->add_bos;
}
bool tok_add_space_prefix(const tok_vocab *v) {
    return v->add_space_prefix;
}
bool tok_is_eog(const tok_vocab *v, int32_t id) {
    return id >= 0 && id < v->n_vocab && v->eog[id];
}
unsigned tok_attr(const tok_vocab *v, int32_t id) {
    return id >= 0 && id < v->n_vocab ? v->attr[id] : 0;
}
int32_t tok_token_to_id(const tok_vocab *v, const char *text, size_t len) {
    int32_t id = map_find(v, text, len);
    return id < v->n_vocab ? id : -1;
}
const char *tok_text(const tok_vocab *v, int32_t id, size_t *len) {
    if (id < 0 || id >= v->n_vocab) return NULL;
    if (len) *len = v->sym_len[id];
    return sym_text(v, id);
}

int tok_piece(const tok_vocab *v, int32_t id, bool special, const char **piece, size_t *len,
              hearth_err *err) {
    if (id < 0 || id >= v->n_vocab)
        return hearth_errf(err, "token id %" PRId32 " is out of range (vocabulary of %" PRId32 ")",
                           id, v->n_vocab);
    *piece = v->pieces + v->piece_off[id];
    *len = v->piece_len[id];
    if (!special && (v->attr[id] & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL))) *len = 0;
    return 0;
}

/* ---- encoding -------------------------------------------------------------------- */

typedef struct ivec {
    int32_t *v;
    size_t n, cap;
} ivec;

static int ivec_push(ivec *o, int32_t id, hearth_err *err) {
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        int32_t *p = realloc(o->v, cap * sizeof *p);
        if (!p) return hearth_errf(err, "out of memory for the token ids");
        o->v = p;
        o->cap = cap;
    }
    o->v[o->n++] = id;
    return 0;
}

typedef struct sym {
    int32_t prev, next;
    int32_t id;   /* BPE: symbol id (-1: byte without a symbol, SYM_DEAD: merged away) */
    uint32_t n;   /* SPM: bytes (0: merged away) */
    size_t start; /* SPM: offset in the escaped text */
} sym;

/* A queued pair, ordered by `key` (smallest first): BPE (rank, left); SPM
 * (score descending, left). The right symbol is the left one's `next` when the
 * entry is still current, so it is not stored. */
typedef struct bigram {
    uint64_t key;
    int32_t a, b; /* BPE: left and right symbol ids when queued; SPM: bytes when queued */
} bigram;

static int32_t key_left(uint64_t key) {
    return (int32_t)(uint32_t)key;
}

/* Scratch for one tok_encode call (grown as needed, freed at the end). */
typedef struct scratch {
    uint8_t *buf;
    size_t buf_cap;
    sym *syms;
    size_t syms_cap;
    bigram *heap;
    size_t heap_n, heap_cap;
    tok_spans spans, spans_tmp;
    tok_pretok_ctx *pc; /* created on first use */
    struct wcache *wc;
} scratch;

static int grow(void **p, size_t *cap, size_t need, size_t elem, hearth_err *err) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return hearth_errf(err, "out of memory while tokenizing");
    *p = q;
    *cap = c;
    return 0;
}

/* A 4-ary min-heap: the four children of a node share one cache line, which
 * matters when a long word queues a million pairs. */
static int heap_push(scratch *s, bigram g, hearth_err *err) {
    if (grow((void **)&s->heap, &s->heap_cap, s->heap_n + 1, sizeof g, err)) return -1;
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 4;
        if (g.key >= s->heap[p].key) break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = g;
    return 0;
}

static bigram heap_pop(scratch *s) {
    bigram top = s->heap[0], last = s->heap[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t c = 4 * i + 1;
        if (c >= n) break;
        size_t best = c, end = c + 4 < n ? c + 4 : n;
        for (size_t k = c + 1; k < end; k++)
            if (s->heap[k].key < s->heap[best].key) best = k;
        if (s->heap[best].key >= last.key) break;
        s->heap[i] = s->heap[best];
        i = best;
    }
    if (n) s->heap[i] = last;
    return top;
}

/* Higher scores first: map the float to an unsigned order, then invert. */
static uint64_t spm_key(float score, int32_t left) {
    uint32_t u;
    memcpy(&u, &score, 4);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ((uint64_t)~u << 32) | (uint32_t)left;
}

static int spm_try_bigram(const tok_vocab *v, scratch *s, int32_t l, int32_t r, hearth_err *err) {
    if (l < 0 || r < 0) return 0;
    size_t size = (size_t)s->syms[l].n + s->syms[r].n;
    int32_t id = map_find(v, s->buf + s->syms[l].start, size);
    if (id < 0 || id >= v->n_vocab) return 0;
    (void)r;
    bigram g = {.key = spm_key(v->score[id], l), .a = (int32_t)size};
    return heap_push(s, g, err);
}

/* Word cache for one tok_encode call: text that repeats (words of prose,
 * the pieces of a degenerate long word) is merged once. Exact: a word's ids
 * depend only on its bytes. Bounded: it stops taking entries when full. */
#define WC_SLOTS     (1 << 14)
#define WC_MAX_BYTES (8u << 20)

typedef struct wc_slot {
    uint64_t h;
    size_t koff, ioff;
    uint32_t klen, icount; /* klen 0: empty slot */
} wc_slot;

typedef struct wcache {
    wc_slot *slot; /* (WC_SLOTS,) allocated on first use */
    size_t n;
    uint8_t *keys;
    size_t keys_n, keys_cap;
    int32_t *ids;
    size_t ids_n, ids_cap;
} wcache;

/* Appends the cached ids of w to out; false if w is not cached. */
static bool wc_get(const wcache *c, const uint8_t *w, size_t n, uint64_t h, ivec *out,
                   hearth_err *err, int *rc) {
    *rc = 0;
    if (!c->slot) return false;
    for (size_t i = h & (WC_SLOTS - 1);; i = (i + 1) & (WC_SLOTS - 1)) {
        const wc_slot *e = &c->slot[i];
        if (e->klen == 0) return false;
        if (e->h == h && e->klen == n && memcmp(c->keys + e->koff, w, n) == 0) {
            for (uint32_t k = 0; k < e->icount; k++)
                if (ivec_push(out, c->ids[e->ioff + k], err)) {
                    *rc = -1;
                    break;
                }
            return true;
        }
    }
}

/* Remembers that w gave out->v[from .. out->n). Failure to cache is not an error. */
static void wc_put(wcache *c, const uint8_t *w, size_t n, uint64_t h, const ivec *out,
                   size_t from) {
    size_t k = out->n - from;
    if (n == 0 || n > UINT32_MAX || c->n >= WC_SLOTS / 2 || c->keys_n + n > WC_MAX_BYTES ||
        c->ids_n + k > WC_MAX_BYTES)
        return;
    if (!c->slot && !(c->slot = calloc(WC_SLOTS, sizeof *c->slot))) return;
    hearth_err ignore;
    if (grow((void **)&c->keys, &c->keys_cap, c->keys_n + n, 1, &ignore) ||
        grow((void **)&c->ids, &c->ids_cap, c->ids_n + k + 1, sizeof *c->ids, &ignore))
        return;
    size_t i = h & (WC_SLOTS - 1);
    while (c->slot[i].klen != 0) i = (i + 1) & (WC_SLOTS - 1);
    memcpy(c->keys + c->keys_n, w, n);
    memcpy(c->ids + c->ids_n, out->v + from, k * sizeof *c->ids);
    c->slot[i] = (wc_slot){h, c->keys_n, c->ids_n, (uint32_t)n, (uint32_t)k};
    c->keys_n += n;
    c->ids_n += k;
    c->n++;
}

static int32_t spm_segment_end(const tok_vocab *v, const scratch *s, int32_t a, int32_t ns);
static int spm_segment(const tok_vocab *v, scratch *s, int32_t a, int32_t b, ivec *out,
                       hearth_err *err);

static int spm_fragment(const tok_vocab *v, scratch *s, const uint8_t *text, size_t len,
                        bool prefix, ivec *out, hearth_err *err) {
    if (grow((void **)&s->buf, &s->buf_cap, 3 * len + 4, 1, err)) return -1;
    size_t n = 0;
    if (prefix) {
        memcpy(s->buf, "\xE2\x96\x81", 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(s->buf + n, "\xE2\x96\x81", 3);
            n += 3;
        } else {
            s->buf[n++] = text[i];
        }
    }
    if (n == 0) return 0;
    if (grow((void **)&s->syms, &s->syms_cap, n, sizeof(sym), err)) return -1;
    int32_t ns = 0;
    for (size_t off = 0; off < n;) {
        size_t k = tok_utf8_lead_len(s->buf[off]);
        if (k > n - off) k = n - off;
        s->syms[ns] = (sym){
            .prev = ns - 1, .next = off + k == n ? -1 : ns + 1, .n = (uint32_t)k, .start = off};
        off += k;
        ns++;
    }
    for (int32_t a = 0; a < ns;) {
        int32_t b = spm_segment_end(v, s, a, ns);
        const uint8_t *w = s->buf + s->syms[a].start;
        size_t wl = s->syms[b - 1].start + s->syms[b - 1].n - s->syms[a].start;
        uint64_t h = hash_bytes(w, wl);
        int rc;
        if (!wc_get(s->wc, w, wl, h, out, err, &rc)) {
            size_t from = out->n;
            rc = spm_segment(v, s, a, b, out, err);
            if (rc == 0) wc_put(s->wc, w, wl, h, out, from);
        }
        if (rc) return -1;
        a = b;
    }
    return 0;
}

static bool is_space_sym(const scratch *s, int32_t i) {
    return s->syms[i].n == 3 && memcmp(s->buf + s->syms[i].start, "\xE2\x96\x81", 3) == 0;
}

/* End of the piece of symbols starting at a: the next "▁" that follows
 * another character once the piece has TOK_SPM_SEG symbols (no token spans
 * it, so the result is exact), else TOK_MAX_WORD symbols, else the end. */
static int32_t spm_segment_end(const tok_vocab *v, const scratch *s, int32_t a, int32_t ns) {
    if (ns - a <= TOK_SPM_SEG) return ns;
    if (v->spm_cut)
        for (int32_t i = a + TOK_SPM_SEG; i < ns && i < a + TOK_MAX_WORD; i++)
            if (is_space_sym(s, i) && !is_space_sym(s, i - 1)) return i;
    return ns - a > TOK_MAX_WORD ? a + TOK_MAX_WORD : ns;
}

/* Merges symbols [a, b) best score first, then emits them. */
static int spm_segment(const tok_vocab *v, scratch *s, int32_t a, int32_t b, ivec *out,
                       hearth_err *err) {
    for (int32_t i = a; i < b; i++) {
        s->syms[i].prev = i == a ? -1 : i - 1;
        s->syms[i].next = i + 1 == b ? -1 : i + 1;
    }
    s->heap_n = 0;
    for (int32_t i = a + 1; i < b; i++)
        if (spm_try_bigram(v, s, i - 1, i, err)) return -1;
    while (s->heap_n) {
        bigram g = heap_pop(s);
        int32_t li = key_left(g.key);
        sym *l = &s->syms[li];
        if (l->n == 0 || l->next < 0) continue;
        sym *r = &s->syms[l->next];
        if (r->n == 0 || (size_t)l->n + r->n != (size_t)g.a) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s->syms[r->next].prev = li;
        if (spm_try_bigram(v, s, l->prev, li, err) || spm_try_bigram(v, s, li, l->next, err))
            return -1;
    }
    for (int32_t i = a; i != -1; i = s->syms[i].next) {
        const sym *y = &s->syms[i];
        int32_t id = map_find(v, s->buf + y->start, y->n);
        if (id >= 0 && id < v->n_vocab) {
            if (ivec_push(out, id, err)) return -1;
            continue;
        }
        for (uint32_t k = 0; k < y->n; k++) {
            uint8_t byte = s->buf[y->start + k];
            if (v->spm_byte[byte] < 0)
                return hearth_errf(err, "the vocabulary has no token for byte 0x%02X", byte);
            if (ivec_push(out, v->spm_byte[byte], err)) return -1;
        }
    }
    return 0;
}

static int bpe_try_bigram(const tok_vocab *v, scratch *s, int32_t l, int32_t r, hearth_err *err) {
    if (l < 0 || r < 0) return 0;
    int32_t lid = s->syms[l].id, rid = s->syms[r].id, rank, res;
    if (lid < 0 || rid < 0 || !pair_find(v, lid, rid, &rank, &res)) return 0;
    bigram g = {.key = ((uint64_t)(uint32_t)rank << 32) | (uint32_t)l, .a = lid, .b = rid};
    return heap_push(s, g, err);
}

static int emit_bytes_of(const tok_vocab *v, const uint8_t *t, size_t n, ivec *out,
                         hearth_err *err) {
    /* The reference's fallback for a symbol that is not a token: the token of
     * each single byte of its (mapped) text, where one exists. */
    for (size_t k = 0; k < n; k++)
        if (v->single[t[k]] >= 0 && ivec_push(out, v->single[t[k]], err)) return -1;
    return 0;
}

static int bpe_word(const tok_vocab *v, scratch *s, const uint8_t *w, size_t n, ivec *out,
                    hearth_err *err) {
    if (v->ignore_merges && n <= v->max_len) {
        uint8_t tmp[512];
        size_t m = 0;
        if (2 * n <= sizeof tmp) {
            for (size_t i = 0; i < n; i++) {
                memcpy(tmp + m, v->enc[w[i]], v->enc_len[w[i]]);
                m += v->enc_len[w[i]];
            }
            int32_t id = map_find(v, tmp, m);
            if (id >= 0 && id < v->n_vocab) return ivec_push(out, id, err);
        }
    }
    if (grow((void **)&s->syms, &s->syms_cap, n, sizeof(sym), err)) return -1;
    for (size_t i = 0; i < n; i++)
        s->syms[i] = (sym){.prev = (int32_t)i - 1,
                           .next = i + 1 == n ? -1 : (int32_t)i + 1,
                           .id = v->byte_sym[w[i]]};
    s->heap_n = 0;
    for (size_t i = 1; i < n; i++)
        if (bpe_try_bigram(v, s, (int32_t)i - 1, (int32_t)i, err)) return -1;
    while (s->heap_n) {
        bigram g = heap_pop(s);
        int32_t li = key_left(g.key);
        sym *l = &s->syms[li];
        if (l->id != g.a || l->next < 0) continue;
        sym *r = &s->syms[l->next];
        if (r->id != g.b) continue; /* stale: one side merged since */
        int32_t rank, res;
        if (!pair_find(v, g.a, g.b, &rank, &res)) continue;
        l->id = res;
        r->id = SYM_DEAD;
        l->next = r->next;
        if (r->next >= 0) s->syms[r->next].prev = li;
        if (bpe_try_bigram(v, s, l->prev, li, err) || bpe_try_bigram(v, s, li, l->next, err))
            return -1;
    }
    for (int32_t i = 0; i != -1; i = s->syms[i].next) {
        int32_t id = s->syms[i].id;
        if (id >= 0 && id < v->n_vocab) {
            if (ivec_push(out, id, err)) return -1;
        } else if (id >= v->n_vocab) {
            if (emit_bytes_of(v, (const uint8_t *)sym_text(v, id), v->sym_len[id], out, err))
                return -1;
        } else if (emit_bytes_of(v, v->enc[w[i]], v->enc_len[w[i]], out, err)) {
            return -1;
        }
    }
    return 0;
}

static int bpe_fragment(const tok_vocab *v, scratch *s, const uint8_t *text, size_t len, ivec *out,
                        hearth_err *err) {
    /* Decode as the reference does (invalid bytes -> U+FFFD) and re-encode, so
     * PCRE2 sees valid UTF-8. */
    if (grow((void **)&s->buf, &s->buf_cap, 3 * len + 4, 1, err)) return -1;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        i += tok_utf8_next_lenient(text + i, len - i, &cp);
        n += tok_utf8_encode(cp, s->buf + n);
    }
    if (!s->pc && !(s->pc = tok_pretok_ctx_new(err))) return -1;
    if (tok_pretok_split(v->pretok, s->pc, s->buf, n, &s->spans, &s->spans_tmp, err)) return -1;
    for (size_t k = 0; k < s->spans.n; k++) {
        const uint8_t *w = s->buf + s->spans.v[k].off;
        size_t wl = s->spans.v[k].len;
        while (wl > 0) {
            size_t cut = wl;
            if (cut > TOK_MAX_WORD) { /* a degenerate word: merge it in pieces */
                cut = TOK_MAX_WORD;
                while (cut > 1 && (w[cut] & 0xC0) == 0x80) cut--; /* keep characters whole */
            }
            uint64_t h = hash_bytes(w, cut);
            int rc;
            if (!wc_get(s->wc, w, cut, h, out, err, &rc)) {
                size_t from = out->n;
                rc = bpe_word(v, s, w, cut, out, err);
                if (rc == 0) wc_put(s->wc, w, cut, h, out, from);
            }
            if (rc) return -1;
            w += cut;
            wl -= cut;
        }
    }
    return 0;
}

typedef struct frag {
    size_t off, len;
    int32_t tok; /* -1: raw text */
} frag;

typedef struct fvec {
    frag *v;
    size_t n, cap;
} fvec;

static int fvec_push(fvec *f, frag x, hearth_err *err) {
    if (grow((void **)&f->v, &f->cap, f->n + 1, sizeof x, err)) return -1;
    f->v[f->n++] = x;
    return 0;
}

/* Splits the text on special-token texts, longest token first, each over the
 * raw pieces the previous ones left (the reference's order, which decides
 * overlaps). Only tokens that occur in the text at all are tried. */
static int partition(const tok_vocab *v, const uint8_t *text, size_t len, bool parse_special,
                     fvec *frags, hearth_err *err) {
    frags->n = 0;
    if (len == 0) return 0;
    if (fvec_push(frags, (frag){0, len, -1}, err)) return -1;
    if (v->n_special == 0) return 0;
    uint8_t *occurs = calloc((size_t)v->n_special, 1);
    fvec next = {0};
    int rc = -1;
    if (!occurs) {
        hearth_errf(err, "out of memory while tokenizing");
        goto done;
    }
    bool any = false;
    for (size_t pos = 0; pos < len; pos++) {
        int32_t node = 0;
        for (size_t k = pos; k < len; k++) {
            node = trie_child(v, node, text[k]);
            if (node < 0) break;
            if (v->trie_sp[node] >= 0) occurs[v->trie_sp[node]] = any = 1;
        }
    }
    for (int32_t s = 0; s < v->n_special; s++) {
        int32_t id = v->special[s];
        if (v->sym_len[id] > TOK_TRIE_MAX_LEN && memmem(text, len, sym_text(v, id), v->sym_len[id]))
            occurs[s] = any = 1;
    }
    for (int32_t s = 0; any && s < v->n_special; s++) {
        int32_t id = v->special[s];
        if (!occurs[s]) continue;
        if (!parse_special && (v->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN))) continue;
        const char *t = sym_text(v, id);
        size_t tl = v->sym_len[id];
        next.n = 0;
        for (size_t i = 0; i < frags->n; i++) {
            frag f = frags->v[i];
            if (f.tok >= 0) {
                if (fvec_push(&next, f, err)) goto done;
                continue;
            }
            size_t at = f.off, end = f.off + f.len;
            for (;;) {
                const uint8_t *m = memmem(text + at, end - at, t, tl);
                if (!m) break;
                size_t mo = (size_t)(m - text);
                if (mo > at && fvec_push(&next, (frag){at, mo - at, -1}, err)) goto done;
                if (fvec_push(&next, (frag){mo, tl, id}, err)) goto done;
                at = mo + tl;
            }
            if (at < end && fvec_push(&next, (frag){at, end - at, -1}, err)) goto done;
        }
        fvec t2 = *frags;
        *frags = next;
        next = t2;
    }
    rc = 0;
done:
    free(next.v);
    free(occurs);
    return rc;
}

int tok_encode(const tok_vocab *v, const char *text, size_t len, bool add_special,
               bool parse_special, int32_t **out, size_t *n_out, hearth_err *err) {
    *out = NULL;
    *n_out = 0;
    if (len > TOK_MAX_INPUT)
        return hearth_errf(err, "text of %zu bytes is longer than the tokenizer's limit of %zu",
                           len, TOK_MAX_INPUT);
    if (len && !text) return hearth_errf(err, "tok_encode: text is NULL");
    const uint8_t *t = (const uint8_t *)text;
    ivec o = {0};
    fvec frags = {0};
    wcache wc = {0};
    scratch s = {.wc = &wc};
    int rc = -1;
    if (partition(v, t, len, parse_special, &frags, err)) goto done;
    if (add_special && v->add_bos && ivec_push(&o, v->bos, err)) goto done;
    bool prev_special = true; /* SPM: a space prefix starts the text and follows specials */
    for (size_t i = 0; i < frags.n; i++) {
        frag f = frags.v[i];
        if (f.tok >= 0) {
            if (ivec_push(&o, f.tok, err)) goto done;
            prev_special = true;
        } else if (v->kind == TOK_SPM) {
            if (spm_fragment(v, &s, t + f.off, f.len, v->add_space_prefix && prev_special, &o, err))
                goto done;
            prev_special = false;
        } else if (bpe_fragment(v, &s, t + f.off, f.len, &o, err)) {
            goto done;
        }
    }
    if (add_special && v->add_eos && ivec_push(&o, v->eos, err)) goto done;
    *out = o.v;
    *n_out = o.n;
    o.v = NULL;
    rc = 0;
done:
    free(o.v);
    free(frags.v);
    free(s.buf);
    free(s.syms);
    free(s.heap);
    free(s.spans.v);
    free(s.spans_tmp.v);
    tok_pretok_ctx_free(s.pc);
    free(wc.slot);
    free(wc.keys);
    free(wc.ids);
    return rc;
}

/* ---- detokenization ------------------------------------------------------------- */

struct tok_detok {
    const tok_vocab *v;
    unsigned flags;
    bool started;    /* a non-empty piece was seen (for TOK_DETOK_STRIP_SPACE) */
    uint8_t pend[4]; /* bytes of an unfinished character */
    size_t n_pend;
    uint8_t *in; /* (max_piece + 4,) pend + piece */
    char *out;   /* (3 * (max_piece + 4) + 4,) */
};

tok_detok *tok_detok_new(const tok_vocab *v, unsigned flags, hearth_err *err) {
    tok_detok *d = calloc(1, sizeof *d);
    if (d) {
        d->in = malloc(v->max_piece + 4);
        d->out = malloc(3 * (v->max_piece + 4) + 4);
    }
    if (!d || !d->in || !d->out) {
        tok_detok_free(d);
        hearth_errf(err, "out of memory for the detokenizer");
        return NULL;
    }
    d->v = v;
    d->flags = flags;
    return d;
}

void tok_detok_free(tok_detok *d) {
    if (!d) return;
    free(d->in);
    free(d->out);
    free(d);
}

void tok_detok_reset(tok_detok *d) {
    d->started = false;
    d->n_pend = 0;
}

const char *tok_detok_push(tok_detok *d, int32_t id, size_t *len, hearth_err *err) {
    const char *p;
    size_t n;
    *len = 0;
    if (tok_piece(d->v, id, d->flags & TOK_DETOK_SPECIAL, &p, &n, err)) return NULL;
    if (n > 0 && !d->started) {
        d->started = true;
        if ((d->flags & TOK_DETOK_STRIP_SPACE) && d->v->add_space_prefix && p[0] == ' ') {
            p++;
            n--;
        }
    }
    memcpy(d->in, d->pend, d->n_pend);
    memcpy(d->in + d->n_pend, p, n);
    size_t m = d->n_pend + n, o = 0;
    d->n_pend = 0;
    for (size_t i = 0; i < m;) {
        uint32_t cp;
        size_t bad;
        int k = tok_utf8_next(d->in + i, m - i, &cp, &bad);
        if (k > 0) {
            memcpy(d->out + o, d->in + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        } else if (k == 0) { /* unfinished: at most 3 bytes, kept for the next call */
            d->n_pend = m - i;
            memcpy(d->pend, d->in + i, d->n_pend);
            break;
        } else {
            memcpy(d->out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += bad;
        }
    }
    *len = o;
    d->out[o] = 0;
    return d->out;
}

const char *tok_detok_flush(tok_detok *d, size_t *len) {
    size_t o = 0;
    if (d->n_pend) { /* an unfinished character is one replacement character */
        memcpy(d->out, "\xEF\xBF\xBD", 3);
        o = 3;
    }
    d->n_pend = 0;
    d->out[o] = 0;
    *len = o;
    return d->out;
}

int tok_decode(const tok_vocab *v, const int32_t *ids, size_t n, unsigned flags, char **out,
               size_t *n_out, hearth_err *err) {
    *out = NULL;
    *n_out = 0;
    tok_detok *d = tok_detok_new(v, flags, err);
    if (!d) return -1;
    size_t cap = 256, len = 0;
    char *buf = malloc(cap);
    int rc = -1;
    if (!buf) {
        hearth_errf(err, "out of memory for the decoded text");
        goto done;
    }
    for (size_t i = 0; i <= n; i++) {
        size_t k;
        const char *t = i < n ? tok_detok_push(d, ids[i], &k, err) : tok_detok_flush(d, &k);
        if (!t) {
            hearth_err_prefix(err, "token %zu", i);
            goto done;
        }
        if (len + k + 1 > cap) {
            while (len + k + 1 > cap) cap *= 2;
            char *b = realloc(buf, cap);
            if (!b) {
                hearth_errf(err, "out of memory for the decoded text");
                goto done;
            }
            buf = b;
        }
        memcpy(buf + len, t, k);
        len += k;
    }
    buf[len] = 0;
    *out = buf;
    *n_out = len;
    buf = NULL;
    rc = 0;
done:
    free(buf);
    tok_detok_free(d);
    return rc;
}
