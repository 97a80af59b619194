/* GGUF files (v2 and v3), read-only (mapped, or copied into huge pages), validated before use.
 *
 * gguf_open() checks every count, length, offset, dimension and type id
 * against the file size and for overflow; after it succeeds, every pointer the
 * accessors return lies inside the file's bytes. Strings are NOT NUL-terminated
 * (they point into the file): use gguf_str's len, or gguf_str_eq / gguf_str_dup.
 * Also rejected: v1 and big-endian files, nested arrays, duplicate or empty
 * keys and keys or tensor names containing NUL, more than 4 dims, negative
 * dims, shapes whose non-zero dims multiply past INT64_MAX (so any partial
 * product such as ne[1]*ne[2]*ne[3] is safe), rows that are not a whole number
 * of blocks, alignment that is not a power of two, misaligned, out-of-file or
 * overlapping tensor data. Lookups by key or tensor name are hash-indexed.
 *
 * The writer (gguf_writer_*) produces v3 files that other GGUF runtimes read. */
#ifndef HEARTH_GGUF_H
#define HEARTH_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "tensor/types.h"

#define GGUF_MAX_DIMS 4
/* Limits on what a file may declare (real models: tens of keys, a few
 * thousand tensors at most). */
#define GGUF_MAX_KV      65536
#define GGUF_MAX_TENSORS 65536

typedef enum gguf_vtype {
    GGUF_UINT8 = 0,
    GGUF_INT8 = 1,
    GGUF_UINT16 = 2,
    GGUF_INT16 = 3,
    GGUF_UINT32 = 4,
    GGUF_INT32 = 5,
    GGUF_FLOAT32 = 6,
    GGUF_BOOL = 7,
    GGUF_STRING = 8,
    GGUF_ARRAY = 9,
    GGUF_UINT64 = 10,
    GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12,
    GGUF_VTYPE_COUNT
} gguf_vtype;

typedef struct gguf_str {
    const char *ptr; /* into the mapping; not NUL-terminated */
    uint64_t len;
} gguf_str;

/* An array value. Elements of numeric arrays are packed little-endian at
 * `data`; use the gguf_arr_* accessors, which also handle string arrays. */
typedef struct gguf_arr {
    gguf_vtype type; /* element type (never GGUF_ARRAY: nested arrays are rejected) */
    uint64_t n;
    const uint8_t *data;
    const uint64_t *str_off; /* string arrays: offset of element i's length field from data */
} gguf_arr;

typedef struct gguf_kv {
    gguf_str key;
    gguf_vtype type;
    const uint8_t *value; /* scalar value bytes (or the string's length field) */
    gguf_arr arr;         /* when type == GGUF_ARRAY */
} gguf_kv;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the row length (innermost); unused dims are 1 */
    ht_type type;
    uint64_t offset; /* from the start of the data section */
    uint64_t nbytes;
    const void *data; /* inside the mapping, aligned to the file's alignment */
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* How gguf_open_ex holds the file's bytes. */
typedef enum gguf_load {
    GGUF_LOAD_MAP = 0, /* a read-only mmap of the file: 4 KiB pages, shared page cache, instant */
    GGUF_LOAD_COPY = 1 /* read into private anonymous memory in 2 MiB huge pages (base/hugemem.h):
                        * faster to stream, costs a read of the file and its size in memory */
} gguf_load;

/* Open and validate. On failure returns NULL and err says what and where. */
gguf_file *gguf_open(const char *path, hearth_err *err); /* GGUF_LOAD_MAP */
/* progress (may be NULL) is called with the fraction read while copying. */
typedef void (*gguf_progress)(void *ud, float fraction);
gguf_file *gguf_open_ex(const char *path, gguf_load how, gguf_progress progress, void *ud,
                        hearth_err *err);
/* Same over a caller-owned buffer that must outlive the gguf_file (fuzzing,
 * tests). Tensor data is then aligned relative to `data`, not absolutely.
 * Errors from gguf_open start with the path; gguf_open_memory's do not. */
gguf_file *gguf_open_memory(const void *data, size_t size, hearth_err *err);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
uint32_t gguf_alignment(const gguf_file *f);
size_t gguf_file_size(const gguf_file *f);
/* Whether the bytes were copied (GGUF_LOAD_COPY), and the share of them the
 * kernel backs with huge pages (0 for a mapping, -1 when unknown). */
bool gguf_copied(const gguf_file *f);

/* A copied file's bytes made writable (true) or read-only again (false):
 * the owner may rearrange tensor data in place (the kernels' repacking)
 * while loading. -1 (with a message) for a mapped file or when the
 * protection cannot be changed. */
int gguf_set_writable(gguf_file *f, bool writable, hearth_err *err);
double gguf_huge_fraction(const gguf_file *f);
const char *gguf_path(const gguf_file *f); /* "" for memory files */
/* Absolute file offset of the data section (tensor offsets count from here). */
uint64_t gguf_data_offset(const gguf_file *f);

/* Metadata. */
uint64_t gguf_n_kv(const gguf_file *f);
const gguf_kv *gguf_kv_at(const gguf_file *f, uint64_t i);
const gguf_kv *gguf_find(const gguf_file *f, const char *key); /* NULL if absent */
bool gguf_has(const gguf_file *f, const char *key);
const char *gguf_vtype_name(gguf_vtype t);
/* Bytes of one scalar of type t; 0 for string, array and invalid ids. */
size_t gguf_vtype_size(gguf_vtype t);
/* The value of a string entry ({"", 0} when kv is not a string). */
gguf_str gguf_kv_str(const gguf_kv *kv);

/* Typed getters: 0 on success; -1 when the key is missing or has a type that
 * cannot hold the value (the message names the key, the expected and the found
 * type). Integer getters accept any integer type whose value fits. Float getters
 * accept float32/float64 (and integers). */
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, hearth_err *err);
int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out, hearth_err *err);
int gguf_get_f32(const gguf_file *f, const char *key, float *out, hearth_err *err);
int gguf_get_bool(const gguf_file *f, const char *key, bool *out, hearth_err *err);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, hearth_err *err);
int gguf_get_arr(const gguf_file *f, const char *key, gguf_arr *out, hearth_err *err);

/* Optional keys: return 0 and leave *out unchanged when absent; -1 only for a wrong type. */
int gguf_opt_u32(const gguf_file *f, const char *key, uint32_t *out, hearth_err *err);
int gguf_opt_f32(const gguf_file *f, const char *key, float *out, hearth_err *err);
int gguf_opt_bool(const gguf_file *f, const char *key, bool *out, hearth_err *err);

/* Array elements (i < arr->n; the caller checks the element type). */
gguf_str gguf_arr_str(const gguf_arr *a, uint64_t i);
int64_t gguf_arr_int(const gguf_arr *a, uint64_t i);  /* any integer element type */
double gguf_arr_float(const gguf_arr *a, uint64_t i); /* float32/64 or integer */

/* Tensors. */
uint64_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name); /* NULL if absent */
int64_t gguf_tensor_n_elements(const gguf_tensor *t);

/* String helpers. */
bool gguf_str_eq(gguf_str s, const char *c);
char *gguf_str_dup(gguf_str s); /* malloc'd, NUL-terminated; NULL on OOM */

/* Writer: collects metadata and tensors in memory, then writes a v3 file
 * (alignment 32) to a temporary file of its own next to PATH and renames it
 * over PATH, so concurrent writers of one PATH all succeed and readers never
 * see a partial file. Setting a key again replaces its value. The set_*
 * functions return -1 on bad arguments or OOM. */
typedef struct gguf_writer gguf_writer;
gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* Any scalar type (not string/array); `value` holds the bytes as in the file. */
int gguf_writer_set_val(gguf_writer *w, const char *key, gguf_vtype t, const void *value);
/* Numeric array of n elements of type t, values packed as in the file. */
int gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype t, const void *data,
                        uint64_t n);
int gguf_writer_set_str_arr(gguf_writer *w, const char *key, const char *const *v, uint64_t n);
/* Copies every key of f (e.g. to convert a file), except those for which skip returns true. */
int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *f, bool (*skip)(const char *key, void *ud),
                        void *ud);
/* Adds a tensor; `data` (nbytes for the shape and type) is copied. */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, ht_type type, uint32_t n_dims,
                           const int64_t *ne, const void *data, hearth_err *err);
/* Same without the copy: `data` must stay valid until gguf_writer_write
 * (for converting files larger than memory would hold twice). */
int gguf_writer_add_tensor_ref(gguf_writer *w, const char *name, ht_type type, uint32_t n_dims,
                               const int64_t *ne, const void *data, hearth_err *err);
/* Same with the data produced while the file is written, so a file larger
 * than memory can be written: gen(ud, row0, n_rows, dst, err) fills rows
 * [row0, row0 + n_rows) (ne[1]*ne[2]*ne[3] rows of ne[0] elements of `type`,
 * packed) into dst and returns 0, or -1 with a message to abort the write.
 * The writer calls it in row order, a few MiB at a time. */
typedef int (*gguf_gen_fn)(void *ud, int64_t row0, int64_t n_rows, void *dst, hearth_err *err);
int gguf_writer_add_tensor_gen(gguf_writer *w, const char *name, ht_type type, uint32_t n_dims,
                               const int64_t *ne, gguf_gen_fn gen, void *ud, hearth_err *err);
int gguf_writer_write(gguf_writer *w, const char *path, hearth_err *err);

#endif
