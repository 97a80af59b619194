/* The local model store: one directory of model files.
 *
 * Where: $HEARTH_MODELS if set, else $XDG_DATA_HOME/hearth/models, else
 * ~/.local/share/hearth/models. Downloads in progress live next to their final
 * name as NAME.partial and are never offered as models.
 *
 * Names: `-m ARG` is a path when ARG names an existing file (or contains a
 * '/'); otherwise a model in the store, matched by exact file name, then by
 * name + ".gguf", then by unique prefix. An ambiguous prefix is an error that
 * lists the candidates; an unknown name is an error that names the directory
 * and what it holds. (The special name `demo` is resolved by the caller before
 * it gets here.) */
#ifndef HEARTH_NET_STORE_H
#define HEARTH_NET_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/error.h"

#define STORE_NAME_MAX       256 /* file name bytes, NUL included */
#define STORE_PARTIAL_SUFFIX ".partial"

/* The models directory path (not created). */
int store_dir(char *out, size_t cap, hearth_err *err);
/* Same, creating it and its parents (mode 0755) when missing. */
int store_dir_create(char *out, size_t cap, hearth_err *err);

/* True when `name` is acceptable as a file name in the store: 1..255 bytes,
 * no '/', no NUL, not starting with '.', no control characters. */
bool store_name_ok(const char *name);

typedef struct store_entry {
    char name[STORE_NAME_MAX]; /* file name inside the store */
    uint64_t size;             /* bytes */
    time_t mtime;
    bool partial; /* a download in progress (NAME.partial) */
} store_entry;

/* Regular, non-hidden files of the store, sorted by name. *out is malloc'd
 * (free() it); a missing directory gives 0 entries. */
int store_list(store_entry **out, size_t *n, hearth_err *err);

/* Resolves `arg` (see above) to a path in out[cap]. */
int store_resolve(const char *arg, char *out, size_t cap, hearth_err *err);

#endif
