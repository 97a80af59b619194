/* `-m ARG` for every command: a path, a model name in the local store
 * (src/net/store.h), or `demo` (the random-weight demo model, written into
 * the store on first use, with a notice on stderr). */
#ifndef HEARTH_TOOLS_MODEL_ARG_H
#define HEARTH_TOOLS_MODEL_ARG_H

#include <stddef.h>

/* Resolves arg into out[cap]. On failure prints "hearth CMD: message" and
 * returns -1. */
int cli_model_path(const char *cmd, const char *arg, char *out, size_t cap);

#endif
