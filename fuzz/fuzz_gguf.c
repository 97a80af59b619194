/* Fuzz harness: the GGUF reader (header, metadata, tensor infos, data
 * offsets). Opens the input with gguf_open_memory and, when it is accepted,
 * walks everything the accessors expose and checks the reader's promises:
 * every pointer lies inside the input, strings and arrays fit, tensor data
 * ranges are aligned and inside the data section. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "gguf/gguf.h"

static volatile uint64_t sink;

static bool inside(const uint8_t *base, size_t size, const void *p, uint64_t n) {
    const uint8_t *q = p;
    return q >= base && q <= base + size && n <= (uint64_t)(base + size - q);
}

static void touch(const void *p, uint64_t n) {
    if (n == 0) return;
    const uint8_t *q = p;
    sink += q[0] + q[n - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hearth_err err;
    err.msg[0] = 0;
    gguf_file *f = gguf_open_memory(data, size, &err);
    if (!f) {
        FZ_CHECK(err.msg[0] != 0); /* a refusal always says why */
        return 0;
    }
    FZ_CHECK(gguf_version(f) == 2 || gguf_version(f) == 3);
    FZ_CHECK(gguf_file_size(f) == size);
    uint32_t align = gguf_alignment(f);
    FZ_CHECK(align && (align & (align - 1)) == 0);

    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        FZ_CHECK(kv && inside(data, size, kv->key.ptr, kv->key.len));
        char *key = gguf_str_dup(kv->key);
        if (!key) continue;
        FZ_CHECK(strlen(key) <= kv->key.len);
        /* A key with an embedded NUL is found under its prefix, or not at all. */
        if (strlen(key) == kv->key.len) FZ_CHECK(gguf_find(f, key) == kv);
        uint32_t u32;
        int64_t i64;
        float f32;
        bool b;
        gguf_str s;
        gguf_arr a;
        gguf_get_u32(f, key, &u32, &err);
        gguf_get_i64(f, key, &i64, &err);
        gguf_get_f32(f, key, &f32, &err);
        gguf_get_bool(f, key, &b, &err);
        gguf_opt_u32(f, key, &u32, &err);
        gguf_opt_f32(f, key, &f32, &err);
        gguf_opt_bool(f, key, &b, &err);
        if (gguf_get_str(f, key, &s, &err) == 0) {
            FZ_CHECK(inside(data, size, s.ptr, s.len));
            touch(s.ptr, s.len);
        }
        gguf_str ks = gguf_kv_str(kv);
        FZ_CHECK(kv->type != GGUF_STRING || inside(data, size, ks.ptr, ks.len));
        if (kv->type == GGUF_ARRAY && gguf_get_arr(f, key, &a, &err) == 0) {
            FZ_CHECK(a.type != GGUF_ARRAY && a.type < GGUF_VTYPE_COUNT);
            for (uint64_t k = 0; k < a.n; k++) {
                if (a.type == GGUF_STRING) {
                    gguf_str e = gguf_arr_str(&a, k);
                    FZ_CHECK(inside(data, size, e.ptr, e.len));
                    touch(e.ptr, e.len);
                } else {
                    sink += (uint64_t)gguf_arr_int(&a, k);
                    sink += (uint64_t)(gguf_arr_float(&a, k) != 0);
                }
            }
            /* Out-of-range indexes give empty values, not reads. */
            sink += (uint64_t)gguf_arr_int(&a, a.n) + gguf_arr_str(&a, a.n).len;
        }
        free(key);
    }
    FZ_CHECK(gguf_kv_at(f, gguf_n_kv(f)) == NULL);

    uint64_t data_off = gguf_data_offset(f);
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        FZ_CHECK(t && inside(data, size, t->name.ptr, t->name.len));
        FZ_CHECK(t->n_dims >= 1 && t->n_dims <= GGUF_MAX_DIMS);
        for (int d = 0; d < GGUF_MAX_DIMS; d++) FZ_CHECK(t->ne[d] >= 0);
        FZ_CHECK(gguf_tensor_n_elements(t) >= 0);
        FZ_CHECK(ht_type_get(t->type) != NULL);
        FZ_CHECK(t->offset % align == 0);
        FZ_CHECK(inside(data, size, t->data, t->nbytes));
        FZ_CHECK((const uint8_t *)t->data == data + data_off + t->offset);
        touch(t->data, t->nbytes);
        char *name = gguf_str_dup(t->name);
        if (name && strlen(name) == t->name.len) FZ_CHECK(gguf_find_tensor(f, name) == t);
        free(name);
    }
    FZ_CHECK(gguf_tensor_at(f, gguf_n_tensors(f)) == NULL);
    sink += gguf_find(f, "general.architecture") != NULL;
    sink += gguf_find_tensor(f, "token_embd.weight") != NULL;
    gguf_close(f);
    return 0;
}
