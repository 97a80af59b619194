/* GGUF v3 writer: metadata and tensors are collected in memory, then written
 * in one pass (to .NAME.tmp.PID.N beside PATH, renamed over PATH when complete). Tensor data is
 * aligned to 32 bytes, the default, so no general.alignment key is written. */
#include "gguf/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define WRITER_ALIGNMENT 32

typedef struct wkv {
    char *key;
    gguf_vtype type;
    uint8_t *val; /* the value as encoded in the file, after the type field */
    size_t len;
} wkv;

typedef struct wtensor {
    char *name;
    ht_type type;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    const void *data;
    void *owned;     /* data when the writer holds a copy, else NULL */
    gguf_gen_fn gen; /* data made at write time (then data is NULL) */
    void *gen_ud;
    size_t row_size;
    size_t nbytes;
    uint64_t offset;
} wtensor;

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

gguf_writer *gguf_writer_new(void) {
    return calloc(1, sizeof(gguf_writer));
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) free(w->kv[i].key), free(w->kv[i].val);
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name), free(w->t[i].owned);
    free(w->kv);
    free(w->t);
    free(w);
}

/* Stores (key, type, val): replaces an existing key, keeping its position.
 * Takes ownership of val. */
static int put(gguf_writer *w, const char *key, gguf_vtype type, uint8_t *val, size_t len) {
    if (!w || !key || !key[0]) {
        free(val);
        return -1;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            free(w->kv[i].val);
            w->kv[i].type = type;
            w->kv[i].val = val;
            w->kv[i].len = len;
            return 0;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        wkv *n = realloc(w->kv, cap * sizeof *n);
        if (!n) {
            free(val);
            return -1;
        }
        w->kv = n;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(val);
        return -1;
    }
    w->kv[w->n_kv++] = (wkv){k, type, val, len};
    return 0;
}

static int put_copy(gguf_writer *w, const char *key, gguf_vtype type, const void *v, size_t len) {
    uint8_t *val = malloc(len ? len : 1);
    if (!val) return -1;
    if (len) memcpy(val, v, len);
    return put(w, key, type, val, len);
}

int gguf_writer_set_val(gguf_writer *w, const char *key, gguf_vtype t, const void *value) {
    size_t n = gguf_vtype_size(t);
    if (!n || !value) return -1;
    return put_copy(w, key, t, value, n);
}

int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
    return put_copy(w, key, GGUF_UINT32, &v, 4);
}

int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) {
    return put_copy(w, key, GGUF_INT32, &v, 4);
}

int gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    return put_copy(w, key, GGUF_FLOAT32, &v, 4);
}

int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return put_copy(w, key, GGUF_BOOL, &b, 1);
}

static int set_str_len(gguf_writer *w, const char *key, const char *v, uint64_t n) {
    if (n > SIZE_MAX - 8) return -1;
    uint8_t *val = malloc((size_t)n + 8);
    if (!val) return -1;
    memcpy(val, &n, 8);
    if (n) memcpy(val + 8, v, (size_t)n);
    return put(w, key, GGUF_STRING, val, (size_t)n + 8);
}

int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    if (!v) return -1;
    return set_str_len(w, key, v, strlen(v));
}

int gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype t, const void *data,
                        uint64_t n) {
    size_t es = gguf_vtype_size(t);
    if (!es || (n && !data) || n > (SIZE_MAX - 12) / es) return -1;
    size_t len = 12 + (size_t)n * es;
    uint8_t *val = malloc(len);
    if (!val) return -1;
    uint32_t et = (uint32_t)t;
    memcpy(val, &et, 4);
    memcpy(val + 4, &n, 8);
    if (n) memcpy(val + 12, data, (size_t)n * es);
    return put(w, key, GGUF_ARRAY, val, len);
}

/* String array from (ptr, len) pairs, given by a callback so both C strings
 * and file strings can be copied. */
typedef gguf_str (*str_at_fn)(const void *src, uint64_t i);

static int set_str_arr_fn(gguf_writer *w, const char *key, const void *src, str_at_fn at,
                          uint64_t n) {
    size_t len = 12;
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s = at(src, i);
        if (s.len > SIZE_MAX - 8 - len) return -1;
        len += 8 + (size_t)s.len;
    }
    uint8_t *val = malloc(len);
    if (!val) return -1;
    uint32_t et = GGUF_STRING;
    memcpy(val, &et, 4);
    memcpy(val + 4, &n, 8);
    size_t pos = 12;
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s = at(src, i);
        memcpy(val + pos, &s.len, 8);
        if (s.len) memcpy(val + pos + 8, s.ptr, (size_t)s.len);
        pos += 8 + (size_t)s.len;
    }
    return put(w, key, GGUF_ARRAY, val, len);
}

static gguf_str cstr_at(const void *src, uint64_t i) {
    const char *s = ((const char *const *)src)[i];
    return (gguf_str){s ? s : "", s ? strlen(s) : 0};
}

static gguf_str arr_at(const void *src, uint64_t i) {
    return gguf_arr_str((const gguf_arr *)src, i);
}

int gguf_writer_set_str_arr(gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
    if (n && !v) return -1;
    return set_str_arr_fn(w, key, v, cstr_at, n);
}

int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *f, bool (*skip)(const char *key, void *ud),
                        void *ud) {
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        char *key = gguf_str_dup(kv->key);
        if (!key) return -1;
        int rc = 0;
        /* The writer lays data out at its own alignment; a copied
         * general.alignment would then lie about the file. */
        if (strcmp(key, "general.alignment") == 0 || (skip && skip(key, ud))) {
            free(key);
            continue;
        }
        if (kv->type == GGUF_STRING) {
            gguf_str s = gguf_kv_str(kv);
            rc = set_str_len(w, key, s.ptr, s.len);
        } else if (kv->type == GGUF_ARRAY && kv->arr.type == GGUF_STRING) {
            rc = set_str_arr_fn(w, key, &kv->arr, arr_at, kv->arr.n);
        } else if (kv->type == GGUF_ARRAY) {
            rc = gguf_writer_set_arr(w, key, kv->arr.type, kv->arr.data, kv->arr.n);
        } else {
            rc = gguf_writer_set_val(w, key, kv->type, kv->value);
        }
        free(key);
        if (rc) return -1;
    }
    return 0;
}

static int add_tensor(gguf_writer *w, const char *name, ht_type type, uint32_t n_dims,
                      const int64_t *ne, const void *data, bool copy, gguf_gen_fn gen, void *ud,
                      hearth_err *err) {
    if (!w || !name || !name[0]) return hearth_errf(err, "tensor: expected a non-empty name");
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return hearth_errf(err, "tensor '%s': already added", name);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return hearth_errf(err, "tensor '%s': expected 1 to %d dims, found %u", name, GGUF_MAX_DIMS,
                           n_dims);
    wtensor t = {0};
    t.type = type;
    t.n_dims = n_dims;
    int64_t n_el = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 0)
            return hearth_errf(err, "tensor '%s': dim %u is negative (%" PRId64 ")", name, d,
                               t.ne[d]);
        if (t.ne[d] && n_el > INT64_MAX / t.ne[d])
            return hearth_errf(err, "tensor '%s': element count overflows", name);
        if (t.ne[d]) n_el *= t.ne[d]; /* non-zero dims: every partial product fits */
    }
    size_t row;
    if (ht_row_size(type, t.ne[0], &row, err)) return hearth_err_prefix(err, "tensor '%s'", name);
    uint64_t rows = (uint64_t)(t.ne[1] * t.ne[2] * t.ne[3]);
    if (rows && row > SIZE_MAX / rows) return hearth_errf(err, "tensor '%s': size overflows", name);
    t.nbytes = row * (size_t)rows;
    t.row_size = row;
    t.gen = gen;
    t.gen_ud = ud;
    if (gen) copy = false, data = NULL;
    if (t.nbytes && !data && !gen) return hearth_errf(err, "tensor '%s': no data", name);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *n = realloc(w->t, cap * sizeof *n);
        if (!n) return hearth_errf(err, "tensor '%s': out of memory", name);
        w->t = n;
        w->cap_t = cap;
    }
    t.name = strdup(name);
    if (copy) t.owned = malloc(t.nbytes ? t.nbytes : 1);
    if (!t.name || (copy && !t.owned)) {
        free(t.name);
        free(t.owned);
        return hearth_errf(err, "tensor '%s': out of memory for %zu bytes", name, t.nbytes);
    }
    if (copy && t.nbytes) memcpy(t.owned, data, t.nbytes);
    t.data = copy ? t.owned : data;
    w->t[w->n_t++] = t;
    return 0;
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, ht_type type, uint32_t n_dims,
                           const int64_t *ne, const void *data, hearth_err *err) {
    return add_tensor(w, name, type, n_dims, ne, data, true, NULL, NULL, err);
}

int gguf_writer_add_tensor_ref(gguf_writer *w, const char *name, ht_type type, uint32_t n_dims,
                               const int64_t *ne, const void *data, hearth_err *err) {
    return add_tensor(w, name, type, n_dims, ne, data, false, NULL, NULL, err);
}

int gguf_writer_add_tensor_gen(gguf_writer *w, const char *name, ht_type type, uint32_t n_dims,
                               const int64_t *ne, gguf_gen_fn gen, void *ud, hearth_err *err) {
    if (!gen) return hearth_errf(err, "tensor '%s': no generator", name ? name : "");
    return add_tensor(w, name, type, n_dims, ne, NULL, false, gen, ud, err);
}

static int put_bytes(FILE *fp, const void *p, size_t n);

/* Writes a generated tensor a chunk of rows at a time. -1: err says why
 * (*gen_failed set when the generator itself failed). */
static int put_generated(FILE *fp, const wtensor *t, bool *gen_failed, hearth_err *err) {
    if (!t->nbytes) return 0;
    uint64_t rows = t->nbytes / t->row_size;
    size_t chunk = ((size_t)4 << 20) / t->row_size;
    if (chunk < 1) chunk = 1;
    if (chunk > rows) chunk = (size_t)rows;
    uint8_t *buf = malloc(chunk * t->row_size);
    if (!buf) return hearth_errf(err, "tensor '%s': out of memory", t->name);
    int rc = 0;
    for (uint64_t r = 0; r < rows && !rc; r += chunk) {
        int64_t n = (int64_t)(rows - r < chunk ? rows - r : chunk);
        if (t->gen(t->gen_ud, (int64_t)r, n, buf, err)) {
            *gen_failed = true;
            hearth_err_prefix(err, "tensor '%s'", t->name);
            rc = -1;
        } else if (put_bytes(fp, buf, (size_t)n * t->row_size)) {
            rc = -1;
        }
    }
    free(buf);
    return rc;
}

static int put_bytes(FILE *fp, const void *p, size_t n) {
    return n == 0 || fwrite(p, 1, n, fp) == n ? 0 : -1;
}

static int put_pad(FILE *fp, uint64_t pos) {
    static const uint8_t zeros[WRITER_ALIGNMENT];
    uint64_t pad = (WRITER_ALIGNMENT - pos % WRITER_ALIGNMENT) % WRITER_ALIGNMENT;
    return put_bytes(fp, zeros, (size_t)pad);
}

static int put_str(FILE *fp, const char *s) {
    uint64_t n = strlen(s);
    return put_bytes(fp, &n, 8) || put_bytes(fp, s, (size_t)n);
}

int gguf_writer_write(gguf_writer *w, const char *path, hearth_err *err) {
    /* A temporary name of this writer's own: two processes writing the same
     * PATH (the demo model on first use) must not share one, or the second
     * rename finds it gone and the file can be read half-rewritten. */
    static atomic_uint seq;
    size_t cap = strlen(path) + 64;
    char *tmp = malloc(cap);
    if (!tmp) return hearth_errf(err, "%s: out of memory", path);
    /* hidden (".NAME.tmp.PID.N" beside PATH): a leftover of a killed write
     * is not listed as a model by the store, which skips dot files */
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    snprintf(tmp, cap, "%.*s.%s.tmp.%ld.%u", dir_len, path, path + dir_len, (long)getpid(),
             atomic_fetch_add(&seq, 1));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (fd >= 0 && !fp) {
        close(fd);
        remove(tmp);
    }
    if (!fp) {
        hearth_errf(err, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        off += w->t[i].nbytes;
        off += (WRITER_ALIGNMENT - off % WRITER_ALIGNMENT) % WRITER_ALIGNMENT;
    }
    uint32_t version = 3;
    uint64_t n_t = w->n_t, n_kv = w->n_kv;
    int bad = put_bytes(fp, "GGUF", 4) || put_bytes(fp, &version, 4) || put_bytes(fp, &n_t, 8) ||
              put_bytes(fp, &n_kv, 8);
    for (size_t i = 0; !bad && i < w->n_kv; i++) {
        uint32_t t = w->kv[i].type;
        bad = put_str(fp, w->kv[i].key) || put_bytes(fp, &t, 4) ||
              put_bytes(fp, w->kv[i].val, w->kv[i].len);
    }
    for (size_t i = 0; !bad && i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        uint32_t type = t->type;
        bad = put_str(fp, t->name) || put_bytes(fp, &t->n_dims, 4) ||
              put_bytes(fp, t->ne, 8 * (size_t)t->n_dims) || put_bytes(fp, &type, 4) ||
              put_bytes(fp, &t->offset, 8);
    }
    if (!bad) {
        long pos = ftell(fp);
        bad = pos < 0 || put_pad(fp, (uint64_t)pos);
    }
    bool gen_failed = false;
    for (size_t i = 0; !bad && i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        bad =
            (t->gen ? put_generated(fp, t, &gen_failed, err) : put_bytes(fp, t->data, t->nbytes)) ||
            put_pad(fp, t->nbytes);
    }
    if (fclose(fp) != 0) bad = 1;
    if (bad) {
        if (gen_failed)
            hearth_err_prefix(err, "%s", tmp);
        else
            hearth_errf(err, "%s: write failed: %s", tmp, strerror(errno));
        remove(tmp);
        free(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        hearth_errf(err, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        remove(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}
