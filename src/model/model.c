/* Model loading common to every architecture, the architecture table, the
 * context (KV cache) and model_eval's checks and batching. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/hugemem.h"
#include "model/model_impl.h"

/* general.architecture -> implementation. One line per architecture. */
static const model_arch *const archs[] = {
    &model_arch_llama,
    &model_arch_qwen2,
    &model_arch_deepseek2,
};

/* Bounds on what a file may declare, so sizes derived from them cannot overflow. */
#define MAX_LAYERS 4096
#define MAX_EMBD   (1 << 17)
#define MAX_HEADS  4096
#define MAX_FF     (1 << 20)
#define MAX_VOCAB  (1 << 24)
#define MAX_CTX    (1 << 24)
#define MAX_BATCH  (1 << 16)

struct model_block {
    model_block *next;
    max_align_t data[];
};

/* A weight tensor as the kernels read it: n_mat stacked matrices of
 * mat_bytes each from lo. Sorted by lo once the model is loaded. */
typedef struct model_wreg {
    const uint8_t *lo;
    uint64_t bytes, mat_bytes;
    const char *name;
    int n_mat;
} model_wreg;

void *model_alloc(model *m, size_t bytes, hearth_err *err) {
    if (bytes > SIZE_MAX - sizeof(model_block)) {
        hearth_errf(err, "allocation of %zu bytes overflows", bytes);
        return NULL;
    }
    model_block *b = calloc(1, sizeof(model_block) + bytes);
    if (!b) {
        hearth_errf(err, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    b->next = m->blocks;
    m->blocks = b;
    return b->data;
}

model_params model_default_params(void) {
    model_params p = {.n_threads = 0, .load = MODEL_LOAD_AUTO};
    return p;
}

const char *model_key(const model *m, char buf[128], const char *suffix) {
    snprintf(buf, 128, "%s.%s", m->hp.arch, suffix);
    return buf;
}

static void fmt_shape(char *buf, size_t size, int n_dims, const int64_t *ne) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, size - o, "[");
    for (int i = 0; i < n_dims && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%lld", i ? ", " : "", (long long)ne[i]);
    if (o < size) snprintf(buf + o, size - o, "]");
}

const gguf_tensor *model_tensor(model *m, const char *name, int n_dims, const int64_t *ne,
                                bool required, hearth_err *err) {
    const gguf_tensor *t = gguf_find_tensor(m->gf, name);
    if (!t) {
        if (required) hearth_errf(err, "%s: required tensor is missing", name);
        return NULL;
    }
    bool ok = true;
    for (int i = 0; i < GGUF_MAX_DIMS; i++) {
        int64_t want = i < n_dims ? ne[i] : 1;
        if (t->ne[i] != want) ok = false;
    }
    if (!ok) {
        char a[128], b[128];
        fmt_shape(a, sizeof(a), n_dims, ne);
        int nd = (int)t->n_dims;
        if (nd < 1) nd = 1;
        if (nd > GGUF_MAX_DIMS) nd = GGUF_MAX_DIMS;
        fmt_shape(b, sizeof(b), nd, t->ne);
        hearth_errf(err, "%s: expected shape %s, found %s", name, a, b);
        return NULL;
    }
    const ht_type_info *ti = ht_type_get(t->type);
    if (!ti || !ti->can_compute) {
        hearth_errf(err, "%s: expected a weight type hearth computes with, found %s (type id %d)",
                    name, ti ? ti->name : "unknown", (int)t->type);
        return NULL;
    }
    m->hp.weight_bytes += t->nbytes;
    return t;
}

/* Tensor data as the kernels may read it: F32/F16/BF16 elements are read as
 * such, so data that a file with a small general.alignment leaves
 * misaligned is copied once into model memory. Block types are read
 * bytewise and stay in place. */
const void *model_tensor_data(model *m, const gguf_tensor *t, const char *name, hearth_err *err) {
    size_t align = t->type == HT_F32 ? 4 : (t->type == HT_F16 || t->type == HT_BF16) ? 2 : 1;
    if ((uintptr_t)t->data % align == 0) return t->data;
    void *copy = model_alloc(m, t->nbytes, err);
    if (!copy) {
        hearth_err_prefix(err, "%s", name);
        return NULL;
    }
    memcpy(copy, t->data, t->nbytes);
    return copy;
}

static int wreg_cmp(const void *a, const void *b) {
    const uint8_t *x = ((const model_wreg *)a)->lo, *y = ((const model_wreg *)b)->lo;
    return x < y ? -1 : x > y;
}

int model_register_mat(model *m, const gguf_tensor *t, const void *data, int n_mat,
                       hearth_err *err) {
    if (n_mat < 1 || t->nbytes % (uint64_t)n_mat)
        return hearth_errf(err, "%.*s: %llu bytes do not split into %d matrices", (int)t->name.len,
                           t->name.ptr, (unsigned long long)t->nbytes, n_mat);
    if (m->n_wreg == m->cap_wreg) {
        int cap = m->cap_wreg ? 2 * m->cap_wreg : 64;
        model_wreg *r = realloc(m->wreg, sizeof(model_wreg) * (size_t)cap);
        if (!r) return hearth_errf(err, "out of memory");
        m->wreg = r;
        m->cap_wreg = cap;
    }
    char *name = model_alloc(m, t->name.len + 1, err);
    if (!name) return -1;
    memcpy(name, t->name.ptr, t->name.len);
    m->wreg[m->n_wreg++] = (model_wreg){.lo = data,
                                        .bytes = t->nbytes,
                                        .mat_bytes = t->nbytes / (uint64_t)n_mat,
                                        .name = name,
                                        .n_mat = n_mat};
    return 0;
}

void model_ctx_set_observer(model_ctx *c, model_observer fn, void *ud) {
    c->obs = fn;
    c->obs_ud = ud;
}

void model_observe(model_ctx *c, const kern_mat *w, const float *x, size_t ldx, int n_tok) {
    const model *m = c->m;
    const uint8_t *p = w->data;
    int lo = 0, hi = m->n_wreg; /* the last entry with lo <= p */
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (m->wreg[mid].lo <= p)
            lo = mid;
        else
            hi = mid;
    }
    if (!c->obs || m->n_wreg == 0 || p < m->wreg[lo].lo ||
        (uint64_t)(p - m->wreg[lo].lo) >= m->wreg[lo].bytes)
        return; /* not a registered weight */
    const model_wreg *r = &m->wreg[lo];
    const int slice = (int)((uint64_t)(p - r->lo) / r->mat_bytes);
    c->obs(c->obs_ud, r->name, slice, r->n_mat, w->n_cols, x, ldx, n_tok);
}

void model_repack(model *m, kern_mat *w, int n_mat) {
    if (!m->writable || n_mat < 1 || w->n_rows % n_mat ||
        (w->n_rows / n_mat) % KERN_REPACK_ROWS != 0)
        return;
    if (kern_repack(m->pool, w, (void *)(uintptr_t)w->data)) {
        m->n_repacked++;
        m->repacked_bytes += (uint64_t)w->n_rows * w->row_bytes;
    }
}

int model_weights_repacked(const model *m, uint64_t *bytes) {
    if (bytes) *bytes = m->repacked_bytes;
    return m->n_repacked;
}

int model_mat(model *m, kern_mat *out, const char *name, int64_t n_cols, int64_t n_rows,
              bool required, hearth_err *err) {
    memset(out, 0, sizeof(*out));
    int64_t ne[2] = {n_cols, n_rows};
    hearth_err e2;
    e2.msg[0] = 0;
    const gguf_tensor *t = model_tensor(m, name, 2, ne, required, &e2);
    if (!t) {
        if (e2.msg[0] == 0) return 0; /* optional and absent */
        if (err) *err = e2;
        return -1;
    }
    const void *data = model_tensor_data(m, t, name, err);
    if (!data) return -1;
    if (kern_mat_init(out, t->type, n_cols, n_rows, data, err) < 0)
        return hearth_err_prefix(err, "%s", name);
    if ((uint64_t)n_rows * out->row_bytes > t->nbytes)
        return hearth_errf(err, "%s: expected %llu bytes of data, found %llu", name,
                           (unsigned long long)((uint64_t)n_rows * out->row_bytes),
                           (unsigned long long)t->nbytes);
    return model_register_mat(m, t, data, 1, err);
}

int model_vec(model *m, const float **out, const char *name, int64_t n, bool required,
              hearth_err *err) {
    *out = NULL;
    hearth_err e2;
    e2.msg[0] = 0;
    const gguf_tensor *t = model_tensor(m, name, 1, &n, required, &e2);
    if (!t) {
        if (e2.msg[0] == 0) return 0;
        if (err) *err = e2;
        return -1;
    }
    if (t->type == HT_F32) {
        *out = model_tensor_data(m, t, name, err);
        return *out ? 0 : -1;
    }
    const ht_type_info *ti = ht_type_get(t->type);
    if (n % ti->block_size)
        return hearth_errf(err, "%s: %lld elements do not fill %s blocks of %d", name, (long long)n,
                           ti->name, ti->block_size);
    float *f = model_alloc(m, sizeof(float) * (size_t)n, err);
    if (!f) return hearth_err_prefix(err, "%s", name);
    ht_dequantize_row(t->type, t->data, f, n);
    *out = f;
    return 0;
}

int model_key_int(model *m, const char *suffix, int *out, bool required, int64_t lo, int64_t hi,
                  hearth_err *err) {
    char key[128];
    model_key(m, key, suffix);
    if (!gguf_has(m->gf, key)) {
        if (required) return hearth_errf(err, "%s: required key is missing", key);
        return 0;
    }
    int64_t v;
    if (gguf_get_i64(m->gf, key, &v, err) < 0) return -1;
    if (v < lo || v > hi)
        return hearth_errf(err, "%s: expected a value in [%lld, %lld], found %lld", key,
                           (long long)lo, (long long)hi, (long long)v);
    *out = (int)v;
    return 0;
}

static int get_float(model *m, const char *suffix, float *out, bool required, hearth_err *err) {
    char key[128];
    model_key(m, key, suffix);
    if (!gguf_has(m->gf, key)) {
        if (required) return hearth_errf(err, "%s: required key is missing", key);
        return 0;
    }
    return gguf_get_f32(m->gf, key, out, err);
}

static int read_hparams(model *m, hearth_err *err) {
    model_hparams *hp = &m->hp;
    if (model_key_int(m, "block_count", &hp->n_layer, true, 1, MAX_LAYERS, err) < 0) return -1;
    if (model_key_int(m, "embedding_length", &hp->n_embd, true, 1, MAX_EMBD, err) < 0) return -1;
    if (model_key_int(m, "feed_forward_length", &hp->n_ff, false, 1, MAX_FF, err) < 0) return -1;
    if (model_key_int(m, "attention.head_count", &hp->n_head, true, 1, MAX_HEADS, err) < 0)
        return -1;
    hp->n_head_kv = hp->n_head;
    if (model_key_int(m, "attention.head_count_kv", &hp->n_head_kv, false, 1, MAX_HEADS, err) < 0)
        return -1;
    hp->n_ctx_train = 2048;
    if (model_key_int(m, "context_length", &hp->n_ctx_train, false, 1, MAX_CTX, err) < 0) return -1;
    hp->head_dim_k = hp->head_dim_v = hp->n_embd / hp->n_head;
    if (model_key_int(m, "attention.key_length", &hp->head_dim_k, false, 1, MAX_EMBD, err) < 0)
        return -1;
    if (model_key_int(m, "attention.value_length", &hp->head_dim_v, false, 1, MAX_EMBD, err) < 0)
        return -1;
    hp->n_rot = hp->head_dim_k;
    if (model_key_int(m, "rope.dimension_count", &hp->n_rot, false, 0, MAX_EMBD, err) < 0)
        return -1;
    hp->rms_eps = 1e-5f;
    if (get_float(m, "attention.layer_norm_rms_epsilon", &hp->rms_eps, false, err) < 0) return -1;
    hp->rope_theta = 10000.0f;
    if (get_float(m, "rope.freq_base", &hp->rope_theta, false, err) < 0) return -1;

    char key[128];
    if (hp->n_head % hp->n_head_kv)
        return hearth_errf(err, "%s: expected a divisor of head_count %d, found %d",
                           model_key(m, key, "attention.head_count_kv"), hp->n_head, hp->n_head_kv);
    if (hp->head_dim_k < 1 || hp->head_dim_v < 1)
        return hearth_errf(err, "%s: head dimension of embedding_length %d / head_count %d is 0",
                           hp->arch, hp->n_embd, hp->n_head);
    if (hp->n_rot % 2 || hp->n_rot > hp->head_dim_k)
        return hearth_errf(err, "%s: expected an even number <= head dimension %d, found %d",
                           model_key(m, key, "rope.dimension_count"), hp->head_dim_k, hp->n_rot);
    if (!(hp->rms_eps > 0 && hp->rms_eps < 1))
        return hearth_errf(err, "%s: expected a value in (0, 1), found %g",
                           model_key(m, key, "attention.layer_norm_rms_epsilon"),
                           (double)hp->rms_eps);
    if (!(hp->rope_theta > 0 && hp->rope_theta < 1e30f))
        return hearth_errf(err, "%s: expected a positive value, found %g",
                           model_key(m, key, "rope.freq_base"), (double)hp->rope_theta);

    /* n_vocab comes from the embedding matrix. */
    const gguf_tensor *te = gguf_find_tensor(m->gf, "token_embd.weight");
    if (!te) return hearth_errf(err, "token_embd.weight: required tensor is missing");
    if (te->ne[1] < 1 || te->ne[1] > MAX_VOCAB)
        return hearth_errf(err, "token_embd.weight: expected 1 to %d rows (tokens), found %lld",
                           MAX_VOCAB, (long long)te->ne[1]);
    hp->n_vocab = (int)te->ne[1];
    return 0;
}

model *model_load(const char *path, const model_params *params, hearth_err *err) {
    model *m = calloc(1, sizeof(*m));
    if (!m) {
        hearth_errf(err, "out of memory");
        return NULL;
    }
    model_load_mode how = params ? params->load : MODEL_LOAD_AUTO;
    if (how == MODEL_LOAD_AUTO) {
        struct stat st;
        how = stat(path, &st) == 0 && st.st_size > 0 && model_load_copies((size_t)st.st_size)
                  ? MODEL_LOAD_COPY
                  : MODEL_LOAD_MAP;
    }
    m->gf =
        gguf_open_ex(path, how == MODEL_LOAD_COPY ? GGUF_LOAD_COPY : GGUF_LOAD_MAP,
                     params ? params->progress : NULL, params ? params->progress_ud : NULL, err);
    if (!m->gf) goto fail;
    gguf_str arch;
    if (gguf_get_str(m->gf, "general.architecture", &arch, err) < 0) goto fail_prefix;
    for (size_t i = 0; i < sizeof(archs) / sizeof(archs[0]); i++)
        if (gguf_str_eq(arch, archs[i]->name)) m->arch = archs[i];
    if (!m->arch) {
        char names[256] = "";
        for (size_t i = 0; i < sizeof(archs) / sizeof(archs[0]); i++) {
            strncat(names, i ? ", " : "", sizeof(names) - strlen(names) - 1);
            strncat(names, archs[i]->name, sizeof(names) - strlen(names) - 1);
        }
        int n = arch.len > 64 ? 64 : (int)arch.len;
        hearth_errf(err, "general.architecture: expected one of %s, found '%.*s'", names, n,
                    arch.ptr);
        goto fail_prefix;
    }
    snprintf(m->hp.arch, sizeof(m->hp.arch), "%s", m->arch->name);
    if (read_hparams(m, err) < 0) goto fail_prefix;
    m->pool = tp_new(params ? params->n_threads : 0, err);
    if (!m->pool) goto fail;
    /* the architecture's load may repack weights in the model's own copy */
    m->writable = gguf_copied(m->gf) && gguf_set_writable(m->gf, true, NULL) == 0;
    const int loaded = m->arch->load(m, err);
    if (m->writable) (void)gguf_set_writable(m->gf, false, NULL);
    m->writable = false;
    if (loaded < 0) goto fail_prefix;
    if (m->hp.kv_k_width < 0 || m->hp.kv_v_width < 0) {
        hearth_errf(err, "internal: architecture set no KV widths");
        goto fail_prefix;
    }
    if (m->n_wreg > 1) qsort(m->wreg, (size_t)m->n_wreg, sizeof(model_wreg), wreg_cmp);
    return m;
fail_prefix:
    hearth_err_prefix(err, "%s", path);
fail:
    model_free(m);
    return NULL;
}

void model_free(model *m) {
    if (!m) return;
    if (m->arch && m->arch->free) m->arch->free(m);
    tp_free(m->pool);
    while (m->blocks) {
        model_block *b = m->blocks;
        m->blocks = b->next;
        free(b);
    }
    free(m->wreg);
    gguf_close(m->gf);
    free(m);
}

const model_hparams *model_hparams_of(const model *m) {
    return &m->hp;
}

const gguf_file *model_gguf(const model *m) {
    return m->gf;
}

bool model_load_copies(size_t bytes) {
    const size_t avail = hm_mem_available();
    return hm_thp_usable() && avail && bytes <= avail / 4 * 3;
}

bool model_weights_copied(const model *m) {
    return gguf_copied(m->gf);
}

double model_weights_huge_fraction(const model *m) {
    return gguf_huge_fraction(m->gf);
}

int model_n_threads(const model *m) {
    return tp_n_threads(m->pool);
}

/* ---- context ---------------------------------------------------------- */

float *model_ctx_floats(model_ctx *c, size_t n, hearth_err *err) {
    if (n > SIZE_MAX / sizeof(float)) {
        hearth_errf(err, "buffer of %zu floats overflows", n);
        return NULL;
    }
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) {
        hearth_errf(err, "out of memory allocating %zu bytes", n * sizeof(float));
        return NULL;
    }
    c->bytes += n * sizeof(float);
    return p;
}

/* A KV cache of 64 MiB or more goes in 2 MiB pages where the kernel grants
 * them (THP "madvise" leaves calloc's memory in 4 KiB pages): a decode at a
 * long context reads all of it every token (kern_attention 8-17% faster at
 * 16384 positions on Zen 3), while a small cache would hold a partly used
 * huge page per layer. *huge: the bytes to hm_free, or 0 (free). */
#define KV_HUGE_MIN ((size_t)64 << 20)

static float *kv_alloc(model_ctx *c, size_t n, size_t *huge, hearth_err *err) {
    *huge = 0;
    if (n < KV_HUGE_MIN / sizeof(float) || !hm_thp_usable()) return model_ctx_floats(c, n, err);
    float *p = hm_alloc(n * sizeof(float), true, err);
    if (p) {
        *huge = n * sizeof(float);
        c->bytes += *huge;
    }
    return p;
}

model_ctx *model_ctx_new(model *m, int n_ctx, int n_batch, hearth_err *err) {
    const model_hparams *hp = &m->hp;
    if (n_ctx <= 0) n_ctx = hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    if (n_batch <= 0) n_batch = 512;
    if (n_ctx > MAX_CTX) {
        hearth_errf(err, "context: expected at most %d positions, asked for %d", MAX_CTX, n_ctx);
        return NULL;
    }
    if (n_batch > MAX_BATCH) n_batch = MAX_BATCH;
    if (n_batch > n_ctx) n_batch = n_ctx;
    model_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        hearth_errf(err, "out of memory");
        return NULL;
    }
    c->m = m;
    c->n_ctx = n_ctx;
    c->n_batch = n_batch;
    size_t per_k = (size_t)hp->n_layer * (size_t)n_ctx, per_v = per_k;
    if ((hp->kv_k_width && per_k > SIZE_MAX / sizeof(float) / (size_t)hp->kv_k_width) ||
        (hp->kv_v_width && per_v > SIZE_MAX / sizeof(float) / (size_t)hp->kv_v_width)) {
        hearth_errf(err, "KV cache for %d positions overflows", n_ctx);
        goto fail;
    }
    if (!(c->k_cache = kv_alloc(c, per_k * (size_t)hp->kv_k_width, &c->k_huge, err))) goto fail;
    if (!(c->v_cache = kv_alloc(c, per_v * (size_t)hp->kv_v_width, &c->v_huge, err))) goto fail;
    c->pos = calloc((size_t)n_batch, sizeof(int32_t));
    if (!c->pos) {
        hearth_errf(err, "out of memory");
        goto fail;
    }
    c->bytes += (size_t)n_batch * sizeof(int32_t);
    if (m->arch->ctx_init && m->arch->ctx_init(c, err) < 0) goto fail;
    return c;
fail:
    hearth_err_prefix(err, "context of %d positions", n_ctx);
    model_ctx_free(c);
    return NULL;
}

void model_ctx_free(model_ctx *c) {
    if (!c) return;
    if (c->scratch && c->m->arch->ctx_free) c->m->arch->ctx_free(c);
    if (c->k_huge)
        hm_free(c->k_cache, c->k_huge);
    else
        free(c->k_cache);
    if (c->v_huge)
        hm_free(c->v_cache, c->v_huge);
    else
        free(c->v_cache);
    free(c->pos);
    free(c);
}

int model_ctx_n_ctx(const model_ctx *c) {
    return c->n_ctx;
}

int model_ctx_n_past(const model_ctx *c) {
    return c->n_past;
}

int model_ctx_truncate(model_ctx *c, int n_past, hearth_err *err) {
    if (n_past < 0 || n_past > c->n_past)
        return hearth_errf(err, "truncate: expected a position in [0, %d], found %d", c->n_past,
                           n_past);
    c->n_past = n_past;
    return 0;
}

void model_ctx_reset(model_ctx *c) {
    c->n_past = 0;
}

size_t model_ctx_bytes(const model_ctx *c) {
    return c->bytes;
}

size_t model_kv_bytes_per_token(const model *m) {
    return ((size_t)m->hp.kv_k_width + (size_t)m->hp.kv_v_width) * sizeof(float);
}

int model_eval(model_ctx *c, const int32_t *tokens, int n_tokens, int pos, float *logits,
               int logits_mode, hearth_err *err) {
    const model_hparams *hp = &c->m->hp;
    if (n_tokens < 1)
        return hearth_errf(err, "eval: expected at least 1 token, found %d", n_tokens);
    if (pos < 0 || pos > c->n_past)
        return hearth_errf(err,
                           "eval: expected a start position in [0, %d] (tokens in cache), "
                           "found %d",
                           c->n_past, pos);
    if (n_tokens > c->n_ctx - pos)
        return hearth_errf(err,
                           "eval: context full: %d tokens at position %d need %lld positions, "
                           "the context holds %d",
                           n_tokens, pos, (long long)pos + n_tokens, c->n_ctx);
    if (logits_mode != MODEL_LOGITS_NONE && logits_mode != MODEL_LOGITS_LAST &&
        logits_mode != MODEL_LOGITS_ALL)
        return hearth_errf(err, "eval: unknown logits mode %d", logits_mode);
    if (logits_mode != MODEL_LOGITS_NONE && !logits)
        return hearth_errf(err, "eval: logits requested into a NULL buffer");
    for (int i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= hp->n_vocab)
            return hearth_errf(err, "eval: token %d: expected an id in [0, %d), found %d", i,
                               hp->n_vocab, (int)tokens[i]);
    c->n_past = pos; /* what lies beyond is overwritten */
    for (int done = 0; done < n_tokens;) {
        int n = n_tokens - done < c->n_batch ? n_tokens - done : c->n_batch;
        bool last_chunk = done + n == n_tokens;
        int mode = logits_mode;
        float *out = logits;
        if (logits_mode == MODEL_LOGITS_ALL)
            out = logits + (size_t)done * (size_t)hp->n_vocab;
        else if (logits_mode == MODEL_LOGITS_LAST && !last_chunk)
            mode = MODEL_LOGITS_NONE;
        for (int i = 0; i < n; i++) c->pos[i] = pos + done + i;
        if (c->m->arch->forward(c, tokens + done, n, pos + done, out, mode, err) < 0) return -1;
        done += n;
        c->n_past = pos + done;
    }
    return 0;
}
