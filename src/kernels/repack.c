/* KERN_LAYOUT_R8's byte moves (the layout is described in repack.h). Plain
 * C: a model is repacked once, at load, split over the pool. */
#include "kernels/repack.h"

#include <string.h>

static int block_bytes(ht_type type) {
    return type == HT_Q4_K ? 144 : type == HT_Q6_K ? 210 : 0;
}

int kern_r8_fits(ht_type type, int64_t n_cols, int64_t n_rows, size_t row_bytes) {
    const int bb = block_bytes(type);
    return bb && n_cols > 0 && n_cols % 256 == 0 && n_rows > 0 && n_rows % KERN_R8_ROWS == 0 &&
           row_bytes == (size_t)(n_cols / 256) * (size_t)bb;
}

size_t kern_r8_sb(ht_type type) {
    return (size_t)KERN_R8_ROWS * (size_t)block_bytes(type);
}

/* Row r's block b <-> its places in the group's superblock o; to_grp says
 * which way (b is only read when to_grp). */
static void move_block(ht_type type, uint8_t *o, uint8_t *b, int r, int to_grp) {
#define MV(grp_off, blk_off, len)                                                                  \
    do {                                                                                           \
        if (to_grp)                                                                                \
            memcpy(o + (grp_off), b + (blk_off), (len));                                           \
        else                                                                                       \
            memcpy(b + (blk_off), o + (grp_off), (len));                                           \
    } while (0)
    if (type == HT_Q4_K) {
        MV(2 * r, 0, 2);      /* d */
        MV(16 + 2 * r, 2, 2); /* dmin */
        for (int k = 0; k < 12; k++) MV(32 + 8 * k + r, 4 + k, 1);
        for (int i = 0; i < 4; i++)
            for (int g = 0; g < 8; g++) MV(128 + 256 * i + 32 * g + 4 * r, 16 + 32 * i + 4 * g, 4);
        return;
    }
    /* Q6_K */
    MV(2 * r, 208, 2); /* d */
    for (int k = 0; k < 16; k++) MV(16 + 8 * k + r, 192 + k, 1);
    for (int h = 0; h < 2; h++)
        for (int g = 0; g < 8; g++) {
            for (int p = 0; p < 2; p++)
                MV(144 + 512 * h + 256 * p + 32 * g + 4 * r, 64 * h + 32 * p + 4 * g, 4); /* ql */
            MV(1168 + 256 * h + 32 * g + 4 * r, 128 + 32 * h + 4 * g, 4);                 /* qh */
        }
#undef MV
}

void kern_r8_pack(ht_type type, const uint8_t *rows, size_t row_bytes, uint8_t *grp) {
    const size_t bb = (size_t)block_bytes(type), nsb = bb ? row_bytes / bb : 0;
    const size_t sb = kern_r8_sb(type);
    for (size_t s = 0; s < nsb; s++)
        for (int r = 0; r < KERN_R8_ROWS; r++)
            move_block(type, grp + s * sb,
                       (uint8_t *)(uintptr_t)(rows + (size_t)r * row_bytes + s * bb), r, 1);
}

void kern_r8_unpack(ht_type type, const uint8_t *grp, size_t row_bytes, int r0, int n,
                    uint8_t *rows) {
    const size_t bb = (size_t)block_bytes(type), nsb = bb ? row_bytes / bb : 0;
    const size_t sb = kern_r8_sb(type);
    for (size_t s = 0; s < nsb; s++)
        for (int r = r0; r < r0 + n; r++)
            move_block(type, (uint8_t *)(uintptr_t)(grp + s * sb),
                       rows + (size_t)(r - r0) * row_bytes + s * bb, r, 0);
}
