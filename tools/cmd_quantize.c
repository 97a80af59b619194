/* hearth quantize: write a GGUF file with quantized weights.
 *
 *   hearth quantize IN.gguf OUT.gguf TYPE [--threads N] [--allow-requantize] [--pure]
 *                   [--imatrix FILE]
 *
 * TYPE names a mix of tensor types as llama.cpp's llama-quantize does
 * (Q4_K_M: Q4_K with Q6_K for the output matrix and some attn_v / ffn_down);
 * see src/quant/quantize.h. One progress line per tensor goes to stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "quant/quantize.h"

#include "cli.h"
#include "cli_util.h"
#include "model_arg.h"

static void usage(FILE *out) {
    fprintf(out, "usage: hearth quantize IN.gguf OUT.gguf TYPE [--threads N] [--allow-requantize] "
                 "[--pure]\n"
                 "                       [--imatrix FILE]\n"
                 "\n"
                 "TYPE: Q4_K_M Q4_K_S Q5_K_M Q5_K_S Q6_K Q3_K_L Q3_K_M Q3_K_S Q2_K\n"
                 "      Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 F16 BF16 F32\n"
                 "The mixes are those of llama.cpp's llama-quantize: e.g. Q4_K_M is Q4_K with\n"
                 "Q6_K for output.weight and for attn_v / ffn_down on some layers. Norms,\n"
                 "biases and other 1-D tensors stay as they are.\n"
                 "  --threads N          threads (default: online CPUs)\n"
                 "  --allow-requantize   accept an already quantized input (loses quality)\n"
                 "  --pure               no mix: every quantized tensor gets TYPE's base type\n"
                 "  --imatrix FILE       importance matrix (hearth imatrix, or llama.cpp's\n"
                 "                       imatrix.gguf / imatrix.dat): weights the quantization\n"
                 "                       error by how large each column's activations are\n");
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3];
    int n_pos = 0;
    quant_params p = {.n_threads = 0, .log = stderr};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "hearth quantize: %s needs a value\n", a);
                return 2;
            }
            if (opt_int("quantize", a, argv[++i], 1, TP_MAX_THREADS, &p.n_threads)) return 2;
        } else if (!strcmp(a, "--allow-requantize")) {
            p.allow_requantize = true;
        } else if (!strcmp(a, "--pure")) {
            p.pure = true;
        } else if (!strcmp(a, "--imatrix")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "hearth quantize: %s needs a value\n", a);
                return 2;
            }
            p.imatrix_file = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "hearth quantize: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (n_pos < 3) {
            pos[n_pos++] = a;
        } else {
            fprintf(stderr, "hearth quantize: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (n_pos != 3) {
        usage(stderr);
        return 2;
    }
    int ft = quant_ftype_from_name(pos[2]);
    if (ft < 0) {
        fprintf(stderr, "hearth quantize: unknown TYPE '%s' (see hearth quantize --help)\n",
                pos[2]);
        return 2;
    }
    p.ftype = (quant_ftype)ft;
    hearth_err err = {{0}};
    char in[4096];
    if (cli_model_path("quantize", pos[0], in, sizeof in) < 0) return 1;
    if (p.imatrix_file) {
        p.imatrix = imat_load(p.imatrix_file, &err);
        if (!p.imatrix) {
            fprintf(stderr, "hearth quantize: --imatrix %s\n", err.msg);
            return 1;
        }
        if (p.log)
            fprintf(p.log, "quantize: importance matrix %s: %d entries from %d chunks of %s\n",
                    p.imatrix_file, imat_n_entries(p.imatrix), imat_chunk_count(p.imatrix),
                    imat_dataset(p.imatrix)[0] ? imat_dataset(p.imatrix) : "an unnamed text");
    }
    int rc = quant_file(in, pos[1], &p, &err);
    imat_free(p.imatrix);
    if (rc) {
        fprintf(stderr, "hearth quantize: %s\n", err.msg);
        return 1;
    }
    return 0;
}
