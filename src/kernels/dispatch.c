/* Chooses the kernel variant once, at the first call, and forwards to it.
 * HEARTH_KERNELS=ref forces the portable reference kernels. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/avx2_ops.h" /* kern_avx2_attn_scratch */
#include "kernels/kernels.h"
#include "kernels/ref.h"
#include "kernels/repack.h"

typedef struct variant {
    const kern_ops *ops;     /* NULL: not linked in (a weak symbol) */
    bool (*supported)(void); /* NULL: always */
    bool by_name;            /* never the default */
} variant;

/* Slowest first; the default is the last one the CPU supports. */
static const variant variants[] = {
    {&kern_ops_ref, NULL, false},
    {&kern_ops_avx2, kern_avx2_supported, false},
    {&kern_ops_avx512, kern_avx512_supported, false},
    {&kern_ops_neon, kern_neon_supported, false},          /* aarch64 */
    {&kern_ops_avx512emu, kern_avx512emu_supported, true}, /* test programs only */
};
#define N_VARIANTS (sizeof(variants) / sizeof(variants[0]))

static const kern_ops *active;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static bool usable(const variant *v) {
    return v->ops && (!v->supported || v->supported());
}

static void choose(void) {
    const char *want = getenv("HEARTH_KERNELS");
    active = &kern_ops_ref;
    if (want && *want) { /* a named variant; unknown or unsupported names give ref */
        for (size_t i = 0; i < N_VARIANTS; i++)
            if (usable(&variants[i]) && !strcmp(variants[i].ops->name, want))
                active = variants[i].ops;
        return;
    }
    for (size_t i = 0; i < N_VARIANTS; i++)
        if (!variants[i].by_name && usable(&variants[i])) active = variants[i].ops;
}

static const kern_ops *ops(void) {
    pthread_once(&once, choose);
    return active;
}

const char *kern_name(void) {
    return ops()->name;
}

int kern_select(const char *name, hearth_err *err) {
    ops();
    for (size_t i = 0; i < N_VARIANTS; i++)
        if (variants[i].ops && !strcmp(variants[i].ops->name, name)) {
            if (!usable(&variants[i]))
                return hearth_errf(err, "kernels: variant '%s' is not supported by this CPU", name);
            active = variants[i].ops;
            return 0;
        }
    return hearth_errf(err, "kernels: unknown variant '%s' (expected ref, avx2, avx512 or neon)",
                       name);
}

/* The byte counter (kernels.h). */
static atomic_bool counting;
static atomic_uint_fast64_t counted;

static inline void count(uint64_t bytes) {
    atomic_fetch_add_explicit(&counted, bytes, memory_order_relaxed);
}
#define COUNTING() atomic_load_explicit(&counting, memory_order_relaxed)

void kern_count_enable(bool on) {
    atomic_store_explicit(&counting, on, memory_order_relaxed);
}

void kern_count_reset(void) {
    atomic_store_explicit(&counted, 0, memory_order_relaxed);
}

uint64_t kern_count_bytes(void) {
    return (uint64_t)atomic_load_explicit(&counted, memory_order_relaxed);
}

/* Bytes of the cache rows an attention call reads. */
static uint64_t attention_bytes(const kern_attn *a) {
    int32_t last = -1; /* the highest position any query attends to */
    for (int t = 0; t < a->n_tok; t++)
        if (a->pos[t] > last) last = a->pos[t];
    if (last >= a->n_kv) last = a->n_kv - 1;
    uint64_t k = (uint64_t)a->n_head_kv * (uint64_t)a->head_dim_k;
    uint64_t v = (uint64_t)a->n_head_kv * (uint64_t)a->head_dim_v;
    uint64_t width = a->v == a->k && a->ldv == a->ldk ? (k > v ? k : v) : k + v;
    return (uint64_t)(last + 1) * width * sizeof(float);
}

int kern_mat_init(kern_mat *m, ht_type type, int64_t n_cols, int64_t n_rows, const void *data,
                  hearth_err *err) {
    const ht_type_info *ti = ht_type_get(type);
    if (!ti || !ti->can_compute)
        return hearth_errf(err, "matrix: type %d is not a weight type hearth computes with",
                           (int)type);
    if (n_cols <= 0 || n_rows <= 0 || n_rows > INT32_MAX)
        return hearth_errf(err, "matrix: expected dimensions in [1, 2^31), found [%lld, %lld]",
                           (long long)n_cols, (long long)n_rows);
    size_t rb;
    if (ht_row_size(type, n_cols, &rb, err) < 0) return -1;
    if ((uint64_t)n_rows > SIZE_MAX / rb)
        return hearth_errf(err, "matrix: %lld rows of %zu bytes overflow", (long long)n_rows, rb);
    m->type = type;
    m->n_cols = n_cols;
    m->n_rows = n_rows;
    m->row_bytes = rb;
    m->data = data;
    m->layout = KERN_LAYOUT_ROWS;
    return 0;
}

int kern_mat_row_align(const kern_mat *w) {
    return w->layout == KERN_LAYOUT_R8 ? KERN_R8_ROWS : 1;
}

/* ---- repacking ---------------------------------------------------------- */

static bool runs_layout(const kern_ops *o, const kern_mat *w) {
    return w->layout == KERN_LAYOUT_ROWS || (o->runs_layout && o->runs_layout(w->type, w->layout));
}

typedef struct repack_job {
    ht_type type;
    uint8_t *data;
    size_t row_bytes;
    int64_t n_groups;
    int per_task;  /* groups per task */
    uint8_t **tmp; /* per pool thread: one group's bytes */
} repack_job;

static void repack_task(void *ctx, int task, int thread) {
    const repack_job *j = ctx;
    const size_t gb = KERN_R8_ROWS * j->row_bytes;
    const int64_t g0 = (int64_t)task * j->per_task;
    for (int64_t g = g0; g < g0 + j->per_task && g < j->n_groups; g++) {
        uint8_t *grp = j->data + (size_t)g * gb;
        memcpy(j->tmp[thread], grp, gb);
        kern_r8_pack(j->type, j->tmp[thread], j->row_bytes, grp);
    }
}

bool kern_repack(tp_pool *pool, kern_mat *w, void *data) {
    const char *env = getenv("HEARTH_REPACK");
    if ((env && !strcmp(env, "0")) || !data || data != w->data || w->layout != KERN_LAYOUT_ROWS ||
        !kern_r8_fits(w->type, w->n_cols, w->n_rows, w->row_bytes))
        return false;
    kern_mat r8 = *w;
    r8.layout = KERN_LAYOUT_R8;
    if (!runs_layout(ops(), &r8)) return false;
    const int nt = tp_n_threads(pool);
    repack_job j = {w->type,
                    data,
                    w->row_bytes,
                    w->n_rows / KERN_R8_ROWS,
                    1,
                    calloc((size_t)nt, sizeof(uint8_t *))};
    bool ok = j.tmp != NULL;
    for (int i = 0; ok && i < nt; i++)
        ok = (j.tmp[i] = malloc(KERN_R8_ROWS * w->row_bytes)) != NULL;
    if (ok) {                                       /* nothing can fail from here on */
        j.per_task = (int)((j.n_groups + 63) / 64); /* about 64 tasks */
        tp_run(pool, repack_task, &j, (int)((j.n_groups + j.per_task - 1) / j.per_task));
        w->layout = KERN_LAYOUT_R8;
    }
    for (int i = 0; j.tmp && i < nt; i++) free(j.tmp[i]);
    free(j.tmp);
    return ok;
}

/* w in KERN_LAYOUT_ROWS, for a variant that does not run w's layout: a
 * copy with the rows restored (*owned: to free), or w itself; false on OOM. */
static bool as_rows(const kern_ops *o, const kern_mat *w, kern_mat *out, void **owned) {
    *out = *w;
    *owned = NULL;
    if (runs_layout(o, w)) return true;
    const size_t gb = KERN_R8_ROWS * w->row_bytes;
    uint8_t *rows = malloc((size_t)w->n_rows * w->row_bytes);
    if (!rows) return false;
    for (int64_t g = 0; g < w->n_rows / KERN_R8_ROWS; g++)
        kern_r8_unpack(w->type, (const uint8_t *)w->data + (size_t)g * gb, w->row_bytes, 0,
                       KERN_R8_ROWS, rows + (size_t)g * gb);
    out->data = rows;
    out->layout = KERN_LAYOUT_ROWS;
    *owned = rows;
    return true;
}

kern_mat kern_mat_rows(const kern_mat *w, int64_t r0, int64_t n) {
    kern_mat s = *w;
    s.n_rows = n;
    s.data = (const uint8_t *)w->data + (size_t)r0 * w->row_bytes;
    return s;
}

/* The matmul of a matrix in a layout the variant does not run: on a copy
 * with rows restored, or, without memory for it, NaN (never a wrong number). */
static void matmul_restored(const kern_ops *o, tp_pool *pool, const kern_mat *w, const float *x,
                            size_t ldx, float *y, size_t ldy, int n_tok) {
    kern_mat r;
    void *owned;
    if (!as_rows(o, w, &r, &owned)) {
        for (int t = 0; t < n_tok; t++)
            for (int64_t i = 0; i < w->n_rows; i++) y[(size_t)t * ldy + (size_t)i] = NAN;
        return;
    }
    o->matmul(pool, &r, x, ldx, y, ldy, n_tok);
    free(owned);
}

void kern_ref_matmul_any(tp_pool *pool, const kern_mat *w, const float *x, size_t ldx, float *y,
                         size_t ldy, int n_tok) {
    matmul_restored(&kern_ops_ref, pool, w, x, ldx, y, ldy, n_tok);
}

void kern_matmul(tp_pool *pool, const kern_mat *w, const float *x, size_t ldx, float *y, size_t ldy,
                 int n_tok) {
    if (COUNTING()) count((uint64_t)w->n_rows * w->row_bytes);
    const kern_ops *o = ops();
    if (runs_layout(o, w))
        o->matmul(pool, w, x, ldx, y, ldy, n_tok);
    else
        matmul_restored(o, pool, w, x, ldx, y, ldy, n_tok);
}

void kern_matmul_n(tp_pool *pool, const kern_mm *mm, int n_mm, const float *x, size_t ldx,
                   int n_tok) {
    if (COUNTING())
        for (int i = 0; i < n_mm; i++) count((uint64_t)mm[i].w->n_rows * mm[i].w->row_bytes);
    const kern_ops *o = ops();
    bool all = true;
    for (int i = 0; i < n_mm; i++) all = all && runs_layout(o, mm[i].w);
    if (!all) { /* one by one, each as kern_matmul runs it */
        for (int i = 0; i < n_mm; i++) {
            if (runs_layout(o, mm[i].w))
                o->matmul(pool, mm[i].w, x, ldx, mm[i].y, mm[i].ldy, n_tok);
            else
                matmul_restored(o, pool, mm[i].w, x, ldx, mm[i].y, mm[i].ldy, n_tok);
        }
        return;
    }
    if (o->matmul_n) {
        o->matmul_n(pool, mm, n_mm, x, ldx, n_tok);
        return;
    }
    for (int i = 0; i < n_mm; i++) o->matmul(pool, mm[i].w, x, ldx, mm[i].y, mm[i].ldy, n_tok);
}

int kern_act_block(ht_type t) {
    const kern_ops *o = ops();
    return o->act_block ? o->act_block(t) : 0;
}

bool kern_act_bf16(ht_type t) {
    const kern_ops *o = ops();
    return o->act_bf16 && o->act_bf16(t);
}

bool kern_amx(void) {
    const kern_ops *o = ops();
    return o->amx && o->amx();
}

void kern_rmsnorm(float *y, const float *x, const float *w, int n, int n_tok, float eps) {
    if (COUNTING() && w) count((uint64_t)n * sizeof(float));
    ops()->rmsnorm(y, x, w, n, n_tok, eps);
}

void kern_softmax(float *x, int n) {
    ops()->softmax(x, n);
}

void kern_swiglu(float *out, const float *gate, const float *up, int64_t n) {
    ops()->swiglu(out, gate, up, n);
}

void kern_rope(const kern_rope_params *p, float *x, size_t ld, int n_tok, int n_head, int head_dim,
               const int32_t *pos) {
    ops()->rope(p, x, ld, n_tok, n_head, head_dim, pos);
}

size_t kern_attn_scratch_floats(int n_threads, int n_kv, int n_head, int head_dim_v, int n_tok) {
    /* the reference: a row of n_kv scores per thread */
    const uint64_t ref =
        (uint64_t)(n_threads > 0 ? n_threads : 1) * (uint64_t)(n_kv > 0 ? n_kv : 0);
    const size_t fast = kern_avx2_attn_scratch(n_threads, n_kv, n_head, head_dim_v, n_tok);
    return ref > fast ? (ref > SIZE_MAX ? SIZE_MAX : (size_t)ref) : fast;
}

void kern_attention(tp_pool *pool, const kern_attn *a) {
    if (COUNTING()) count(attention_bytes(a));
    ops()->attention(pool, a);
}

void kern_matmul_kn(const float *x, size_t ldx, const float *b, size_t ldb, int k, int m, float *y,
                    size_t ldy, int n_tok) {
    const kern_ops *o = ops();
    (o->matmul_kn ? o->matmul_kn : kern_ref_matmul_kn)(x, ldx, b, ldb, k, m, y, ldy, n_tok);
}

/* Small ops without variants. */

static void get_row_rows(const kern_mat *w, int64_t row, float *out) {
    if (ops()->get_row) {
        ops()->get_row(w, row, out);
        return;
    }
    const uint8_t *src = (const uint8_t *)w->data + (size_t)row * w->row_bytes;
    if (w->type == HT_F32)
        memcpy(out, src, sizeof(float) * (size_t)w->n_cols);
    else
        ht_dequantize_row(w->type, src, out, w->n_cols);
}

void kern_get_row(const kern_mat *w, int64_t row, float *out) {
    if (COUNTING()) count(w->row_bytes);
    if (w->layout == KERN_LAYOUT_ROWS) {
        get_row_rows(w, row, out);
        return;
    }
    /* KERN_LAYOUT_R8: the row restored, as a matrix of one row */
    uint8_t *bytes = malloc(w->row_bytes);
    if (!bytes) {
        for (int64_t i = 0; i < w->n_cols; i++) out[i] = NAN;
        return;
    }
    const int64_t g = row / KERN_R8_ROWS;
    kern_r8_unpack(w->type, (const uint8_t *)w->data + (size_t)g * KERN_R8_ROWS * w->row_bytes,
                   w->row_bytes, (int)(row % KERN_R8_ROWS), 1, bytes);
    kern_mat r = *w;
    r.n_rows = 1;
    r.data = bytes;
    r.layout = KERN_LAYOUT_ROWS;
    get_row_rows(&r, 0, out);
    free(bytes);
}

void kern_add(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void kern_add_bias(float *y, const float *b, int n, int n_tok) {
    if (COUNTING()) count((uint64_t)n * sizeof(float));
    for (int t = 0; t < n_tok; t++) kern_add(y + (size_t)t * n, b, n);
}

kern_rope_params kern_rope_default(kern_rope_mode mode, int n_rot, float freq_base) {
    kern_rope_params p = {
        .mode = mode,
        .n_rot = n_rot,
        .freq_base = freq_base,
        .freq_factors = NULL,
        .freq_scale = 1.0f,
        .ext_factor = 0.0f,
        .attn_factor = 1.0f,
        .corr_dims = {0, 0},
    };
    return p;
}
