/* Every golden model and every vocabulary file in ../shared opens, and its
 * key facts agree with each other (architecture, counts, shapes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf/gguf.h"

static const char *shared(void) {
    const char *s = getenv("HEARTH_SHARED");
    return s ? s : "../shared";
}

/* Lists files in dir ending with ".gguf" into names (sorted); returns count. */
static int list_gguf(const char *dir, char names[][256], int cap) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < cap) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".gguf") == 0)
            snprintf(names[n++], 256, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, 256, (int (*)(const void *, const void *))strcmp);
    return n;
}

static void progress_probe(void *ud, float fraction) {
    float *last = ud;
    assert_true(fraction > *last && fraction <= 1.0f); /* increasing, within (0, 1] */
    *last = fraction;
}

static void check_vocab(const gguf_file *f, const char *path) {
    gguf_arr toks;
    hearth_err err;
    if (gguf_get_arr(f, "tokenizer.ggml.tokens", &toks, &err)) fail_msg("%s: %s", path, err.msg);
    assert_int_equal(toks.type, GGUF_STRING);
    assert_true(toks.n > 100);
    /* Parallel arrays have one entry per token. */
    const char *par[] = {"tokenizer.ggml.scores", "tokenizer.ggml.token_type"};
    for (int i = 0; i < 2; i++) {
        const gguf_kv *kv = gguf_find(f, par[i]);
        if (!kv) continue;
        assert_int_equal(kv->type, GGUF_ARRAY);
        assert_int_equal(kv->arr.n, toks.n);
    }
    /* Every string lies inside the file and no token string is absurd. */
    const char *base = (const char *)gguf_kv_at(f, 0)->key.ptr - 24 - 8;
    for (uint64_t i = 0; i < toks.n; i++) {
        gguf_str s = gguf_arr_str(&toks, i);
        assert_true(s.ptr > base && s.ptr + s.len <= base + gguf_file_size(f));
        assert_true(s.len < 1024);
    }
    gguf_str model;
    if (gguf_get_str(f, "tokenizer.ggml.model", &model, &err)) fail_msg("%s: %s", path, err.msg);
    assert_true(gguf_str_eq(model, "llama") || gguf_str_eq(model, "gpt2"));
    /* Lookup by name agrees with iteration. */
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        char *k = gguf_str_dup(kv->key);
        assert_non_null(k);
        assert_ptr_equal(gguf_find(f, k), kv);
        free(k);
    }
}

static void test_vocab_files_open(void **state) {
    (void)state;
    char dir[512], names[64][256];
    snprintf(dir, sizeof dir, "%s/tokenizer/gguf", shared());
    int n = list_gguf(dir, names, 64);
    assert_true(n >= 5);
    for (int i = 0; i < n; i++) {
        hearth_err err = {{0}};
        gguf_file *f = gguf_open(names[i], &err);
        if (!f) fail_msg("%s", err.msg);
        assert_true(gguf_version(f) == 2 || gguf_version(f) == 3);
        assert_int_equal(gguf_n_tensors(f), 0);
        assert_string_equal(gguf_path(f), names[i]);
        check_vocab(f, names[i]);
        gguf_close(f);
    }
}

static void test_models_open(void **state) {
    (void)state;
    char dir[512], names[64][256];
    snprintf(dir, sizeof dir, "%s/golden/models", shared());
    int n = list_gguf(dir, names, 64);
    assert_true(n >= 30);
    for (int i = 0; i < n; i++) {
        hearth_err err = {{0}};
        gguf_file *f = gguf_open(names[i], &err);
        if (!f) fail_msg("%s", err.msg);
        gguf_str arch;
        if (gguf_get_str(f, "general.architecture", &arch, &err)) fail_msg("%s", err.msg);
        const char *base = strrchr(names[i], '/') + 1;
        const char *want = strncmp(base, "deepseek", 8) == 0 ? "deepseek2"
                           : strncmp(base, "qwen2", 5) == 0  ? "qwen2"
                                                             : "llama";
        if (!gguf_str_eq(arch, want)) fail_msg("%s: architecture is not %s", base, want);
        assert_true(gguf_n_tensors(f) > 0);
        check_vocab(f, names[i]);

        char key[128];
        uint32_t n_embd, n_layer;
        snprintf(key, sizeof key, "%s.embedding_length", want);
        if (gguf_get_u32(f, key, &n_embd, &err)) fail_msg("%s: %s", base, err.msg);
        snprintf(key, sizeof key, "%s.block_count", want);
        if (gguf_get_u32(f, key, &n_layer, &err)) fail_msg("%s: %s", base, err.msg);
        const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
        assert_non_null(emb);
        assert_int_equal(emb->n_dims, 2);
        assert_int_equal(emb->ne[0], n_embd);
        gguf_arr toks;
        assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.tokens", &toks, &err), 0);
        assert_int_equal(emb->ne[1], (int64_t)toks.n);
        /* One attention norm per layer, and no blk.N beyond the block count. */
        for (uint32_t l = 0; l <= n_layer; l++) {
            snprintf(key, sizeof key, "blk.%u.attn_norm.weight", l);
            if ((gguf_find_tensor(f, key) != NULL) != (l < n_layer))
                fail_msg("%s: %s presence wrong (block_count %u)", base, key, n_layer);
        }
        /* Tensors: aligned, inside the file, named lookups agree. */
        const uint8_t *lo = emb->data, *hi = lo;
        for (uint64_t t = 0; t < gguf_n_tensors(f); t++) {
            const gguf_tensor *ti = gguf_tensor_at(f, t);
            assert_int_equal(ti->offset % gguf_alignment(f), 0);
            assert_true(ti->offset + ti->nbytes + gguf_data_offset(f) <= gguf_file_size(f));
            assert_true(ht_type_get(ti->type)->can_compute);
            char *nm = gguf_str_dup(ti->name);
            assert_ptr_equal(gguf_find_tensor(f, nm), ti);
            free(nm);
            if ((const uint8_t *)ti->data < lo) lo = ti->data;
            if ((const uint8_t *)ti->data + ti->nbytes > hi)
                hi = (const uint8_t *)ti->data + ti->nbytes;
        }
        /* The data section is used up to (near) its end: no lost bytes. */
        assert_true((size_t)(hi - lo) + gguf_data_offset(f) + gguf_alignment(f) >
                    gguf_file_size(f));
        assert_null(gguf_find_tensor(f, "no.such.tensor"));
        assert_null(gguf_find(f, "no.such.key"));
        gguf_close(f);
    }
}

static void test_missing_file_says_why(void **state) {
    (void)state;
    hearth_err err = {{0}};
    assert_null(gguf_open("/nonexistent/x.gguf", &err));
    assert_non_null(strstr(err.msg, "/nonexistent/x.gguf"));
    assert_non_null(strstr(err.msg, "No such file"));
}

/* GGUF_LOAD_COPY holds the same bytes as the mapping, read-only, in memory
 * of its own (2 MiB-aligned): every tensor's data compares equal, at the
 * same offset from the start of the file. */
static void test_copy_equals_mapping(void **state) {
    (void)state;
    char dir[512], names[64][256];
    snprintf(dir, sizeof dir, "%s/golden/models", shared());
    int n = list_gguf(dir, names, 64);
    assert_true(n > 0);
    int progress_calls = 0;
    float last = 0;
    for (int i = 0; i < n; i += 5) { /* a sample of the files: each is read twice */
        hearth_err err;
        gguf_file *m = gguf_open(names[i], &err);
        if (!m) fail_msg("%s", err.msg);
        float frac = -1;
        gguf_file *c = gguf_open_ex(names[i], GGUF_LOAD_COPY, progress_probe, &frac, &err);
        if (!c) fail_msg("%s", err.msg);
        progress_calls++;
        last = frac;
        assert_false(gguf_copied(m));
        assert_true(gguf_copied(c));
        assert_true(gguf_huge_fraction(m) == 0);
        double h = gguf_huge_fraction(c);
        assert_true(h == -1 || (h >= 0 && h <= 1));
        assert_int_equal(gguf_file_size(m), gguf_file_size(c));
        assert_int_equal(gguf_n_tensors(m), gguf_n_tensors(c));
        assert_int_equal(gguf_n_kv(m), gguf_n_kv(c));
        const uint8_t *cbase = NULL;
        for (uint64_t t = 0; t < gguf_n_tensors(m); t++) {
            const gguf_tensor *a = gguf_tensor_at(m, t), *b = gguf_tensor_at(c, t);
            assert_int_equal(a->nbytes, b->nbytes);
            assert_int_equal(a->offset, b->offset);
            assert_ptr_not_equal(a->data, b->data);
            assert_memory_equal(a->data, b->data, a->nbytes);
            if (!cbase) cbase = (const uint8_t *)b->data - b->offset - gguf_data_offset(c);
        }
        assert_non_null(cbase);
        assert_int_equal((uintptr_t)cbase % ((uintptr_t)2 << 20), 0);
        gguf_close(m);
        gguf_close(c);
    }
    assert_true(progress_calls > 0);
    assert_true(last == 1.0f); /* the last call reports the whole file */
}

static void test_copy_errors(void **state) {
    (void)state;
    hearth_err err = {{0}};
    assert_null(gguf_open_ex("/nonexistent/x.gguf", GGUF_LOAD_COPY, NULL, NULL, &err));
    assert_non_null(strstr(err.msg, "No such file"));
    assert_null(gguf_open_ex("/", GGUF_LOAD_COPY, NULL, NULL, &err));
    assert_non_null(strstr(err.msg, "not a regular file"));
    /* An empty file is opened (nothing to copy) and rejected by the parser. */
    char path[] = "/tmp/hearth_gguf_copy_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_null(gguf_open_ex(path, GGUF_LOAD_COPY, NULL, NULL, &err));
    assert_non_null(strstr(err.msg, path));
    /* A truncated file: the copy is made, the parser says what is missing. */
    char src[512];
    snprintf(src, sizeof src, "%s/golden/models/llama-spm.f32.gguf", shared());
    gguf_file *g = gguf_open(src, &err);
    if (!g) fail_msg("%s", err.msg);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    const uint8_t *base = (const uint8_t *)gguf_tensor_at(g, 0)->data -
                          gguf_tensor_at(g, 0)->offset - gguf_data_offset(g);
    assert_int_equal(fwrite(base, 1, gguf_file_size(g) / 2, f), gguf_file_size(g) / 2);
    fclose(f);
    gguf_close(g);
    assert_null(gguf_open_ex(path, GGUF_LOAD_COPY, NULL, NULL, &err));
    assert_non_null(strstr(err.msg, path));
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_equals_mapping),   cmocka_unit_test(test_copy_errors),
        cmocka_unit_test(test_vocab_files_open),      cmocka_unit_test(test_models_open),
        cmocka_unit_test(test_missing_file_says_why),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
