/* hearth tokenize / hearth detokenize: the model's tokenizer on stdin.
 *
 *   hearth tokenize -m MODEL [--special] [--no-bos] [--ids-only] < text
 *     one line per token: id, then the piece quoted and escaped; or, with
 *     --ids-only, the ids on one line (what detokenize reads).
 *   hearth detokenize -m MODEL [--special] [--keep-space] < ids
 *     whitespace-separated ids -> text. An id that is not a number or is out
 *     of range is an error (exit 1) naming it and its position.
 * The text is taken byte for byte, including a final newline (use printf or
 * echo -n to leave it out). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"
#include "model_arg.h"
#include "gguf/gguf.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

static void tokenize_usage(FILE *out) {
    fprintf(out,
            "usage: hearth tokenize -m MODEL.gguf [--special] [--no-bos] [--ids-only] < TEXT\n"
            "  -m, --model PATH  the GGUF file whose tokenizer to use\n"
            "  --special         recognise control-token texts (e.g. <|im_start|>) in the text\n"
            "  --no-bos          do not add BOS (and EOS) even if the model asks for them\n"
            "  --ids-only        print only the ids, space separated, on one line\n");
}

static void detokenize_usage(FILE *out) {
    fprintf(out, "usage: hearth detokenize -m MODEL.gguf [--special] [--keep-space] < IDS\n"
                 "  -m, --model PATH  the GGUF file whose tokenizer to use\n"
                 "  --special         print control tokens' text (e.g. <|im_end|>)\n"
                 "  --keep-space      keep the leading space SentencePiece adds to the text\n");
}

static tok_vocab *open_vocab(const char *cmd, const char *path) {
    hearth_err err;
    char resolved[4096];
    if (cli_model_path(cmd, path, resolved, sizeof resolved) < 0) return NULL;
    path = resolved;
    gguf_file *f = gguf_open(path, &err);
    if (!f) {
        fprintf(stderr, "hearth %s: %s\n", cmd, err.msg);
        return NULL;
    }
    tok_vocab *v = tok_load(f, &err);
    if (!v) fprintf(stderr, "hearth %s: %s: %s\n", cmd, path, err.msg);
    gguf_close(f);
    return v;
}

/* The piece quoted; bytes that are not whole UTF-8 characters as \xNN. */
static void put_piece(const char *p, size_t n) {
    putchar('\'');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x80) {
            uint32_t cp;
            size_t bad;
            int k = tok_utf8_next((const uint8_t *)p + i, n - i, &cp, &bad);
            if (k > 0) {
                fwrite(p + i, 1, (size_t)k, stdout);
                i += (size_t)k - 1;
            } else {
                printf("\\x%02x", c);
            }
            continue;
        }
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\\' || c == '\'')
            printf("\\%c", c);
        else if (c < 32 || c == 127)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('\'');
}

/* Parses "-m PATH" / "--model PATH"; returns 1 if it consumed argv[*i]. */
static int model_arg(int argc, char **argv, int *i, const char **model) {
    if (strcmp(argv[*i], "-m") && strcmp(argv[*i], "--model")) return 0;
    if (*i + 1 >= argc) return -1;
    *model = argv[++*i];
    return 1;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    bool special = false, no_bos = false, ids_only = false;
    for (int i = 1; i < argc; i++) {
        int m = model_arg(argc, argv, &i, &model);
        if (m == 1) continue;
        if (m < 0) {
            fprintf(stderr, "hearth tokenize: %s needs a path\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--special")) {
            special = true;
        } else if (!strcmp(argv[i], "--no-bos")) {
            no_bos = true;
        } else if (!strcmp(argv[i], "--ids-only")) {
            ids_only = true;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            tokenize_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "hearth tokenize: unknown option '%s'\n", argv[i]);
            tokenize_usage(stderr);
            return 2;
        }
    }
    if (!model) {
        tokenize_usage(stderr);
        return 2;
    }
    tok_vocab *v = open_vocab("tokenize", model);
    if (!v) return 1;
    size_t len;
    char *text = cli_read_stream("tokenize", stdin, "stdin", TOK_MAX_INPUT, &len);
    if (!text) {
        tok_free(v);
        return 1;
    }
    hearth_err err;
    int32_t *ids;
    size_t n;
    int rc = 0;
    if (tok_encode(v, text, len, !no_bos, special, &ids, &n, &err)) {
        fprintf(stderr, "hearth tokenize: %s\n", err.msg);
        rc = 1;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (ids_only) {
                printf(i ? " %" PRId32 : "%" PRId32, ids[i]);
                continue;
            }
            const char *p;
            size_t pl;
            printf("%6" PRId32 " ", ids[i]);
            if (tok_piece(v, ids[i], true, &p, &pl, &err) == 0) put_piece(p, pl);
            putchar('\n');
        }
        if (ids_only) putchar('\n');
        free(ids);
    }
    free(text);
    tok_free(v);
    if (fflush(stdout)) {
        fprintf(stderr, "hearth tokenize: writing stdout: %s\n", strerror(errno));
        rc = 1;
    }
    return rc;
}

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL;
    unsigned flags = TOK_DETOK_STRIP_SPACE;
    for (int i = 1; i < argc; i++) {
        int m = model_arg(argc, argv, &i, &model);
        if (m == 1) continue;
        if (m < 0) {
            fprintf(stderr, "hearth detokenize: %s needs a path\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--special")) {
            flags |= TOK_DETOK_SPECIAL;
        } else if (!strcmp(argv[i], "--keep-space")) {
            flags &= ~(unsigned)TOK_DETOK_STRIP_SPACE;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            detokenize_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "hearth detokenize: unknown option '%s'\n", argv[i]);
            detokenize_usage(stderr);
            return 2;
        }
    }
    if (!model) {
        detokenize_usage(stderr);
        return 2;
    }
    tok_vocab *v = open_vocab("detokenize", model);
    if (!v) return 1;
    size_t len;
    char *text = cli_read_stream("detokenize", stdin, "stdin", 64u << 20, &len);
    if (!text) {
        tok_free(v);
        return 1;
    }
    /* Every id is checked before any text is written. */
    int rc = 0;
    const char *nul = memchr(text, 0, len);
    if (nul) { /* the parse below stops at a NUL: refuse rather than drop the rest */
        fprintf(stderr, "hearth detokenize: stdin: NUL byte at offset %zu, expected token ids\n",
                (size_t)(nul - text));
        rc = 1;
    }
    size_t n = 0, cap = 1024;
    int32_t *ids = malloc(cap * sizeof *ids);
    for (char *p = text; ids && rc == 0 && *p;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long long id = strtoll(p, &end, 10);
        bool sep =
            *end == 0 || *end == ' ' || *end == '\t' || *end == '\n' || *end == '\r' || *end == ',';
        if (end == p || !sep || errno == ERANGE) {
            char *stop = p;
            while (*stop && *stop != ' ' && *stop != '\t' && *stop != '\n' && stop - p < 32) stop++;
            fprintf(stderr, "hearth detokenize: id %zu: expected a token id, found '%.*s'\n", n,
                    (int)(stop - p), p);
            rc = 1;
            break;
        }
        if (id < 0 || id >= tok_n_vocab(v)) {
            fprintf(stderr,
                    "hearth detokenize: id %zu: token %lld is out of range (vocabulary of %" PRId32
                    " tokens)\n",
                    n, id, tok_n_vocab(v));
            rc = 1;
            break;
        }
        if (n == cap) {
            int32_t *b = realloc(ids, 2 * cap * sizeof *ids);
            if (!b) {
                fprintf(stderr, "hearth detokenize: out of memory after %zu ids\n", n);
                rc = 1;
                break;
            }
            ids = b;
            cap *= 2;
        }
        ids[n++] = (int32_t)id;
        p = end;
    }
    hearth_err err;
    tok_detok *d = NULL;
    if (!ids) {
        fprintf(stderr, "hearth detokenize: out of memory\n");
        rc = 1;
    } else if (rc == 0 && !(d = tok_detok_new(v, flags, &err))) {
        fprintf(stderr, "hearth detokenize: %s\n", err.msg);
        rc = 1;
    }
    for (size_t i = 0; d && rc == 0 && i <= n; i++) {
        size_t k;
        const char *t = i < n ? tok_detok_push(d, ids[i], &k, &err) : tok_detok_flush(d, &k);
        if (!t) {
            fprintf(stderr, "hearth detokenize: id %zu: %s\n", i, err.msg);
            rc = 1;
            break;
        }
        fwrite(t, 1, k, stdout);
    }
    free(ids);
    tok_detok_free(d);
    free(text);
    tok_free(v);
    if (fflush(stdout)) {
        fprintf(stderr, "hearth detokenize: writing stdout: %s\n", strerror(errno));
        rc = 1;
    }
    return rc;
}
