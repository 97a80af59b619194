/* Reference kernels: portable C, the truth the other variants are checked
 * against. Activations are F32; weights are dequantized into F32 a chunk of a
 * row at a time; dot products accumulate in F32 (eight partial sums, which
 * compilers vectorize); small reductions (norms, softmax sums) in double. */
#include <math.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/ref.h"

/* ---- matmul ---------------------------------------------------------- */

/* Weight rows are dequantized MM_CHUNK columns at a time into a tile of up to
 * MM_TILE_ROWS rows (32 KiB, stays in L1/L2), and the tile is used for every
 * token of the batch before moving on: each weight byte is decoded once per
 * call, each activation chunk read once per tile. Results do not depend on
 * the tile height or the thread count (the summation order per output is
 * fixed by MM_CHUNK), so batched prefill and one-token decode agree bitwise. */
#define MM_TILE_ROWS 16
#define MM_CHUNK     512 /* a multiple of every block size (32, 256) */

static float dot_f32(const float *a, const float *b, int64_t n) {
    float s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    float r = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

typedef struct mm_job {
    const kern_mat *w;
    int tile; /* rows per task */
    const float *x;
    size_t ldx;
    float *y;
    size_t ldy;
    int n_tok;
} mm_job;

/* One task: rows [r0, r0 + nr) of W against every token. */
static void mm_task(void *ctx, int task, int thread) {
    (void)thread;
    const mm_job *j = ctx;
    const kern_mat *w = j->w;
    int64_t r0 = (int64_t)task * j->tile;
    int nr = (int)(w->n_rows - r0 < j->tile ? w->n_rows - r0 : j->tile);
    const uint8_t *base = (const uint8_t *)w->data + (size_t)r0 * w->row_bytes;

    if (w->type == HT_F32) { /* no conversion: dot straight from the mapping */
        for (int t = 0; t < j->n_tok; t++) {
            const float *xt = j->x + (size_t)t * j->ldx;
            float *yt = j->y + (size_t)t * j->ldy + r0;
            for (int r = 0; r < nr; r++)
                yt[r] = dot_f32((const float *)(base + (size_t)r * w->row_bytes), xt, w->n_cols);
        }
        return;
    }

    const ht_type_info *ti = ht_type_get(w->type);
    float buf[MM_TILE_ROWS][MM_CHUNK]; /* dequantized pieces of nr rows */
    for (int64_t c0 = 0; c0 < w->n_cols; c0 += MM_CHUNK) {
        int64_t len = w->n_cols - c0 < MM_CHUNK ? w->n_cols - c0 : MM_CHUNK;
        size_t off = (size_t)(c0 / ti->block_size) * (size_t)ti->type_size;
        for (int r = 0; r < nr; r++)
            ht_dequantize_row(w->type, base + (size_t)r * w->row_bytes + off, buf[r], len);
        for (int t = 0; t < j->n_tok; t++) {
            const float *xt = j->x + (size_t)t * j->ldx + c0;
            float *yt = j->y + (size_t)t * j->ldy + r0;
            for (int r = 0; r < nr; r++) {
                float d = dot_f32(buf[r], xt, len);
                yt[r] = c0 == 0 ? d : yt[r] + d;
            }
        }
    }
}

void kern_ref_matmul(tp_pool *pool, const kern_mat *w, const float *x, size_t ldx, float *y,
                     size_t ldy, int n_tok) {
    if (n_tok <= 0) return;
    /* tiles small enough that every thread gets several (load balance) */
    int64_t tile = w->n_rows / (4 * (int64_t)tp_n_threads(pool));
    if (tile > MM_TILE_ROWS) tile = MM_TILE_ROWS;
    if (tile < 1) tile = 1;
    mm_job j = {w, (int)tile, x, ldx, y, ldy, n_tok};
    int64_t n_tasks = (w->n_rows + tile - 1) / tile;
    tp_run(pool, mm_task, &j, (int)n_tasks);
}

/* ---- norms and activations --------------------------------------------- */

void kern_ref_rmsnorm(float *y, const float *x, const float *w, int n, int n_tok, float eps) {
    for (int t = 0; t < n_tok; t++) {
        const float *xt = x + (size_t)t * n;
        float *yt = y + (size_t)t * n;
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)xt[i] * xt[i];
        float scale = (float)(1.0 / sqrt(ss / n + (double)eps));
        if (w)
            for (int i = 0; i < n; i++) yt[i] = xt[i] * scale * w[i];
        else
            for (int i = 0; i < n; i++) yt[i] = xt[i] * scale;
    }
}

void kern_ref_softmax(float *x, int n) {
    if (n <= 0) return;
    float mx = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > mx) mx = x[i];
    double sum = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void kern_ref_swiglu(float *out, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

/* ---- rope ---------------------------------------------------------------- */

/* cos/sin of pair i at position p, angles in double. */
static void rope_cs(const kern_rope_params *p, int i, double pos, float *c, float *s) {
    double theta_extrap = pos * pow((double)p->freq_base, -2.0 * i / p->n_rot);
    if (p->freq_factors) theta_extrap /= p->freq_factors[i];
    double theta = p->freq_scale * theta_extrap;
    double mscale = p->attn_factor;
    if (p->ext_factor != 0.0f) {
        double lo = p->corr_dims[0], hi = p->corr_dims[1];
        double y = (i - lo) / fmax(0.001, hi - lo);
        double ramp = (1.0 - fmin(1.0, fmax(0.0, y))) * p->ext_factor;
        theta = theta * (1.0 - ramp) + theta_extrap * ramp;
        mscale *= 1.0 + 0.1 * log(1.0 / p->freq_scale);
    }
    *c = (float)(cos(theta) * mscale);
    *s = (float)(sin(theta) * mscale);
}

void kern_ref_rope(const kern_rope_params *p, float *x, size_t ld, int n_tok, int n_head,
                   int head_dim, const int32_t *pos) {
    int half = p->n_rot / 2;
    for (int t = 0; t < n_tok; t++) {
        float *xt = x + (size_t)t * ld;
        for (int i = 0; i < half; i++) {
            float c, s;
            rope_cs(p, i, (double)pos[t], &c, &s);
            int a = p->mode == KERN_ROPE_NEOX ? i : 2 * i;
            int b = p->mode == KERN_ROPE_NEOX ? i + half : 2 * i + 1;
            for (int h = 0; h < n_head; h++) {
                float *xh = xt + (size_t)h * head_dim;
                float x0 = xh[a], x1 = xh[b];
                xh[a] = x0 * c - x1 * s;
                xh[b] = x0 * s + x1 * c;
            }
        }
    }
}

/* ---- attention ------------------------------------------------------------ */

static void attn_task(void *ctx, int task, int thread) {
    const kern_attn *a = ctx;
    int t = task / a->n_head, h = task % a->n_head;
    int kvh = h / (a->n_head / a->n_head_kv);
    int n = a->pos[t] + 1; /* keys 0..pos[t] */
    float *sc = a->scratch + (size_t)thread * a->n_kv;
    const float *q = a->q + (size_t)t * a->ldq + (size_t)h * a->head_dim_k;
    for (int j = 0; j < n; j++)
        sc[j] = a->scale *
                dot_f32(q, a->k + (size_t)j * a->ldk + (size_t)kvh * a->head_dim_k, a->head_dim_k);
    kern_ref_softmax(sc, n);
    float *o = a->out + (size_t)t * a->ldo + (size_t)h * a->head_dim_v;
    memset(o, 0, sizeof(float) * (size_t)a->head_dim_v);
    for (int j = 0; j < n; j++) {
        const float *v = a->v + (size_t)j * a->ldv + (size_t)kvh * a->head_dim_v;
        float pj = sc[j];
        for (int d = 0; d < a->head_dim_v; d++) o[d] += pj * v[d];
    }
}

void kern_ref_attention(tp_pool *pool, const kern_attn *a) {
    tp_run(pool, attn_task, (void *)a, a->n_tok * a->n_head);
}

/* Each element a chain of products and sums (not fused), in d order. */
void kern_ref_matmul_kn(const float *x, size_t ldx, const float *b, size_t ldb, int k, int m,
                        float *y, size_t ldy, int n_tok) {
    for (int t = 0; t < n_tok; t++) {
        float *yt = y + (size_t)t * ldy;
        memset(yt, 0, sizeof(float) * (size_t)m);
        for (int d = 0; d < k; d++) {
            const float a = x[(size_t)t * ldx + (size_t)d], *bd = b + (size_t)d * ldb;
            for (int i = 0; i < m; i++) yt[i] += a * bd[i];
        }
    }
}

const kern_ops kern_ops_ref = {
    .name = "ref",
    .matmul = kern_ref_matmul,
    .rmsnorm = kern_ref_rmsnorm,
    .softmax = kern_ref_softmax,
    .swiglu = kern_ref_swiglu,
    .rope = kern_ref_rope,
    .attention = kern_ref_attention,
    .matmul_kn = kern_ref_matmul_kn,
};
