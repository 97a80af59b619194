/* What `hearth run` and `hearth chat` share: the sampling options, and loading a model by path,
 * store name or `demo`. */
#ifndef HEARTH_TOOLS_GEN_COMMON_H
#define HEARTH_TOOLS_GEN_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "cli_util.h"
#include "hearth.h"

/* Sampling options as given on the command line; unset ones keep the model's
 * defaults (hearth_gen_default_params). */
typedef struct samp_opts {
    float temp, top_p, min_p, repeat_penalty, presence_penalty, frequency_penalty;
    int top_k, repeat_last_n;
    uint64_t seed;
    bool has_temp, has_top_p, has_min_p, has_repeat_penalty, has_presence_penalty,
        has_frequency_penalty, has_top_k, has_repeat_last_n, has_seed;
} samp_opts;

/* If argv[*i] is a sampling option, parses it (and its value, advancing *i)
 * and returns 1; 0 if it is not one; -1 after printing a usage error. `name`
 * without the leading dashes is also accepted when `bare` (for /set). */
int samp_opt_parse(const char *cmd, samp_opts *o, const char *opt, const char *val, bool *used_val);
void samp_opts_apply(const samp_opts *o, hearth_gen_params *p);
extern const char SAMP_OPTS_HELP[];

/* Loads `-m ARG`: "demo" (written on first use, with a notice on stderr), a
 * path, or a model name in the local store. Shows progress on stderr when it
 * is a terminal. Prints the error and returns NULL on failure. */
hearth_model *gen_load_model(const char *cmd, const char *arg, int n_threads, hearth_load load);

/* A random seed from /dev/urandom (time as a fallback). */
uint64_t gen_random_seed(void);

/* "prompt 12 tok, 35.2 ms (340.9 tok/s) | gen 24 tok, 500.0 ms (48.0 tok/s)" */
void gen_print_stats(const hearth_gen_stats *st, bool dim);

#endif
