/* Quantizing GGUF files: `hearth quantize IN OUT TYPE`.
 *
 * A file type (TYPE, numbered as llama.cpp's llama_ftype, stored in
 * general.file_type) names a mix of tensor types, chosen per tensor as the
 * reference runtime (llama.cpp) chooses them, so that a Q4_K_M written here
 * has the same tensor types as one written there (and, the quantizers being
 * byte-exact, the same bytes):
 *  - only 2-D and 3-D tensors whose name ends in "weight" are quantized; norms,
 *    biases, the expert router (ffn_gate_inp) and 1-D tensors keep their type;
 *  - output.weight (token_embd.weight when there is none: tied embeddings)
 *    gets Q6_K (Q8_0 stays Q8_0; rows not a multiple of 256 give Q8_0);
 *  - the *_K_M / *_K_S mixes give attn_v and ffn_down more bits on the layers
 *    use_more_bits() picks (the first and last eighth, and every third
 *    between), Q2_K / Q3_K_* bump attn_v, attn_output and ffn_down, models with
 *    8 experts get Q8_0 attn_v / attn_k and Q5_K attn_output;
 *  - rows that are not a whole number of blocks fall back: Q4_K -> Q5_0,
 *    Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K / Q3_K -> Q4_0 (the reference now does
 *    the same), and anything whose rows are not a multiple of 32 -> F16.
 * --pure skips the mix (every quantized tensor gets the base type, with the
 * same fallbacks). Tensors are written in the reference's order (by layer,
 * then by name). Inputs: F32, F16, BF16 (and F64); quantized inputs only with
 * allow_requantize (dequantized, then quantized: quality suffers). */
#ifndef HEARTH_QUANT_QUANTIZE_H
#define HEARTH_QUANT_QUANTIZE_H

#include <stdbool.h>
#include <stdio.h>

#include "base/error.h"
#include "gguf/gguf.h"
#include "quant/imatrix.h"
#include "tensor/types.h"

/* llama_ftype numbers (the values of general.file_type). */
typedef enum quant_ftype {
    QUANT_FTYPE_ALL_F32 = 0,
    QUANT_FTYPE_F16 = 1,
    QUANT_FTYPE_Q4_0 = 2,
    QUANT_FTYPE_Q4_1 = 3,
    QUANT_FTYPE_Q8_0 = 7,
    QUANT_FTYPE_Q5_0 = 8,
    QUANT_FTYPE_Q5_1 = 9,
    QUANT_FTYPE_Q2_K = 10,
    QUANT_FTYPE_Q3_K_S = 11,
    QUANT_FTYPE_Q3_K_M = 12,
    QUANT_FTYPE_Q3_K_L = 13,
    QUANT_FTYPE_Q4_K_S = 14,
    QUANT_FTYPE_Q4_K_M = 15,
    QUANT_FTYPE_Q5_K_S = 16,
    QUANT_FTYPE_Q5_K_M = 17,
    QUANT_FTYPE_Q6_K = 18,
    QUANT_FTYPE_BF16 = 32,
} quant_ftype;

/* "Q4_K_M" (case-insensitive) -> QUANT_FTYPE_Q4_K_M; -1 for unknown names. */
int quant_ftype_from_name(const char *name);
/* "Q4_K_M"; NULL for values this module does not write. */
const char *quant_ftype_name(int ftype);
/* The "base" tensor type of a file type (Q4_K for Q4_K_M). */
ht_type quant_ftype_base_type(quant_ftype ftype);

typedef struct quant_params {
    quant_ftype ftype;
    int n_threads;         /* <= 0: online CPUs */
    bool allow_requantize; /* accept quantized input tensors */
    bool pure;             /* no per-tensor mix: the base type everywhere */
    FILE *log;             /* one progress line per tensor (NULL: silent) */
    /* Importance matrix (NULL: none): rows of a tensor it has an entry for
     * are quantized to minimise the error weighted by it (per expert for
     * expert tensors); the file records quantize.imatrix.* keys as
     * llama.cpp's does, imatrix_file naming it. */
    imat *imatrix;
    const char *imatrix_file;
} quant_params;

/* The type each tensor of f would get (types[i] for gguf_tensor_at(f, i)).
 * Fails when a tensor needs conversion from a type that cannot be converted
 * (or from a quantized type without allow_requantize), or when the metadata
 * the mix needs (architecture, block count, heads) is missing or bad. */
int quant_plan(const gguf_file *f, const quant_params *p, ht_type *types, hearth_err *err);

/* Quantizes the file at in_path into out_path (written to a temporary file, then
 * renamed): every key is copied, general.file_type and
 * general.quantization_version (2) are set. */
int quant_file(const char *in_path, const char *out_path, const quant_params *p, hearth_err *err);

#endif
