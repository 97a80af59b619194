/* hearth pull: download a model into the local store (see src/net/pull.h). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "net/pull.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: hearth pull [options] SOURCE\n"
            "\n"
            "Downloads a model into the store (hearth list shows it; -m NAME uses it).\n"
            "  SOURCE            hf://ORG/REPO/FILE.gguf[@REVISION]  or  an http(s):// URL\n"
            "  --sha256 HEX      expected SHA-256 (default: the hub's X-Linked-ETag)\n"
            "  --name NAME       file name in the store (default: the source's)\n"
            "  --force           download again even if NAME is already there\n"
            "  -q, --quiet       no progress\n"
            "\n"
            "An interrupted pull resumes when run again. The file gets its final name only\n"
            "after its size and SHA-256 are checked.\n"
            "Environment: HEARTH_MODELS (the store), HEARTH_HF_ENDPOINT (default %s),\n"
            "HF_TOKEN (sent to the hub only), HEARTH_PULL_CONNECT_TIMEOUT,\n"
            "HEARTH_PULL_LOW_SPEED_TIME, HEARTH_PULL_LOW_SPEED_LIMIT, HEARTH_PULL_MAX_BYTES.\n",
            PULL_DEFAULT_HF);
}

int cmd_pull(int argc, char **argv) {
    pull_opts o = {.log = stderr};
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--sha256") && i + 1 < argc) {
            o.sha256 = argv[++i];
        } else if (!strcmp(a, "--name") && i + 1 < argc) {
            o.name = argv[++i];
        } else if (!strcmp(a, "--force")) {
            o.force = true;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "hearth pull: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!o.source) {
            o.source = a;
        } else {
            fprintf(stderr, "hearth pull: expected one SOURCE, found a second: '%s'\n", a);
            return 2;
        }
    }
    if (!o.source) {
        usage(stderr);
        return 2;
    }
    char want[SHA256_HEX_SIZE];
    if (o.sha256 && !pull_hex_digest(o.sha256, want)) { /* a bad value is a usage error */
        fprintf(stderr, "hearth pull: --sha256: expected 64 hex digits, found '%s'\n", o.sha256);
        return 2;
    }
    if (o.name && !store_name_ok(o.name)) {
        fprintf(stderr,
                "hearth pull: --name: expected a file name (1-255 bytes, no '/', not starting "
                "with '.'), found '%s'\n",
                o.name);
        return 2;
    }
    o.progress = quiet ? PULL_PROGRESS_NONE
                       : (isatty(STDERR_FILENO) ? PULL_PROGRESS_TTY : PULL_PROGRESS_LINES);
    if (quiet) o.log = NULL;

    pull_result r;
    hearth_err err = {{0}};
    if (pull_run(&o, &r, &err) != 0) {
        fprintf(stderr, "hearth pull: %s\n", err.msg);
        return 1;
    }
    if (r.already_present) {
        fprintf(stderr,
                "hearth: %s is already in the store (%llu bytes%s); --force downloads it again\n",
                r.path, (unsigned long long)r.size, r.verified ? ", SHA-256 verified" : "");
    } else if (r.verified) {
        fprintf(stderr, "hearth: SHA-256 %s verified (expected value from %s)\n", r.sha256,
                r.hash_source);
        fprintf(stderr, "hearth: saved %s (%llu bytes)\n", r.path, (unsigned long long)r.size);
    } else {
        fprintf(stderr,
                "hearth: SHA-256 %s NOT verified: no expected value (the server sent none; "
                "pass --sha256 HEX to check)\n",
                r.sha256);
        fprintf(stderr, "hearth: saved %s (%llu bytes)\n", r.path, (unsigned long long)r.size);
    }
    printf("%s\n", r.path);
    return 0;
}
