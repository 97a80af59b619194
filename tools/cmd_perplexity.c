/* hearth perplexity: how well a model predicts a text, and how far a
 * quantized model's predictions are from the original's.
 *
 *   hearth perplexity -m MODEL -f TEXT [-c CTX] [-b BATCH] [--chunks N] [-t N]
 *                     [--save-logits OUT.logits] [--kl-base BASE.logits]
 *
 * As llama.cpp's perplexity: the text is tokenized once (BOS first when the
 * model adds one), cut into chunks of CTX tokens, each chunk evaluated from an
 * empty cache with its first token replaced by BOS (when the model adds one),
 * and the second half of each chunk scored: positions j in [CTX/2, CTX-1)
 * predict token j+1. PPL = exp(mean NLL); the error is PPL times the standard
 * error of the mean NLL. (llama.cpp asks for 2*CTX tokens; here one chunk's
 * worth is enough.)
 *
 * Logits file (--save-logits writes it, --kl-base reads it), little-endian:
 *   char     magic[8]  "HRTHLOGT"
 *   uint32   version   1
 *   uint32   n_vocab
 *   uint32   n_ctx     tokens per chunk
 *   uint32   n_chunk
 *   uint32   first     first scored position of a chunk (n_ctx / 2)
 *   uint32   reserved  0
 *   int32    tokens[n_chunk * n_ctx]   the text's tokens (before the BOS swap)
 *   float32  logits[n_chunk][n_ctx - 1 - first][n_vocab]   the scored rows
 * --kl-base compares with such a file from a reference model (e.g. the F32
 * file): mean KL(base || this), its median, 99th percentile and maximum, how
 * often the top-1 tokens agree, and both perplexities. -f may then be left
 * out: the tokens come from the base file; with -f they must match it. The
 * comparison covers the base file's chunks (or --chunks N of them). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/threadpool.h"
#include "model/model.h"
#include "text/tokenizer.h"

#include "cli.h"
#include "cli_util.h"
#include "model_arg.h"

#define LOGITS_MAGIC  "HRTHLOGT"
#define LOGITS_HEADER 32
#define MAX_CTX       (1 << 20)

static void usage(FILE *out) {
    fprintf(out,
            "usage: hearth perplexity -m MODEL.gguf -f TEXT [-c CTX] [-b BATCH] [--chunks N]\n"
            "                         [-t N] [--save-logits OUT.logits] [--kl-base BASE.logits]\n"
            "\n"
            "Perplexity over TEXT cut into chunks of CTX tokens (the second half of each\n"
            "chunk is scored), as llama.cpp's perplexity computes it.\n"
            "  -m FILE              model (GGUF)\n"
            "  -f FILE              text (optional with --kl-base: its tokens are used)\n"
            "  -c N                 tokens per chunk (default 512)\n"
            "  -b N                 tokens per forward batch (default min(512, CTX))\n"
            "  --chunks N           score at most N chunks (default: all)\n"
            "  -t N                 threads (default: online CPUs)\n"
            "  --save-logits FILE   write the scored logits (for --kl-base later)\n"
            "  --kl-base FILE       compare with the logits of a reference model: KL\n"
            "                       divergence, top-1 agreement, PPL ratio\n"
            "Environment: HEARTH_KERNELS=ref uses the portable reference kernels.\n");
}

/* log softmax of row[tok] and the row's argmax, in double. */
static double log_prob(const float *row, int n_vocab, int tok, int *argmax) {
    int am = 0;
    for (int i = 1; i < n_vocab; i++)
        if (row[i] > row[am]) am = i;
    double mx = row[am], sum = 0;
    for (int i = 0; i < n_vocab; i++) sum += exp((double)row[i] - mx);
    if (argmax) *argmax = am;
    return (double)row[tok] - mx - log(sum);
}

/* KL(softmax(base) || softmax(q)) over one row. */
static double kl_row(const float *base, const float *q, int n_vocab) {
    double mb = base[0], mq = q[0];
    for (int i = 1; i < n_vocab; i++) {
        if (base[i] > mb) mb = base[i];
        if (q[i] > mq) mq = q[i];
    }
    double sb = 0, sq = 0;
    for (int i = 0; i < n_vocab; i++) {
        sb += exp((double)base[i] - mb);
        sq += exp((double)q[i] - mq);
    }
    double lsb = log(sb), lsq = log(sq), kl = 0;
    for (int i = 0; i < n_vocab; i++) {
        double lpb = (double)base[i] - mb - lsb, lpq = (double)q[i] - mq - lsq;
        kl += exp(lpb) * (lpb - lpq);
    }
    return kl > 0 ? kl : 0; /* rounding can give -1e-17 for equal rows */
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Interpolated percentile of sorted v[0..n). */
static double percentile(const double *v, size_t n, double frac) {
    if (n == 0) return 0;
    double p = frac * (double)(n - 1);
    size_t i = (size_t)p;
    if (i + 1 >= n) return v[n - 1];
    p -= (double)i;
    return (1 - p) * v[i] + p * v[i + 1];
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

typedef struct logits_file {
    FILE *f;
    uint32_t n_vocab, n_ctx, n_chunk, first;
    int32_t *tokens; /* [n_chunk * n_ctx] */
} logits_file;

/* Opens a base logits file and checks its header and size against what the
 * header promises. */
static int base_open(logits_file *b, const char *path, hearth_err *err) {
    memset(b, 0, sizeof(*b));
    b->f = fopen(path, "rb");
    if (!b->f) return hearth_errf(err, "%s: %s", path, strerror(errno));
    uint8_t h[LOGITS_HEADER];
    struct stat st;
    if (fstat(fileno(b->f), &st) || fread(h, 1, sizeof(h), b->f) != sizeof(h))
        return hearth_errf(err, "%s: expected a %d-byte header, the file is shorter", path,
                           LOGITS_HEADER);
    if (memcmp(h, LOGITS_MAGIC, 8))
        return hearth_errf(err, "%s: not a hearth logits file (expected magic %s)", path,
                           LOGITS_MAGIC);
    if (get_u32(h + 8) != 1)
        return hearth_errf(err, "%s: expected version 1, found %u", path, get_u32(h + 8));
    b->n_vocab = get_u32(h + 12);
    b->n_ctx = get_u32(h + 16);
    b->n_chunk = get_u32(h + 20);
    b->first = get_u32(h + 24);
    if (b->n_vocab < 1 || b->n_vocab > (1u << 24) || b->n_ctx < 2 || b->n_ctx > MAX_CTX ||
        b->first >= b->n_ctx - 1 || b->n_chunk < 1)
        return hearth_errf(
            err,
            "%s: bad header (n_vocab %u, n_ctx %u, n_chunk %u, first %u): expected "
            "n_vocab in [1, 2^24], n_ctx in [2, 2^20], first < n_ctx - 1, n_chunk >= 1",
            path, b->n_vocab, b->n_ctx, b->n_chunk, b->first);
    /* sizes in 128-bit-safe steps: every factor is bounded above */
    uint64_t n_tok = (uint64_t)b->n_chunk * b->n_ctx;
    uint64_t rows = (uint64_t)b->n_chunk * (b->n_ctx - 1 - b->first);
    if (n_tok > ((uint64_t)1 << 40) || rows > ((uint64_t)1 << 40) / b->n_vocab)
        return hearth_errf(err, "%s: %u chunks of %u tokens is more than the file can hold", path,
                           b->n_chunk, b->n_ctx);
    uint64_t want = LOGITS_HEADER + 4 * n_tok + 4 * rows * b->n_vocab;
    if ((uint64_t)st.st_size != want)
        return hearth_errf(err, "%s: expected %" PRIu64 " bytes for its header, found %lld", path,
                           want, (long long)st.st_size);
    b->tokens = malloc(n_tok * sizeof(int32_t));
    if (!b->tokens) return hearth_errf(err, "%s: out of memory", path);
    uint8_t *raw = (uint8_t *)b->tokens;
    if (fread(raw, 4, n_tok, b->f) != n_tok) return hearth_errf(err, "%s: short read", path);
    for (uint64_t i = 0; i < n_tok; i++) b->tokens[i] = (int32_t)get_u32(raw + 4 * i);
    return 0;
}

static void base_close(logits_file *b) {
    if (b->f) fclose(b->f);
    free(b->tokens);
}

typedef struct opts {
    const char *model, *text, *save, *base;
    int n_ctx, n_batch, n_chunks, n_threads;
    char *text_buf; /* -f's contents, read before the model loads */
    size_t text_len;
} opts;

static int run(const opts *o, hearth_err *err) {
    int rc = -1;
    model *m = NULL;
    model_ctx *c = NULL;
    tok_vocab *v = NULL;
    int32_t *tokens = NULL, *chunk = NULL;
    float *logits = NULL, *brow = NULL;
    double *kls = NULL;
    FILE *save = NULL;
    logits_file base = {0};
    size_t n_tok = 0;

    model_params mp = model_default_params();
    mp.n_threads = o->n_threads;
    m = model_load(o->model, &mp, err);
    if (!m) goto done;
    const int n_vocab = model_hparams_of(m)->n_vocab;
    v = tok_load(model_gguf(m), err);
    if (!v) goto done;
    const int n_ctx = o->n_ctx, first = n_ctx / 2, n_scored = n_ctx - 1 - first;
    if (n_scored < 1) {
        hearth_errf(err, "-c %d: a chunk needs at least 3 tokens", n_ctx);
        goto done;
    }

    if (o->base && base_open(&base, o->base, err)) goto done;
    if (o->base) {
        if ((int)base.n_vocab != n_vocab || (int)base.n_ctx != n_ctx) {
            hearth_errf(err,
                        "%s: made with n_vocab %u and -c %u; this run has n_vocab %d and -c %d",
                        o->base, base.n_vocab, base.n_ctx, n_vocab, n_ctx);
            goto done;
        }
    }
    if (o->text) {
        if (tok_encode(v, o->text_buf, o->text_len, true, false, &tokens, &n_tok, err)) {
            hearth_err_prefix(err, "%s", o->text);
            goto done;
        }
    } else {
        n_tok = (size_t)base.n_chunk * base.n_ctx;
        tokens = malloc(n_tok * sizeof(int32_t));
        if (!tokens) {
            hearth_errf(err, "out of memory");
            goto done;
        }
        memcpy(tokens, base.tokens, n_tok * sizeof(int32_t));
        for (size_t i = 0; i < n_tok; i++)
            if (tokens[i] < 0 || tokens[i] >= n_vocab) {
                hearth_errf(err, "%s: token %zu is %d, outside [0, %d)", o->base, i, tokens[i],
                            n_vocab);
                goto done;
            }
    }
    size_t n_chunk = n_tok / (size_t)n_ctx;
    if (n_chunk < 1) {
        hearth_errf(err, "the text has %zu tokens; -c %d needs at least %d", n_tok, n_ctx, n_ctx);
        goto done;
    }
    if (o->n_chunks > 0 && (size_t)o->n_chunks < n_chunk) n_chunk = (size_t)o->n_chunks;
    /* without --chunks, a comparison covers what the base file holds */
    if (o->base && o->n_chunks <= 0 && base.n_chunk < n_chunk) n_chunk = base.n_chunk;
    if (o->base) {
        if (base.n_chunk < n_chunk || (uint32_t)first != base.first) {
            hearth_errf(err,
                        "%s holds %u chunks scored from position %u; this run needs %zu from %d",
                        o->base, base.n_chunk, base.first, n_chunk, first);
            goto done;
        }
        for (size_t i = 0; i < n_chunk * (size_t)n_ctx; i++)
            if (tokens[i] != base.tokens[i]) {
                hearth_errf(err,
                            "the tokens differ from those of %s at position %zu (%d here, %d "
                            "there): compare models with the same tokenizer on the same text",
                            o->base, i, tokens[i], base.tokens[i]);
                goto done;
            }
    }

    c = model_ctx_new(m, n_ctx, o->n_batch < n_ctx ? o->n_batch : n_ctx, err);
    if (!c) goto done;
    chunk = malloc((size_t)n_ctx * sizeof(int32_t));
    logits = malloc((size_t)n_ctx * (size_t)n_vocab * sizeof(float));
    if (o->base) {
        brow = malloc((size_t)n_vocab * sizeof(float));
        kls = malloc(n_chunk * (size_t)n_scored * sizeof(double));
    }
    if (!chunk || !logits || (o->base && (!brow || !kls))) {
        hearth_errf(err, "out of memory for %d x %d logits", n_ctx, n_vocab);
        goto done;
    }
    if (o->save) {
        save = fopen(o->save, "wb");
        if (!save) {
            hearth_errf(err, "%s: %s", o->save, strerror(errno));
            goto done;
        }
        uint8_t h[LOGITS_HEADER] = {0};
        memcpy(h, LOGITS_MAGIC, 8);
        put_u32(h + 8, 1);
        put_u32(h + 12, (uint32_t)n_vocab);
        put_u32(h + 16, (uint32_t)n_ctx);
        put_u32(h + 20, (uint32_t)n_chunk);
        put_u32(h + 24, (uint32_t)first);
        fwrite(h, 1, sizeof(h), save);
        for (size_t i = 0; i < n_chunk * (size_t)n_ctx; i++) {
            uint8_t b[4];
            put_u32(b, (uint32_t)tokens[i]);
            fwrite(b, 1, 4, save);
        }
    }

    const bool add_bos = tok_add_bos(v) && tok_bos(v) >= 0;
    fprintf(stderr,
            "perplexity: %zu tokens, %zu chunks of %d, scoring positions %d..%d of each%s\n", n_tok,
            n_chunk, n_ctx, first, n_ctx - 2, add_bos ? " (BOS first)" : "");
    double nll = 0, nll2 = 0, bnll = 0;
    size_t count = 0, same_top = 0;
    double t0 = tp_now();
    for (size_t ci = 0; ci < n_chunk; ci++) {
        memcpy(chunk, tokens + ci * (size_t)n_ctx, (size_t)n_ctx * sizeof(int32_t));
        if (add_bos) chunk[0] = tok_bos(v);
        model_ctx_reset(c);
        if (model_eval(c, chunk, n_ctx, 0, logits, MODEL_LOGITS_ALL, err)) {
            hearth_err_prefix(err, "chunk %zu", ci + 1);
            goto done;
        }
        for (int j = first; j < n_ctx - 1; j++) {
            const float *row = logits + (size_t)j * (size_t)n_vocab;
            int tok = tokens[ci * (size_t)n_ctx + (size_t)j + 1], am = 0;
            double lp = log_prob(row, n_vocab, tok, &am);
            nll -= lp;
            nll2 += lp * lp;
            if (save && fwrite(row, sizeof(float), (size_t)n_vocab, save) != (size_t)n_vocab) {
                hearth_errf(err, "%s: write failed: %s", o->save, strerror(errno));
                goto done;
            }
            if (o->base) {
                if (fread(brow, sizeof(float), (size_t)n_vocab, base.f) != (size_t)n_vocab) {
                    hearth_errf(err, "%s: short read", o->base);
                    goto done;
                }
                int bam = 0;
                double blp = log_prob(brow, n_vocab, tok, &bam);
                if (!isfinite(blp)) {
                    hearth_errf(err, "%s: non-finite logits in chunk %zu", o->base, ci + 1);
                    goto done;
                }
                bnll -= blp;
                same_top += bam == am;
                kls[count] = kl_row(brow, row, n_vocab);
            }
            count++;
        }
        printf("[%zu]%.4f,", ci + 1, exp(nll / (double)count));
        fflush(stdout);
        if (ci == 0) fprintf(stderr, "perplexity: %.2f s per chunk\n", tp_now() - t0);
    }
    printf("\n");
    if (save) {
        /* ferror too: a failed fwrite of the header or tokens leaves the
         * stream's error flag set, which fclose alone does not report */
        if (ferror(save) | fclose(save)) {
            save = NULL;
            hearth_errf(err, "%s: write failed: %s", o->save, strerror(errno));
            goto done;
        }
        save = NULL;
    }
    double mean = nll / (double)count, var = nll2 / (double)count - mean * mean;
    double sd = count > 1 && var > 0 ? sqrt(var / (double)(count - 1)) : 0;
    double ppl = exp(mean);
    printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, ppl * sd);
    if (o->base) {
        double bmean = bnll / (double)count;
        double kl_sum = 0, kl_sum2 = 0;
        for (size_t i = 0; i < count; i++) {
            kl_sum += kls[i];
            kl_sum2 += kls[i] * kls[i];
        }
        double kl_mean = kl_sum / (double)count;
        double kl_var = kl_sum2 / (double)count - kl_mean * kl_mean;
        double kl_err = count > 1 && kl_var > 0 ? sqrt(kl_var / (double)(count - 1)) : 0;
        qsort(kls, count, sizeof(double), cmp_double);
        double p_same = (double)same_top / (double)count;
        printf("KL divergence against %s (%zu positions):\n", o->base, count);
        printf("Mean PPL(Q)      : %.6f\n", ppl);
        printf("Mean PPL(base)   : %.6f\n", exp(bmean));
        printf("PPL ratio Q/base : %.6f\n", exp(mean - bmean));
        printf("Mean KLD         : %.6f +/- %.6f\n", kl_mean, kl_err);
        printf("Median KLD       : %.6f\n", percentile(kls, count, 0.5));
        printf("99.0%% KLD        : %.6f\n", percentile(kls, count, 0.99));
        printf("Maximum KLD      : %.6f\n", kls[count - 1]);
        printf("Same top-1       : %.3f +/- %.3f %%\n", 100 * p_same,
               100 * sqrt(p_same * (1 - p_same) / (double)count));
    }
    rc = 0;
done:
    if (save) fclose(save);
    base_close(&base);
    free(kls);
    free(brow);
    free(logits);
    free(chunk);
    free(tokens);
    model_ctx_free(c);
    tok_free(v);
    model_free(m);
    return rc;
}

int cmd_perplexity(int argc, char **argv) {
    opts o = {.n_ctx = 512, .n_batch = 0, .n_chunks = 0, .n_threads = 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (a[0] != '-') {
            fprintf(stderr, "hearth perplexity: unexpected argument '%s'\n", a);
            return 2;
        }
        static const char *const known[] = {
            "-m",        "--model", "-f",         "--file", "--save-logits",
            "--kl-base", "-c",      "--ctx-size", "-b",     "--batch-size",
            "--chunks",  "-t",      "--threads"};
        bool is_known = false;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++) is_known |= !strcmp(a, known[k]);
        if (!is_known) {
            fprintf(stderr, "hearth perplexity: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "hearth perplexity: %s needs a value (see --help)\n", a);
            return 2;
        }
        const char *val = argv[++i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            o.model = val;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            o.text = val;
        } else if (!strcmp(a, "--save-logits")) {
            o.save = val;
        } else if (!strcmp(a, "--kl-base")) {
            o.base = val;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            if (opt_int("perplexity", a, val, 3, MAX_CTX, &o.n_ctx)) return 2;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
            if (opt_int("perplexity", a, val, 1, MAX_CTX, &o.n_batch)) return 2;
        } else if (!strcmp(a, "--chunks")) {
            if (opt_int("perplexity", a, val, 1, 1 << 30, &o.n_chunks)) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (opt_int("perplexity", a, val, 1, TP_MAX_THREADS, &o.n_threads)) return 2;
        } else {
            fprintf(stderr, "hearth perplexity: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!o.model || (!o.text && !o.base)) {
        fprintf(stderr, "hearth perplexity: needs -m MODEL and -f TEXT (or --kl-base)\n");
        usage(stderr);
        return 2;
    }
    if (o.text && !(o.text_buf = cli_read_file("perplexity", o.text, TOK_MAX_INPUT, &o.text_len)))
        return 1;
    char resolved[4096];
    if (cli_model_path("perplexity", o.model, resolved, sizeof resolved) < 0) {
        free(o.text_buf);
        return 1;
    }
    o.model = resolved;
    hearth_err err = {{0}};
    int rc = run(&o, &err);
    free(o.text_buf);
    if (rc) {
        fprintf(stderr, "hearth perplexity: %s\n", err.msg);
        return 1;
    }
    return 0;
}
