/* hearth: open language models on hardware people own. Subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define HEARTH_VERSION "0.1.0"

static const cli_command commands[] = {
    {"run", "generate text from a prompt (stdout: the text only)", cmd_run},
    {"chat", "talk with a model through its chat template", cmd_chat},
    {"pull", "download a model into the local store (hf://ORG/REPO/FILE.gguf or a URL)", cmd_pull},
    {"list", "list the models in the local store", cmd_list},
    {"logits", "write teacher-forced logits of prompts (golden-file layout)", cmd_logits},
    {"bench", "measure pp/tg speed against the speed of light; bandwidth; benchmark models",
     cmd_bench},
    {"inspect", "show the metadata, tensors, sizes and KV cache cost of a GGUF file", cmd_inspect},
    {"tokenize", "print the token ids (and pieces) of the text on stdin", cmd_tokenize},
    {"detokenize", "print the text of the token ids on stdin", cmd_detokenize},
    {"template", "render a chat template with messages (prints the prompt)", cmd_template},
    {"quantize", "write a GGUF file with quantized weights (Q4_K_M, Q8_0, ...)", cmd_quantize},
    {"imatrix", "measure which weights matter on a text, for quantize --imatrix", cmd_imatrix},
    {"perplexity", "perplexity of a model on a text; KL divergence against a reference",
     cmd_perplexity},
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
