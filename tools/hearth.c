/* hearth: open language models on hardware people own. Subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define HEARTH_VERSION "0.1.0"

static const cli_command commands[] = {
    {NULL, NULL, NULL},
};

static void usage(FILE *out) {
    fprintf(out,
            "hearth %s: run, serve, audit and train open language models on your own CPU\n\n"
            "usage: hearth COMMAND [options]   (hearth COMMAND --help for each)\n\ncommands:\n",
            HEARTH_VERSION);
    for (const cli_command *c = commands; c->name; c++)
        fprintf(out, "  %-12s %s\n", c->name, c->summary);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("hearth %s\n", HEARTH_VERSION);
        return 0;
    }
    for (const cli_command *c = commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) return c->run(argc - 1, argv + 1);
    fprintf(stderr, "hearth: unknown command '%s' (see hearth --help)\n", argv[1]);
    return 2;
}
