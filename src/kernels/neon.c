/* NEON kernels (aarch64, where NEON is baseline), the default there.
 *
 * matmul is the only op that differs from the reference:
 *   F32, F16 weights: F32 activations, FMA dot products (the reference's
 *     values up to summation order; F16 converted with vcvt).
 *   Q8_0, Q4_0 weights: activations are quantized once per call to 8-bit
 *     blocks of 32 (x ~ dx * qx, dx = max|x| / 127, qx rounded to nearest
 *     even), as avx2.c does, and each block product is an integer dot product
 *     (SDOT where the CPU has the dot-product extension, found at run time
 *     from HWCAP; else vmull + vpadal; HEARTH_NEON_SDOT=0 forces the latter)
 *     scaled in F32: the "fast" tier of the golden tests.
 *   other types: the reference matmul.
 * Each (row, token) is one dot product, so a token's result is bitwise the
 * same alone or in any batch, on any thread count. Everything else is the
 * reference code. */
#if defined(__aarch64__)

#include <arm_neon.h>
#include <asm/hwcap.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "kernels/kernels.h"
#include "kernels/ref.h"

/* An activation block: 32 values x[i] ~ d * qs[i]. */
typedef struct act_q8 {
    float d;
    int8_t qs[32];
} act_q8;

static inline float rd_f16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return ht_f16_to_f32(v);
}

/* 32 values -> qs[32] with x ~ d * qs (d = max|x| / 127). */
static void quantize_block(const float *xb, act_q8 *out) {
    float32x4_t v[8], mx = vdupq_n_f32(0.0f);
    for (int k = 0; k < 8; k++) {
        v[k] = vld1q_f32(xb + 4 * k);
        mx = vmaxq_f32(mx, vabsq_f32(v[k]));
    }
    float amax = vmaxvq_f32(mx);
    float id = amax > 0 ? 127.0f / amax : 0.0f;
    for (int k = 0; k < 8; k += 2) {
        int32x4_t q0 = vcvtnq_s32_f32(vmulq_n_f32(v[k], id));
        int32x4_t q1 = vcvtnq_s32_f32(vmulq_n_f32(v[k + 1], id));
        int16x8_t h = vcombine_s16(vqmovn_s32(q0), vqmovn_s32(q1));
        vst1_s8(out->qs + 4 * k, vqmovn_s16(h));
    }
    out->d = amax / 127.0f;
}

/* Sum of the 32 products a[i] * b[i] of signed bytes (|a| <= 128, |b| <= 127),
 * with the Armv8.0 widening multiplies. */
static inline int32_t dot_i8(int8x16_t a0, int8x16_t a1, const int8_t *b) {
    int8x16_t b0 = vld1q_s8(b), b1 = vld1q_s8(b + 16);
    int32x4_t p = vdupq_n_s32(0);
    p = vpadalq_s16(p, vmull_s8(vget_low_s8(a0), vget_low_s8(b0)));
    p = vpadalq_s16(p, vmull_high_s8(a0, b0));
    p = vpadalq_s16(p, vmull_s8(vget_low_s8(a1), vget_low_s8(b1)));
    p = vpadalq_s16(p, vmull_high_s8(a1, b1));
    return vaddvq_s32(p);
}

/* The same with the dot-product extension (Armv8.2 SDOT), compiled for it
 * whatever the build's -march; used only where the CPU reports it (HWCAP),
 * so one binary runs on every aarch64 CPU. Exact integer sums: both give
 * the same results. */
#define DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
DOTPROD static inline int32_t dot_i8_sdot(int8x16_t a0, int8x16_t a1, const int8_t *b) {
    int8x16_t b0 = vld1q_s8(b), b1 = vld1q_s8(b + 16);
    return vaddvq_s32(vdotq_s32(vdotq_s32(vdupq_n_s32(0), a0, b0), a1, b1));
}

static bool has_sdot(void) {
#if defined(__ARM_FEATURE_DOTPROD)
    return true;
#else
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
}

/* ---- row dot products: one weight row against one token -------------- */

static float dot_f32(const float *w, const float *x, int64_t n) {
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = vfmaq_f32(a0, vld1q_f32(w + i), vld1q_f32(x + i));
        a1 = vfmaq_f32(a1, vld1q_f32(w + i + 4), vld1q_f32(x + i + 4));
        a2 = vfmaq_f32(a2, vld1q_f32(w + i + 8), vld1q_f32(x + i + 8));
        a3 = vfmaq_f32(a3, vld1q_f32(w + i + 12), vld1q_f32(x + i + 12));
    }
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) s += w[i] * x[i];
    return s;
}

static inline float32x4_t ld_f16x4(const uint16_t *p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

static float dot_f16(const uint16_t *w, const float *x, int64_t n) {
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = vfmaq_f32(a0, ld_f16x4(w + i), vld1q_f32(x + i));
        a1 = vfmaq_f32(a1, ld_f16x4(w + i + 4), vld1q_f32(x + i + 4));
        a2 = vfmaq_f32(a2, ld_f16x4(w + i + 8), vld1q_f32(x + i + 8));
        a3 = vfmaq_f32(a3, ld_f16x4(w + i + 12), vld1q_f32(x + i + 12));
    }
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) s += ht_f16_to_f32(w[i]) * x[i];
    return s;
}

/* The quantized row dots, instantiated twice: DOT_I8 = dot_i8 (plain) and
 * dot_i8_sdot (compiled for the dot-product extension).
 * Q8_0: 34-byte blocks {f16 d, int8 qs[32]}.
 * Q4_0: 18-byte blocks {f16 d, qs[16]}: element j = low nibble of qs[j] - 8,
 * element j+16 = high nibble - 8. */
#define Q_DOTS(ATTR, NAME, DOT_I8)                                                                 \
    ATTR static float NAME(dot_q8_0)(const uint8_t *w, const act_q8 *a, int64_t nb) {              \
        float s = 0;                                                                               \
        for (int64_t b = 0; b < nb; b++, w += 34) {                                                \
            int8x16_t q0 = vld1q_s8((const int8_t *)(w + 2)),                                      \
                      q1 = vld1q_s8((const int8_t *)(w + 18));                                     \
            s += (float)DOT_I8(q0, q1, a[b].qs) * (rd_f16(w) * a[b].d);                            \
        }                                                                                          \
        return s;                                                                                  \
    }                                                                                              \
                                                                                                   \
    ATTR static float NAME(dot_q4_0)(const uint8_t *w, const act_q8 *a, int64_t nb) {              \
        const uint8x16_t m4 = vdupq_n_u8(0xf);                                                     \
        const int8x16_t eight = vdupq_n_s8(8);                                                     \
        float s = 0;                                                                               \
        for (int64_t b = 0; b < nb; b++, w += 18) {                                                \
            uint8x16_t v = vld1q_u8(w + 2);                                                        \
            int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, m4)), eight);                  \
            int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);                 \
            s += (float)DOT_I8(lo, hi, a[b].qs) * (rd_f16(w) * a[b].d);                            \
        }                                                                                          \
        return s;                                                                                  \
    }
#define PLAIN_NAME(f) f
#define SDOT_NAME(f)  f##_sdot
Q_DOTS(, PLAIN_NAME, dot_i8)
Q_DOTS(DOTPROD, SDOT_NAME, dot_i8_sdot)

/* ---- matmul ----------------------------------------------------------- */

#define TILE_ROWS 16

typedef struct mm_job {
    const kern_mat *w;
    int tile;
    const float *x;
    size_t ldx;
    const act_q8 *xq; /* [n_tok][n_cols/32], or NULL for float weights */
    float *y;
    size_t ldy;
    int n_tok;
    bool sdot; /* the CPU has the dot-product extension */
} mm_job;

static void mm_task(void *ctx, int task, int thread) {
    (void)thread;
    const mm_job *j = ctx;
    const kern_mat *w = j->w;
    const int64_t r0 = (int64_t)task * j->tile, n = w->n_cols, nb = n / 32;
    const int nr = (int)(w->n_rows - r0 < j->tile ? w->n_rows - r0 : j->tile);
    const uint8_t *base = (const uint8_t *)w->data + (size_t)r0 * w->row_bytes;
    for (int t = 0; t < j->n_tok; t++) {
        const float *xt = j->x + (size_t)t * j->ldx;
        const act_q8 *at = j->xq ? j->xq + (size_t)t * (size_t)nb : NULL;
        float *yt = j->y + (size_t)t * j->ldy + r0;
        for (int r = 0; r < nr; r++) {
            const uint8_t *row = base + (size_t)r * w->row_bytes;
            switch (w->type) {
            case HT_F32:
                yt[r] = dot_f32((const float *)row, xt, n);
                break;
            case HT_F16:
                yt[r] = dot_f16((const uint16_t *)row, xt, n);
                break;
            case HT_Q8_0:
                yt[r] = j->sdot ? dot_q8_0_sdot(row, at, nb) : dot_q8_0(row, at, nb);
                break;
            default: /* HT_Q4_0 */
                yt[r] = j->sdot ? dot_q4_0_sdot(row, at, nb) : dot_q4_0(row, at, nb);
                break;
            }
        }
    }
}

/* Per calling thread, grown and never shrunk: the quantized activations of
 * the current call. Freed when the thread exits. */
typedef struct call_bufs {
    act_q8 *act;
    size_t cap; /* blocks */
} call_bufs;

static pthread_key_t bufs_key;
static bool bufs_ok;
static pthread_once_t bufs_once = PTHREAD_ONCE_INIT;

static void bufs_free(void *p) {
    call_bufs *b = p;
    free(b->act);
    free(b);
}

static void bufs_init(void) {
    bufs_ok = pthread_key_create(&bufs_key, bufs_free) == 0;
}

/* This thread's buffer with room for `blocks` blocks, or NULL (out of memory). */
static act_q8 *act_buffer(size_t blocks) {
    pthread_once(&bufs_once, bufs_init);
    if (!bufs_ok) return NULL;
    call_bufs *b = pthread_getspecific(bufs_key);
    if (!b) {
        if (!(b = calloc(1, sizeof(*b)))) return NULL;
        if (pthread_setspecific(bufs_key, b) != 0) {
            free(b);
            return NULL;
        }
    }
    if (blocks > b->cap) {
        if (blocks > SIZE_MAX / sizeof(act_q8)) return NULL;
        act_q8 *p = realloc(b->act, blocks * sizeof(act_q8));
        if (!p) return NULL;
        b->act = p;
        b->cap = blocks;
    }
    return b->act;
}

static bool sdot;
static pthread_once_t sdot_once = PTHREAD_ONCE_INIT;
static void sdot_init(void) {
    const char *e = getenv("HEARTH_NEON_SDOT"); /* "0": the Armv8.0 path (tests) */
    sdot = has_sdot() && !(e && !strcmp(e, "0"));
}

bool kern_neon_uses_sdot(void) {
    pthread_once(&sdot_once, sdot_init);
    return sdot;
}

static void neon_matmul(tp_pool *pool, const kern_mat *w, const float *x, size_t ldx, float *y,
                        size_t ldy, int n_tok) {
    if (n_tok <= 0) return;
    const bool quant = w->type == HT_Q8_0 || w->type == HT_Q4_0;
    if (!quant && w->type != HT_F32 && w->type != HT_F16) {
        kern_ref_matmul(pool, w, x, ldx, y, ldy, n_tok);
        return;
    }
    act_q8 *xq = NULL;
    if (quant) {
        const size_t nb = (size_t)(w->n_cols / 32);
        if (nb > SIZE_MAX / (size_t)n_tok || !(xq = act_buffer(nb * (size_t)n_tok))) {
            kern_ref_matmul(pool, w, x, ldx, y, ldy, n_tok); /* needs no memory */
            return;
        }
        for (int t = 0; t < n_tok; t++)
            for (size_t b = 0; b < nb; b++)
                quantize_block(x + (size_t)t * ldx + 32 * b, &xq[(size_t)t * nb + b]);
    }
    int64_t tile = w->n_rows / (4 * (int64_t)tp_n_threads(pool));
    if (tile > TILE_ROWS) tile = TILE_ROWS;
    if (tile < 1) tile = 1;
    mm_job j = {w, (int)tile, x, ldx, xq, y, ldy, n_tok, kern_neon_uses_sdot()};
    tp_run(pool, mm_task, &j, (int)((w->n_rows + tile - 1) / tile));
}

static int neon_act_block(ht_type t) {
    return t == HT_Q8_0 || t == HT_Q4_0 ? 32 : 0;
}

const kern_ops kern_ops_neon = {
    .name = "neon",
    .matmul = neon_matmul,
    .act_block = neon_act_block,
    .rmsnorm = kern_ref_rmsnorm,
    .softmax = kern_ref_softmax,
    .swiglu = kern_ref_swiglu,
    .rope = kern_ref_rope,
    .attention = kern_ref_attention,
};

bool kern_neon_supported(void) { /* Advanced SIMD is part of every ARMv8-A CPU */
    return true;
}

#else /* not aarch64: no such variant */

#include "kernels/ref.h"
const kern_ops kern_ops_neon = {.name = "neon"};
bool kern_neon_uses_sdot(void) {
    return false;
}
bool kern_neon_supported(void) {
    return false;
}

#endif
