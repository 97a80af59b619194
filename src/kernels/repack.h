/* KERN_LAYOUT_R8 (inside the kernels module only): Q4_K and Q6_K rows in
 * groups of 8, for kernels that compute 8 rows' dots in the lanes of one
 * vector.
 *
 * A group is 8 consecutive rows, 8 * row_bytes bytes in place of them; its
 * superblock s (the 8 rows' blocks of columns 256s..256s+256,
 * kern_r8_sb(type) bytes) at byte s * kern_r8_sb(type) holds the same bytes
 * as the 8 blocks, rearranged. "Runs" below are 32 bytes whose bytes
 * 4r..4r+3 are 4 consecutive bytes of row r.
 * Q4_K (blocks {f16 d, f16 dmin, scales[12], qs[128]}, 1152 bytes):
 *   [0, 16)      d of rows 0..7
 *   [16, 32)     dmin of rows 0..7
 *   [32, 128)    scales: byte k of row r at 32 + 8k + r
 *   [128, 1152)  qs runs: at 128 + 256i + 32g (i < 4, g < 8) the rows'
 *                qs[32i + 4g .. +4): low nibbles are values 4g..4g+3 of
 *                sub-block 2i, high nibbles of 2i+1
 * Q6_K (blocks {ql[128], qh[64], int8 scales[16], f16 d}, 1680 bytes):
 *   [0, 16)      d of rows 0..7
 *   [16, 144)    scales: scale k of row r at 16 + 8k + r
 *   [144, 1168)  ql runs: at 144 + 512h + 256p + 32g (h, p < 2, g < 8) the
 *                rows' ql[64h + 32p + 4g .. +4)
 *   [1168, 1680) qh runs: at 1168 + 256h + 32g the rows' qh[32h + 4g .. +4)
 * Rows are restored bitwise (kern_r8_unpack), so every op can fall back to
 * the row layout. */
#ifndef HEARTH_KERNELS_REPACK_H
#define HEARTH_KERNELS_REPACK_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "tensor/types.h"

#define KERN_R8_ROWS KERN_REPACK_ROWS
#define KERN_R8_SB   1152 /* bytes of a Q4_K group's superblock */
#define KERN_R8_SB6  1680 /* bytes of a Q6_K group's superblock */

/* Whether a matrix of this type, shape and row size can take KERN_LAYOUT_R8. */
int kern_r8_fits(ht_type type, int64_t n_cols, int64_t n_rows, size_t row_bytes);

/* Bytes of a group's superblock (0 for other types). */
size_t kern_r8_sb(ht_type type);

/* 8 rows (row_bytes apart) -> one group (8 * row_bytes bytes, not overlapping). */
void kern_r8_pack(ht_type type, const uint8_t *rows, size_t row_bytes, uint8_t *grp);

/* Rows [r0, r0 + n) of a group (0 <= r0, r0 + n <= 8) -> n rows at `rows`,
 * row_bytes apart: the bytes kern_r8_pack was given. */
void kern_r8_unpack(ht_type type, const uint8_t *grp, size_t row_bytes, int r0, int n,
                    uint8_t *rows);

#endif
