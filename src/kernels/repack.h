/* KERN_LAYOUT_R8 (inside the kernels module only): Q4_K rows in groups of
 * 8, for kernels that compute 8 rows' dots in the lanes of one vector.
 *
 * A group is 8 consecutive rows, 8 * row_bytes bytes in place of them; its
 * superblock s (the 8 rows' blocks of columns 256s..256s+256, 8 * 144 =
 * 1152 bytes) at byte 1152s holds the same bytes as the 8 Q4_K blocks
 * {f16 d, f16 dmin, scales[12], qs[128]}, rearranged:
 *   [0, 16)      d of rows 0..7
 *   [16, 32)     dmin of rows 0..7
 *   [32, 128)    scales: byte k of row r at 32 + 8k + r
 *   [128, 1152)  qs: 32 bytes at 128 + 256i + 32g (i < 4, g < 8) whose bytes
 *                4r..4r+3 are row r's qs[32i + 4g .. 32i + 4g + 4): their low
 *                nibbles are values 4g..4g+3 of sub-block 2i, high of 2i+1
 * Rows are restored bitwise (kern_r8_unpack), so every op can fall back to
 * the row layout. */
#ifndef HEARTH_KERNELS_REPACK_H
#define HEARTH_KERNELS_REPACK_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "tensor/types.h"

#define KERN_R8_ROWS KERN_REPACK_ROWS
#define KERN_R8_SB   1152 /* bytes of a group's superblock */

/* Whether a matrix of this type, shape and row size can take KERN_LAYOUT_R8. */
int kern_r8_fits(ht_type type, int64_t n_cols, int64_t n_rows, size_t row_bytes);

/* 8 rows (row_bytes apart) -> one group (8 * row_bytes bytes, not overlapping). */
void kern_r8_pack(const uint8_t *rows, size_t row_bytes, uint8_t *grp);

/* Rows [r0, r0 + n) of a group (0 <= r0, r0 + n <= 8) -> n rows at `rows`,
 * row_bytes apart: the bytes kern_r8_pack was given. */
void kern_r8_unpack(const uint8_t *grp, size_t row_bytes, int r0, int n, uint8_t *rows);

#endif
