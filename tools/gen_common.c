#include "gen_common.h"
#include "model_arg.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char SAMP_OPTS_HELP[] =
    "sampling (defaults from the model: 0.6/top-p 0.95 for <think> models, else llama.cpp's):\n"
    "  --temp T                temperature, 0 = greedy (default 0.8)\n"
    "  --top-k K               keep the K most likely tokens, 0 = off (40)\n"
    "  --top-p P               nucleus: smallest set with probability >= P, 1 = off (0.95)\n"
    "  --min-p P               drop tokens below P x the top probability, 0 = off (0.05)\n"
    "  --repeat-penalty R      divide logits of recent tokens by R, 1 = off (1.0)\n"
    "  --repeat-last-n N       tokens the penalties look back on (64)\n"
    "  --presence-penalty P    subtract P from recent tokens' logits (0)\n"
    "  --frequency-penalty F   subtract F x count from recent tokens' logits (0)\n"
    "  --seed S                random seed (default: random, printed with the stats)\n";

int samp_opt_parse(const char *cmd, samp_opts *o, const char *opt, const char *val,
                   bool *used_val) {
    *used_val = false;
    const char *name = opt;
    while (*name == '-') name++;
#define IS(s) (!strcmp(name, s))
    int rc = 0;
    if (IS("temp") || IS("temperature")) {
        rc = opt_float(cmd, opt, val, 0, 100, &o->temp);
        o->has_temp = true;
    } else if (IS("top-k")) {
        rc = opt_int(cmd, opt, val, 0, 1 << 30, &o->top_k);
        o->has_top_k = true;
    } else if (IS("top-p")) {
        rc = opt_float(cmd, opt, val, 1e-6, 1, &o->top_p);
        o->has_top_p = true;
    } else if (IS("min-p")) {
        rc = opt_float(cmd, opt, val, 0, 1, &o->min_p);
        o->has_min_p = true;
    } else if (IS("repeat-penalty")) {
        rc = opt_float(cmd, opt, val, 1e-3, 100, &o->repeat_penalty);
        o->has_repeat_penalty = true;
    } else if (IS("repeat-last-n")) {
        rc = opt_int(cmd, opt, val, 0, 8192, &o->repeat_last_n);
        o->has_repeat_last_n = true;
    } else if (IS("presence-penalty")) {
        rc = opt_float(cmd, opt, val, -100, 100, &o->presence_penalty);
        o->has_presence_penalty = true;
    } else if (IS("frequency-penalty")) {
        rc = opt_float(cmd, opt, val, -100, 100, &o->frequency_penalty);
        o->has_frequency_penalty = true;
    } else if (IS("seed")) {
        rc = opt_u64(cmd, opt, val, &o->seed);
        o->has_seed = true;
    } else {
        return 0;
    }
#undef IS
    *used_val = true;
    return rc < 0 ? -1 : 1;
}

void samp_opts_apply(const samp_opts *o, hearth_gen_params *p) {
    if (o->has_temp) p->temperature = o->temp;
    if (o->has_top_k) p->top_k = o->top_k;
    if (o->has_top_p) p->top_p = o->top_p;
    if (o->has_min_p) p->min_p = o->min_p;
    if (o->has_repeat_penalty) p->repeat_penalty = o->repeat_penalty;
    if (o->has_repeat_last_n) p->penalty_last_n = o->repeat_last_n;
    if (o->has_presence_penalty) p->presence_penalty = o->presence_penalty;
    if (o->has_frequency_penalty) p->frequency_penalty = o->frequency_penalty;
    if (o->has_seed) p->seed = o->seed;
}

uint64_t gen_random_seed(void) {
    uint64_t s = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd >= 0) {
        if (read(fd, &s, sizeof s) != (ssize_t)sizeof s) s = 0;
        close(fd);
    }
    if (!s) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
    }
    return s;
}

static void progress(void *ud, float f) {
    (void)ud;
    fprintf(stderr, "\rloading %3d%%", (int)(f * 100 + 0.5f));
    fflush(stderr);
}

hearth_model *gen_load_model(const char *cmd, const char *arg, int n_threads, hearth_load load) {
    char path[4096];
    if (cli_model_path(cmd, arg, path, sizeof path) < 0) return NULL;
    bool tty = isatty(STDERR_FILENO);
    hearth_model_params mp = {
        .n_threads = n_threads, .load = load, .progress = tty ? progress : NULL};
    hearth_model *m = hearth_model_load(path, &mp);
    if (tty) fprintf(stderr, "\r             \r");
    if (!m) fprintf(stderr, "hearth %s: %s\n", cmd, hearth_last_error());
    return m;
}

void gen_print_stats(const hearth_gen_stats *st, bool dim) {
    int evaluated = st->prompt_tokens - st->reused_tokens;
    double ptps = st->prompt_ms > 0 ? evaluated / (st->prompt_ms / 1e3) : 0;
    double gtps = st->gen_ms > 0 ? st->gen_tokens / (st->gen_ms / 1e3) : 0;
    fprintf(stderr, "%sprompt %d tok", dim ? "\033[2m" : "", st->prompt_tokens);
    if (st->reused_tokens) fprintf(stderr, " (%d reused)", st->reused_tokens);
    fprintf(stderr, ", %.1f ms (%.1f tok/s) | generation %d tok, %.1f ms (%.1f tok/s) | %s%s\n",
            st->prompt_ms, ptps, st->gen_tokens, st->gen_ms, gtps, st->stop_str,
            dim ? "\033[0m" : "");
}
