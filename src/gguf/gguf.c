/* GGUF reader (v2, v3) and writer (v3).
 *
 * File layout (little-endian):
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv
 *   n_kv x { string key, u32 vtype, value }
 *   n_tensors x { string name, u32 n_dims, i64 ne[n_dims], u32 type, u64 offset }
 *   padding to `general.alignment` (default 32), then the data section.
 * A string is u64 length + bytes (no NUL). An array value is u32 element type,
 * u64 count, then the elements (strings one after another).
 *
 * The reader never trusts a count: everything it allocates is bounded by the
 * bytes left in the file, and every read is checked against the end first. */
#include "gguf/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/hugemem.h"

#define GGUF_DEFAULT_ALIGNMENT 32
/* The smallest possible encodings, used to bound counts before allocating:
 * a metadata entry is a key length (8), a 1-byte key, a type (4) and at least
 * one byte of value; a tensor info is a name length (8), n_dims (4), one dim
 * (8), a type (4) and an offset (8). */
#define GGUF_MIN_KV_BYTES     14
#define GGUF_MIN_TENSOR_BYTES 32

struct gguf_file {
    const uint8_t *base;
    size_t size;
    bool mapped; /* base is an mmap of the file */
    bool copied; /* base is hm_alloc'ed memory holding the file */
    char *path;
    uint32_t version;
    uint32_t alignment;
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    gguf_tensor *tensors;
    uint64_t data_start; /* absolute offset of the data section */
    /* Open-addressing hash indexes: slot holds index + 1, 0 when empty. */
    uint64_t *kv_index;
    uint64_t kv_index_cap;
    uint64_t *t_index;
    uint64_t t_index_cap;
};

/* ---- little helpers ---------------------------------------------------- */

static uint32_t rd_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t rd_u64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint64_t hash_bytes(const char *s, uint64_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (uint64_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static bool str_eq_str(gguf_str a, gguf_str b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Capacity for n entries: a power of two at least twice n. */
static uint64_t index_cap(uint64_t n) {
    uint64_t cap = 8;
    while (cap < 2 * n) cap <<= 1;
    return cap;
}

typedef gguf_str (*name_of_fn)(const gguf_file *f, uint64_t i);

static gguf_str kv_name(const gguf_file *f, uint64_t i) {
    return f->kv[i].key;
}

static gguf_str tensor_name(const gguf_file *f, uint64_t i) {
    return f->tensors[i].name;
}

/* Finds `name` in an index; returns the entry index or UINT64_MAX. */
static uint64_t index_find(const gguf_file *f, const uint64_t *index, uint64_t cap,
                           name_of_fn name_of, gguf_str name) {
    if (!index) return UINT64_MAX;
    uint64_t mask = cap - 1;
    for (uint64_t h = hash_bytes(name.ptr, name.len) & mask;; h = (h + 1) & mask) {
        if (!index[h]) return UINT64_MAX;
        if (str_eq_str(name_of(f, index[h] - 1), name)) return index[h] - 1;
    }
}

/* Inserts entry i; returns the index of an existing entry of that name, or
 * UINT64_MAX when inserted. */
static uint64_t index_insert(const gguf_file *f, uint64_t *index, uint64_t cap, name_of_fn name_of,
                             uint64_t i) {
    gguf_str name = name_of(f, i);
    uint64_t mask = cap - 1;
    for (uint64_t h = hash_bytes(name.ptr, name.len) & mask;; h = (h + 1) & mask) {
        if (!index[h]) {
            index[h] = i + 1;
            return UINT64_MAX;
        }
        if (str_eq_str(name_of(f, index[h] - 1), name)) return index[h] - 1;
    }
}

size_t gguf_vtype_size(gguf_vtype t) {
    switch (t) {
    case GGUF_UINT8:
    case GGUF_INT8:
    case GGUF_BOOL:
        return 1;
    case GGUF_UINT16:
    case GGUF_INT16:
        return 2;
    case GGUF_UINT32:
    case GGUF_INT32:
    case GGUF_FLOAT32:
        return 4;
    case GGUF_UINT64:
    case GGUF_INT64:
    case GGUF_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

static bool vtype_is_int(gguf_vtype t) {
    return t == GGUF_UINT8 || t == GGUF_INT8 || t == GGUF_UINT16 || t == GGUF_INT16 ||
           t == GGUF_UINT32 || t == GGUF_INT32 || t == GGUF_UINT64 || t == GGUF_INT64;
}

static bool vtype_is_signed(gguf_vtype t) {
    return t == GGUF_INT8 || t == GGUF_INT16 || t == GGUF_INT32 || t == GGUF_INT64;
}

/* An integer value: unsigned types in *u (neg false), signed in *s. */
typedef struct int_val {
    bool is_signed;
    int64_t s;
    uint64_t u;
} int_val;

static int_val read_int(const uint8_t *p, gguf_vtype t) {
    int_val v = {vtype_is_signed(t), 0, 0};
    switch (t) {
    case GGUF_UINT8:
        v.u = p[0];
        break;
    case GGUF_INT8:
        v.s = (int8_t)p[0];
        break;
    case GGUF_UINT16: {
        uint16_t x;
        memcpy(&x, p, 2);
        v.u = x;
        break;
    }
    case GGUF_INT16: {
        int16_t x;
        memcpy(&x, p, 2);
        v.s = x;
        break;
    }
    case GGUF_UINT32:
        v.u = rd_u32(p);
        break;
    case GGUF_INT32: {
        int32_t x;
        memcpy(&x, p, 4);
        v.s = x;
        break;
    }
    case GGUF_UINT64:
        v.u = rd_u64(p);
        break;
    case GGUF_INT64: {
        int64_t x;
        memcpy(&x, p, 8);
        v.s = x;
        break;
    }
    default:
        break;
    }
    return v;
}

static double read_float(const uint8_t *p, gguf_vtype t) {
    if (t == GGUF_FLOAT32) {
        float x;
        memcpy(&x, p, 4);
        return x;
    }
    if (t == GGUF_FLOAT64) {
        double x;
        memcpy(&x, p, 8);
        return x;
    }
    int_val v = read_int(p, t);
    return v.is_signed ? (double)v.s : (double)v.u;
}

const char *gguf_vtype_name(gguf_vtype t) {
    static const char *names[GGUF_VTYPE_COUNT] = {
        "uint8", "int8",   "uint16", "int16",  "uint32", "int32",   "float32",
        "bool",  "string", "array",  "uint64", "int64",  "float64",
    };
    if ((unsigned)t >= GGUF_VTYPE_COUNT) return "invalid";
    return names[t];
}

/* Copies a file string into buf for messages, cut and with control bytes shown as '?'. */
static const char *show(gguf_str s, char *buf, size_t cap) {
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        buf[i] = (c < 32 || c == 127) ? '?' : (char)c;
    }
    if (s.len > cap - 1 && cap > 4) memcpy(buf + cap - 4, "...", 3), n = cap - 1;
    buf[n] = 0;
    return buf;
}

/* ---- parsing ----------------------------------------------------------- */

typedef struct reader {
    const uint8_t *p;
    uint64_t size;
    uint64_t pos;
    hearth_err *err;
} reader;

static uint64_t left(const reader *r) {
    return r->size - r->pos;
}

/* Checks that n bytes of `what` are available at the current position. */
static int need(reader *r, uint64_t n, const char *what) {
    if (n > left(r))
        return hearth_errf(r->err,
                           "%s at offset %" PRIu64 ": expected %" PRIu64 " bytes, found %" PRIu64
                           " before the end of the file (%" PRIu64 " bytes)",
                           what, r->pos, n, left(r), r->size);
    return 0;
}

static int get_u32(reader *r, uint32_t *v, const char *what) {
    if (need(r, 4, what)) return -1;
    *v = rd_u32(r->p + r->pos);
    r->pos += 4;
    return 0;
}

static int get_u64(reader *r, uint64_t *v, const char *what) {
    if (need(r, 8, what)) return -1;
    *v = rd_u64(r->p + r->pos);
    r->pos += 8;
    return 0;
}

static int get_str(reader *r, gguf_str *s, const char *what) {
    uint64_t len;
    uint64_t at = r->pos;
    if (get_u64(r, &len, what)) return -1;
    if (len > left(r))
        return hearth_errf(r->err,
                           "%s at offset %" PRIu64 ": string length %" PRIu64
                           " runs past the end of the file (%" PRIu64 " bytes left)",
                           what, at, len, left(r));
    s->ptr = (const char *)r->p + r->pos;
    s->len = len;
    r->pos += len;
    return 0;
}

/* Parses one value of type t for the key named in `key` (for messages). */
static int parse_value(reader *r, gguf_kv *kv, const char *key) {
    char what[192];
    kv->value = r->p + r->pos;
    if (kv->type == GGUF_STRING) {
        gguf_str s;
        snprintf(what, sizeof what, "key '%s': string value", key);
        return get_str(r, &s, what);
    }
    if (kv->type != GGUF_ARRAY) {
        snprintf(what, sizeof what, "key '%s': %s value", key, gguf_vtype_name(kv->type));
        if (need(r, gguf_vtype_size(kv->type), what)) return -1;
        r->pos += gguf_vtype_size(kv->type);
        return 0;
    }
    uint32_t et;
    uint64_t n;
    snprintf(what, sizeof what, "key '%s': array header", key);
    if (get_u32(r, &et, what) || get_u64(r, &n, what)) return -1;
    if (et == GGUF_ARRAY)
        return hearth_errf(r->err, "key '%s': nested arrays are not supported", key);
    if (et >= GGUF_VTYPE_COUNT)
        return hearth_errf(r->err, "key '%s': invalid array element type id %u (expected 0..%d)",
                           key, et, GGUF_VTYPE_COUNT - 1);
    kv->arr.type = (gguf_vtype)et;
    kv->arr.n = n;
    kv->arr.data = r->p + r->pos;
    if (et != GGUF_STRING) {
        uint64_t es = gguf_vtype_size((gguf_vtype)et);
        if (n > left(r) / es)
            return hearth_errf(r->err,
                               "key '%s': array of %" PRIu64 " %s elements (%" PRIu64
                               " bytes each) runs past the end of the file (%" PRIu64
                               " bytes left)",
                               key, n, gguf_vtype_name((gguf_vtype)et), es, left(r));
        r->pos += n * es;
        return 0;
    }
    /* Each string needs at least its 8-byte length: bound n before allocating. */
    if (n > left(r) / 8)
        return hearth_errf(r->err,
                           "key '%s': array of %" PRIu64 " strings cannot fit in the %" PRIu64
                           " bytes left in the file",
                           key, n, left(r));
    uint64_t *off = malloc((n ? n : 1) * sizeof *off);
    if (!off) return hearth_errf(r->err, "key '%s': out of memory for %" PRIu64 " strings", key, n);
    kv->arr.str_off = off;
    uint64_t start = r->pos;
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s;
        off[i] = r->pos - start;
        /* The message is only formatted on failure: vocabularies hold 150k strings. */
        if (left(r) >= 8 && rd_u64(r->p + r->pos) <= left(r) - 8) {
            r->pos += 8 + rd_u64(r->p + r->pos);
            continue;
        }
        snprintf(what, sizeof what, "key '%s': string %" PRIu64 " of %" PRIu64, key, i, n);
        if (get_str(r, &s, what)) return -1;
    }
    return 0;
}

static int parse(gguf_file *f, hearth_err *err) {
    reader r = {f->base, f->size, 0, err};
    if (f->size < 4)
        return hearth_errf(err, "not a GGUF file: %zu bytes, too short for the magic", f->size);
    if (memcmp(f->base, "GGUF", 4) != 0)
        return hearth_errf(err,
                           "not a GGUF file: expected magic 'GGUF' (47 47 55 46), found %02x %02x "
                           "%02x %02x",
                           f->base[0], f->base[1], f->base[2], f->base[3]);
    r.pos = 4;
    if (get_u32(&r, &f->version, "version")) return -1;
    if (f->version == 1)
        return hearth_errf(err, "GGUF version 1 is not supported (expected version 2 or 3); "
                                "re-convert the model with a current tool");
    if (f->version != 2 && f->version != 3) {
        uint32_t sw = __builtin_bswap32(f->version);
        if (sw == 2 || sw == 3)
            return hearth_errf(err, "big-endian GGUF (version %u) is not supported", sw);
        return hearth_errf(err, "unsupported GGUF version %u (expected 2 or 3)", f->version);
    }
    if (get_u64(&r, &f->n_tensors, "tensor count") || get_u64(&r, &f->n_kv, "metadata count"))
        return -1;
    uint64_t rem = left(&r);
    if (f->n_kv > rem / GGUF_MIN_KV_BYTES)
        return hearth_errf(err,
                           "metadata count %" PRIu64 " cannot fit in the %" PRIu64
                           " bytes left in the file (each entry needs at least %d bytes)",
                           f->n_kv, rem, GGUF_MIN_KV_BYTES);
    if (f->n_tensors > rem / GGUF_MIN_TENSOR_BYTES ||
        f->n_kv * GGUF_MIN_KV_BYTES > rem - f->n_tensors * GGUF_MIN_TENSOR_BYTES)
        return hearth_errf(err,
                           "tensor count %" PRIu64 " cannot fit in the %" PRIu64
                           " bytes left in the file (each tensor needs at least %d bytes)",
                           f->n_tensors, rem, GGUF_MIN_TENSOR_BYTES);
    /* Real files hold tens of keys and at most a few thousand tensors; the
     * bounds keep the index memory of a crafted file of tiny entries small. */
    if (f->n_kv > GGUF_MAX_KV)
        return hearth_errf(err, "metadata count %" PRIu64 " is over hearth's limit of %d keys",
                           f->n_kv, GGUF_MAX_KV);
    if (f->n_tensors > GGUF_MAX_TENSORS)
        return hearth_errf(err, "tensor count %" PRIu64 " is over hearth's limit of %d tensors",
                           f->n_tensors, GGUF_MAX_TENSORS);

    /* Metadata. */
    f->kv = calloc(f->n_kv ? f->n_kv : 1, sizeof *f->kv);
    f->kv_index_cap = index_cap(f->n_kv);
    f->kv_index = calloc(f->kv_index_cap, sizeof *f->kv_index);
    if (!f->kv || !f->kv_index)
        return hearth_errf(err, "out of memory for %" PRIu64 " keys", f->n_kv);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        char what[192], key[128];
        snprintf(what, sizeof what, "metadata entry %" PRIu64 " of %" PRIu64 ": key", i, f->n_kv);
        if (get_str(&r, &kv->key, what)) return -1;
        show(kv->key, key, sizeof key);
        if (kv->key.len == 0) return hearth_errf(err, "metadata entry %" PRIu64 ": empty key", i);
        if (memchr(kv->key.ptr, 0, kv->key.len))
            return hearth_errf(err, "metadata entry %" PRIu64 ": key '%s' contains a NUL byte", i,
                               key);
        uint32_t t;
        snprintf(what, sizeof what, "key '%s': value type", key);
        if (get_u32(&r, &t, what)) return -1;
        if (t >= GGUF_VTYPE_COUNT)
            return hearth_errf(err, "key '%s': invalid value type id %u (expected 0..%d)", key, t,
                               GGUF_VTYPE_COUNT - 1);
        kv->type = (gguf_vtype)t;
        if (parse_value(&r, kv, key)) return -1;
        uint64_t dup = index_insert(f, f->kv_index, f->kv_index_cap, kv_name, i);
        if (dup != UINT64_MAX)
            return hearth_errf(err,
                               "duplicate key '%s' (metadata entries %" PRIu64 " and %" PRIu64 ")",
                               key, dup, i);
    }

    /* Alignment. */
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *akv = gguf_find(f, "general.alignment");
    if (akv) {
        if (!vtype_is_int(akv->type))
            return hearth_errf(err, "key 'general.alignment': expected uint32, found %s",
                               gguf_vtype_name(akv->type));
        int_val v = read_int(akv->value, akv->type);
        if (v.is_signed && v.s < 0)
            return hearth_errf(err,
                               "key 'general.alignment': expected a nonzero power of two, found "
                               "%" PRId64,
                               v.s);
        uint64_t a = v.is_signed ? (uint64_t)v.s : v.u;
        if (a == 0 || (a & (a - 1)) || a > (1u << 30))
            return hearth_errf(err,
                               "key 'general.alignment': expected a nonzero power of two up to "
                               "2^30, found %" PRIu64,
                               a);
        f->alignment = (uint32_t)a;
    }

    /* Tensor infos. */
    f->tensors = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *f->tensors);
    f->t_index_cap = index_cap(f->n_tensors);
    f->t_index = calloc(f->t_index_cap, sizeof *f->t_index);
    if (!f->tensors || !f->t_index)
        return hearth_errf(err, "out of memory for %" PRIu64 " tensors", f->n_tensors);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        char what[192], name[128];
        snprintf(what, sizeof what, "tensor %" PRIu64 " of %" PRIu64 ": name", i, f->n_tensors);
        if (get_str(&r, &t->name, what)) return -1;
        show(t->name, name, sizeof name);
        if (memchr(t->name.ptr, 0, t->name.len))
            return hearth_errf(err, "tensor %" PRIu64 ": name '%s' contains a NUL byte", i, name);
        snprintf(what, sizeof what, "tensor '%s': info", name);
        if (get_u32(&r, &t->n_dims, what)) return -1;
        if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
            return hearth_errf(err, "tensor '%s': expected 1 to %d dims, found %u", name,
                               GGUF_MAX_DIMS, t->n_dims);
        int64_t n_el = 1;
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
            t->ne[d] = 1;
            if (d >= t->n_dims) continue;
            uint64_t v;
            if (get_u64(&r, &v, what)) return -1;
            memcpy(&t->ne[d], &v, 8);
            if (t->ne[d] < 0)
                return hearth_errf(err, "tensor '%s': dim %u is negative (%" PRId64 ")", name, d,
                                   t->ne[d]);
        }
        /* The product of the non-zero dims must fit, so that every partial
         * product (rows = ne1*ne2*ne3, ...) a caller forms fits too. */
        for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
            if (t->ne[d] != 0 && n_el > INT64_MAX / t->ne[d])
                return hearth_errf(err,
                                   "tensor '%s': shape [%" PRId64 ", %" PRId64 ", %" PRId64
                                   ", %" PRId64 "] overflows the element count",
                                   name, t->ne[0], t->ne[1], t->ne[2], t->ne[3]);
            if (t->ne[d] != 0) n_el *= t->ne[d];
        }
        uint32_t type;
        if (get_u32(&r, &type, what) || get_u64(&r, &t->offset, what)) return -1;
        if (!ht_type_get(type))
            return hearth_errf(err, "tensor '%s': unknown tensor type id %u", name, type);
        t->type = (ht_type)type;
        size_t row;
        if (ht_row_size(type, t->ne[0], &row, err))
            return hearth_err_prefix(err, "tensor '%s'", name);
        uint64_t rows = (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]); /* fits: n_el did */
        if (rows && row > UINT64_MAX / rows)
            return hearth_errf(err, "tensor '%s': byte size overflows", name);
        t->nbytes = row * rows;
        uint64_t dup = index_insert(f, f->t_index, f->t_index_cap, tensor_name, i);
        if (dup != UINT64_MAX)
            return hearth_errf(err,
                               "duplicate tensor name '%s' (tensors %" PRIu64 " and %" PRIu64 ")",
                               name, dup, i);
    }

    /* Data section. */
    uint64_t a = f->alignment;
    if (r.pos > UINT64_MAX - (a - 1)) return hearth_errf(err, "data section offset overflows");
    f->data_start = (r.pos + a - 1) & ~(a - 1);
    if (f->n_tensors == 0) return 0;
    if (f->data_start > f->size)
        return hearth_errf(
            err,
            "data section starts at offset %" PRIu64
            " (after the tensor infos, aligned to %u), past the end of the file (%zu "
            "bytes)",
            f->data_start, f->alignment, f->size);
    uint64_t data_size = f->size - f->data_start;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        char name[128];
        show(t->name, name, sizeof name);
        if (t->offset % a)
            return hearth_errf(
                err, "tensor '%s': data offset %" PRIu64 " is not a multiple of the alignment %u",
                name, t->offset, f->alignment);
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return hearth_errf(err,
                               "tensor '%s': data [offset %" PRIu64 ", %" PRIu64
                               " bytes] runs past the end of the file (%zu bytes, data section "
                               "%" PRIu64 " bytes from offset %" PRIu64 ")",
                               name, t->offset, t->nbytes, f->size, data_size, f->data_start);
        t->data = f->base + f->data_start + t->offset;
    }
    return 0;
}

/* Sort tensors by offset and reject any two whose data ranges overlap. */
typedef struct span {
    uint64_t offset, nbytes, i;
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int check_overlap(gguf_file *f, hearth_err *err) {
    if (f->n_tensors < 2) return 0;
    span *s = malloc(f->n_tensors * sizeof *s);
    if (!s) return hearth_errf(err, "out of memory");
    uint64_t n = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].nbytes) s[n++] = (span){f->tensors[i].offset, f->tensors[i].nbytes, i};
    qsort(s, n, sizeof *s, cmp_span);
    int rc = 0;
    for (uint64_t k = 1; k < n; k++) {
        if (s[k - 1].offset + s[k - 1].nbytes <= s[k].offset) continue;
        const gguf_tensor *p = &f->tensors[s[k - 1].i], *t = &f->tensors[s[k].i];
        char a[128], b[128];
        rc = hearth_errf(err,
                         "tensors '%s' [offset %" PRIu64 ", %" PRIu64 " bytes] and '%s' [offset "
                         "%" PRIu64 ", %" PRIu64 " bytes] overlap",
                         show(p->name, a, sizeof a), p->offset, p->nbytes,
                         show(t->name, b, sizeof b), t->offset, t->nbytes);
        break;
    }
    free(s);
    return rc;
}

static gguf_file *finish_open(gguf_file *f, hearth_err *err) {
    if (parse(f, err) || check_overlap(f, err)) {
        if (f->path && f->path[0]) hearth_err_prefix(err, "%s", f->path);
        gguf_close(f);
        return NULL;
    }
    return f;
}

gguf_file *gguf_open_memory(const void *data, size_t size, hearth_err *err) {
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) {
        hearth_errf(err, "out of memory");
        return NULL;
    }
    f->base = data;
    f->size = size;
    if (!data && size) {
        hearth_errf(err, "no data");
        free(f);
        return NULL;
    }
    static const uint8_t empty[1];
    if (!f->base) f->base = empty;
    return finish_open(f, err);
}

/* Copying a file: 64 MiB chunks claimed from a counter by up to
 * COPY_THREADS threads (the kernel zeroes each new page on first touch,
 * then the read fills it: both scale with threads). */
#define COPY_CHUNK   ((size_t)64 << 20)
#define COPY_THREADS 8

typedef struct copy_job {
    int fd;
    uint8_t *buf;
    size_t size;
    atomic_size_t next; /* next chunk to claim */
    atomic_size_t done; /* bytes read */
    atomic_int err;     /* 0; errno of a failed read; -1: the file ended early */
    atomic_size_t err_at;
} copy_job;

/* Reads chunk c whole; false after recording the first failure. */
static bool copy_chunk(copy_job *j, size_t c) {
    size_t at = c * COPY_CHUNK, end = at + COPY_CHUNK < j->size ? at + COPY_CHUNK : j->size;
    while (at < end) {
        ssize_t n = pread(j->fd, j->buf + at, end - at, (off_t)at);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int zero = 0;
            if (atomic_compare_exchange_strong(&j->err, &zero, n < 0 ? errno : -1))
                atomic_store(&j->err_at, at);
            return false;
        }
        at += (size_t)n;
        atomic_fetch_add(&j->done, (size_t)n);
    }
    return true;
}

static void *copy_worker(void *p) {
    copy_job *j = p;
    const size_t n_chunks = (j->size + COPY_CHUNK - 1) / COPY_CHUNK;
    for (size_t c; !atomic_load(&j->err) && (c = atomic_fetch_add(&j->next, 1)) < n_chunks;)
        if (!copy_chunk(j, c)) break;
    return NULL;
}

/* Reads the whole file into hm_alloc'ed memory (huge pages requested),
 * then makes it read-only like a mapping. progress runs on this thread. */
static const uint8_t *copy_file(int fd, const char *path, size_t size, gguf_progress progress,
                                void *ud, hearth_err *err) {
    uint8_t *buf = hm_alloc(size, true, err);
    if (!buf) {
        hearth_err_prefix(err, "%s", path);
        return NULL;
    }
    copy_job j = {.fd = fd, .buf = buf, .size = size};
    atomic_init(&j.next, 0);
    atomic_init(&j.done, 0);
    atomic_init(&j.err, 0);
    atomic_init(&j.err_at, 0);
    const size_t n_chunks = (size + COPY_CHUNK - 1) / COPY_CHUNK;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n_threads = cpus > 1 ? (size_t)cpus : 1;
    if (n_threads > COPY_THREADS) n_threads = COPY_THREADS;
    if (n_threads > n_chunks) n_threads = n_chunks;
    pthread_t th[COPY_THREADS];
    size_t started = 0;
    while (started + 1 < n_threads && !pthread_create(&th[started], NULL, copy_worker, &j))
        started++; /* a thread that cannot start leaves its share to the others */
    float reported = 0;
    for (size_t c; !atomic_load(&j.err) && (c = atomic_fetch_add(&j.next, 1)) < n_chunks;) {
        if (!copy_chunk(&j, c)) break;
        float f = (float)((double)atomic_load(&j.done) / (double)size);
        if (progress && f > reported && f < 1.0f) progress(ud, reported = f);
    }
    for (size_t i = 0; i < started; i++) pthread_join(th[i], NULL);
    const int e = atomic_load(&j.err);
    if (e) {
        const size_t at = atomic_load(&j.err_at);
        if (e > 0)
            hearth_errf(err, "%s: cannot read at offset %zu: %s", path, at, strerror(e));
        else
            hearth_errf(err, "%s: file ended before byte %zu of %zu while reading", path, at + 1,
                        size);
        hm_free(buf, size);
        return NULL;
    }
    if (progress) progress(ud, 1.0f);
    /* Read-only like a mapping (best effort), whole huge pages so none is split. */
    (void)mprotect(buf, (size + HM_HUGE_PAGE - 1) / HM_HUGE_PAGE * HM_HUGE_PAGE, PROT_READ);
    return buf;
}

gguf_file *gguf_open_ex(const char *path, gguf_load how, gguf_progress progress, void *ud,
                        hearth_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        hearth_errf(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        hearth_errf(err, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        hearth_errf(err, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        hearth_errf(err, "%s: file too large to map", path);
        close(fd);
        return NULL;
    }
    gguf_file *f = calloc(1, sizeof *f);
    char *p = strdup(path);
    if (!f || !p) {
        hearth_errf(err, "%s: out of memory", path);
        free(f);
        free(p);
        close(fd);
        return NULL;
    }
    f->path = p;
    f->size = (size_t)st.st_size;
    if (f->size == 0) {
        static const uint8_t empty[1];
        f->base = empty;
    } else if (how == GGUF_LOAD_COPY) {
        f->base = copy_file(fd, path, f->size, progress, ud, err);
        if (!f->base) {
            free(p);
            free(f);
            close(fd);
            return NULL;
        }
        f->copied = true;
    } else {
        void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            hearth_errf(err, "%s: cannot map %zu bytes: %s", path, f->size, strerror(errno));
            free(p);
            free(f);
            close(fd);
            return NULL;
        }
        f->base = m;
        f->mapped = true;
    }
    close(fd);
    return finish_open(f, err);
}

gguf_file *gguf_open(const char *path, hearth_err *err) {
    return gguf_open_ex(path, GGUF_LOAD_MAP, NULL, NULL, err);
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->kv)
        for (uint64_t i = 0; i < f->n_kv; i++) free((void *)f->kv[i].arr.str_off);
    free(f->kv);
    free(f->tensors);
    free(f->kv_index);
    free(f->t_index);
    if (f->mapped) munmap((void *)f->base, f->size);
    if (f->copied) hm_free((void *)f->base, f->size);
    free(f->path);
    free(f);
}

uint32_t gguf_version(const gguf_file *f) {
    return f->version;
}
uint32_t gguf_alignment(const gguf_file *f) {
    return f->alignment;
}
bool gguf_copied(const gguf_file *f) {
    return f->copied;
}

int gguf_set_writable(gguf_file *f, bool writable, hearth_err *err) {
    if (!f->copied) return hearth_errf(err, "gguf: only a copied file's bytes can be written");
    /* the whole huge pages of the copy, as copy_file left them */
    const size_t len = (f->size + HM_HUGE_PAGE - 1) / HM_HUGE_PAGE * HM_HUGE_PAGE;
    if (mprotect((void *)f->base, len, writable ? PROT_READ | PROT_WRITE : PROT_READ) != 0)
        return hearth_errf(err, "gguf: cannot change the protection of the copy: %s",
                           strerror(errno));
    return 0;
}
double gguf_huge_fraction(const gguf_file *f) {
    return f->copied ? hm_huge_fraction(f->base, f->size) : 0;
}
size_t gguf_file_size(const gguf_file *f) {
    return f->size;
}
const char *gguf_path(const gguf_file *f) {
    return f->path ? f->path : "";
}
uint64_t gguf_data_offset(const gguf_file *f) {
    return f->data_start;
}

/* ---- metadata ---------------------------------------------------------- */

uint64_t gguf_n_kv(const gguf_file *f) {
    return f->n_kv;
}

const gguf_kv *gguf_kv_at(const gguf_file *f, uint64_t i) {
    return i < f->n_kv ? &f->kv[i] : NULL;
}

const gguf_kv *gguf_find(const gguf_file *f, const char *key) {
    gguf_str k = {key, strlen(key)};
    uint64_t i = index_find(f, f->kv_index, f->kv_index_cap, kv_name, k);
    return i == UINT64_MAX ? NULL : &f->kv[i];
}

bool gguf_has(const gguf_file *f, const char *key) {
    return gguf_find(f, key) != NULL;
}

gguf_str gguf_kv_str(const gguf_kv *kv) {
    gguf_str s = {"", 0};
    if (kv->type != GGUF_STRING) return s;
    s.len = rd_u64(kv->value);
    s.ptr = (const char *)kv->value + 8;
    return s;
}

static const gguf_kv *find_typed(const gguf_file *f, const char *key, hearth_err *err) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) hearth_errf(err, "key '%s' is missing", key);
    return kv;
}

static int wrong_type(const gguf_kv *kv, const char *key, const char *expected, hearth_err *err) {
    return hearth_errf(err, "key '%s': expected %s, found %s", key, expected,
                       gguf_vtype_name(kv->type));
}

static int kv_u32(const gguf_kv *kv, const char *key, uint32_t *out, hearth_err *err) {
    if (!vtype_is_int(kv->type)) return wrong_type(kv, key, "an unsigned integer (uint32)", err);
    int_val v = read_int(kv->value, kv->type);
    if (v.is_signed) {
        if (v.s < 0 || v.s > (int64_t)UINT32_MAX)
            return hearth_errf(err, "key '%s': value %" PRId64 " does not fit uint32", key, v.s);
        *out = (uint32_t)v.s;
    } else {
        if (v.u > UINT32_MAX)
            return hearth_errf(err, "key '%s': value %" PRIu64 " does not fit uint32", key, v.u);
        *out = (uint32_t)v.u;
    }
    return 0;
}

static int kv_f32(const gguf_kv *kv, const char *key, float *out, hearth_err *err) {
    if (kv->type != GGUF_FLOAT32 && kv->type != GGUF_FLOAT64 && !vtype_is_int(kv->type))
        return wrong_type(kv, key, "float32", err);
    double d = read_float(kv->value, kv->type);
    *out = d > FLT_MAX ? INFINITY : d < -FLT_MAX ? -INFINITY : (float)d; /* NaN stays NaN */
    return 0;
}

static int kv_bool(const gguf_kv *kv, const char *key, bool *out, hearth_err *err) {
    if (kv->type != GGUF_BOOL) return wrong_type(kv, key, "bool", err);
    *out = kv->value[0] != 0;
    return 0;
}

int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, hearth_err *err) {
    const gguf_kv *kv = find_typed(f, key, err);
    return kv ? kv_u32(kv, key, out, err) : -1;
}

int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, hearth_err *err) {
    const gguf_kv *kv = find_typed(f, key, err);
    if (!kv) return -1;
    if (!vtype_is_int(kv->type)) return wrong_type(kv, key, "an integer (int64)", err);
    int_val v = read_int(kv->value, kv->type);
    if (v.is_signed) {
        *out = v.s;
    } else {
        if (v.u > (uint64_t)INT64_MAX)
            return hearth_errf(err, "key '%s': value %" PRIu64 " does not fit int64", key, v.u);
        *out = (int64_t)v.u;
    }
    return 0;
}

int gguf_get_f32(const gguf_file *f, const char *key, float *out, hearth_err *err) {
    const gguf_kv *kv = find_typed(f, key, err);
    return kv ? kv_f32(kv, key, out, err) : -1;
}

int gguf_get_bool(const gguf_file *f, const char *key, bool *out, hearth_err *err) {
    const gguf_kv *kv = find_typed(f, key, err);
    return kv ? kv_bool(kv, key, out, err) : -1;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, hearth_err *err) {
    const gguf_kv *kv = find_typed(f, key, err);
    if (!kv) return -1;
    if (kv->type != GGUF_STRING) return wrong_type(kv, key, "string", err);
    *out = gguf_kv_str(kv);
    return 0;
}

int gguf_get_arr(const gguf_file *f, const char *key, gguf_arr *out, hearth_err *err) {
    const gguf_kv *kv = find_typed(f, key, err);
    if (!kv) return -1;
    if (kv->type != GGUF_ARRAY) return wrong_type(kv, key, "array", err);
    *out = kv->arr;
    return 0;
}

int gguf_opt_u32(const gguf_file *f, const char *key, uint32_t *out, hearth_err *err) {
    const gguf_kv *kv = gguf_find(f, key);
    return kv ? kv_u32(kv, key, out, err) : 0;
}

int gguf_opt_f32(const gguf_file *f, const char *key, float *out, hearth_err *err) {
    const gguf_kv *kv = gguf_find(f, key);
    return kv ? kv_f32(kv, key, out, err) : 0;
}

int gguf_opt_bool(const gguf_file *f, const char *key, bool *out, hearth_err *err) {
    const gguf_kv *kv = gguf_find(f, key);
    return kv ? kv_bool(kv, key, out, err) : 0;
}

gguf_str gguf_arr_str(const gguf_arr *a, uint64_t i) {
    gguf_str s = {"", 0};
    if (a->type != GGUF_STRING || i >= a->n) return s;
    const uint8_t *p = a->data + a->str_off[i];
    s.len = rd_u64(p);
    s.ptr = (const char *)p + 8;
    return s;
}

int64_t gguf_arr_int(const gguf_arr *a, uint64_t i) {
    if (i >= a->n) return 0;
    if (a->type == GGUF_BOOL) return a->data[i] != 0;
    if (!vtype_is_int(a->type)) { /* float elements: truncate, saturate, NaN -> 0 */
        double d = gguf_arr_float(a, i);
        if (!(d == d)) return 0;
        if (d >= 9223372036854775807.0) return INT64_MAX;
        if (d <= -9223372036854775808.0) return INT64_MIN;
        return (int64_t)d;
    }
    int_val v = read_int(a->data + i * gguf_vtype_size(a->type), a->type);
    return v.is_signed ? v.s : (int64_t)v.u;
}

double gguf_arr_float(const gguf_arr *a, uint64_t i) {
    if (i >= a->n || a->type == GGUF_STRING) return 0;
    if (a->type == GGUF_BOOL) return a->data[i] != 0;
    return read_float(a->data + i * gguf_vtype_size(a->type), a->type);
}

/* ---- tensors ----------------------------------------------------------- */

uint64_t gguf_n_tensors(const gguf_file *f) {
    return f->n_tensors;
}

const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i) {
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    gguf_str k = {name, strlen(name)};
    uint64_t i = index_find(f, f->t_index, f->t_index_cap, tensor_name, k);
    return i == UINT64_MAX ? NULL : &f->tensors[i];
}

int64_t gguf_tensor_n_elements(const gguf_tensor *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]; /* checked at open */
}

bool gguf_str_eq(gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

char *gguf_str_dup(gguf_str s) {
    if (s.len >= SIZE_MAX) return NULL;
    char *p = malloc((size_t)s.len + 1);
    if (!p) return NULL;
    if (s.len) memcpy(p, s.ptr, (size_t)s.len);
    p[s.len] = 0;
    return p;
}
