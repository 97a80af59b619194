/* hearth imatrix: an importance matrix for `hearth quantize --imatrix`.
 *
 *   hearth imatrix -m MODEL -f TEXT [-o OUT.gguf] [-c CTX] [--chunks N] [-t N]
 *                  [--process-output]
 *
 * As llama.cpp's llama-imatrix: the text is tokenized once (BOS first when the
 * model adds one), cut into chunks of CTX tokens, and each chunk runs from an
 * empty cache with its first token replaced by BOS (when the model adds one).
 * Every weight matrix's inputs are squared and summed per column (per expert
 * for expert tensors); the file records those sums and how many tokens each
 * matrix saw (src/quant/imatrix.h). output.weight is left out unless
 * --process-output. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "model/model.h"
#include "quant/imatrix.h"
#include "text/tokenizer.h"

#include "cli.h"
#include "cli_util.h"
#include "model_arg.h"

#define MAX_CTX (1 << 20)

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: hearth imatrix -m MODEL.gguf -f TEXT [-o OUT.gguf] [-c CTX] [--chunks N]\n"
        "                      [-t N] [--process-output]\n"
        "\n"
        "Measures which weight columns matter on TEXT (the mean squared activation\n"
        "each meets) for hearth quantize --imatrix. The file is the GGUF imatrix that\n"
        "llama.cpp's llama-imatrix writes.\n"
        "  -m FILE              model (GGUF; F32, F16 or BF16 is best)\n"
        "  -f FILE              calibration text\n"
        "  -o FILE              output (default imatrix.gguf)\n"
        "  -c N                 tokens per chunk (default 512)\n"
        "  --chunks N           use at most N chunks (default: all)\n"
        "  -t N                 threads (default: online CPUs)\n"
        "  --process-output     include output.weight (left out by default, as llama.cpp does)\n");
}

typedef struct opts {
    const char *model, *text, *out;
    int n_ctx, n_chunks, n_threads;
    bool output;
    char *text_buf;
    size_t text_len;
} opts;

static int run(const opts *o, hearth_err *err) {
    int rc = -1;
    model *m = NULL;
    model_ctx *c = NULL;
    tok_vocab *v = NULL;
    imat *im = NULL;
    int32_t *tokens = NULL, *chunk = NULL;
    float *logits = NULL; /* only output.weight's inputs need the logits made */
    size_t n_tok = 0;

    model_params mp = model_default_params();
    mp.n_threads = o->n_threads;
    m = model_load(o->model, &mp, err);
    if (!m) goto done;
    v = tok_load(model_gguf(m), err);
    if (!v) goto done;
    if (tok_encode(v, o->text_buf, o->text_len, true, false, &tokens, &n_tok, err)) {
        hearth_err_prefix(err, "%s", o->text);
        goto done;
    }
    size_t n_chunk = n_tok / (size_t)o->n_ctx;
    if (n_chunk < 1) {
        hearth_errf(err, "%s has %zu tokens; -c %d needs at least %d", o->text, n_tok, o->n_ctx,
                    o->n_ctx);
        goto done;
    }
    if (o->n_chunks > 0 && (size_t)o->n_chunks < n_chunk) n_chunk = (size_t)o->n_chunks;
    c = model_ctx_new(m, o->n_ctx, o->n_ctx < 512 ? o->n_ctx : 512, err);
    im = imat_new(err);
    chunk = malloc((size_t)o->n_ctx * sizeof(int32_t));
    if (o->output)
        logits = malloc((size_t)o->n_ctx * (size_t)model_hparams_of(m)->n_vocab * sizeof(float));
    if (!c || !im || !chunk || (o->output && !logits)) {
        if (c && im) hearth_errf(err, "out of memory");
        goto done;
    }
    imat_set_output(im, o->output);
    model_ctx_set_observer(c, imat_observe, im);
    const bool add_bos = tok_add_bos(v) && tok_bos(v) >= 0;
    fprintf(stderr, "imatrix: %zu tokens, %zu chunks of %d%s\n", n_tok, n_chunk, o->n_ctx,
            add_bos ? " (BOS first)" : "");
    double t0 = tp_now(), shown = t0;
    for (size_t ci = 0; ci < n_chunk; ci++) {
        memcpy(chunk, tokens + ci * (size_t)o->n_ctx, (size_t)o->n_ctx * sizeof(int32_t));
        if (add_bos) chunk[0] = tok_bos(v);
        model_ctx_reset(c);
        if (model_eval(c, chunk, o->n_ctx, 0, logits,
                       o->output ? MODEL_LOGITS_ALL : MODEL_LOGITS_NONE, err) ||
            imat_error(im, err)) {
            hearth_err_prefix(err, "chunk %zu", ci + 1);
            goto done;
        }
        if (ci == 0 || ci + 1 == n_chunk || tp_now() - shown >= 10) {
            shown = tp_now();
            fprintf(stderr, "imatrix: chunk %zu/%zu, %.1f s\n", ci + 1, n_chunk, shown - t0);
        }
    }
    const char *base = strrchr(o->text, '/');
    if (imat_set_info(im, base ? base + 1 : o->text, (int)n_chunk, o->n_ctx, err) ||
        imat_save(im, o->out, err))
        goto done;
    fprintf(stderr, "imatrix: %s: %d tensors, %zu chunks of %d tokens\n", o->out,
            imat_n_entries(im), n_chunk, o->n_ctx);
    rc = 0;
done:
    free(logits);
    free(chunk);
    free(tokens);
    imat_free(im);
    model_ctx_free(c);
    tok_free(v);
    model_free(m);
    return rc;
}

int cmd_imatrix(int argc, char **argv) {
    opts o = {.out = "imatrix.gguf", .n_ctx = 512};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--process-output")) {
            o.output = true;
            continue;
        }
        if (a[0] != '-') {
            fprintf(stderr, "hearth imatrix: unexpected argument '%s'\n", a);
            return 2;
        }
        static const char *const known[] = {"-m", "--model",   "-f",      "--file",
                                            "-o", "--output",  "-c",      "--ctx-size",
                                            "-t", "--threads", "--chunks"};
        bool is_known = false;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++) is_known |= !strcmp(a, known[k]);
        if (!is_known) {
            fprintf(stderr, "hearth imatrix: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "hearth imatrix: %s needs a value (see --help)\n", a);
            return 2;
        }
        const char *val = argv[++i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            o.model = val;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            o.text = val;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            o.out = val;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            if (opt_int("imatrix", a, val, 2, MAX_CTX, &o.n_ctx)) return 2;
        } else if (!strcmp(a, "--chunks")) {
            if (opt_int("imatrix", a, val, 1, 1 << 30, &o.n_chunks)) return 2;
        } else {
            if (opt_int("imatrix", a, val, 1, TP_MAX_THREADS, &o.n_threads)) return 2;
        }
    }
    if (!o.model || !o.text) {
        fprintf(stderr, "hearth imatrix: needs -m MODEL and -f TEXT\n");
        usage(stderr);
        return 2;
    }
    if (!(o.text_buf = cli_read_file("imatrix", o.text, TOK_MAX_INPUT, &o.text_len))) return 1;
    char resolved[4096];
    if (cli_model_path("imatrix", o.model, resolved, sizeof resolved) < 0) {
        free(o.text_buf);
        return 1;
    }
    o.model = resolved;
    hearth_err err = {{0}};
    int rc = run(&o, &err);
    free(o.text_buf);
    if (rc) {
        fprintf(stderr, "hearth imatrix: %s\n", err.msg);
        return 1;
    }
    return 0;
}
