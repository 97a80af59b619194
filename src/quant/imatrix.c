/* Importance matrices: accumulation, GGUF and legacy files (imatrix.h). */
#include "quant/imatrix.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

#define MAX_NAME   512       /* bytes of a tensor name */
#define MAX_COLS   (1 << 24) /* columns of one matrix */
#define MAX_SLICES (1 << 16) /* stacked matrices of one tensor */
#define MAX_VALUES (1 << 28) /* n_cols * n_slices */
#define MAX_ENTRY  (1 << 20) /* entries of a file */

typedef struct imat_entry {
    char *name;
    int64_t n_cols;
    int n_slices;
    double *sum2;  /* [n_slices][n_cols] */
    double *count; /* [n_slices] */
    float *vals;   /* [n_slices][n_cols] means, made by imat_values */
} imat_entry;

struct imat {
    imat_entry *e;
    int n, cap;
    int last; /* the entry the previous lookup found */
    int output;
    int chunk_count, chunk_size;
    char *dataset;
    hearth_err fail; /* the first imat_observe failure */
    bool failed;
};

imat *imat_new(hearth_err *err) {
    imat *im = calloc(1, sizeof(*im));
    if (!im) hearth_errf(err, "imatrix: out of memory");
    return im;
}

void imat_free(imat *im) {
    if (!im) return;
    for (int i = 0; i < im->n; i++) {
        free(im->e[i].name);
        free(im->e[i].sum2);
        free(im->e[i].count);
        free(im->e[i].vals);
    }
    free(im->e);
    free(im->dataset);
    free(im);
}

static imat_entry *find(imat *im, const char *name) {
    if (im->last < im->n && !strcmp(im->e[im->last].name, name)) return &im->e[im->last];
    for (int i = 0; i < im->n; i++)
        if (!strcmp(im->e[i].name, name)) {
            im->last = i;
            return &im->e[i];
        }
    return NULL;
}

/* A new zeroed entry, its shape checked. */
static imat_entry *add_entry(imat *im, const char *name, size_t name_len, int64_t n_cols,
                             int64_t n_slices, hearth_err *err) {
    if (name_len < 1 || name_len > MAX_NAME || memchr(name, 0, name_len)) {
        hearth_errf(err, "imatrix: expected a tensor name of 1 to %d bytes, found %zu bytes",
                    MAX_NAME, name_len);
        return NULL;
    }
    if (n_cols < 1 || n_cols > MAX_COLS || n_slices < 1 || n_slices > MAX_SLICES ||
        n_cols * n_slices > MAX_VALUES) {
        hearth_errf(err,
                    "imatrix: %.*s: expected 1 to %d columns in 1 to %d matrices (at most %d "
                    "values), found %lld x %lld",
                    (int)name_len, name, MAX_COLS, MAX_SLICES, MAX_VALUES, (long long)n_cols,
                    (long long)n_slices);
        return NULL;
    }
    if (im->n == im->cap) {
        if (im->n >= MAX_ENTRY) {
            hearth_errf(err, "imatrix: more than %d tensors", MAX_ENTRY);
            return NULL;
        }
        int cap = im->cap ? 2 * im->cap : 64;
        imat_entry *e = realloc(im->e, sizeof(*e) * (size_t)cap);
        if (!e) {
            hearth_errf(err, "imatrix: out of memory");
            return NULL;
        }
        im->e = e;
        im->cap = cap;
    }
    imat_entry *e = &im->e[im->n];
    *e = (imat_entry){.n_cols = n_cols, .n_slices = (int)n_slices};
    e->name = malloc(name_len + 1);
    e->sum2 = calloc((size_t)(n_cols * n_slices), sizeof(double));
    e->count = calloc((size_t)n_slices, sizeof(double));
    if (!e->name || !e->sum2 || !e->count) {
        free(e->name);
        free(e->sum2);
        free(e->count);
        hearth_errf(err, "imatrix: out of memory for %.*s", (int)name_len, name);
        return NULL;
    }
    memcpy(e->name, name, name_len);
    e->name[name_len] = 0;
    im->last = im->n++;
    return e;
}

int imat_add(imat *im, const char *name, int slice, int n_slices, int64_t n_cols, const float *x,
             size_t ldx, int n_tok, hearth_err *err) {
    imat_entry *e = find(im, name);
    if (!e) {
        e = add_entry(im, name, strlen(name), n_cols, n_slices, err);
        if (!e) return -1;
    }
    if (e->n_cols != n_cols || e->n_slices != n_slices || slice < 0 || slice >= n_slices)
        return hearth_errf(err,
                           "imatrix: %s: matrix %d of %d with %lld columns; the tensor was seen "
                           "as %d of %lld",
                           name, slice, n_slices, (long long)n_cols, e->n_slices,
                           (long long)e->n_cols);
    double *s = e->sum2 + (size_t)slice * (size_t)n_cols;
    for (int t = 0; t < n_tok; t++) {
        const float *r = x + (size_t)t * ldx;
        for (int64_t j = 0; j < n_cols; j++) {
            if (!isfinite(r[j]))
                return hearth_errf(err,
                                   "imatrix: %s: input %lld of token %d is %g: the model's "
                                   "activations overflow on this text",
                                   name, (long long)j, t, (double)r[j]);
            s[j] += (double)r[j] * (double)r[j];
        }
    }
    e->count[slice] += n_tok;
    free(e->vals); /* the means change */
    e->vals = NULL;
    return 0;
}

void imat_observe(void *ud, const char *tensor, int slice, int n_slices, int64_t n_cols,
                  const float *x, size_t ldx, int n_tok) {
    imat *im = ud;
    if (im->failed || (!im->output && !strcmp(tensor, "output.weight"))) return;
    if (imat_add(im, tensor, slice, n_slices, n_cols, x, ldx, n_tok, &im->fail)) im->failed = true;
}

void imat_set_output(imat *im, int on) {
    im->output = on;
}

int imat_error(const imat *im, hearth_err *err) {
    if (!im->failed) return 0;
    if (err) *err = im->fail;
    return -1;
}

int imat_set_info(imat *im, const char *dataset, int chunk_count, int chunk_size, hearth_err *err) {
    char *d = strdup(dataset ? dataset : "");
    if (!d) return hearth_errf(err, "imatrix: out of memory");
    free(im->dataset);
    im->dataset = d;
    im->chunk_count = chunk_count;
    im->chunk_size = chunk_size;
    return 0;
}

int imat_chunk_count(const imat *im) {
    return im->chunk_count;
}

const char *imat_dataset(const imat *im) {
    return im->dataset ? im->dataset : "";
}

int imat_n_entries(const imat *im) {
    return im->n;
}

int imat_save(const imat *im, const char *path, hearth_err *err) {
    gguf_writer *w = gguf_writer_new();
    float *buf = NULL;
    int rc = -1;
    const char *ds = imat_dataset(im);
    if (!w || gguf_writer_set_str(w, "general.type", "imatrix") ||
        gguf_writer_set_str_arr(w, "imatrix.datasets", &ds, ds[0] ? 1 : 0) ||
        gguf_writer_set_u32(w, "imatrix.chunk_count", (uint32_t)im->chunk_count) ||
        gguf_writer_set_u32(w, "imatrix.chunk_size", (uint32_t)im->chunk_size)) {
        hearth_errf(err, "imatrix: out of memory");
        goto done;
    }
    for (int i = 0; i < im->n; i++) {
        const imat_entry *e = &im->e[i];
        const size_t nv = (size_t)e->n_cols * (size_t)e->n_slices;
        char name[MAX_NAME + 16];
        buf = malloc(nv * sizeof(float));
        if (!buf) {
            hearth_errf(err, "imatrix: out of memory");
            goto done;
        }
        for (size_t j = 0; j < nv; j++) buf[j] = (float)fmin(e->sum2[j], FLT_MAX);
        int64_t ne[2] = {e->n_cols, e->n_slices};
        snprintf(name, sizeof name, "%s.in_sum2", e->name);
        if (gguf_writer_add_tensor(w, name, HT_F32, 2, ne, buf, err)) goto done;
        for (int s = 0; s < e->n_slices; s++) buf[s] = (float)fmin(e->count[s], FLT_MAX);
        ne[0] = 1;
        snprintf(name, sizeof name, "%s.counts", e->name);
        if (gguf_writer_add_tensor(w, name, HT_F32, 2, ne, buf, err)) goto done;
        free(buf);
        buf = NULL;
    }
    rc = gguf_writer_write(w, path, err);
done:
    free(buf);
    gguf_writer_free(w);
    return rc;
}

static bool ends_with(const char *s, size_t n, const char *suffix) {
    size_t m = strlen(suffix);
    return n >= m && !memcmp(s + n - m, suffix, m);
}

/* F32 element i of a tensor (the mapping need not be 4-aligned). */
static float f32_at(const gguf_tensor *t, int64_t i) {
    float v;
    memcpy(&v, (const uint8_t *)t->data + 4 * (size_t)i, 4);
    return v;
}

static bool bad_value(float v) {
    return !isfinite(v) || v < 0;
}

/* Takes f (closes it). */
static int load_gguf(imat *im, gguf_file *f, const char *path, hearth_err *err) {
    if (!f) return hearth_err_prefix(err, "%s", path);
    int rc = -1;
    gguf_str s;
    if (gguf_has(f, "general.type")) {
        if (gguf_get_str(f, "general.type", &s, err)) goto done;
        if (!gguf_str_eq(s, "imatrix")) {
            hearth_errf(err, "expected general.type \"imatrix\", found \"%.*s\"",
                        (int)(s.len < 64 ? s.len : 64), s.ptr);
            goto done;
        }
    }
    uint32_t u = 0;
    if (gguf_opt_u32(f, "imatrix.chunk_count", &u, err)) goto done;
    im->chunk_count = u > INT32_MAX ? INT32_MAX : (int)u;
    u = 0;
    if (gguf_opt_u32(f, "imatrix.chunk_size", &u, err)) goto done;
    im->chunk_size = u > INT32_MAX ? INT32_MAX : (int)u;
    if (gguf_has(f, "imatrix.datasets")) {
        gguf_arr a;
        if (gguf_get_arr(f, "imatrix.datasets", &a, err)) goto done;
        if (a.type != GGUF_STRING) {
            hearth_errf(err, "imatrix.datasets: expected an array of strings");
            goto done;
        }
        if (a.n) {
            free(im->dataset);
            im->dataset = gguf_str_dup(gguf_arr_str(&a, 0));
            if (!im->dataset) {
                hearth_errf(err, "out of memory");
                goto done;
            }
        }
    }
    const uint64_t nt = gguf_n_tensors(f);
    for (uint64_t i = 0; i < nt; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const char *nm = t->name.ptr;
        const size_t nl = (size_t)t->name.len;
        if (ends_with(nm, nl, ".counts")) {
            char want[MAX_NAME + 16];
            if (nl - 7 > MAX_NAME) continue; /* reported with its in_sum2 below, or not */
            snprintf(want, sizeof want, "%.*s.in_sum2", (int)(nl - 7), nm);
            if (!gguf_find_tensor(f, want)) {
                hearth_errf(err, "tensor %.*s has no %s beside it", (int)nl, nm, want);
                goto done;
            }
            continue;
        }
        if (!ends_with(nm, nl, ".in_sum2")) {
            hearth_errf(err, "tensor %.*s: expected names ending in .in_sum2 or .counts",
                        (int)(nl < 200 ? nl : 200), nm);
            goto done;
        }
        const size_t bl = nl - 8;
        if (bl < 1 || bl > MAX_NAME) {
            hearth_errf(err, "tensor %.*s: expected a name of 1 to %d bytes before .in_sum2",
                        (int)(nl < 200 ? nl : 200), nm, MAX_NAME);
            goto done;
        }
        char cname[MAX_NAME + 16];
        snprintf(cname, sizeof cname, "%.*s.counts", (int)bl, nm);
        const gguf_tensor *c = gguf_find_tensor(f, cname);
        if (!c) {
            hearth_errf(err, "tensor %.*s has no %s beside it", (int)nl, nm, cname);
            goto done;
        }
        const int64_t n_cols = t->ne[0], n_mat = t->ne[1];
        if (t->type != HT_F32 || c->type != HT_F32 || t->ne[2] != 1 || t->ne[3] != 1 ||
            gguf_tensor_n_elements(c) != n_mat) {
            hearth_errf(err,
                        "%.*s: expected F32 [n_cols, n_mat] sums and F32 [1, n_mat] counts, found "
                        "%s [%lld, %lld, %lld, %lld] and %s of %lld values",
                        (int)bl, nm, ht_type_get(t->type) ? ht_type_get(t->type)->name : "?",
                        (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                        (long long)t->ne[3],
                        ht_type_get(c->type) ? ht_type_get(c->type)->name : "?",
                        (long long)gguf_tensor_n_elements(c));
            goto done;
        }
        char base[MAX_NAME + 1];
        memcpy(base, nm, bl);
        base[bl] = 0;
        if (find(im, base)) {
            hearth_errf(err, "%s: listed twice", base);
            goto done;
        }
        imat_entry *e = add_entry(im, nm, bl, n_cols, n_mat, err);
        if (!e) goto done;
        for (int64_t m = 0; m < n_mat; m++) {
            float cm = f32_at(c, m);
            if (bad_value(cm) || (cm > 0 && cm < 1)) {
                hearth_errf(err,
                            "%s: count of matrix %lld is %g; expected a finite token count (0, "
                            "or at least 1)",
                            base, (long long)m, (double)cm);
                goto done;
            }
            e->count[m] = cm;
        }
        for (int64_t j = 0; j < n_cols * n_mat; j++) {
            float v = f32_at(t, j);
            if (bad_value(v)) {
                hearth_errf(err, "%s: sum %lld is %g; expected a finite sum >= 0", base,
                            (long long)j, (double)v);
                goto done;
            }
            e->sum2[j] = v;
        }
    }
    rc = 0;
done:
    if (rc) hearth_err_prefix(err, "%s", path);
    gguf_close(f);
    return rc;
}

static int rd_i32(FILE *f, int32_t *v) {
    uint8_t b[4];
    if (fread(b, 1, 4, f) != 4) return -1;
    *v = (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                   (uint32_t)b[3] << 24);
    return 0;
}

/* The older binary format (see imatrix.h); the file is read as a stream and
 * every length is checked against the bytes left before it is used. */
static int load_legacy(imat *im, FILE *f, long size, const char *path, hearth_err *err) {
    int32_t n;
    float *vals = NULL;
    int rc = -1;
    if (rd_i32(f, &n) || n < 1 || n > MAX_ENTRY) {
        hearth_errf(err,
                    "%s: expected a GGUF imatrix or a legacy one starting with 1 to %d "
                    "entries",
                    path, MAX_ENTRY);
        return -1;
    }
    for (int32_t i = 0; i < n; i++) {
        int32_t len, ncall, nval;
        char name[MAX_NAME + 1];
        if (rd_i32(f, &len) || len < 1 || len > MAX_NAME ||
            fread(name, 1, (size_t)len, f) != (size_t)len) {
            hearth_errf(err, "%s: entry %d: expected a name of 1 to %d bytes", path, i + 1,
                        MAX_NAME);
            goto done;
        }
        name[len] = 0;
        if (rd_i32(f, &ncall) || rd_i32(f, &nval) || ncall < 0 || nval < 1 || nval > MAX_VALUES ||
            (long)nval * 4 > size - ftell(f)) {
            hearth_errf(err,
                        "%s: %s: expected a call count >= 0 and 1 to %d values within the "
                        "file",
                        path, name, MAX_VALUES);
            goto done;
        }
        if (strlen(name) != (size_t)len || find(im, name)) {
            hearth_errf(err, "%s: entry %d: a name with a NUL byte, or listed twice", path, i + 1);
            goto done;
        }
        imat_entry *e = add_entry(im, name, (size_t)len, nval, 1, err);
        vals = malloc((size_t)nval * sizeof(float));
        if (!e || !vals) {
            if (e) hearth_errf(err, "out of memory");
            goto done;
        }
        if (fread(vals, 4, (size_t)nval, f) != (size_t)nval) {
            hearth_errf(err, "%s: %s: short read", path, name);
            goto done;
        }
        for (int32_t j = 0; j < nval; j++) {
            float v;
            memcpy(&v, vals + j, 4); /* little-endian hosts only, as the format */
            if (bad_value(v)) {
                hearth_errf(err, "%s: %s: value %d is %g; expected a finite value >= 0", path, name,
                            j, (double)v);
                goto done;
            }
            e->sum2[j] = v;
        }
        e->count[0] = ncall;
        free(vals);
        vals = NULL;
    }
    int32_t chunks, dl;
    if (rd_i32(f, &chunks) == 0) {
        im->chunk_count = chunks > 0 ? chunks : 0;
        if (rd_i32(f, &dl) == 0 && dl > 0 && dl <= 4096) {
            char *d = calloc(1, (size_t)dl + 1);
            if (d && fread(d, 1, (size_t)dl, f) == (size_t)dl) {
                free(im->dataset);
                im->dataset = d;
            } else {
                free(d);
            }
        }
    }
    rc = 0;
done:
    free(vals);
    return rc;
}

/* A GGUF file (by its magic) or a legacy one, from a stream or, for GGUF,
 * the path or the memory it came from. */
static imat *load(const char *path, FILE *f, const void *data, size_t size, hearth_err *err) {
    imat *im = imat_new(err);
    if (!im) {
        fclose(f);
        return NULL;
    }
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    int rc;
    if (got == 4 && !memcmp(magic, "GGUF", 4)) {
        fclose(f);
        rc = load_gguf(im, data ? gguf_open_memory(data, size, err) : gguf_open(path, err), path,
                       err);
    } else {
        long end = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
        rc = end < 0 || fseek(f, 0, SEEK_SET) ? hearth_errf(err, "%s: cannot seek", path)
                                              : load_legacy(im, f, end, path, err);
        fclose(f);
    }
    if (rc) {
        imat_free(im);
        return NULL;
    }
    return im;
}

imat *imat_load(const char *path, hearth_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        hearth_errf(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    return load(path, f, NULL, 0, err);
}

imat *imat_load_memory(const void *data, size_t size, hearth_err *err) {
    if (!size) {
        hearth_errf(err, "(memory): expected a GGUF imatrix or a legacy one, found 0 bytes");
        return NULL;
    }
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f) {
        hearth_errf(err, "imatrix: %s", strerror(errno));
        return NULL;
    }
    return load("(memory)", f, data, size, err);
}

int imat_values(imat *im, const char *name, int slice, int n_slices, int64_t n_cols,
                const float **out, hearth_err *err) {
    *out = NULL;
    imat_entry *e = find(im, name);
    if (!e) return 0;
    /* a legacy entry holds all matrices' columns in one row */
    const bool flat = e->n_slices == 1 && n_slices > 1 && e->n_cols == n_cols * n_slices;
    if (!flat && (e->n_cols != n_cols || e->n_slices != n_slices))
        return hearth_errf(err,
                           "imatrix: %s: the file has %d matrices of %lld columns; the tensor has "
                           "%d of %lld",
                           name, e->n_slices, (long long)e->n_cols, n_slices, (long long)n_cols);
    if (slice < 0 || slice >= n_slices)
        return hearth_errf(err, "imatrix: %s: matrix %d of %d", name, slice, n_slices);
    const int es = flat ? 0 : slice;
    if (!(e->count[es] > 0)) return 0; /* no token reached it */
    if (!e->vals) {
        const size_t nv = (size_t)e->n_cols * (size_t)e->n_slices;
        e->vals = malloc(nv * sizeof(float));
        if (!e->vals) return hearth_errf(err, "imatrix: out of memory");
        for (int s = 0; s < e->n_slices; s++)
            for (int64_t j = 0; j < e->n_cols; j++) {
                const size_t k = (size_t)s * (size_t)e->n_cols + (size_t)j;
                e->vals[k] =
                    e->count[s] > 0 ? (float)fmin(e->sum2[k] / e->count[s], FLT_MAX) : 0.0f;
            }
    }
    *out = e->vals + (flat ? (size_t)slice * (size_t)n_cols : (size_t)slice * (size_t)e->n_cols);
    return 0;
}
