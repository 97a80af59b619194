#include "model_arg.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "generate/demo.h"
#include "net/store.h"

int cli_model_path(const char *cmd, const char *arg, char *out, size_t cap) {
    hearth_err e;
    if (!arg || !*arg) {
        fprintf(stderr, "hearth %s: -m MODEL is required (a .gguf path, a model name, or '%s')\n",
                cmd, DEMO_MODEL_NAME);
        return -1;
    }
    if (strcmp(arg, DEMO_MODEL_NAME) != 0) {
        if (store_resolve(arg, out, cap, &e) == 0) return 0;
        fprintf(stderr, "hearth %s: %s\n", cmd, e.msg);
        return -1;
    }
    char dir[4096];
    bool created = false;
    if (store_dir_create(dir, sizeof dir, &e) < 0 ||
        demo_model_ensure(dir, out, cap, &created, &e) < 0) {
        fprintf(stderr, "hearth %s: %s\n", cmd, e.msg);
        return -1;
    }
    if (created) fprintf(stderr, "wrote %s\n", out);
    fprintf(stderr, "%s\n", DEMO_NOTICE);
    return 0;
}
