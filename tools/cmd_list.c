/* hearth list: the models in the local store (see src/net/store.h), with the
 * architecture and tensor type mix of each GGUF file that parses. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_util.h"
#include "gguf/gguf.h"
#include "net/store.h"

static void fmt_size(char *out, size_t cap, uint64_t b) {
    const char *unit[] = {"B", "KB", "MB", "GB", "TB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1000 && i < 4) {
        v /= 1000;
        i++;
    }
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", v, unit[i]);
}

/* "llama  q4_0:155 f32:57" for a GGUF file; "-" when it does not parse. */
static void describe(const char *path, char *arch, size_t acap, char *types, size_t tcap) {
    snprintf(arch, acap, "-");
    snprintf(types, tcap, "-");
    hearth_err err;
    gguf_file *f = gguf_open(path, &err);
    if (!f) return;
    gguf_str s;
    if (gguf_get_str(f, "general.architecture", &s, NULL) == 0)
        snprintf(arch, acap, "%.*s", (int)(s.len < 64 ? s.len : 64), s.ptr);
    cli_printable(arch); /* the file's bytes: no escape sequences to the terminal */
    uint64_t count[HT_TYPE_COUNT] = {0};
    uint64_t n = gguf_n_tensors(f);
    for (uint64_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if ((unsigned)t->type < HT_TYPE_COUNT) count[t->type]++;
    }
    size_t used = 0;
    types[0] = 0;
    for (;;) { /* most frequent first */
        int best = -1;
        for (int t = 0; t < HT_TYPE_COUNT; t++)
            if (count[t] && (best < 0 || count[t] > count[best])) best = t;
        if (best < 0) break;
        const ht_type_info *ti = ht_type_get((uint32_t)best);
        int w = snprintf(types + used, tcap - used, "%s%s:%" PRIu64, used ? " " : "",
                         ti ? ti->name : "?", count[best]);
        if (w < 0 || (size_t)w >= tcap - used) break;
        used += (size_t)w;
        count[best] = 0;
    }
    if (!types[0]) snprintf(types, tcap, "(no tensors)");
    gguf_close(f);
}

int cmd_list(int argc, char **argv) {
    const char *resolve = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: hearth list [--resolve NAME]\n\n"
                   "Lists the models in the store ($HEARTH_MODELS, else\n"
                   "$XDG_DATA_HOME/hearth/models or ~/.local/share/hearth/models).\n"
                   "  --resolve NAME   print the file that -m NAME would load\n");
            return 0;
        } else if (!strcmp(argv[i], "--resolve") && i + 1 < argc) {
            resolve = argv[++i];
        } else {
            fprintf(stderr, "hearth list: unknown or incomplete option '%s'\n", argv[i]);
            return 2;
        }
    }
    hearth_err err = {{0}};
    if (resolve) {
        char path[4096];
        if (store_resolve(resolve, path, sizeof path, &err) != 0) {
            fprintf(stderr, "hearth list: %s\n", err.msg);
            return 1;
        }
        printf("%s\n", path);
        return 0;
    }
    char dir[4096];
    store_entry *v;
    size_t n;
    if (store_dir(dir, sizeof dir, &err) != 0 || store_list(&v, &n, &err) != 0) {
        fprintf(stderr, "hearth list: %s\n", err.msg);
        return 1;
    }
    size_t n_models = 0, n_partial = 0;
    for (size_t i = 0; i < n; i++) v[i].partial ? n_partial++ : n_models++;
    if (n_models == 0) {
        printf("no models in %s (get one with: hearth pull hf://ORG/REPO/FILE.gguf)\n", dir);
    } else {
        printf("models in %s\n", dir);
        printf("%-44s %10s  %-16s  %-12s %s\n", "NAME", "SIZE", "MODIFIED", "ARCH", "TYPES");
        char path[4096 + STORE_NAME_MAX];
        for (size_t i = 0; i < n; i++) {
            if (v[i].partial) continue;
            char size[32], when[32] = "?", arch[80], types[256];
            fmt_size(size, sizeof size, v[i].size);
            struct tm tm;
            if (localtime_r(&v[i].mtime, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
            snprintf(path, sizeof path, "%s/%s", dir, v[i].name);
            describe(path, arch, sizeof arch, types, sizeof types);
            printf("%-44s %10s  %-16s  %-12s %s\n", v[i].name, size, when, arch, types);
        }
    }
    if (n_partial) {
        printf("\nincomplete downloads (run the same hearth pull again to resume):\n");
        for (size_t i = 0; i < n; i++) {
            if (!v[i].partial) continue;
            char size[32];
            fmt_size(size, sizeof size, v[i].size);
            printf("  %-42s %10s\n", v[i].name, size);
        }
    }
    free(v);
    return 0;
}
