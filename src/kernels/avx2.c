/* AVX2 + FMA + F16C kernels (x86-64), chosen when the CPU has them.
 *
 * matmul is the op that differs from the reference. This file is its driver
 * (the per-type tile kernels are in avx2_q.c and avx2_kq.c, the contract in
 * avx2_impl.h): a call of one or several matrices sharing an input
 * (kern_matmul_n: q/k/v, gate/up, a token's experts) quantizes the
 * activations once per format, then runs every matrix's row tiles as one set
 * of tasks over the pool: one dispatch, one barrier. Each task computes a
 * tile of rows for all tokens, in chunks of the type's max_tokens, so a
 * tile's weights are read from memory once per call. Types no tile handles
 * run the reference matmul. The other ops are in avx2_ops.c.
 * Functions carry a target attribute, so the file builds without -mavx2 and
 * only runs where the CPU has AVX2.
 *
 * avx512.c builds this file again with HEARTH_VNNI defined: the "avx512"
 * variant, the same driver and ops over avx512_q.c's and avx512_kq.c's tiles
 * (avx2_q.c and avx2_kq.c with AVX-512 VNNI dot products). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <cpuid.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/avx2_impl.h"
#include "kernels/avx2_ops.h"
#include "kernels/kernels.h"
#include "kernels/ref.h"

#if defined(HEARTH_VNNI) && defined(HEARTH_VNNI_EMULATE)
#define V_OPS       kern_ops_avx512emu /* tests only: avx512_emu.h */
#define V_NAME      "avx512emu"
#define V_SUPPORTED kern_avx512emu_supported
#define V_Q_TYPE    avx512emu_q_type
#define V_KQ_TYPE   avx512emu_kq_type
#define V_KQ_R8     avx512emu_kq_r8_type
#elif defined(HEARTH_VNNI)
#define V_OPS       kern_ops_avx512
#define V_NAME      "avx512"
#define V_SUPPORTED kern_avx512_supported
#define V_Q_TYPE    avx512_q_type
#define V_KQ_TYPE   avx512_kq_type
#define V_KQ_R8     avx512_kq_r8_type
#else
#define V_OPS       kern_ops_avx2
#define V_NAME      "avx2"
#define V_SUPPORTED kern_avx2_supported
#define V_Q_TYPE    avx2_q_type
#define V_KQ_TYPE   avx2_kq_type
#define V_KQ_R8     avx2_kq_r8_type
#endif

static const avx2_type *type_of(ht_type t) {
    const avx2_type *ty = V_Q_TYPE(t);
    return ty ? ty : V_KQ_TYPE(t);
}

/* A matrix's tiles: by type and layout (dispatch.c passes only layouts
 * avx2_runs_layout accepts). */
static const avx2_type *mat_type(const kern_mat *w) {
    return w->layout == KERN_LAYOUT_R8 ? V_KQ_R8(w->type) : type_of(w->type);
}

static bool avx2_runs_layout(ht_type t, kern_layout l) {
    return l == KERN_LAYOUT_R8 && V_KQ_R8(t) != NULL;
}

#define MAX_FORMATS 4 /* distinct activation formats in one call */

/* Per calling thread, grown and never shrunk: the quantized activations of
 * the current call (one buffer per format) and the tiles' scratch for every
 * pool thread. Freed when the thread exits. */
typedef struct call_bufs {
    void *act[MAX_FORMATS];
    size_t act_bytes[MAX_FORMATS];
    void *scratch;
    size_t scratch_bytes;
} call_bufs;

static pthread_key_t bufs_key;
static pthread_once_t bufs_once = PTHREAD_ONCE_INIT;

static void bufs_free(void *p) {
    call_bufs *b = p;
    for (int i = 0; i < MAX_FORMATS; i++) free(b->act[i]);
    free(b->scratch);
    free(b);
}

static void bufs_init(void) {
    if (pthread_key_create(&bufs_key, bufs_free) != 0) bufs_key = (pthread_key_t)-1;
}

static call_bufs *thread_bufs(void) {
    pthread_once(&bufs_once, bufs_init);
    if (bufs_key == (pthread_key_t)-1) return NULL;
    call_bufs *b = pthread_getspecific(bufs_key);
    if (!b && (b = calloc(1, sizeof(*b))) && pthread_setspecific(bufs_key, b) != 0) {
        free(b);
        b = NULL;
    }
    return b;
}

/* Makes *p hold at least need bytes (64-byte aligned); false on OOM (*p unchanged). */
static bool grow(void **p, size_t *cap, size_t need) {
    if (need <= *cap) return true;
    if (need > SIZE_MAX - 63) return false;
    void *np = aligned_alloc(64, (need + 63) & ~(size_t)63);
    if (!np) return false;
    free(*p);
    *p = np;
    *cap = need;
    return true;
}

/* One matrix of a call. */
typedef struct mm_item {
    const kern_mat *w;
    const avx2_type *ty;
    const uint8_t *act; /* token t at act + t * act_stride */
    size_t act_stride;
    float *y;
    size_t ldy;
    int rows;       /* rows per task */
    int first_task; /* this matrix's tasks: [first_task, first_task + ceil(n_rows / rows)) */
} mm_item;

typedef struct mm_call {
    const mm_item *items;
    int n_items;
    int n_tok;
    uint8_t *scratch; /* per pool thread: scratch_per bytes */
    size_t scratch_per;
} mm_call;

AVX2 static void mm_task(void *ctx, int task, int thread) {
    const mm_call *c = ctx;
    int i = c->n_items - 1;
    while (i > 0 && task < c->items[i].first_task) i--;
    const mm_item *it = &c->items[i];
    const kern_mat *w = it->w;
    int64_t r0 = (int64_t)(task - it->first_task) * it->rows;
    int nr = (int)(w->n_rows - r0 < it->rows ? w->n_rows - r0 : it->rows);
    const uint8_t *base = (const uint8_t *)w->data + (size_t)r0 * w->row_bytes;
    uint8_t *scratch = c->scratch ? c->scratch + (size_t)thread * c->scratch_per : NULL;
    if (c->n_tok == 1) { /* one tile call over the task's rows: one prefetch stream */
        it->ty->tile(base, w->row_bytes, nr, it->act, it->act_stride, 1, w->n_cols, it->y + r0,
                     it->ldy, scratch);
        return;
    }
    for (int t0 = 0; t0 < c->n_tok; t0 += it->ty->max_tokens) {
        int nt = c->n_tok - t0 < it->ty->max_tokens ? c->n_tok - t0 : it->ty->max_tokens;
        it->ty->tile(base, w->row_bytes, nr, it->act + (size_t)t0 * it->act_stride, it->act_stride,
                     nt, w->n_cols, it->y + (size_t)t0 * it->ldy + r0, it->ldy, scratch);
    }
}

/* Activation quantization of a batch, spread over the pool. */
typedef struct q_job {
    const avx2_act *fmt;
    const float *x;
    size_t ldx;
    int64_t n_cols;
    uint8_t *out;
    size_t stride;
    int n_tok, per_task;
} q_job;

static void q_task(void *ctx, int task, int thread) {
    (void)thread;
    const q_job *q = ctx;
    int t0 = task * q->per_task, t1 = t0 + q->per_task < q->n_tok ? t0 + q->per_task : q->n_tok;
    for (int t = t0; t < t1; t++)
        q->fmt->quantize(q->x + (size_t)t * q->ldx, q->n_cols, q->out + (size_t)t * q->stride);
}

#define MAX_ITEMS 64 /* matrices per dispatch; larger calls are split */
#ifndef DECODE_SPLIT
#define DECODE_SPLIT 8 /* one-token calls: tasks per thread and matrix */
#endif

static void avx2_matmul_n(tp_pool *pool, const kern_mm *mm, int n_mm, const float *x, size_t ldx,
                          int n_tok) {
    if (n_tok <= 0 || n_mm <= 0) return;
    while (n_mm > MAX_ITEMS) { /* not expected; keeps the arrays bounded */
        avx2_matmul_n(pool, mm, MAX_ITEMS, x, ldx, n_tok);
        mm += MAX_ITEMS;
        n_mm -= MAX_ITEMS;
    }
    call_bufs *bufs = thread_bufs();
    const int n_threads = tp_n_threads(pool);
    mm_item items[MAX_ITEMS];
    const avx2_act *fmts[MAX_FORMATS];
    int n_fmts = 0, n_items = 0;
    int64_t total_rows = 0;
    size_t scratch_per = 0;
    for (int i = 0; i < n_mm; i++) {
        const kern_mat *w = mm[i].w;
        const avx2_type *ty = bufs ? mat_type(w) : NULL;
        int f = -1;
        if (ty && ty->act) { /* its format's buffer, quantized below */
            for (f = 0; f < n_fmts && fmts[f] != ty->act; f++) {
            }
            size_t stride = ty->act->bytes(w->n_cols);
            if (f == MAX_FORMATS || stride > SIZE_MAX / (size_t)n_tok ||
                !grow(&bufs->act[f], &bufs->act_bytes[f], stride * (size_t)n_tok))
                ty = NULL;
            else if (f == n_fmts)
                fmts[n_fmts++] = ty->act;
        }
        if (ty && ty->scratch_bytes) {
            size_t s = ty->scratch_bytes(w->n_cols);
            if (s > scratch_per) scratch_per = s;
        }
        if (!ty) { /* the reference, on its own */
            kern_ref_matmul_any(pool, w, x, ldx, mm[i].y, mm[i].ldy, n_tok);
            continue;
        }
        mm_item *it = &items[n_items++];
        it->w = w;
        it->ty = ty;
        it->act = ty->act ? bufs->act[f] : (const uint8_t *)x;
        it->act_stride = ty->act ? ty->act->bytes(w->n_cols) : ldx * sizeof(float);
        it->y = mm[i].y;
        it->ldy = mm[i].ldy;
        total_rows += w->n_rows;
    }
    if (!n_items) return;
    if (scratch_per && (scratch_per > SIZE_MAX / (size_t)n_threads ||
                        !grow(&bufs->scratch, &bufs->scratch_bytes, scratch_per * n_threads))) {
        for (int i = 0; i < n_items; i++) /* no memory for scratch: the reference */
            kern_ref_matmul_any(pool, items[i].w, x, ldx, items[i].y, items[i].ldy, n_tok);
        return;
    }
    /* quantize the input once per format */
    for (int f = 0; f < n_fmts; f++) {
        q_job q = {
            fmts[f], x, ldx, items[0].w->n_cols, bufs->act[f], fmts[f]->bytes(items[0].w->n_cols),
            n_tok,   1};
        int tasks = n_tok < 2 * n_threads ? 1 : 2 * n_threads;
        q.per_task = (n_tok + tasks - 1) / tasks;
        tasks = (n_tok + q.per_task - 1) / q.per_task;
        tp_run(tasks > 1 ? pool : NULL, q_task, &q, tasks);
    }
    /* rows per task. Batches: about 4 tasks per thread over the whole call,
     * at most a tile. One token: each matrix in DECODE_SPLIT tasks per
     * thread of at least a tile's rows, one contiguous stream each (short
     * tasks measured 5-10% slower from DRAM: each starts its prefetch anew) */
    int64_t want = total_rows / (4 * (int64_t)n_threads);
    int n_tasks = 0;
    for (int i = 0; i < n_items; i++) {
        int64_t rows = want < items[i].ty->max_rows ? want : items[i].ty->max_rows;
        if (n_tok == 1) {
            const int64_t parts = (int64_t)n_threads * DECODE_SPLIT;
            rows = (items[i].w->n_rows + parts - 1) / parts;
            if (rows < items[i].ty->max_rows) rows = items[i].ty->max_rows;
        }
        if (rows < 1) rows = 1;
        const int align = kern_mat_row_align(items[i].w);
        rows = (rows + align - 1) / align * align;
        items[i].rows = (int)rows;
        items[i].first_task = n_tasks;
        n_tasks += (int)((items[i].w->n_rows + rows - 1) / rows);
    }
    mm_call c = {items, n_items, n_tok, scratch_per ? bufs->scratch : NULL, scratch_per};
    tp_run(pool, mm_task, &c, n_tasks);
}

static void avx2_matmul(tp_pool *pool, const kern_mat *w, const float *x, size_t ldx, float *y,
                        size_t ldy, int n_tok) {
    kern_mm mm = {w, y, ldy};
    avx2_matmul_n(pool, &mm, 1, x, ldx, n_tok);
}

static void avx2_get_row(const kern_mat *w, int64_t row, float *out) {
    const uint8_t *src = (const uint8_t *)w->data + (size_t)row * w->row_bytes;
    const avx2_type *ty = type_of(w->type);
    if (ty && ty->dequant)
        ty->dequant(src, out, w->n_cols);
    else if (w->type == HT_F32)
        memcpy(out, src, sizeof(float) * (size_t)w->n_cols);
    else
        ht_dequantize_row(w->type, src, out, w->n_cols);
}

static int avx2_act_block(ht_type t) {
    const avx2_type *ty = type_of(t);
    return ty && ty->act ? ty->act->block : 0;
}

static bool avx2_act_bf16(ht_type t) {
    const avx2_type *ty = type_of(t);
    return ty && ty->act && ty->act->bf16;
}

#ifdef HEARTH_VNNI
#include "kernels/amx.h"
#endif

const kern_ops V_OPS = {
    .name = V_NAME,
    .matmul = avx2_matmul,
    .matmul_n = avx2_matmul_n,
    .act_block = avx2_act_block,
    .act_bf16 = avx2_act_bf16,
#ifdef HEARTH_VNNI
    .amx = amx_on,
#endif
    .get_row = avx2_get_row,
    .rmsnorm = kern_avx2_rmsnorm,
    .softmax = kern_avx2_softmax,
    .swiglu = kern_avx2_swiglu,
    .rope = kern_avx2_rope,
    .attention = kern_avx2_attention,
    .matmul_kn = kern_avx2_matmul_kn,
    .runs_layout = avx2_runs_layout,
};

/* CPUID: AVX2 (leaf 7 EBX bit 5), FMA (leaf 1 ECX bit 12), F16C (ECX bit
 * 29), and the OS saving YMM state (OSXSAVE, XCR0 bits 1-2). avx512 also
 * needs AVX512F, BW, VL (leaf 7 EBX bits 16, 30, 31), VNNI (ECX bit 11) and
 * the OS saving the opmask and ZMM state (XCR0 bits 5-7). */
bool V_SUPPORTED(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    bool fma = c & (1u << 12), f16c = c & (1u << 29), osxsave = c & (1u << 27);
    if (!fma || !f16c || !osxsave) return false;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
#if defined(HEARTH_VNNI) && !defined(HEARTH_VNNI_EMULATE)
    const unsigned ebx = (1u << 5) | (1u << 16) | (1u << 30) | (1u << 31);
    return (b & ebx) == ebx && (c & (1u << 11)) && (lo & 0xe0) == 0xe0;
#else
    return b & (1u << 5);
#endif
}

#else /* not x86-64: no such variant */

#include "kernels/kernels.h"
#include "kernels/ref.h"
#ifdef HEARTH_VNNI
const kern_ops kern_ops_avx512 = {.name = "avx512"};
bool kern_avx512_supported(void) {
    return false;
}
#else
const kern_ops kern_ops_avx2 = {.name = "avx2"};
bool kern_avx2_supported(void) {
    return false;
}
#endif

#endif
