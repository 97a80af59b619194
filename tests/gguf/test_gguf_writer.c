/* The writer's files read back identically: every value type, string arrays,
 * several tensors of different types; and a golden model copied through
 * gguf_writer_copy_kv + add_tensor keeps every key and every tensor byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gguf/gguf.h"

static char tmp_path[64];

static const char *tmpfile_path(void) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/hearth_writer_%d.gguf", (int)getpid());
    return tmp_path;
}

static void test_all_value_types_round_trip(void **state) {
    (void)state;
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    uint64_t u64 = 0xfedcba9876543210ull;
    int64_t i64 = -1234567890123ll;
    double f64 = -2.5e100;
    assert_int_equal(gguf_writer_set_val(w, "v.u8", GGUF_UINT8, &u8), 0);
    assert_int_equal(gguf_writer_set_val(w, "v.i8", GGUF_INT8, &i8), 0);
    assert_int_equal(gguf_writer_set_val(w, "v.u16", GGUF_UINT16, &u16), 0);
    assert_int_equal(gguf_writer_set_val(w, "v.i16", GGUF_INT16, &i16), 0);
    assert_int_equal(gguf_writer_set_u32(w, "v.u32", 4000000000u), 0);
    assert_int_equal(gguf_writer_set_i32(w, "v.i32", -2000000000), 0);
    assert_int_equal(gguf_writer_set_f32(w, "v.f32", 0.1f), 0);
    assert_int_equal(gguf_writer_set_bool(w, "v.bool", true), 0);
    assert_int_equal(gguf_writer_set_str(w, "v.str", "h\xc3\xa9llo"), 0);
    assert_int_equal(gguf_writer_set_str(w, "v.empty", ""), 0);
    assert_int_equal(gguf_writer_set_val(w, "v.u64", GGUF_UINT64, &u64), 0);
    assert_int_equal(gguf_writer_set_val(w, "v.i64", GGUF_INT64, &i64), 0);
    assert_int_equal(gguf_writer_set_val(w, "v.f64", GGUF_FLOAT64, &f64), 0);
    assert_int_equal(gguf_writer_set_val(w, "v.bad", GGUF_STRING, "x"), -1);
    int32_t ia[] = {-1, 0, 7, 2147483647};
    assert_int_equal(gguf_writer_set_arr(w, "a.i32", GGUF_INT32, ia, 4), 0);
    assert_int_equal(gguf_writer_set_arr(w, "a.empty", GGUF_FLOAT32, NULL, 0), 0);
    float fa[] = {-2.9f, 1e30f, -1e30f, NAN, 3.0f}; /* integer reads saturate, never UB */
    assert_int_equal(gguf_writer_set_arr(w, "a.f32", GGUF_FLOAT32, fa, 5), 0);
    const char *sa[] = {"", "one", "two words"};
    assert_int_equal(gguf_writer_set_str_arr(w, "a.str", sa, 3), 0);
    assert_int_equal(gguf_writer_set_u32(w, "v.replaced", 1), 0);
    assert_int_equal(gguf_writer_set_u32(w, "v.replaced", 2), 0); /* replaces, no duplicate */

    /* Tensors: f32 3-d, f16, q8_0, and one with a row count making padding matter. */
    float x[3 * 64];
    for (int i = 0; i < 3 * 64; i++) x[i] = sinf((float)i);
    uint16_t h[64];
    for (int i = 0; i < 64; i++) h[i] = ht_f32_to_f16(x[i]);
    uint8_t q[2 * 34];
    for (int i = 0; i < 68; i++) q[i] = (uint8_t)(i * 7);
    hearth_err err;
    int64_t ne_a[] = {8, 4, 6}, ne_b[] = {64}, ne_c[] = {32, 2}, ne_d[] = {3};
    assert_int_equal(gguf_writer_add_tensor(w, "a", HT_F32, 3, ne_a, x, &err), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "b", HT_F16, 1, ne_b, h, &err), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "c", HT_Q8_0, 2, ne_c, q, &err), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "d", HT_F32, 1, ne_d, x, &err), 0);
    assert_int_equal(gguf_writer_add_tensor(w, "a", HT_F32, 1, ne_d, x, &err), -1);
    assert_non_null(strstr(err.msg, "already"));
    int64_t ne_bad[] = {31};
    assert_int_equal(gguf_writer_add_tensor(w, "e", HT_Q8_0, 1, ne_bad, q, &err), -1);
    assert_non_null(strstr(err.msg, "multiple of 32"));
    const char *path = tmpfile_path();
    if (gguf_writer_write(w, path, &err)) fail_msg("%s", err.msg);
    gguf_writer_free(w);

    gguf_file *f = gguf_open(path, &err);
    if (!f) fail_msg("%s", err.msg);
    assert_int_equal(gguf_version(f), 3);
    assert_int_equal(gguf_alignment(f), 32);
    assert_int_equal(gguf_n_kv(f), 18);
    uint32_t v32;
    int64_t v64;
    float vf;
    bool vb;
    gguf_str s;
    assert_int_equal(gguf_get_u32(f, "v.u8", &v32, &err), 0), assert_int_equal(v32, 200);
    assert_int_equal(gguf_get_i64(f, "v.i8", &v64, &err), 0), assert_int_equal(v64, -100);
    assert_int_equal(gguf_get_u32(f, "v.u16", &v32, &err), 0), assert_int_equal(v32, 60000);
    assert_int_equal(gguf_get_i64(f, "v.i16", &v64, &err), 0), assert_int_equal(v64, -30000);
    assert_int_equal(gguf_get_u32(f, "v.u32", &v32, &err), 0), assert_int_equal(v32, 4000000000u);
    assert_int_equal(gguf_get_i64(f, "v.i32", &v64, &err), 0), assert_int_equal(v64, -2000000000);
    assert_int_equal(gguf_get_f32(f, "v.f32", &vf, &err), 0), assert_true(vf == 0.1f);
    assert_int_equal(gguf_get_bool(f, "v.bool", &vb, &err), 0), assert_true(vb);
    assert_int_equal(gguf_get_str(f, "v.str", &s, &err), 0),
        assert_true(gguf_str_eq(s, "h\xc3\xa9llo"));
    assert_int_equal(gguf_get_str(f, "v.empty", &s, &err), 0), assert_int_equal(s.len, 0);
    assert_int_equal(gguf_get_i64(f, "v.i64", &v64, &err), 0), assert_int_equal(v64, i64);
    assert_int_equal(gguf_get_f32(f, "v.f64", &vf, &err), 0), assert_true(isinf(vf));
    assert_int_equal(gguf_get_u32(f, "v.replaced", &v32, &err), 0), assert_int_equal(v32, 2);
    const gguf_kv *kv = gguf_find(f, "v.u64");
    uint64_t got64;
    memcpy(&got64, kv->value, 8);
    assert_true(got64 == u64);
    double gotf64;
    memcpy(&gotf64, gguf_find(f, "v.f64")->value, 8);
    assert_true(gotf64 == f64);
    /* Typed getters refuse what does not fit, naming the key and types. */
    assert_int_equal(gguf_get_u32(f, "v.u64", &v32, &err), -1);
    assert_non_null(strstr(err.msg, "does not fit uint32"));
    assert_int_equal(gguf_get_u32(f, "v.i8", &v32, &err), -1);
    assert_int_equal(gguf_get_i64(f, "v.u64", &v64, &err), -1);
    assert_int_equal(gguf_get_u32(f, "v.str", &v32, &err), -1);
    assert_string_equal(err.msg,
                        "key 'v.str': expected an unsigned integer (uint32), found string");
    assert_int_equal(gguf_get_str(f, "v.u32", &s, &err), -1);
    assert_int_equal(gguf_get_u32(f, "missing", &v32, &err), -1);
    assert_non_null(strstr(err.msg, "missing"));
    v32 = 77;
    assert_int_equal(gguf_opt_u32(f, "missing", &v32, &err), 0), assert_int_equal(v32, 77);
    assert_int_equal(gguf_opt_u32(f, "v.str", &v32, &err), -1);
    assert_int_equal(gguf_opt_bool(f, "v.bool", &vb, &err), 0);
    assert_int_equal(gguf_opt_f32(f, "v.i32", &vf, &err), 0), assert_true(vf == -2000000000.0f);
    /* Arrays */
    gguf_arr a;
    assert_int_equal(gguf_get_arr(f, "a.i32", &a, &err), 0);
    assert_int_equal(a.type, GGUF_INT32);
    assert_int_equal(a.n, 4);
    for (int i = 0; i < 4; i++) assert_int_equal(gguf_arr_int(&a, i), ia[i]);
    assert_true(gguf_arr_float(&a, 3) == 2147483647.0);
    assert_int_equal(gguf_get_arr(f, "a.f32", &a, &err), 0);
    assert_int_equal(a.n, 5);
    assert_int_equal(gguf_arr_int(&a, 0), -2); /* truncates toward zero */
    assert_true(gguf_arr_int(&a, 1) == INT64_MAX && gguf_arr_int(&a, 2) == INT64_MIN);
    assert_int_equal(gguf_arr_int(&a, 3), 0); /* NaN */
    assert_true(gguf_arr_float(&a, 4) == 3.0f);
    assert_int_equal(gguf_arr_int(&a, 5), 0); /* past the end */
    assert_int_equal(gguf_get_arr(f, "a.empty", &a, &err), 0), assert_int_equal(a.n, 0);
    assert_int_equal(gguf_get_arr(f, "a.str", &a, &err), 0);
    assert_int_equal(a.type, GGUF_STRING);
    assert_int_equal(a.n, 3);
    for (int i = 0; i < 3; i++) assert_true(gguf_str_eq(gguf_arr_str(&a, i), sa[i]));
    char *dup = gguf_str_dup(gguf_arr_str(&a, 2));
    assert_string_equal(dup, "two words");
    free(dup);
    /* Tensors */
    assert_int_equal(gguf_n_tensors(f), 4);
    const gguf_tensor *t = gguf_find_tensor(f, "a");
    assert_int_equal(t->n_dims, 3);
    assert_int_equal(t->ne[2], 6);
    assert_int_equal(t->ne[3], 1);
    assert_memory_equal(t->data, x, sizeof(float) * 192);
    t = gguf_find_tensor(f, "b");
    assert_int_equal(t->type, HT_F16);
    assert_memory_equal(t->data, h, sizeof h);
    t = gguf_find_tensor(f, "c");
    assert_int_equal(t->type, HT_Q8_0);
    assert_int_equal(t->nbytes, 68);
    assert_memory_equal(t->data, q, 68);
    t = gguf_find_tensor(f, "d");
    assert_int_equal(t->nbytes, 12);
    assert_memory_equal(t->data, x, 12);
    for (uint64_t i = 0; i < 4; i++)
        assert_int_equal((uintptr_t)gguf_tensor_at(f, i)->data % 32, 0);
    gguf_close(f);
    unlink(path);
}

static void test_copy_golden_model(void **state) {
    (void)state;
    const char *sh = getenv("HEARTH_SHARED");
    char src[512];
    snprintf(src, sizeof src, "%s/golden/models/qwen2-chatml.q4_k_m.gguf", sh ? sh : "../shared");
    hearth_err err;
    gguf_file *f = gguf_open(src, &err);
    if (!f) fail_msg("%s", err.msg);
    gguf_writer *w = gguf_writer_new();
    assert_int_equal(gguf_writer_copy_kv(w, f, NULL, NULL), 0);
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char *name = gguf_str_dup(t->name);
        /* Half by copy, half by reference (f stays open until the write). */
        int rc =
            i % 2 ? gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, &err)
                  : gguf_writer_add_tensor_ref(w, name, t->type, t->n_dims, t->ne, t->data, &err);
        if (rc) fail_msg("%s", err.msg);
        free(name);
    }
    const char *path = tmpfile_path();
    if (gguf_writer_write(w, path, &err)) fail_msg("%s", err.msg);
    gguf_writer_free(w);
    gguf_file *g = gguf_open(path, &err);
    if (!g) fail_msg("%s", err.msg);
    assert_int_equal(gguf_n_kv(g), gguf_n_kv(f) - (gguf_has(f, "general.alignment") ? 1 : 0));
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *a = gguf_kv_at(f, i);
        char *key = gguf_str_dup(a->key);
        const gguf_kv *b = gguf_find(g, key);
        if (!b) fail_msg("key %s lost", key);
        assert_int_equal(a->type, b->type);
        if (a->type == GGUF_STRING) {
            gguf_str x = gguf_kv_str(a), y = gguf_kv_str(b);
            assert_int_equal(x.len, y.len);
            assert_memory_equal(x.ptr, y.ptr, x.len);
        } else if (a->type == GGUF_ARRAY) {
            assert_int_equal(a->arr.type, b->arr.type);
            assert_int_equal(a->arr.n, b->arr.n);
            for (uint64_t j = 0; j < a->arr.n; j++) {
                if (a->arr.type == GGUF_STRING) {
                    gguf_str x = gguf_arr_str(&a->arr, j), y = gguf_arr_str(&b->arr, j);
                    assert_int_equal(x.len, y.len);
                    assert_memory_equal(x.ptr, y.ptr, x.len);
                } else {
                    assert_true(gguf_arr_float(&a->arr, j) == gguf_arr_float(&b->arr, j));
                }
            }
        } else {
            assert_memory_equal(a->value, b->value, 1);
        }
        free(key);
    }
    assert_int_equal(gguf_n_tensors(g), gguf_n_tensors(f));
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *a = gguf_tensor_at(f, i), *b = gguf_tensor_at(g, i);
        assert_int_equal(a->name.len, b->name.len);
        assert_memory_equal(a->name.ptr, b->name.ptr, a->name.len);
        assert_int_equal(a->type, b->type);
        assert_int_equal(a->nbytes, b->nbytes);
        assert_memory_equal(a->ne, b->ne, sizeof a->ne);
        assert_memory_equal(a->data, b->data, a->nbytes);
    }
    /* Same layout as the reference runtime's writer, so the same size. */
    assert_int_equal(gguf_file_size(g), gguf_file_size(f));
    gguf_close(g);
    gguf_close(f);
    unlink(path);
}

/* Several processes writing the same path at once (the demo model on first
 * use): every write succeeds, the file is whole, no temporary file is left.
 * With one shared PATH.tmp the later renames failed with ENOENT. */
static void test_concurrent_writers(void **state) {
    (void)state;
    char dir[] = "/tmp/hearth_writers_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/same.gguf", dir);
    static float data[1 << 18]; /* 1 MiB of tensor data, so the writes overlap */
    for (size_t i = 0; i < sizeof data / sizeof *data; i++) data[i] = (float)i;
    enum { N_PROC = 6, ROUNDS = 3 };
    for (int round = 0; round < ROUNDS; round++) {
        pid_t pids[N_PROC];
        for (int p = 0; p < N_PROC; p++) {
            pids[p] = fork();
            assert_true(pids[p] >= 0);
            if (pids[p] == 0) {
                gguf_writer *w = gguf_writer_new();
                int64_t ne[2] = {512, 512};
                hearth_err err;
                int bad = !w || gguf_writer_set_u32(w, "v.round", (uint32_t)round) ||
                          gguf_writer_add_tensor_ref(w, "t", HT_F32, 2, ne, data, &err) ||
                          gguf_writer_write(w, path, &err);
                gguf_writer_free(w);
                _exit(bad);
            }
        }
        for (int p = 0; p < N_PROC; p++) {
            int st = 0;
            assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
            assert_true(WIFEXITED(st));
            assert_int_equal(WEXITSTATUS(st), 0);
        }
        hearth_err err;
        gguf_file *f = gguf_open(path, &err);
        assert_non_null(f);
        const gguf_tensor *t = gguf_find_tensor(f, "t");
        assert_non_null(t);
        assert_memory_equal(t->data, data, sizeof data);
        gguf_close(f);
    }
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n_files = 0;
    for (struct dirent *de; (de = readdir(d));)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n_files++;
    closedir(d);
    assert_int_equal(n_files, 1); /* same.gguf only: no temporary file left */
    unlink(path);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_value_types_round_trip),
        cmocka_unit_test(test_copy_golden_model),
        cmocka_unit_test(test_concurrent_writers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
