/* AMX tiles for the avx512 variant's batches (avx2_q.c, avx2_kq.c): the
 * few tile operations those files use, as macros over the real instructions
 * or, in the emulated build (HEARTH_VNNI_EMULATE, the "avx512emu" test
 * variant), over a C model of them, so that the AMX paths are tested on
 * every x86-64 machine and not only where the CPU has AMX.
 *
 * A tile is up to 16 rows of up to 64 bytes, shaped by a 64-byte
 * configuration (amx_cfg) loaded per thread before use. The products in
 * use: tdpbsud C, A, B: C[m][n] (int32) += sum over k < colsb(A) of
 * A[m][k] (signed byte) * B[k / 4][4n + k % 4] (unsigned byte), wrapping
 * in 32 bits, which the model computes exactly; tdpbf16ps: C[m][n] (F32)
 * += the products of the BF16 pairs A[m][k], B[k][n] (dwords), which it
 * computes as the SDM's pseudocode does (the real rounding of the sums may
 * differ: tests hold both to error bounds, each to itself bitwise). The
 * model checks the shapes as the CPU does (a mismatch is a fault there, an
 * abort here). Included by the
 * kernel files after <immintrin.h>; they define AMX_ATTR (the functions'
 * target) where the real instructions are used. */
#ifndef HEARTH_KERNELS_AMX_H
#define HEARTH_KERNELS_AMX_H

#include <cpuid.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* The tile configuration, palette 1. Unused tiles: rows 0, colsb 0. */
typedef struct amx_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_cfg;
_Static_assert(sizeof(amx_cfg) == 64, "the tile configuration is 64 bytes");

/* What batches take from AMX, read once: bit 0, integer tile products:
 * real, the CPU has AMX-TILE and AMX-INT8 (CPUID leaf 7, EDX bits 24, 25),
 * Linux grants this process the tile state (arch_prctl ARCH_REQ_XCOMP_PERM,
 * XFEATURE_XTILEDATA), and HEARTH_AMX is not "0"; emulated, only with
 * HEARTH_AMX=1, so that the emulated variant's other batch paths stay
 * tested by default. Bit 1, BF16 tile products: bit 0 and the CPU has
 * AMX-BF16 (EDX bit 22; emulated: always). */
static int amx_state(void) {
    static int state = -1; /* threads racing here all compute the same value */
    int st = __atomic_load_n(&state, __ATOMIC_RELAXED);
    if (st < 0) {
        const char *env = getenv("HEARTH_AMX");
#ifdef HEARTH_VNNI_EMULATE
        st = env && !strcmp(env, "1") ? 3 : 0;
#else
        unsigned a, b, c, d;
        const bool cpu = !(env && !strcmp(env, "0")) && __get_cpuid_count(7, 0, &a, &b, &c, &d) &&
                         (d & (1u << 24)) && (d & (1u << 25));
#ifdef __linux__
        const bool os = cpu && syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */,
                                       18 /* XFEATURE_XTILEDATA */) == 0;
#else
        const bool os = false;
#endif
        st = os ? 1 | ((d >> 22 & 1u) << 1) : 0;
#endif
        __atomic_store_n(&state, st, __ATOMIC_RELAXED);
    }
    return st;
}

static inline bool amx_on(void) {
    return amx_state() & 1;
}

static inline bool amx_bf16_on(void) {
    return amx_state() & 2;
}

#ifdef HEARTH_VNNI_EMULATE

#include <stdio.h>
#include <stdlib.h>

typedef struct amx_emu_tile {
    uint8_t rows, colsb;
    uint8_t d[16][64];
} amx_emu_tile;

static _Thread_local amx_emu_tile amx_emu_t[8];

static inline void amx_emu_fail(const char *what) {
    fprintf(stderr, "amx emulation: %s\n", what);
    abort();
}

static inline void amx_emu_cfg(const amx_cfg *c) {
    if (c->palette != 1) amx_emu_fail("palette is not 1");
    for (int i = 0; i < 8; i++) {
        if (c->rows[i] > 16 || c->colsb[i] > 64 || (c->colsb[i] & 3) ||
            (!c->rows[i]) != (!c->colsb[i]))
            amx_emu_fail("a tile's shape is invalid");
        amx_emu_t[i].rows = c->rows[i];
        amx_emu_t[i].colsb = (uint8_t)c->colsb[i];
        memset(amx_emu_t[i].d, 0, sizeof(amx_emu_t[i].d));
    }
}

static inline amx_emu_tile *amx_emu_get(int t) {
    if (!amx_emu_t[t].rows) amx_emu_fail("an unconfigured tile is used");
    return &amx_emu_t[t];
}

static inline void amx_emu_load(int t, const void *p, size_t stride) {
    amx_emu_tile *x = amx_emu_get(t);
    memset(x->d, 0, sizeof(x->d));
    for (int r = 0; r < x->rows; r++) memcpy(x->d[r], (const uint8_t *)p + r * stride, x->colsb);
}

static inline void amx_emu_store(int t, void *p, size_t stride) {
    amx_emu_tile *x = amx_emu_get(t);
    for (int r = 0; r < x->rows; r++) memcpy((uint8_t *)p + r * stride, x->d[r], x->colsb);
}

static inline void amx_emu_zero(int t) {
    memset(amx_emu_get(t)->d, 0, sizeof(amx_emu_t[t].d));
}

static inline void amx_emu_dpbsud(int c, int a, int b) {
    amx_emu_tile *C = amx_emu_get(c), *A = amx_emu_get(a), *B = amx_emu_get(b);
    if (A->rows != C->rows || A->colsb / 4 != B->rows || B->colsb != C->colsb)
        amx_emu_fail("tdpbsud: the tiles' shapes do not match");
    for (int m = 0; m < C->rows; m++)
        for (int n = 0; n < C->colsb / 4; n++) {
            uint32_t s;
            memcpy(&s, &C->d[m][4 * n], 4);
            for (int k = 0; k < A->colsb; k++)
                s += (uint32_t)((int32_t)(int8_t)A->d[m][k] * (int32_t)B->d[k / 4][4 * n + k % 4]);
            memcpy(&C->d[m][4 * n], &s, 4);
        }
}

/* A BF16 value as F32, a denormal as zero of its sign (DAZ). */
static inline float amx_emu_bf(const uint8_t *p) {
    uint32_t u = (uint32_t)(p[0] | p[1] << 8) << 16;
    if ((u & 0x7f800000u) == 0) u &= 0x80000000u;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* tdpbf16ps: C[m][n] (F32) += the pairs' products, each exact in F32, added
 * one at a time (lower element first), to nearest even, a denormal sum
 * flushed to zero (FTZ). */
static inline void amx_emu_dpbf16ps(int c, int a, int b) {
    amx_emu_tile *C = amx_emu_get(c), *A = amx_emu_get(a), *B = amx_emu_get(b);
    if (A->rows != C->rows || A->colsb / 4 != B->rows || B->colsb != C->colsb)
        amx_emu_fail("tdpbf16ps: the tiles' shapes do not match");
    for (int m = 0; m < C->rows; m++)
        for (int n = 0; n < C->colsb / 4; n++) {
            float s;
            memcpy(&s, &C->d[m][4 * n], 4);
            for (int k = 0; k < A->colsb / 4; k++)
                for (int e = 0; e < 2; e++) {
                    volatile float p =
                        amx_emu_bf(&A->d[m][4 * k + 2 * e]) * amx_emu_bf(&B->d[k][4 * n + 2 * e]);
                    s = s + p;
                    uint32_t u;
                    memcpy(&u, &s, 4);
                    if ((u & 0x7f800000u) == 0) u &= 0x80000000u, memcpy(&s, &u, 4);
                }
            memcpy(&C->d[m][4 * n], &s, 4);
        }
}

static inline void amx_emu_release(void) {
    memset(amx_emu_t, 0, sizeof(amx_emu_t));
}

#define AMX_CFG(c)            amx_emu_cfg(c)
#define AMX_LOAD(t, p, s)     amx_emu_load(t, p, s)
#define AMX_STORE(t, p, s)    amx_emu_store(t, p, s)
#define AMX_ZERO(t)           amx_emu_zero(t)
#define AMX_DPBSUD(c, a, b)   amx_emu_dpbsud(c, a, b)
#define AMX_DPBF16PS(c, a, b) amx_emu_dpbf16ps(c, a, b)
#define AMX_RELEASE()         amx_emu_release()

#else

/* GCC's ldtilecfg intrinsic tells the compiler of 8 bytes read, not 64:
 * the barrier keeps the whole configuration's stores before it. */
#define AMX_CFG(c)                                                                                 \
    do {                                                                                           \
        __asm__ volatile("" ::: "memory");                                                         \
        _tile_loadconfig(c);                                                                       \
    } while (0)
#define AMX_LOAD(t, p, s)     _tile_loadd(t, p, (long)(s))
#define AMX_STORE(t, p, s)    _tile_stored(t, p, (long)(s))
#define AMX_ZERO(t)           _tile_zero(t)
#define AMX_DPBSUD(c, a, b)   _tile_dpbsud(c, a, b)
#define AMX_DPBF16PS(c, a, b) _tile_dpbf16ps(c, a, b)
#define AMX_RELEASE()         _tile_release()

#endif

#endif
