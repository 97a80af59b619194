#include "net/store.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int join(char *out, size_t cap, const char *a, const char *b, hearth_err *err) {
    int n = snprintf(out, cap, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= cap)
        return hearth_errf(err, "path too long: '%s/%s' needs %d bytes, have %zu", a, b, n, cap);
    return 0;
}

int store_dir(char *out, size_t cap, hearth_err *err) {
    const char *env = getenv("HEARTH_MODELS");
    if (env && *env) {
        if (strlen(env) >= cap)
            return hearth_errf(err, "HEARTH_MODELS is too long (%zu bytes, at most %zu)",
                               strlen(env), cap - 1);
        strcpy(out, env);
        return 0;
    }
    const char *xdg = getenv("XDG_DATA_HOME");
    if (xdg && xdg[0] == '/') return join(out, cap, xdg, "hearth/models", err);
    const char *home = getenv("HOME");
    if (!home || !*home)
        return hearth_errf(err, "cannot locate the models directory: neither HEARTH_MODELS, "
                                "XDG_DATA_HOME nor HOME is set");
    return join(out, cap, home, ".local/share/hearth/models", err);
}

/* mkdir -p with mode 0755 for the directories it creates. */
static int mkdir_p(const char *path, hearth_err *err) {
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return hearth_errf(err, "models directory path '%s' is empty or too long", path);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return hearth_errf(err, "cannot create directory '%s': %s", buf, strerror(errno));
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return hearth_errf(err, "models directory '%s' exists but is not a directory", path);
    return 0;
}

int store_dir_create(char *out, size_t cap, hearth_err *err) {
    if (store_dir(out, cap, err) != 0) return -1;
    return mkdir_p(out, err);
}

bool store_name_ok(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n >= STORE_NAME_MAX || name[0] == '.') return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/' || c < 0x20 || c == 0x7f) return false;
    }
    return true;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const store_entry *)a)->name, ((const store_entry *)b)->name);
}

int store_list(store_entry **out, size_t *n, hearth_err *err) {
    *out = NULL;
    *n = 0;
    char dir[4096];
    if (store_dir(dir, sizeof dir, err) != 0) return -1;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return 0;
        return hearth_errf(err, "cannot read models directory '%s': %s", dir, strerror(errno));
    }
    store_entry *v = NULL;
    size_t len = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        if (!store_name_ok(de->d_name)) continue;
        char path[4096 + STORE_NAME_MAX];
        if (join(path, sizeof path, dir, de->d_name, NULL) != 0) continue;
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 16;
            store_entry *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                rc = hearth_errf(err, "out of memory listing '%s' (%zu entries)", dir, len);
                break;
            }
            v = nv;
            cap = nc;
        }
        store_entry *e = &v[len++];
        snprintf(e->name, sizeof e->name, "%s", de->d_name);
        e->size = (uint64_t)st.st_size;
        e->mtime = st.st_mtime;
        e->partial = ends_with(e->name, STORE_PARTIAL_SUFFIX);
    }
    closedir(d);
    if (rc != 0) {
        free(v);
        return -1;
    }
    if (len) qsort(v, len, sizeof *v, cmp_entry);
    *out = v;
    *n = len;
    return 0;
}

/* Appends "a, b, c" (the names of the selected entries) to buf, cut with "..." when full. */
static void name_list(char *buf, size_t cap, const store_entry *v, size_t n, const bool *sel) {
    size_t used = strlen(buf);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (sel && !sel[i]) continue;
        int w = snprintf(buf + used, cap - used, "%s%s", first ? "" : ", ", v[i].name);
        if (w < 0 || (size_t)w >= cap - used) {
            if (cap > 4) strcpy(buf + cap - 4, "...");
            return;
        }
        used += (size_t)w;
        first = false;
    }
}

int store_resolve(const char *arg, char *out, size_t cap, hearth_err *err) {
    if (!arg || !*arg) return hearth_errf(err, "model: expected a path or a model name, found ''");
    struct stat st;
    bool is_path = strchr(arg, '/') != NULL;
    if (stat(arg, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            if (is_path) return hearth_errf(err, "model '%s' is a directory, not a file", arg);
        } else {
            if (strlen(arg) >= cap)
                return hearth_errf(err, "model path '%s' is too long (at most %zu bytes)", arg,
                                   cap - 1);
            strcpy(out, arg);
            return 0;
        }
    } else if (is_path) {
        return hearth_errf(err, "model file '%s': %s", arg, strerror(errno));
    }

    char dir[4096];
    if (store_dir(dir, sizeof dir, err) != 0) return -1;
    store_entry *v;
    size_t n;
    if (store_list(&v, &n, err) != 0) return -1;
    /* Models are the complete files only. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!v[i].partial) v[m++] = v[i];
    n = m;

    const store_entry *hit = NULL;
    size_t alen = strlen(arg);
    for (size_t i = 0; i < n && !hit; i++)
        if (!strcmp(v[i].name, arg)) hit = &v[i];
    for (size_t i = 0; i < n && !hit; i++)
        if (!strncmp(v[i].name, arg, alen) && !strcmp(v[i].name + alen, ".gguf")) hit = &v[i];
    int rc = 0;
    if (!hit) {
        bool *sel = calloc(n ? n : 1, sizeof *sel);
        if (!sel) {
            free(v);
            return hearth_errf(err, "out of memory resolving model '%s'", arg);
        }
        size_t n_match = 0;
        for (size_t i = 0; i < n; i++)
            if (!strncmp(v[i].name, arg, alen)) {
                sel[i] = true;
                hit = &v[i];
                n_match++;
            }
        if (n_match > 1) {
            char names[768] = "";
            name_list(names, sizeof names, v, n, sel);
            rc = hearth_errf(err,
                             "model name '%s' is ambiguous: %zu models in %s start with it (%s)",
                             arg, n_match, dir, names);
        } else if (n_match == 0) {
            char names[640] = "";
            name_list(names, sizeof names, v, n, NULL);
            if (n == 0)
                rc = hearth_errf(err,
                                 "model '%s' not found: no such file, and the models directory %s "
                                 "is empty (get one with: hearth pull hf://ORG/REPO/FILE.gguf)",
                                 arg, dir);
            else
                rc = hearth_errf(err,
                                 "model '%s' not found: no such file, and no model in %s "
                                 "matches it (there: %s)",
                                 arg, dir, names);
        }
        free(sel);
    }
    if (rc == 0 && join(out, cap, dir, hit->name, err) != 0) rc = -1;
    free(v);
    return rc;
}
