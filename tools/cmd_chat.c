/* hearth chat: an interactive conversation through the model's chat template.
 *
 * Each turn the whole conversation is rendered and tokenized again; the
 * session evaluates only what its KV cache does not already hold (the new
 * user message), so a long chat costs one prefill. Assistant messages are
 * stored without their thinking, as R1's template expects.
 *
 * Output: answers on stdout; thinking dimmed on a terminal, labelled
 * "[thinking]" / "[answer]" through a pipe, or hidden (--hide-thinking);
 * statistics on stderr. Ctrl-C stops the current answer; at the prompt, a
 * second Ctrl-C (or /bye, or end of input) leaves. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/threadpool.h"
#include "cli.h"
#include "gen_common.h"
#include "hearth.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: hearth chat -m MODEL [--system TEXT] [options]\n\n"
            "  -m, --model MODEL       .gguf path, model name in the store, or 'demo'\n"
            "      --system TEXT       system message\n"
            "      --hide-thinking     do not show the reasoning of <think> models\n"
            "  -n, --n-predict N       at most N tokens per answer (default: until end of turn)\n"
            "  -c, --ctx-size N        context length in tokens (default: min(4096, model's))\n"
            "  -t, --threads N         CPU threads (default: all)\n"
            "      --mmap, --no-mmap   map the file (4 KiB pages), or copy the weights into\n"
            "                          2 MiB huge pages (default: copy if THP is on and they fit)\n"
            "      --ignore-eos        answers go on until -n or the context is full\n\n%s\n"
            "in the chat: /system TEXT, /set PARAM VALUE (temp, top-k, top-p, min-p,\n"
            "repeat-penalty, repeat-last-n, presence-penalty, frequency-penalty, seed,\n"
            "n-predict), /reset, /save FILE, /help, /bye (or Ctrl-D). Ctrl-C stops an answer.\n"
            "A message of several lines goes between \"\"\" and \"\"\".\n",
            SAMP_OPTS_HELP);
}

typedef struct msg {
    char *role, *content;
} msg;

typedef struct chat {
    msg *msgs;
    size_t n, cap;
    char *system; /* NULL: none */
} chat;

static int chat_push(chat *c, const char *role, const char *content, size_t len) {
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        msg *nm = realloc(c->msgs, nc * sizeof *nm);
        if (!nm) return -1;
        c->msgs = nm;
        c->cap = nc;
    }
    msg *m = &c->msgs[c->n];
    m->role = strdup(role);
    m->content = strndup(content, len);
    if (!m->role || !m->content) {
        free(m->role);
        free(m->content);
        return -1;
    }
    c->n++;
    return 0;
}

static void chat_pop(chat *c) {
    if (!c->n) return;
    c->n--;
    free(c->msgs[c->n].role);
    free(c->msgs[c->n].content);
}

static void chat_clear(chat *c) {
    while (c->n) chat_pop(c);
}

/* The messages as the API takes them, system first. */
static hearth_message *chat_view(const chat *c, size_t *n) {
    hearth_message *v = malloc((c->n + 1) * sizeof *v);
    if (!v) return NULL;
    size_t k = 0;
    if (c->system) v[k++] = (hearth_message){"system", c->system};
    for (size_t i = 0; i < c->n; i++)
        v[k++] = (hearth_message){c->msgs[i].role, c->msgs[i].content};
    *n = k;
    return v;
}

static int chat_save(const chat *c, const char *path) {
    json_t *arr = json_array();
    if (!arr) return -1;
    size_t n;
    hearth_message *v = chat_view(c, &n);
    if (!v) {
        json_decref(arr);
        return -1;
    }
    /* A message jansson refuses (not UTF-8, e.g. a /system text) fails the
     * save instead of leaving the file one message short. */
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = json_array_append_new(
            arr, json_pack("{s:s, s:s}", "role", v[i].role, "content", v[i].content));
    free(v);
    if (rc == 0) rc = json_dump_file(arr, path, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(arr);
    return rc;
}

/* Output of one answer. */
typedef struct turn {
    bool tty, hide_thinking;
    bool in_think, thought;
    char *answer; /* the answer text, stored in the history */
    size_t n, cap;
    bool oom;
} turn;

static int on_text(void *ud, int thinking, const char *text, size_t len) {
    turn *t = ud;
    if (thinking) {
        if (t->hide_thinking) return 0;
        if (!t->in_think) {
            fputs(t->tty ? "\033[2m" : "[thinking]\n", stdout);
            t->in_think = t->thought = true;
        }
        fwrite(text, 1, len, stdout);
        fflush(stdout);
        return 0;
    }
    if (t->in_think) {
        fputs(t->tty ? "\033[0m\n\n" : "\n[answer]\n", stdout);
        t->in_think = false;
    }
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    if (t->n + len + 1 > t->cap) {
        size_t nc = (t->n + len + 1) * 2;
        char *na = realloc(t->answer, nc);
        if (!na) {
            t->oom = true;
            return 1;
        }
        t->answer = na;
        t->cap = nc;
    }
    memcpy(t->answer + t->n, text, len);
    t->n += len;
    return 0;
}

/* Reads one line (without its newline) into *line; -1 at end of input, -2
 * when interrupted by Ctrl-C. */
static ssize_t read_line(char **line, size_t *cap) {
    errno = 0;
    ssize_t n = getline(line, cap, stdin);
    if (n < 0) {
        if (interrupted || errno == EINTR) {
            clearerr(stdin);
            return -2;
        }
        return -1;
    }
    while (n > 0 && ((*line)[n - 1] == '\n' || (*line)[n - 1] == '\r')) (*line)[--n] = 0;
    return n;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
    return s;
}

/* A message of several lines: `first` is what followed the opening """ on
 * its line; reads lines up to one that ends with """ (or the end of input).
 * *out is malloc'd. Returns 0, -1 on a read error or NUL byte, -2 when
 * interrupted. */
static int read_block(const char *first, bool tty, char **line, size_t *cap, char **out) {
    size_t len = strlen(first), size = len + 1;
    char *buf = malloc(size);
    if (!buf) return -1;
    memcpy(buf, first, size);
    for (;;) {
        size_t n = strlen(buf);
        if (n >= 3 && !strcmp(buf + n - 3, "\"\"\"")) { /* closed */
            buf[n - 3] = 0;
            break;
        }
        if (tty) {
            fputs("... ", stdout);
            fflush(stdout);
        }
        ssize_t got = read_line(line, cap);
        if (got == -2 || (got >= 0 && memchr(*line, 0, (size_t)got))) {
            free(buf);
            return got == -2 ? -2 : -1;
        }
        if (got < 0) break; /* end of input closes the block */
        size_t need = n + 1 + (size_t)got + 1;
        if (need > size) {
            size = need * 2;
            char *nb = realloc(buf, size);
            if (!nb) {
                free(buf);
                return -1;
            }
            buf = nb;
        }
        buf[n] = '\n';
        memcpy(buf + n + 1, *line, (size_t)got + 1);
    }
    /* The text between the markers, without the blank edges they leave. */
    size_t start = 0, end = strlen(buf);
    while (buf[start] == '\n') start++;
    while (end > start && buf[end - 1] == '\n') end--;
    memmove(buf, buf + start, end - start);
    buf[end - start] = 0;
    *out = buf;
    return 0;
}

int cmd_chat(int argc, char **argv) {
    const char *model_arg = NULL, *system_arg = NULL;
    int n_ctx = 0, n_threads = 0, n_predict = -1;
    hearth_load load = HEARTH_LOAD_AUTO;
    bool hide_thinking = false, ignore_eos = false;
    samp_opts so;
    memset(&so, 0, sizeof so);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool used = false;
        int r = samp_opt_parse("chat", &so, a, val, &used);
        if (r < 0) return 2;
        if (r > 0) {
            i++;
            continue;
        }
        bool needs = !strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--system") ||
                     !strcmp(a, "-c") || !strcmp(a, "--ctx-size") || !strcmp(a, "-t") ||
                     !strcmp(a, "--threads") || !strcmp(a, "-n") || !strcmp(a, "--n-predict");
        if (needs && !val) {
            fprintf(stderr, "hearth chat: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            model_arg = argv[++i];
        } else if (!strcmp(a, "--system")) {
            system_arg = argv[++i];
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            if (opt_int("chat", a, argv[++i], 1, 1 << 24, &n_ctx) < 0) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (opt_int("chat", a, argv[++i], 1, TP_MAX_THREADS, &n_threads) < 0) return 2;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (opt_int("chat", a, argv[++i], 0, 1 << 30, &n_predict) < 0) return 2;
        } else if (!strcmp(a, "--hide-thinking")) {
            hide_thinking = true;
        } else if (!strcmp(a, "--ignore-eos")) {
            ignore_eos = true;
        } else if (!strcmp(a, "--mmap") || !strcmp(a, "--no-mmap")) {
            load = !strcmp(a, "--mmap") ? HEARTH_LOAD_MMAP : HEARTH_LOAD_COPY;
        } else {
            fprintf(stderr, "hearth chat: unknown option '%s' (see hearth chat --help)\n", a);
            return 2;
        }
    }
    if (!model_arg) {
        fprintf(stderr, "hearth chat: -m MODEL is required (see hearth chat --help)\n");
        return 2;
    }

    int rc = 1;
    chat c = {0};
    hearth_session *s = NULL;
    char *line = NULL;
    size_t line_cap = 0;
    char *block = NULL; /* a """ message of several lines */
    hearth_model *m = gen_load_model("chat", model_arg, n_threads, load);
    if (!m) goto done;
    if (!hearth_model_chat_template(m)) {
        fprintf(stderr, "hearth chat: the model has no chat template; use hearth run\n");
        goto done;
    }
    hearth_model_info info;
    hearth_model_get_info(m, &info);
    if (n_ctx == 0) n_ctx = info.n_ctx_train < 4096 ? info.n_ctx_train : 4096;
    s = hearth_session_new(m, n_ctx, 0);
    if (!s) {
        fprintf(stderr, "hearth chat: %s\n", hearth_last_error());
        goto done;
    }
    if (system_arg && !(c.system = strdup(system_arg))) goto oom;

    hearth_gen_params p = hearth_gen_default_params(m);
    p.seed = gen_random_seed();
    samp_opts_apply(&so, &p);
    p.max_tokens = n_predict;
    p.ignore_eos = ignore_eos;
    p.split_thinking = 1;
    p.cancel = &interrupted;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: Ctrl-C interrupts the read at the prompt */
    sigaction(SIGINT, &sa, NULL);

    bool in_tty = isatty(STDIN_FILENO), out_tty = isatty(STDOUT_FILENO),
         err_tty = isatty(STDERR_FILENO);
    cli_printable(info.name); /* from the file: no escape sequences to the terminal */
    cli_printable(info.arch);
    if (in_tty)
        fprintf(stderr, "%s (%s, %d layers), context %d. /help for commands, /bye to leave.\n",
                info.name[0] ? info.name : model_arg, info.arch, info.n_layer, n_ctx);
    bool sigint_at_prompt = false;
    uint64_t turn_no = 0;
    for (;;) {
        if (in_tty) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        interrupted = 0;
        ssize_t n = read_line(&line, &line_cap);
        if (n == -2) {
            if (sigint_at_prompt) {
                fputs("\n", stdout);
                break;
            }
            sigint_at_prompt = true;
            fputs("\n(Ctrl-C again or /bye to leave)\n", stderr);
            continue;
        }
        if (n < 0) { /* end of input */
            if (in_tty) fputs("\n", stdout);
            break;
        }
        sigint_at_prompt = false;
        if (memchr(line, 0, (size_t)n)) { /* the line is a C string from here on: never cut it */
            fprintf(stderr, "hearth chat: the line contains a NUL byte; ignored\n");
            continue;
        }
        char *in = trim(line);
        free(block);
        block = NULL;
        if (!strncmp(in, "\"\"\"", 3)) {
            int r = read_block(in + 3, in_tty, &line, &line_cap, &block);
            if (r == -2) {
                fputs("\n(message discarded)\n", stderr);
                continue;
            }
            if (r < 0) {
                fprintf(stderr,
                        "hearth chat: cannot read the message (NUL byte or out of memory)\n");
                continue;
            }
            in = block;
            if (!*in) continue;
        } else if (!*in) {
            continue;
        } else if (in[0] == '/') {
            char *arg = in + strcspn(in, " \t");
            if (*arg) *arg++ = 0;
            arg = trim(arg);
            if (!strcmp(in, "/bye") || !strcmp(in, "/exit") || !strcmp(in, "/quit")) break;
            if (!strcmp(in, "/help")) {
                usage(stdout);
            } else if (!strcmp(in, "/reset")) {
                chat_clear(&c);
                hearth_session_reset(s);
                fputs("(conversation cleared)\n", stderr);
            } else if (!strcmp(in, "/system")) {
                free(c.system);
                c.system = *arg ? strdup(arg) : NULL;
                fputs(*arg ? "(system message set)\n" : "(system message removed)\n", stderr);
            } else if (!strcmp(in, "/save")) {
                if (!*arg)
                    fputs("usage: /save FILE\n", stderr);
                else if (chat_save(&c, arg) < 0)
                    fprintf(stderr, "cannot write %s\n", arg);
                else
                    fprintf(stderr, "(saved %s)\n", arg);
            } else if (!strcmp(in, "/set")) {
                char *name = arg, *val = arg + strcspn(arg, " \t");
                if (*val) *val++ = 0;
                val = trim(val);
                bool used;
                int r = samp_opt_parse("chat", &so, name, val, &used);
                if (r > 0) {
                    samp_opts_apply(&so, &p);
                    fprintf(stderr, "(%s = %s)\n", name, val);
                } else if (r == 0 && (!strcmp(name, "n-predict") || !strcmp(name, "max-tokens"))) {
                    if (opt_int("chat", name, val, -1, 1 << 30, &p.max_tokens) == 0)
                        fprintf(stderr, "(%s = %s)\n", name, val);
                } else if (r == 0) {
                    fprintf(stderr, "unknown parameter '%s' (see /help)\n", name);
                }
            } else {
                fprintf(stderr, "unknown command '%s' (see /help)\n", in);
            }
            continue;
        }

        /* A turn: render the whole conversation, generate, store the answer. */
        if (chat_push(&c, "user", in, strlen(in)) < 0) goto oom;
        size_t nv;
        hearth_message *view = chat_view(&c, &nv);
        char *prompt = NULL;
        size_t plen = 0;
        int32_t *ids = NULL;
        size_t n_ids = 0;
        if (!view) goto oom;
        int r = hearth_chat_render(m, view, nv, 1, &prompt, &plen);
        free(view);
        if (r == 0)
            r = hearth_tokenize(m, prompt, plen, HEARTH_TOK_ADD_SPECIAL | HEARTH_TOK_PARSE_SPECIAL,
                                &ids, &n_ids);
        hearth_free(prompt);
        if (r < 0) {
            fprintf(stderr, "hearth chat: %s\n", hearth_last_error());
            chat_pop(&c);
            continue;
        }
        turn t = {.tty = out_tty, .hide_thinking = hide_thinking};
        hearth_gen_params tp = p;
        tp.seed = p.seed + turn_no++;
        tp.on_text = on_text;
        tp.ud = &t;
        hearth_gen_stats st;
        r = hearth_generate(s, ids, n_ids, &tp, &st);
        hearth_free(ids);
        if (t.in_think && t.tty) fputs("\033[0m", stdout);
        fputs("\n", stdout);
        fflush(stdout);
        if (r < 0) {
            fprintf(stderr, "hearth chat: %s\n", hearth_last_error());
            if (strstr(hearth_last_error(), "context is"))
                fputs("(/reset to start over)\n", stderr);
            chat_pop(&c);
            free(t.answer);
            continue;
        }
        if (t.oom) {
            free(t.answer);
            goto oom;
        }
        if (chat_push(&c, "assistant", t.answer ? t.answer : "", t.n) < 0) {
            free(t.answer);
            goto oom;
        }
        free(t.answer);
        if (st.stop_reason == HEARTH_STOP_CANCELLED) fputs("(stopped)\n", stderr);
        if (st.stop_reason == HEARTH_STOP_CONTEXT)
            fputs("(the context is full: /reset to start over)\n", stderr);
        gen_print_stats(&st, err_tty);
    }
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "hearth chat: out of memory\n");
done:
    chat_clear(&c);
    free(c.msgs);
    free(c.system);
    free(block);
    free(line);
    hearth_session_free(s);
    hearth_model_free(m);
    return rc;
}
