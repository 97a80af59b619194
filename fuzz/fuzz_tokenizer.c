/* Fuzz harness: the tokenizers (SPM and byte-level BPE with each
 * pre-tokenizer) on arbitrary bytes. Byte 0 of the input picks the vocabulary
 * and the flags; the rest is the text. Checks the tokenizer's promises:
 * every id is in range, the detokenizer (whole and streaming) only emits
 * valid UTF-8, and the streaming output equals the whole-sequence output.
 * Selector bytes 0xF8..0xFF (one per vocabulary) tile the text to 32 KiB
 * (huge inputs: larger ones cost too many executions per second here; the
 * tokenizer's own tests time 1 MB inputs). */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "gguf/gguf.h"
#include "text/tokenizer.h"

static const char *const vocab_files[] = {
    "tokenizer/gguf/ggml-vocab-llama-spm.gguf",    /* SPM, byte fallback */
    "tokenizer/gguf/ggml-vocab-gpt-2.gguf",        /* BPE gpt-2 */
    "tokenizer/gguf/ggml-vocab-qwen2.gguf",        /* BPE qwen2 */
    "tokenizer/gguf/ggml-vocab-deepseek-llm.gguf", /* BPE deepseek-llm */
    "tokenizer/gguf/ggml-vocab-deepseek-v3.gguf",  /* BPE deepseek-v3 */
    "golden/models/llama3-bpe.q4_0.gguf",          /* BPE llama-bpe */
    "golden/models/qwen2-r1distill.q4_0.gguf",     /* BPE deepseek-r1-qwen */
    "golden/models/llama-spm.q4_0.gguf",           /* small SPM */
};
#define N_VOCABS (sizeof vocab_files / sizeof vocab_files[0])
static tok_vocab *vocabs[N_VOCABS];
static bool tried[N_VOCABS];

static tok_vocab *get_vocab(unsigned i) {
    if (!tried[i]) {
        tried[i] = true;
        hearth_err err;
        gguf_file *f = gguf_open(fz_shared(vocab_files[i]), &err);
        if (!f) {
            fprintf(stderr, "fuzz_tokenizer: %s\n", err.msg);
            return NULL;
        }
        vocabs[i] = tok_load(f, &err);
        if (!vocabs[i]) fprintf(stderr, "fuzz_tokenizer: %s: %s\n", vocab_files[i], err.msg);
        gguf_close(f);
    }
    return vocabs[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned sel = data[0];
    tok_vocab *v = get_vocab(sel % N_VOCABS);
    if (!v) return 0;
    bool add_special = sel & 0x10, parse_special = sel & 0x20;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char *big = NULL;
    if ((sel & 0xF8) == 0xF8 && len > 0) { /* huge input: tile to 32 KiB */
        size_t n = 32u << 10;
        big = malloc(n);
        if (!big) return 0;
        for (size_t i = 0; i < n; i++) big[i] = text[i % len];
        text = big;
        len = n;
    }

    hearth_err err;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (tok_encode(v, text, len, add_special, parse_special, &ids, &n_ids, &err) < 0) {
        FZ_CHECK(err.msg[0] != 0);
        free(big);
        return 0;
    }
    int32_t nv = tok_n_vocab(v);
    for (size_t i = 0; i < n_ids; i++) FZ_CHECK(ids[i] >= 0 && ids[i] < nv);
    if (len > 0 && !add_special) FZ_CHECK(n_ids > 0);

    unsigned flags =
        (sel & 0x40 ? TOK_DETOK_SPECIAL : 0) | (sel & 0x80 ? TOK_DETOK_STRIP_SPACE : 0);
    char *whole = NULL;
    size_t whole_len = 0;
    int rc = tok_decode(v, ids, n_ids, flags, &whole, &whole_len, &err);
    FZ_CHECK(rc == 0);
    FZ_CHECK(fz_valid_utf8(whole, whole_len));
    FZ_CHECK(strlen(whole) <= whole_len);

    /* Streaming gives the same bytes, each chunk whole UTF-8 characters. */
    tok_detok *d = tok_detok_new(v, flags, &err);
    FZ_CHECK(d != NULL);
    size_t at = 0;
    bool same = true;
    for (size_t i = 0; i < n_ids; i++) {
        size_t l = 0;
        const char *p = tok_detok_push(d, ids[i], &l, &err);
        FZ_CHECK(p != NULL);
        FZ_CHECK(fz_valid_utf8(p, l));
        if (at + l > whole_len || memcmp(whole + at, p, l) != 0) same = false;
        at += l;
    }
    size_t l = 0;
    const char *p = tok_detok_flush(d, &l);
    FZ_CHECK(p != NULL || l == 0);
    if (l) {
        FZ_CHECK(fz_valid_utf8(p, l));
        if (at + l > whole_len || memcmp(whole + at, p, l) != 0) same = false;
    }
    at += l;
    FZ_CHECK(same && at == whole_len);
    /* Out-of-range ids are refused. */
    FZ_CHECK(tok_detok_push(d, nv, &l, &err) == NULL);
    FZ_CHECK(tok_detok_push(d, -1, &l, &err) == NULL);
    tok_detok_free(d);

    /* Pieces of the first ids, and of ids taken from the input bytes. */
    for (size_t i = 0; i + 4 <= len && i < 64; i += 4) {
        int32_t id;
        memcpy(&id, text + i, 4);
        const char *piece;
        size_t plen;
        if (tok_piece(v, id, i & 4, &piece, &plen, &err) == 0)
            FZ_CHECK(id >= 0 && id < nv);
        else
            FZ_CHECK(id < 0 || id >= nv);
        size_t tl;
        const char *t = tok_text(v, id, &tl);
        FZ_CHECK((t != NULL) == (id >= 0 && id < nv));
        if (t) FZ_CHECK(tok_token_to_id(v, t, tl) >= 0);
    }
    free(whole);
    free(ids);
    free(big);
    return 0;
}
