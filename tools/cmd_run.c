/* hearth run: one prompt in, generated text out. Only the generated text goes
 * to stdout (script friendly); statistics and notices go to stderr. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/threadpool.h"
#include "cli.h"
#include "gen_common.h"
#include "hearth.h"

#define MAX_STOPS        64
#define MAX_PROMPT_BYTES ((size_t)256 << 20) /* the tokenizer's limit per call */

static void usage(FILE *out) {
    fprintf(out,
            "usage: hearth run -m MODEL [-p TEXT | -f FILE | stdin] [options]\n\n"
            "  -m, --model MODEL       .gguf path, model name in the store, or 'demo'\n"
            "  -p, --prompt TEXT       the prompt (default: read stdin to its end)\n"
            "  -f, --file FILE         read the prompt from FILE\n"
            "  -n, --n-predict N       generate at most N tokens (default: until end of turn)\n"
            "  -c, --ctx-size N        context length in tokens (default: min(4096, model's))\n"
            "  -b, --batch-size N      prompt tokens per forward pass (default 512)\n"
            "  -t, --threads N         CPU threads (default: all)\n"
            "      --mmap, --no-mmap   map the file (4 KiB pages), or copy the weights into\n"
            "                          2 MiB huge pages (default: copy if THP is on and they fit)\n"
            "      --stop S            stop before S (repeatable, up to %d)\n"
            "      --ignore-eos        keep generating through end-of-turn tokens\n"
            "      --chat              wrap the prompt as one user message in the chat template\n"
            "      --hide-thinking     leave out <think>...</think> (reasoning models)\n"
            "      --special           print control tokens' text too\n"
            "      --print-ids         print the generated token ids instead of the text\n"
            "  -q, --quiet             no statistics on stderr\n\n%s",
            MAX_STOPS, SAMP_OPTS_HELP);
}

typedef struct out_state {
    bool print_ids;
    bool hide_thinking;
    int n_ids;
} out_state;

static int on_text(void *ud, int thinking, const char *text, size_t len) {
    out_state *o = ud;
    if (o->print_ids || (thinking && o->hide_thinking)) return 0;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static int on_token(void *ud, int32_t tok) {
    out_state *o = ud;
    printf("%s%d", o->n_ids++ ? " " : "", (int)tok);
    return 0;
}

int cmd_run(int argc, char **argv) {
    const char *model_arg = NULL, *prompt_arg = NULL, *file_arg = NULL;
    const char *stops[MAX_STOPS];
    int n_stops = 0, n_predict = -1, n_ctx = 0, n_batch = 0, n_threads = 0;
    hearth_load load = HEARTH_LOAD_AUTO;
    bool ignore_eos = false, chat = false, hide_thinking = false, special = false,
         print_ids = false, quiet = false;
    samp_opts so;
    memset(&so, 0, sizeof so);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDS_VALUE                                                                                \
    do {                                                                                           \
        if (!val) {                                                                                \
            fprintf(stderr, "hearth run: %s needs a value\n", a);                                  \
            return 2;                                                                              \
        }                                                                                          \
        i++;                                                                                       \
    } while (0)
        bool used = false;
        int r = samp_opt_parse("run", &so, a, val, &used);
        if (r < 0) return 2;
        if (r > 0) {
            if (!val) {
                fprintf(stderr, "hearth run: %s needs a value\n", a);
                return 2;
            }
            i++;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            NEEDS_VALUE;
            model_arg = val;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            NEEDS_VALUE;
            prompt_arg = val;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            NEEDS_VALUE;
            file_arg = val;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            NEEDS_VALUE;
            if (opt_int("run", a, val, 0, 1 << 30, &n_predict) < 0) return 2;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            NEEDS_VALUE;
            if (opt_int("run", a, val, 1, 1 << 24, &n_ctx) < 0) return 2;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
            NEEDS_VALUE;
            if (opt_int("run", a, val, 1, 1 << 16, &n_batch) < 0) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            NEEDS_VALUE;
            if (opt_int("run", a, val, 1, TP_MAX_THREADS, &n_threads) < 0) return 2;
        } else if (!strcmp(a, "--stop")) {
            NEEDS_VALUE;
            if (n_stops == MAX_STOPS) {
                fprintf(stderr, "hearth run: --stop: at most %d stop strings\n", MAX_STOPS);
                return 2;
            }
            if (!*val) {
                fprintf(stderr, "hearth run: --stop: expected a non-empty string\n");
                return 2;
            }
            stops[n_stops++] = val;
        } else if (!strcmp(a, "--mmap") || !strcmp(a, "--no-mmap")) {
            load = !strcmp(a, "--mmap") ? HEARTH_LOAD_MMAP : HEARTH_LOAD_COPY;
        } else if (!strcmp(a, "--ignore-eos")) {
            ignore_eos = true;
        } else if (!strcmp(a, "--chat")) {
            chat = true;
        } else if (!strcmp(a, "--hide-thinking")) {
            hide_thinking = true;
        } else if (!strcmp(a, "--special")) {
            special = true;
        } else if (!strcmp(a, "--print-ids")) {
            print_ids = true;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else {
            fprintf(stderr, "hearth run: unknown option '%s' (see hearth run --help)\n", a);
            return 2;
        }
#undef NEEDS_VALUE
    }
    if (!model_arg) {
        fprintf(stderr, "hearth run: -m MODEL is required (see hearth run --help)\n");
        return 2;
    }
    if (prompt_arg && file_arg) {
        fprintf(stderr, "hearth run: give the prompt with -p or -f, not both\n");
        return 2;
    }

    /* The prompt first: a usage problem should not wait for a model load. */
    char *text = NULL;
    size_t text_len = 0;
    if (prompt_arg) {
        text = strdup(prompt_arg);
        text_len = text ? strlen(text) : 0;
    } else {
        if (!file_arg && isatty(STDIN_FILENO))
            fprintf(stderr,
                    "hearth run: reading the prompt from the terminal (end it with Ctrl-D)\n");
        text = file_arg ? cli_read_file("run", file_arg, MAX_PROMPT_BYTES, &text_len)
                        : cli_read_stream("run", stdin, "stdin", MAX_PROMPT_BYTES, &text_len);
        if (!text) return 1;
    }
    if (!text) {
        fprintf(stderr, "hearth run: out of memory\n");
        return 1;
    }
    if (chat && memchr(text, 0, text_len)) { /* a message is a C string: refuse, never cut */
        fprintf(stderr, "hearth run: --chat: the prompt contains a NUL byte\n");
        free(text);
        return 1;
    }

    int rc = 1;
    hearth_session *s = NULL;
    char *rendered = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    hearth_model *m = gen_load_model("run", model_arg, n_threads, load);
    if (!m) goto done;
    hearth_model_info info;
    hearth_model_get_info(m, &info);

    const char *ptext = text;
    size_t plen = text_len;
    if (chat) {
        hearth_message msg = {"user", text};
        if (hearth_chat_render(m, &msg, 1, 1, &rendered, &plen) < 0) {
            fprintf(stderr, "hearth run: %s\n", hearth_last_error());
            goto done;
        }
        ptext = rendered;
    }
    if (hearth_tokenize(m, ptext, plen, HEARTH_TOK_ADD_SPECIAL | HEARTH_TOK_PARSE_SPECIAL, &ids,
                        &n_ids) < 0) {
        fprintf(stderr, "hearth run: %s\n", hearth_last_error());
        goto done;
    }
    if (n_ctx == 0) n_ctx = info.n_ctx_train < 4096 ? info.n_ctx_train : 4096;
    if (n_ids > (size_t)n_ctx) { /* before allocating the cache */
        fprintf(stderr, "hearth run: prompt is %zu tokens, context is %d (raise -c)\n", n_ids,
                n_ctx);
        goto done;
    }
    s = hearth_session_new(m, n_ctx, n_batch);
    if (!s) {
        fprintf(stderr, "hearth run: %s\n", hearth_last_error());
        goto done;
    }

    hearth_gen_params p = hearth_gen_default_params(m);
    p.seed = gen_random_seed();
    samp_opts_apply(&so, &p);
    p.max_tokens = n_predict;
    p.ignore_eos = ignore_eos;
    p.stop = stops;
    p.n_stop = n_stops;
    p.split_thinking = hide_thinking; /* otherwise the text exactly as generated */
    p.render_special = special;
    out_state o = {.print_ids = print_ids, .hide_thinking = hide_thinking};
    p.on_text = on_text;
    p.on_token = print_ids ? on_token : NULL;
    p.ud = &o;
    hearth_gen_stats st;
    if (hearth_generate(s, ids, n_ids, &p, &st) < 0) {
        fprintf(stderr, "hearth run: %s\n", hearth_last_error());
        goto done;
    }
    if (print_ids) printf("\n");
    fflush(stdout);
    if (!quiet) {
        if (isatty(STDOUT_FILENO) && !print_ids) fprintf(stderr, "\n");
        gen_print_stats(&st, false);
        /* The speed of light, briefly: what the decode read per token and
         * the bandwidth that makes (hearth bench compares it with the
         * machine's measured limit). */
        uint64_t bpt = hearth_model_decode_bytes(m, st.prompt_tokens + st.gen_tokens / 2.0);
        if (bpt && st.gen_tokens > 0 && st.gen_ms > 0) {
            double tps = st.gen_tokens / (st.gen_ms / 1e3);
            fprintf(stderr, "speed of light: %.3f GB/token x %.1f tok/s = %.1f GB/s read\n",
                    bpt / 1e9, tps, bpt / 1e9 * tps);
        }
        fprintf(stderr, "seed %llu\n", (unsigned long long)p.seed);
    }
    if (st.stop_reason == HEARTH_STOP_CONTEXT)
        fprintf(stderr, "hearth run: generation stopped: the context of %d tokens is full\n",
                n_ctx);
    rc = 0;
done:
    hearth_session_free(s);
    hearth_model_free(m);
    hearth_free(ids);
    hearth_free(rendered);
    free(text);
    return rc;
}
