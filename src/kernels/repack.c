/* KERN_LAYOUT_R8's byte moves (the layout is described in repack.h). Plain
 * C: a model is repacked once, at load, split over the pool. */
#include "kernels/repack.h"

#include <string.h>

enum { Q4K_BYTES = 144 };

int kern_r8_fits(ht_type type, int64_t n_cols, int64_t n_rows, size_t row_bytes) {
    return type == HT_Q4_K && n_cols > 0 && n_cols % 256 == 0 && n_rows > 0 &&
           n_rows % KERN_R8_ROWS == 0 && row_bytes == (size_t)(n_cols / 256) * Q4K_BYTES;
}

/* One row's block b <-> its places in the group's superblock o; to_grp says which way. */
static void move_block(uint8_t *o, uint8_t *b, int r, int to_grp) {
#define MV(grp_off, blk_off, len)                                                                  \
    do {                                                                                           \
        if (to_grp)                                                                                \
            memcpy(o + (grp_off), b + (blk_off), (len));                                           \
        else                                                                                       \
            memcpy(b + (blk_off), o + (grp_off), (len));                                           \
    } while (0)
    MV(2 * r, 0, 2);      /* d */
    MV(16 + 2 * r, 2, 2); /* dmin */
    for (int k = 0; k < 12; k++) MV(32 + 8 * k + r, 4 + k, 1);
    for (int i = 0; i < 4; i++)
        for (int g = 0; g < 8; g++) MV(128 + 256 * i + 32 * g + 4 * r, 16 + 32 * i + 4 * g, 4);
#undef MV
}

void kern_r8_pack(const uint8_t *rows, size_t row_bytes, uint8_t *grp) {
    const size_t nsb = row_bytes / Q4K_BYTES;
    for (size_t s = 0; s < nsb; s++)
        for (int r = 0; r < KERN_R8_ROWS; r++)
            move_block(grp + s * KERN_R8_SB,
                       (uint8_t *)rows + (size_t)r * row_bytes + s * Q4K_BYTES, r, 1);
}

void kern_r8_unpack(const uint8_t *grp, size_t row_bytes, int r0, int n, uint8_t *rows) {
    const size_t nsb = row_bytes / Q4K_BYTES;
    for (size_t s = 0; s < nsb; s++)
        for (int r = r0; r < r0 + n; r++)
            move_block((uint8_t *)grp + s * KERN_R8_SB,
                       rows + (size_t)(r - r0) * row_bytes + s * Q4K_BYTES, r, 0);
}
