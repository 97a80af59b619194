/* Importance matrices: how much each input column of each weight matrix
 * matters, measured on calibration text (`hearth imatrix`), so that
 * `hearth quantize --imatrix` spends its precision where the activations
 * are large (llama.cpp's llama-imatrix and --imatrix, same files).
 *
 * For a weight tensor W (name as in the GGUF file) made of n_mat stacked
 * matrices of n_cols inputs (n_mat > 1: the experts of a 3-D expert tensor,
 * the heads of attn_k_b / attn_v_b), the matrix keeps per matrix m
 *   sum2[m][j] = sum over the tokens that reached m of x_j^2, and
 *   count[m]   = the number of those tokens;
 * its importance values are sum2[m][j] / count[m], the mean squared
 * activation that multiplies column j: the weight of column j in the error
 * a quantizer should minimise.
 *
 * Files: GGUF as llama.cpp (2025-07 on) writes them: general.type
 * "imatrix", imatrix.datasets (array of strings), imatrix.chunk_count and
 * imatrix.chunk_size (u32), and per tensor "<name>.in_sum2" (F32,
 * [n_cols, n_mat]) and "<name>.counts" (F32, [1, n_mat]). imat_load also
 * reads the older binary format (imatrix.dat): int32 n_entries, then per
 * entry int32 name length, the name, int32 ncall, int32 n_values, n_values
 * F32 (sums of ncall calls' means), then optionally int32 chunk count,
 * int32 dataset-name length and the name; its values are value / ncall, and
 * an expert tensor's entry is all experts' columns in one row. */
#ifndef HEARTH_QUANT_IMATRIX_H
#define HEARTH_QUANT_IMATRIX_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct imat imat;

imat *imat_new(hearth_err *err);
void imat_free(imat *im);

/* Adds n_tok input rows x[t][0..n_cols) (stride ldx) of matrix `slice` of
 * the n_slices of tensor `name`. The first call for a name fixes its shape;
 * later calls must agree. */
int imat_add(imat *im, const char *name, int slice, int n_slices, int64_t n_cols, const float *x,
             size_t ldx, int n_tok, hearth_err *err);

/* model_observer-shaped imat_add (ud is the imat). Tensors named
 * output.weight are skipped unless imat_set_output(im, 1), as llama.cpp's
 * imatrix does; a failure is kept and returned by imat_error. */
void imat_observe(void *ud, const char *tensor, int slice, int n_slices, int64_t n_cols,
                  const float *x, size_t ldx, int n_tok);
void imat_set_output(imat *im, int on);
/* 0, or -1 with the first imat_observe failure in err. */
int imat_error(const imat *im, hearth_err *err);

/* What the file records about the calibration. */
int imat_set_info(imat *im, const char *dataset, int chunk_count, int chunk_size, hearth_err *err);
int imat_chunk_count(const imat *im);
const char *imat_dataset(const imat *im); /* "" when none is recorded */

int imat_n_entries(const imat *im);

/* Writes the GGUF file (temporary file, then rename). */
int imat_save(const imat *im, const char *path, hearth_err *err);
/* Reads a GGUF or legacy file, checking every size, count and value. */
imat *imat_load(const char *path, hearth_err *err);
/* The same for a file's bytes in memory (fuzzing, tests); data must outlive
 * the call only. */
imat *imat_load_memory(const void *data, size_t size, hearth_err *err);

/* *out = the importance values (n_cols floats, >= 0) for the rows of
 * matrix `slice` of a tensor of n_slices matrices of n_cols columns, or NULL
 * when there is no entry for the name or no token reached that matrix; 0.
 * -1 with a message when the entry's shape does not fit (a legacy entry of
 * n_slices * n_cols values fits). *out lives until the next imat_add. */
int imat_values(imat *im, const char *name, int slice, int n_slices, int64_t n_cols,
                const float **out, hearth_err *err);

#endif
