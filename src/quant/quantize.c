/* Per-tensor type selection (after llama.cpp's llama_tensor_get_type, as of
 * the reference build of 2025-02) and the multi-threaded conversion. */
#include "quant/quantize.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/threadpool.h"

#define QK_K 256

static const struct {
    const char *name;
    quant_ftype ftype;
    ht_type base;
} ftypes[] = {
    {"F32", QUANT_FTYPE_ALL_F32, HT_F32},    {"F16", QUANT_FTYPE_F16, HT_F16},
    {"BF16", QUANT_FTYPE_BF16, HT_BF16},     {"Q4_0", QUANT_FTYPE_Q4_0, HT_Q4_0},
    {"Q4_1", QUANT_FTYPE_Q4_1, HT_Q4_1},     {"Q5_0", QUANT_FTYPE_Q5_0, HT_Q5_0},
    {"Q5_1", QUANT_FTYPE_Q5_1, HT_Q5_1},     {"Q8_0", QUANT_FTYPE_Q8_0, HT_Q8_0},
    {"Q2_K", QUANT_FTYPE_Q2_K, HT_Q2_K},     {"Q3_K_S", QUANT_FTYPE_Q3_K_S, HT_Q3_K},
    {"Q3_K_M", QUANT_FTYPE_Q3_K_M, HT_Q3_K}, {"Q3_K_L", QUANT_FTYPE_Q3_K_L, HT_Q3_K},
    {"Q4_K_S", QUANT_FTYPE_Q4_K_S, HT_Q4_K}, {"Q4_K_M", QUANT_FTYPE_Q4_K_M, HT_Q4_K},
    {"Q5_K_S", QUANT_FTYPE_Q5_K_S, HT_Q5_K}, {"Q5_K_M", QUANT_FTYPE_Q5_K_M, HT_Q5_K},
    {"Q6_K", QUANT_FTYPE_Q6_K, HT_Q6_K},
};
#define N_FTYPES (sizeof(ftypes) / sizeof(ftypes[0]))

int quant_ftype_from_name(const char *name) {
    for (size_t i = 0; i < N_FTYPES; i++)
        if (!strcasecmp(name, ftypes[i].name)) return (int)ftypes[i].ftype;
    return -1;
}

const char *quant_ftype_name(int ftype) {
    for (size_t i = 0; i < N_FTYPES; i++)
        if ((int)ftypes[i].ftype == ftype) return ftypes[i].name;
    return NULL;
}

ht_type quant_ftype_base_type(quant_ftype ftype) {
    for (size_t i = 0; i < N_FTYPES; i++)
        if (ftypes[i].ftype == ftype) return ftypes[i].base;
    return HT_F32;
}

static bool is_quantized(ht_type t) {
    const ht_type_info *ti = ht_type_get(t);
    return ti && ti->block_size > 1;
}

static int block_size(ht_type t) {
    const ht_type_info *ti = ht_type_get(t);
    return ti ? ti->block_size : 1;
}

/* ggml_n_dims: trailing dimensions of size 1 do not count. */
static int n_dims_of(const gguf_tensor *t) {
    for (int i = GGUF_MAX_DIMS - 1; i >= 1; i--)
        if (t->ne[i] > 1) return i + 1;
    return 1;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !memcmp(s + n - m, suffix, m);
}

/* The layer of "blk.N....", or -1 (as sscanf("blk.%d.") would read it). */
static int name_layer(const char *name) {
    if (strncmp(name, "blk.", 4)) return -1;
    const char *p = name + 4;
    if (*p < '0' || *p > '9') return -1;
    long v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > 1000000) return -1;
    }
    return (int)v;
}

/* Model facts the mix depends on. */
typedef struct mix_info {
    char arch[64];
    int n_layer;
    int n_gqa; /* n_head / n_head_kv (layer 0) */
    int n_expert;
    bool is_70b;
    bool has_output;
    int n_attention_wv;
} mix_info;

typedef struct mix_state {
    int i_attention_wv, i_ffn_down, i_ffn_gate, i_ffn_up;
} mix_state;

static bool use_more_bits(int i_layer, int n_layers) {
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 ||
           (i_layer - n_layers / 8) % 3 == 2;
}

/* Reads an integer key that may be an array (per-layer values): element 0. */
static int get_int_key(const gguf_file *f, const char *arch, const char *suffix, int def, int *out,
                       hearth_err *err) {
    char key[160];
    snprintf(key, sizeof(key), "%s.%s", arch, suffix);
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) {
        if (def < 0) return hearth_errf(err, "quantize: missing key %s", key);
        *out = def;
        return 0;
    }
    if (kv->type == GGUF_ARRAY) {
        if (kv->arr.n == 0 || kv->arr.type == GGUF_STRING || kv->arr.type == GGUF_FLOAT32 ||
            kv->arr.type == GGUF_FLOAT64 || kv->arr.type == GGUF_BOOL)
            return hearth_errf(err, "quantize: %s: expected an integer array, found %s of %" PRIu64,
                               key, gguf_vtype_name(kv->arr.type), kv->arr.n);
        int64_t v = gguf_arr_int(&kv->arr, 0);
        if (v < 0 || v > 1000000)
            return hearth_errf(err, "quantize: %s[0] = %" PRId64 " out of range", key, v);
        *out = (int)v;
        return 0;
    }
    uint32_t v;
    if (gguf_get_u32(f, key, &v, err)) return -1;
    if (v > 1000000) return hearth_errf(err, "quantize: %s = %u out of range", key, v);
    *out = (int)v;
    return 0;
}

static int mix_info_load(const gguf_file *f, mix_info *mi, hearth_err *err) {
    memset(mi, 0, sizeof(*mi));
    gguf_str a;
    if (gguf_get_str(f, "general.architecture", &a, err)) return -1;
    if (a.len == 0 || a.len >= sizeof(mi->arch))
        return hearth_errf(err,
                           "quantize: general.architecture: expected 1..%zu bytes, found %" PRIu64,
                           sizeof(mi->arch) - 1, a.len);
    memcpy(mi->arch, a.ptr, a.len);
    mi->arch[a.len] = 0;
    if (memchr(mi->arch, 0, a.len))
        return hearth_errf(err, "quantize: general.architecture holds a NUL");
    int n_head = 0, n_head_kv = 0;
    if (get_int_key(f, mi->arch, "block_count", -1, &mi->n_layer, err)) return -1;
    if (get_int_key(f, mi->arch, "attention.head_count", 1, &n_head, err)) return -1;
    if (get_int_key(f, mi->arch, "attention.head_count_kv", n_head, &n_head_kv, err)) return -1;
    if (get_int_key(f, mi->arch, "expert_count", 0, &mi->n_expert, err)) return -1;
    mi->n_gqa = n_head_kv > 0 ? n_head / n_head_kv : 0;
    /* llama.cpp's LLM_TYPE_70B (8 query heads per KV head at 80 layers). */
    mi->is_70b = mi->n_layer == 80 && ((!strcmp(mi->arch, "llama") && n_head != n_head_kv) ||
                                       !strcmp(mi->arch, "qwen2"));
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (gguf_str_eq(t->name, "output.weight")) mi->has_output = true;
    }
    return 0;
}

/* The mix: the type a quantizable tensor gets under ftype (before fallback). */
static int mix_type(const mix_info *mi, mix_state *st, const char *name, const gguf_tensor *t,
                    quant_ftype ftype, ht_type new_type, ht_type *out, hearth_err *err) {
    const bool falcon = !strcmp(mi->arch, "falcon");
    if (!strcmp(name, "output.weight") || (!mi->has_output && !strcmp(name, "token_embd.weight"))) {
        if (falcon || t->ne[0] % QK_K != 0)
            new_type = HT_Q8_0;
        else if (new_type != HT_Q8_0)
            new_type = HT_Q6_K;
    } else if (!strcmp(name, "token_embd.weight")) {
        /* the base type (the reference changes it only for IQ mixes) */
    } else if (strstr(name, "attn_v.weight")) {
        if (ftype == QUANT_FTYPE_Q2_K)
            new_type = mi->n_gqa >= 4 ? HT_Q4_K : HT_Q3_K;
        else if (ftype == QUANT_FTYPE_Q3_K_M)
            new_type = st->i_attention_wv < 2 ? HT_Q5_K : HT_Q4_K;
        else if (ftype == QUANT_FTYPE_Q3_K_L)
            new_type = HT_Q5_K;
        else if ((ftype == QUANT_FTYPE_Q4_K_M || ftype == QUANT_FTYPE_Q5_K_M) &&
                 use_more_bits(st->i_attention_wv, mi->n_attention_wv))
            new_type = HT_Q6_K;
        else if (ftype == QUANT_FTYPE_Q4_K_S && st->i_attention_wv < 4)
            new_type = HT_Q5_K;
        if (mi->is_70b && (new_type == HT_Q3_K || new_type == HT_Q4_K)) new_type = HT_Q5_K;
        if (mi->n_expert == 8) new_type = HT_Q8_0;
        st->i_attention_wv++;
    } else if (strstr(name, "attn_k.weight")) {
        if (mi->n_expert == 8) new_type = HT_Q8_0;
    } else if (strstr(name, "attn_q.weight")) {
        /* changed only by IQ mixes */
    } else if (strstr(name, "ffn_down")) {
        int i_layer = st->i_ffn_down, n_layer = mi->n_layer;
        if (mi->n_expert > 1) {
            /* experts are not stored in layer order in every model: read the
             * layer from the name, as the reference does */
            i_layer = name_layer(name);
            if (i_layer < 0 || i_layer >= n_layer)
                return hearth_errf(err, "quantize: %s: expected blk.N. with N in [0, %d)", name,
                                   n_layer);
        }
        if (ftype == QUANT_FTYPE_Q2_K)
            new_type = HT_Q3_K;
        else if (ftype == QUANT_FTYPE_Q3_K_M)
            new_type = i_layer < n_layer / 16                       ? HT_Q5_K
                       : !falcon || use_more_bits(i_layer, n_layer) ? HT_Q4_K
                                                                    : HT_Q3_K;
        else if (ftype == QUANT_FTYPE_Q3_K_L)
            new_type = falcon ? HT_Q4_K : HT_Q5_K;
        else if (ftype == QUANT_FTYPE_Q4_K_M) {
            if (falcon)
                new_type = i_layer < n_layer / 16            ? HT_Q6_K
                           : use_more_bits(i_layer, n_layer) ? HT_Q5_K
                                                             : HT_Q4_K;
            else if (use_more_bits(i_layer, n_layer))
                new_type = HT_Q6_K;
        } else if (ftype == QUANT_FTYPE_Q5_K_M && use_more_bits(i_layer, n_layer))
            new_type = HT_Q6_K;
        else if (ftype == QUANT_FTYPE_Q4_K_S && !falcon && i_layer < n_layer / 8)
            new_type = HT_Q5_K;
        st->i_ffn_down++;
    } else if (strstr(name, "attn_output.weight")) {
        if (!falcon) {
            if (mi->n_expert == 8) {
                if (ftype == QUANT_FTYPE_Q2_K || ftype == QUANT_FTYPE_Q3_K_S ||
                    ftype == QUANT_FTYPE_Q3_K_M || ftype == QUANT_FTYPE_Q4_K_S ||
                    ftype == QUANT_FTYPE_Q4_K_M)
                    new_type = HT_Q5_K;
            } else {
                if (ftype == QUANT_FTYPE_Q2_K)
                    new_type = HT_Q3_K;
                else if (ftype == QUANT_FTYPE_Q3_K_M)
                    new_type = HT_Q4_K;
                else if (ftype == QUANT_FTYPE_Q3_K_L)
                    new_type = HT_Q5_K;
            }
        } else if (ftype == QUANT_FTYPE_Q3_K_L) {
            new_type = HT_Q4_K;
        }
    } else if (strstr(name, "attn_qkv.weight")) {
        if (ftype == QUANT_FTYPE_Q3_K_M || ftype == QUANT_FTYPE_Q3_K_L)
            new_type = HT_Q4_K;
        else if (ftype == QUANT_FTYPE_Q4_K_M)
            new_type = HT_Q5_K;
        else if (ftype == QUANT_FTYPE_Q5_K_M)
            new_type = HT_Q6_K;
    } else if (strstr(name, "ffn_gate")) {
        st->i_ffn_gate++; /* changed only by IQ mixes */
    } else if (strstr(name, "ffn_up")) {
        st->i_ffn_up++;
    }
    *out = new_type;
    return 0;
}

/* Rows that are not a whole number of blocks of the chosen type. */
static ht_type fallback_type(ht_type type, int64_t nx) {
    if (nx % block_size(type) == 0) return type;
    ht_type r;
    switch (type) {
    case HT_Q2_K:
    case HT_Q3_K:
        r = HT_Q4_0;
        break;
    case HT_Q4_K:
        r = HT_Q5_0;
        break;
    case HT_Q5_K:
        r = HT_Q5_1;
        break;
    case HT_Q6_K:
        r = HT_Q8_0;
        break;
    default:
        r = HT_F16;
        break; /* the reference gives up here */
    }
    if (nx % block_size(r) != 0) r = HT_F16;
    return r;
}

/* Would the reference quantize this tensor at all? */
static bool quantizable(const char *name, const gguf_tensor *t) {
    static const char *const keep[] = {
        "_norm.weight",
        "ffn_gate_inp.weight",
        "ssm_conv1d.weight",
        "time_mix_first.weight",
        "time_mix_w1.weight",
        "time_mix_w2.weight",
        "time_mix_decay_w1.weight",
        "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight",
        "attn_rel_b.weight",
    };
    if (n_dims_of(t) < 2 || !ends_with(name, "weight")) return false;
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        if (strstr(name, keep[i])) return false;
    return strcmp(name, "position_embd.weight") && strcmp(name, "token_types.weight");
}

/* Processing order of the reference: by layer (non-layer tensors first),
 * then by name, bytewise. */
typedef struct order_ent {
    char *name;
    int layer;
    uint64_t index;
} order_ent;

static int order_cmp(const void *a, const void *b) {
    const order_ent *x = a, *y = b;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void order_free(order_ent *o, uint64_t n) {
    if (!o) return;
    for (uint64_t i = 0; i < n; i++) free(o[i].name);
    free(o);
}

static order_ent *order_new(const gguf_file *f, hearth_err *err) {
    uint64_t n = gguf_n_tensors(f);
    order_ent *o = calloc(n ? n : 1, sizeof(*o));
    if (!o) return hearth_errf(err, "quantize: out of memory"), NULL;
    for (uint64_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        o[i].name = gguf_str_dup(t->name);
        if (!o[i].name) {
            order_free(o, n);
            return hearth_errf(err, "quantize: out of memory"), NULL;
        }
        o[i].layer = name_layer(o[i].name);
        o[i].index = i;
    }
    qsort(o, n, sizeof(*o), order_cmp);
    return o;
}

/* Types in processing order (types_ord[k] for o[k]). */
static int plan_ordered(const gguf_file *f, const quant_params *p, const order_ent *o,
                        ht_type *types_ord, hearth_err *err) {
    const char *fname = quant_ftype_name((int)p->ftype);
    if (!fname) return hearth_errf(err, "quantize: unknown file type %d", (int)p->ftype);
    mix_info mi;
    if (mix_info_load(f, &mi, err)) return -1;
    const ht_type base = quant_ftype_base_type(p->ftype);
    uint64_t n = gguf_n_tensors(f);
    for (uint64_t k = 0; k < n; k++)
        if (strstr(o[k].name, "attn_v.weight") || strstr(o[k].name, "attn_qkv.weight") ||
            strstr(o[k].name, "attn_kv_b.weight"))
            mi.n_attention_wv++;
    mix_state st = {0};
    for (uint64_t k = 0; k < n; k++) {
        const gguf_tensor *t = gguf_tensor_at(f, o[k].index);
        const char *name = o[k].name;
        ht_type type = t->type;
        if (quantizable(name, t)) {
            type = base;
            if (is_quantized(base)) {
                if (!p->pure && mix_type(&mi, &st, name, t, p->ftype, base, &type, err)) return -1;
                type = fallback_type(type, t->ne[0]);
            }
        }
        if (type != t->type) {
            const ht_type_info *ti = ht_type_get(t->type);
            if (!ti || !ti->can_compute || t->type == HT_Q8_1 || t->type == HT_Q8_K ||
                (t->type >= HT_I8 && t->type <= HT_I64))
                return hearth_errf(err, "quantize: %s: cannot convert from type %s", name,
                                   ti ? ti->name : "(unknown)");
            if (is_quantized(t->type) && !p->allow_requantize)
                return hearth_errf(err,
                                   "quantize: %s is already quantized (%s); requantizing loses "
                                   "quality: pass --allow-requantize to do it anyway",
                                   name, ti->name);
        }
        types_ord[k] = type;
    }
    return 0;
}

int quant_plan(const gguf_file *f, const quant_params *p, ht_type *types, hearth_err *err) {
    uint64_t n = gguf_n_tensors(f);
    order_ent *o = order_new(f, err);
    if (!o) return -1;
    ht_type *to = malloc((n ? n : 1) * sizeof(*to));
    int rc = -1;
    if (!to)
        hearth_errf(err, "quantize: out of memory");
    else if (!plan_ordered(f, p, o, to, err)) {
        for (uint64_t k = 0; k < n; k++) types[o[k].index] = to[k];
        rc = 0;
    }
    free(to);
    order_free(o, n);
    return rc;
}

static void fmt_shape(char *buf, size_t n, const gguf_tensor *t) {
    int len = snprintf(buf, n, "[");
    for (uint32_t d = 0; d < t->n_dims && len > 0 && (size_t)len < n; d++)
        len += snprintf(buf + len, n - (size_t)len, "%s%" PRId64, d ? ", " : "", t->ne[d]);
    if (len > 0 && (size_t)len < n) snprintf(buf + len, n - (size_t)len, "]");
}

/* Converting rows of one tensor, split into tasks of rows over the pool. */
typedef struct conv_job {
    const uint8_t *src; /* the first row to convert */
    ht_type src_type;
    size_t src_row;
    uint8_t *dst;
    ht_type dst_type;
    size_t dst_row;
    int64_t nx, n_rows, rows_per_task;
    const float *const *imv;    /* NULL, or importance values per matrix */
    int64_t row0, rows_per_mat; /* rows before src; rows of one matrix */
    float *scratch;             /* [n_threads][nx] */
    atomic_int failed;          /* a row had no quantizer (set by any thread) */
} conv_job;

static void conv_task(void *ctx, int task, int thread) {
    conv_job *j = ctx;
    int64_t r0 = (int64_t)task * j->rows_per_task;
    int64_t r1 = r0 + j->rows_per_task < j->n_rows ? r0 + j->rows_per_task : j->n_rows;
    float *tmp = j->scratch + (size_t)thread * (size_t)j->nx;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *s = j->src + (size_t)r * j->src_row;
        const float *x;
        if (j->src_type == HT_F32 && ((uintptr_t)s % sizeof(float)) == 0) {
            x = (const float *)s;
        } else {
            ht_dequantize_row(j->src_type, s, tmp, j->nx);
            x = tmp;
        }
        const float *qw = j->imv ? j->imv[(j->row0 + r) / j->rows_per_mat] : NULL;
        if (ht_quantize_row_w(j->dst_type, x, j->dst + (size_t)r * j->dst_row, j->nx, qw))
            atomic_store(&j->failed, 1);
    }
}

/* Shared by every tensor of one run. */
typedef struct quant_run {
    tp_pool *pool;
    float *scratch;
    FILE *log;
    uint64_t n_tensors;
    uint64_t bytes_in, bytes_out;
    int n_imat, n_no_imat; /* quantized tensors with and without importance values */
} quant_run;

/* One output tensor: the writer asks for its rows in order, a few MiB at a
 * time, so the output never has to fit in memory. */
typedef struct quant_tensor {
    quant_run *run;
    const gguf_tensor *t;
    const char *name;
    uint64_t k; /* position in the output */
    ht_type type;
    size_t src_row, dst_row;
    int64_t n_rows;
    const float **imv; /* importance values per matrix (NULL: none) */
} quant_tensor;

static void log_tensor(const quant_tensor *q) {
    const gguf_tensor *t = q->t;
    char shape[128];
    fmt_shape(shape, sizeof(shape), t);
    fprintf(q->run->log,
            "[%4" PRIu64 "/%4" PRIu64 "] %-36s %-22s %6s -> %-6s %9.3f MiB -> %9.3f MiB%s\n",
            q->k + 1, q->run->n_tensors, q->name, shape, ht_type_get(t->type)->name,
            ht_type_get(q->type)->name, t->nbytes / 1048576.0,
            q->dst_row * (double)q->n_rows / 1048576.0, q->type == t->type ? " (copied)" : "");
    fflush(q->run->log);
}

static int quant_gen(void *ud, int64_t row0, int64_t n_rows, void *dst, hearth_err *err) {
    quant_tensor *q = ud;
    const gguf_tensor *t = q->t;
    const uint8_t *src = (const uint8_t *)t->data + (size_t)row0 * q->src_row;
    if (q->type == t->type) {
        memcpy(dst, src, (size_t)n_rows * q->dst_row);
    } else {
        int64_t nx = t->ne[0];
        /* tasks of about 64k elements: small enough to balance, large
         * enough that claiming a task costs nothing */
        int64_t rpt = (65536 + nx - 1) / nx;
        int64_t n_tasks = (n_rows + rpt - 1) / rpt;
        if (n_tasks > INT32_MAX) {
            rpt = (n_rows + INT32_MAX - 1) / INT32_MAX;
            n_tasks = (n_rows + rpt - 1) / rpt;
        }
        conv_job j = {.src = src,
                      .src_type = t->type,
                      .src_row = q->src_row,
                      .dst = dst,
                      .dst_type = q->type,
                      .dst_row = q->dst_row,
                      .nx = nx,
                      .n_rows = n_rows,
                      .rows_per_task = rpt,
                      .imv = q->imv,
                      .row0 = row0,
                      .rows_per_mat = t->ne[1] > 0 ? t->ne[1] : 1,
                      .scratch = q->run->scratch};
        atomic_init(&j.failed, 0);
        tp_run(q->run->pool, conv_task, &j, (int)n_tasks);
        if (atomic_load(&j.failed))
            return hearth_errf(err, "quantize: %s: no quantizer for type %s", q->name,
                               ht_type_get(q->type)->name);
    }
    if (row0 + n_rows == q->n_rows) {
        q->run->bytes_in += t->nbytes;
        q->run->bytes_out += q->dst_row * (uint64_t)q->n_rows;
        if (q->run->log) log_tensor(q);
    }
    return 0;
}

/* q->imv from the importance matrix: 1 when it has values for q, 0 when
 * not (q->imv stays NULL), -1 when its shape does not fit q's. */
static int imat_rows(imat *im, quant_tensor *q, hearth_err *err) {
    const gguf_tensor *t = q->t;
    const int64_t n_mat = q->n_rows / t->ne[1];
    if (n_mat > INT32_MAX)
        return hearth_errf(err, "quantize: %s: %" PRId64 " matrices", q->name, n_mat);
    q->imv = calloc((size_t)n_mat, sizeof(*q->imv));
    if (!q->imv) return hearth_errf(err, "quantize: out of memory");
    bool any = false;
    for (int64_t i = 0; i < n_mat; i++) {
        if (imat_values(im, q->name, (int)i, (int)n_mat, t->ne[0], &q->imv[i], err))
            return hearth_err_prefix(err, "quantize");
        any |= q->imv[i] != NULL;
    }
    if (!any) {
        free(q->imv);
        q->imv = NULL;
    }
    return any;
}

static bool skip_keys(const char *key, void *ud) {
    (void)ud;
    return !strncmp(key, "quantize.imatrix.", 17) || !strcmp(key, "split.no") ||
           !strcmp(key, "split.count") || !strcmp(key, "split.tensors.count") ||
           !strcmp(key, "general.file_type") || !strcmp(key, "general.quantization_version");
}

int quant_file(const char *in_path, const char *out_path, const quant_params *p, hearth_err *err) {
    gguf_file *f = gguf_open(in_path, err);
    if (!f) return -1;
    uint64_t n = gguf_n_tensors(f);
    order_ent *o = NULL;
    ht_type *types = NULL;
    quant_tensor *qt = NULL;
    gguf_writer *w = NULL;
    quant_run run = {.log = p->log, .n_tensors = n};
    int rc = -1;

    o = order_new(f, err);
    if (!o) goto done;
    types = malloc((n ? n : 1) * sizeof(*types));
    qt = calloc(n ? n : 1, sizeof(*qt));
    if (!types || !qt) {
        hearth_errf(err, "quantize: out of memory");
        goto done;
    }
    if (plan_ordered(f, p, o, types, err)) goto done;

    run.pool = tp_new(p->n_threads, err);
    if (!run.pool) goto done;
    int n_threads = tp_n_threads(run.pool);
    int64_t max_nx = 1;
    for (uint64_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        /* only rows that exist: a tensor of 0 rows may have any ne[0] */
        if (t->nbytes && t->ne[0] > max_nx) max_nx = t->ne[0];
    }
    if ((uint64_t)max_nx > SIZE_MAX / sizeof(float) / (uint64_t)n_threads) {
        hearth_errf(err, "quantize: rows of %" PRId64 " elements are too long", max_nx);
        goto done;
    }
    run.scratch = malloc((size_t)max_nx * (size_t)n_threads * sizeof(float));
    w = gguf_writer_new();
    if (!run.scratch || !w) {
        hearth_errf(err, "quantize: out of memory");
        goto done;
    }
    if (gguf_writer_copy_kv(w, f, skip_keys, NULL) ||
        gguf_writer_set_u32(w, "general.quantization_version", 2) ||
        gguf_writer_set_u32(w, "general.file_type", (uint32_t)p->ftype)) {
        hearth_errf(err, "quantize: copying the metadata of %s failed (out of memory?)", in_path);
        goto done;
    }
    for (uint64_t k = 0; k < n; k++) {
        const gguf_tensor *t = gguf_tensor_at(f, o[k].index);
        quant_tensor *q = &qt[k];
        *q = (quant_tensor){.run = &run,
                            .t = t,
                            .name = o[k].name,
                            .k = k,
                            .type = types[k],
                            .n_rows = t->ne[1] * t->ne[2] * t->ne[3]};
        if (ht_row_size(q->type, t->ne[0], &q->dst_row, err) ||
            ht_row_size(t->type, t->ne[0], &q->src_row, err)) {
            hearth_err_prefix(err, "quantize: %s", o[k].name);
            goto done;
        }
        if (p->imatrix && q->type != t->type && is_quantized(q->type) && q->n_rows > 0) {
            int r = imat_rows(p->imatrix, q, err);
            if (r < 0) goto done;
            run.n_imat += r;
            run.n_no_imat += !r;
        }
        if (gguf_writer_add_tensor_gen(w, o[k].name, q->type, t->n_dims, t->ne, quant_gen, q, err))
            goto done;
    }
    if (p->imatrix) {
        const char *ds = imat_dataset(p->imatrix);
        if ((p->imatrix_file && gguf_writer_set_str(w, "quantize.imatrix.file", p->imatrix_file)) ||
            (ds[0] && gguf_writer_set_str(w, "quantize.imatrix.dataset", ds)) ||
            gguf_writer_set_i32(w, "quantize.imatrix.entries_count", imat_n_entries(p->imatrix)) ||
            gguf_writer_set_i32(w, "quantize.imatrix.chunks_count", imat_chunk_count(p->imatrix))) {
            hearth_errf(err, "quantize: out of memory");
            goto done;
        }
        if (p->log)
            fprintf(p->log,
                    "quantize: importance matrix %s: %d tensors weighted by it, %d quantized "
                    "without (no entry)\n",
                    p->imatrix_file ? p->imatrix_file : "", run.n_imat, run.n_no_imat);
    }
    double t0 = tp_now();
    if (gguf_writer_write(w, out_path, err)) goto done;
    if (p->log)
        fprintf(p->log, "quantize: %s: %.2f MiB -> %.2f MiB (%s) in %.2f s with %d threads\n",
                out_path, run.bytes_in / 1048576.0, run.bytes_out / 1048576.0,
                quant_ftype_name((int)p->ftype), tp_now() - t0, n_threads);
    rc = 0;
done:
    for (uint64_t k = 0; qt && k < n; k++) free(qt[k].imv);
    free(qt);
    free(types);
    free(run.scratch);
    gguf_writer_free(w);
    tp_free(run.pool);
    order_free(o, n);
    gguf_close(f);
    return rc;
}
