/* hearth logits: teacher-forced logits of prompts, in the layout of
 * ../shared/golden/f64 (OUT.json + OUT.logits), for comparing engines.
 *
 *   hearth logits -m MODEL.gguf -f PROMPTS.txt -o OUT [--greedy N] [-t THREADS]
 *
 * PROMPTS.txt holds one prompt per line; "\n" stands for a newline and "\t"
 * for a tab, no other escape exists (so "\\n" is a backslash, then a
 * newline); empty lines are skipped. Each prompt is tokenized with the
 * model's BOS rule and special tokens recognised, evaluated in one batched
 * prefill, and every position's logits row is written (float32,
 * little-endian). --greedy N adds N argmax continuation tokens per prompt
 * (end-of-sequence ignored). HEARTH_KERNELS=ref selects the reference kernels. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model/model.h"
#include "text/tokenizer.h"

#include "cli.h"
#include "cli_util.h"
#include "model_arg.h"

#define MAX_GREEDY 100000

static void usage(FILE *out) {
    fprintf(out,
            "usage: hearth logits -m MODEL.gguf -f PROMPTS.txt -o OUT [--greedy N] [-t THREADS]\n"
            "\n"
            "Writes OUT.json (n_vocab, cases: prompt, tokens, logits_offset[, greedy]) and\n"
            "OUT.logits (float32 rows, one per prompt position), the layout of\n"
            "shared/golden/f64. Prompts: one per line, \\n and \\t escapes.\n"
            "  -m FILE      model (GGUF)\n"
            "  -f FILE      prompts\n"
            "  -o PREFIX    output prefix\n"
            "  --greedy N   also record N greedy continuation tokens per prompt\n"
            "  -t N         threads (default: online CPUs)\n"
            "Environment: HEARTH_KERNELS=ref uses the portable reference kernels.\n");
}

/* Undoes the \n and \t escapes of line[0..n) in place; returns the new length. */
static size_t unescape(char *s, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n && (s[i + 1] == 'n' || s[i + 1] == 't')) {
            s[o++] = s[i + 1] == 'n' ? '\n' : '\t';
            i++;
        } else {
            s[o++] = s[i];
        }
    }
    return o;
}

static int write_floats_le(FILE *f, const float *x, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        u = __builtin_bswap32(u);
        if (fwrite(&u, 4, 1, f) != 1) return -1;
    }
    return 0;
#else
    return fwrite(x, sizeof(float), n, f) == n ? 0 : -1;
#endif
}

int cmd_logits(int argc, char **argv) {
    const char *model_path = NULL, *prompts_path = NULL, *out_prefix = NULL;
    int n_greedy = 0, n_threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "hearth logits: %s: %s\n", a,
                    strcmp(a, "-m") && strcmp(a, "-f") && strcmp(a, "-o") &&
                            strcmp(a, "--greedy") && strcmp(a, "-t")
                        ? "unknown option"
                        : "missing value");
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "-m"))
            model_path = argv[++i];
        else if (!strcmp(a, "-f"))
            prompts_path = argv[++i];
        else if (!strcmp(a, "-o"))
            out_prefix = argv[++i];
        else if (!strcmp(a, "--greedy")) {
            if (opt_int("logits", "--greedy", argv[++i], 0, MAX_GREEDY, &n_greedy) < 0) return 2;
        } else if (!strcmp(a, "-t")) {
            if (opt_int("logits", "-t", argv[++i], 1, TP_MAX_THREADS, &n_threads) < 0) return 2;
        } else {
            fprintf(stderr, "hearth logits: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model_path || !prompts_path || !out_prefix) {
        fprintf(stderr, "hearth logits: -m, -f and -o are required\n");
        usage(stderr);
        return 2;
    }

    int rc = 1;
    hearth_err err;
    model *m = NULL;
    tok_vocab *tv = NULL;
    model_ctx *c = NULL;
    json_t *root = NULL, *cases = NULL;
    FILE *lf = NULL;
    char *text = NULL, *json_path = NULL, *logits_path = NULL;
    float *logits = NULL;
    int32_t *toks = NULL;

    size_t text_len;
    text = cli_read_file("logits", prompts_path, TOK_MAX_INPUT, &text_len);
    if (!text) goto done;
    model_params mp = model_default_params();
    mp.n_threads = n_threads;
    char resolved[4096];
    if (cli_model_path("logits", model_path, resolved, sizeof resolved) < 0) goto done;
    model_path = resolved;
    m = model_load(model_path, &mp, &err);
    if (!m) {
        fprintf(stderr, "hearth logits: %s\n", err.msg);
        goto done;
    }
    tv = tok_load(model_gguf(m), &err);
    if (!tv) {
        fprintf(stderr, "hearth logits: %s: tokenizer: %s\n", model_path, err.msg);
        goto done;
    }
    const model_hparams *hp = model_hparams_of(m);
    const size_t V = (size_t)hp->n_vocab;

    size_t plen = strlen(out_prefix) + 16;
    json_path = malloc(plen);
    logits_path = malloc(plen);
    if (!json_path || !logits_path) goto oom;
    snprintf(json_path, plen, "%s.json", out_prefix);
    snprintf(logits_path, plen, "%s.logits", out_prefix);
    lf = fopen(logits_path, "wb");
    if (!lf) {
        fprintf(stderr, "hearth logits: %s: %s\n", logits_path, strerror(errno));
        goto done;
    }
    root = json_object();
    cases = json_array();
    if (!root || !cases) goto oom;
    const char *slash = strrchr(model_path, '/');
    json_object_set_new(root, "model", json_string(slash ? slash + 1 : model_path));
    json_object_set_new(root, "n_vocab", json_integer((json_int_t)V));
    char gen[128];
    snprintf(gen, sizeof(gen), "hearth logits (kernels: %s)", kern_name());
    json_object_set_new(root, "generator", json_string(gen));

    size_t offset = 0; /* floats written so far */
    int n_cases = 0;
    for (char *line = text, *end = text + text_len; line < end;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        char *next = nl ? nl + 1 : end;
        if (n && line[n - 1] == '\r') n--;
        if (n == 0) {
            line = next;
            continue;
        }
        n = unescape(line, n);
        int32_t *ids = NULL;
        size_t n_ids = 0;
        if (tok_encode(tv, line, n, true, true, &ids, &n_ids, &err) < 0) {
            fprintf(stderr, "hearth logits: prompt %d: %s\n", n_cases + 1, err.msg);
            goto done;
        }
        if (n_ids == 0) {
            free(ids);
            fprintf(stderr, "hearth logits: prompt %d: no tokens to evaluate\n", n_cases + 1);
            goto done;
        }
        if (n_ids > (size_t)MAX_GREEDY * 10 || n_ids + (size_t)n_greedy > (size_t)(1 << 24)) {
            free(ids);
            fprintf(stderr, "hearth logits: prompt %d: %zu tokens is too long\n", n_cases + 1,
                    n_ids);
            goto done;
        }
        int T = (int)n_ids, need = T + n_greedy;
        /* one context per prompt, sized for it */
        model_ctx_free(c);
        c = model_ctx_new(m, need, 512, &err);
        float *nl_logits = realloc(logits, sizeof(float) * V * (size_t)T);
        int32_t *nt = realloc(toks, sizeof(int32_t) * (size_t)need);
        if (nl_logits) logits = nl_logits;
        if (nt) toks = nt;
        if (!c || !nl_logits || !nt) {
            free(ids);
            fprintf(stderr, "hearth logits: prompt %d: %s\n", n_cases + 1,
                    c ? "out of memory" : err.msg);
            goto done;
        }
        memcpy(toks, ids, sizeof(int32_t) * n_ids);
        free(ids);
        if (model_eval(c, toks, T, 0, logits, MODEL_LOGITS_ALL, &err) < 0) {
            fprintf(stderr, "hearth logits: prompt %d: %s\n", n_cases + 1, err.msg);
            goto done;
        }
        if (write_floats_le(lf, logits, V * (size_t)T) < 0) {
            fprintf(stderr, "hearth logits: %s: write failed\n", logits_path);
            goto done;
        }
        json_t *cs = json_object(), *jt = json_array();
        json_t *jp = json_stringn(line, n); /* NULL for invalid UTF-8 */
        json_object_set_new(cs, "prompt", jp ? jp : json_null());
        for (int i = 0; i < T; i++) json_array_append_new(jt, json_integer(toks[i]));
        json_object_set_new(cs, "tokens", jt);
        json_object_set_new(cs, "logits_offset", json_integer((json_int_t)offset));
        offset += V * (size_t)T;
        if (n_greedy > 0) {
            json_t *jg = json_array();
            float *last = logits + V * (size_t)(T - 1);
            for (int i = 0; i < n_greedy; i++) {
                int best = 0;
                for (size_t k = 1; k < V; k++)
                    if (last[k] > last[best]) best = (int)k;
                toks[T + i] = best;
                json_array_append_new(jg, json_integer(best));
                if (i + 1 < n_greedy &&
                    model_eval(c, &toks[T + i], 1, T + i, last, MODEL_LOGITS_LAST, &err) < 0) {
                    fprintf(stderr, "hearth logits: prompt %d: %s\n", n_cases + 1, err.msg);
                    json_decref(jg);
                    json_decref(cs);
                    goto done;
                }
            }
            json_object_set_new(cs, "greedy", jg);
        }
        json_array_append_new(cases, cs);
        n_cases++;
        line = next;
    }
    json_object_set_new(root, "cases", cases);
    cases = NULL;
    if (fclose(lf) != 0) {
        lf = NULL;
        fprintf(stderr, "hearth logits: %s: write failed\n", logits_path);
        goto done;
    }
    lf = NULL;
    if (json_dump_file(root, json_path, JSON_INDENT(1) | JSON_ENSURE_ASCII) != 0) {
        fprintf(stderr, "hearth logits: %s: write failed\n", json_path);
        goto done;
    }
    fprintf(stderr, "hearth logits: %d prompts, %zu rows -> %s, %s\n", n_cases, offset / V,
            json_path, logits_path);
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "hearth logits: out of memory\n");
done:
    if (lf) fclose(lf);
    json_decref(cases);
    json_decref(root);
    model_ctx_free(c);
    tok_free(tv);
    model_free(m);
    free(text);
    free(json_path);
    free(logits_path);
    free(logits);
    free(toks);
    return rc;
}
