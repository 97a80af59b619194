/* The model runtime on the golden files: hyperparameters, batched prefill
 * against token-by-token decode (bitwise equal: the kernels compute each
 * (token, row) the same way in any batch), batch splitting, cache truncation,
 * the errors model_eval reports, and load-time validation of altered files
 * (missing tensors, wrong shapes, unknown architectures, bad keys). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gguf/gguf.h"
#include "kernels/kernels.h"
#include "model/model.h"

static char *golden(const char *name) {
    static char buf[4][1024];
    static int k;
    const char *shared = getenv("HEARTH_SHARED");
    if (!shared) shared = "../shared";
    char *b = buf[k++ % 4];
    snprintf(b, sizeof(buf[0]), "%s/golden/models/%s.gguf", shared, name);
    return b;
}

static model *load(const char *name) {
    hearth_err err;
    model_params p = model_default_params();
    p.n_threads = 2;
    model *m = model_load(golden(name), &p, &err);
    if (!m) fail_msg("%s: %s", name, err.msg);
    return m;
}

static void test_hparams(void **state) {
    (void)state;
    model *m = load("llama-spm.q4_k_m");
    const model_hparams *hp = model_hparams_of(m);
    assert_string_equal(hp->arch, "llama");
    assert_int_equal(hp->n_vocab, 512);
    assert_int_equal(hp->n_layer, 2);
    assert_int_equal(hp->n_embd, 256);
    assert_int_equal(hp->n_head, 4);
    assert_int_equal(hp->n_head_kv, 2);
    assert_int_equal(hp->head_dim_k, 64);
    assert_int_equal(hp->n_rot, 64);
    assert_int_equal(hp->n_ff, 512);
    assert_int_equal(hp->n_ctx_train, 2048);
    assert_int_equal(hp->kv_k_width, 128);
    assert_false(hp->tied_embeddings);
    assert_float_equal(hp->rope_theta, 10000.0, 1e-3);
    assert_true(hp->weight_bytes > 0 && hp->weight_bytes < 2000000);
    assert_non_null(model_gguf(m));
    assert_int_equal(model_n_threads(m), 2);
    model_free(m);

    m = load("qwen2-chatml.f32");
    hp = model_hparams_of(m);
    assert_string_equal(hp->arch, "qwen2");
    assert_true(hp->tied_embeddings);
    assert_int_equal(hp->n_head_kv, 4);
    model_free(m);
}

/* logits of tokens[0..n) evaluated in one call vs one token at a time. */
static void test_prefill_equals_decode(void **state) {
    (void)state;
    const char *names[] = {"llama3-bpe.q4_0", "qwen2-r1distill.q6_k"};
    for (int k = 0; k < 2; k++) {
        model *m = load(names[k]);
        int V = model_hparams_of(m)->n_vocab;
        enum { N = 20 };
        int32_t toks[N];
        for (int i = 0; i < N; i++) toks[i] = (int32_t)((i * 97 + 13) % V);
        hearth_err err;
        model_ctx *big = model_ctx_new(m, 64, 512, &err);
        model_ctx *small = model_ctx_new(m, 64, 7, &err); /* 20 tokens in 3 batches */
        assert_non_null(big);
        assert_non_null(small);
        float *all = malloc(sizeof(float) * N * V), *all7 = malloc(sizeof(float) * N * V);
        float *one = malloc(sizeof(float) * V);
        assert_int_equal(model_eval(big, toks, N, 0, all, MODEL_LOGITS_ALL, &err), 0);
        assert_int_equal(model_ctx_n_past(big), N);
        assert_int_equal(model_eval(small, toks, N, 0, all7, MODEL_LOGITS_ALL, &err), 0);
        assert_memory_equal(all, all7, sizeof(float) * N * V);
        model_ctx_reset(small);
        assert_int_equal(model_ctx_n_past(small), 0);
        for (int i = 0; i < N; i++) {
            assert_int_equal(model_eval(small, &toks[i], 1, i, one, MODEL_LOGITS_LAST, &err), 0);
            assert_memory_equal(one, all + (size_t)i * V, sizeof(float) * V);
        }
        /* LAST of a multi-batch prompt = the last row of ALL */
        assert_int_equal(model_eval(small, toks, N, 0, one, MODEL_LOGITS_LAST, &err), 0);
        assert_memory_equal(one, all + (size_t)(N - 1) * V, sizeof(float) * V);
        /* NONE fills the cache only */
        assert_int_equal(model_eval(small, toks, N - 1, 0, NULL, MODEL_LOGITS_NONE, &err), 0);
        assert_int_equal(model_eval(small, &toks[N - 1], 1, N - 1, one, MODEL_LOGITS_LAST, &err),
                         0);
        assert_memory_equal(one, all + (size_t)(N - 1) * V, sizeof(float) * V);

        /* truncate and regenerate: a different suffix after position 8 equals a fresh run */
        int32_t alt[N];
        memcpy(alt, toks, sizeof(alt));
        for (int i = 8; i < N; i++) alt[i] = (int32_t)((i * 31 + 5) % V);
        assert_int_equal(model_ctx_truncate(big, 8, &err), 0);
        assert_int_equal(model_ctx_n_past(big), 8);
        assert_int_equal(model_eval(big, alt + 8, N - 8, 8, all, MODEL_LOGITS_ALL, &err), 0);
        model_ctx_reset(small);
        assert_int_equal(model_eval(small, alt, N, 0, all7, MODEL_LOGITS_ALL, &err), 0);
        assert_memory_equal(all, all7 + (size_t)8 * V, sizeof(float) * (N - 8) * V);
        /* positions differ -> logits differ (the cache is really used) */
        assert_memory_not_equal(all7, all7 + (size_t)V, sizeof(float) * V);

        free(all);
        free(all7);
        free(one);
        model_ctx_free(big);
        model_ctx_free(small);
        model_free(m);
    }
}

/* The weights mapped from the file or copied into huge pages: the same
 * bytes, so bitwise the same logits; AUTO picks one of the two, as
 * model_load_copies says. */
static void test_load_modes(void **state) {
    (void)state;
    const char *names[] = {"qwen2-chatml.q4_k_m", "deepseek-v2-lite.q8_0",
                           "deepseek-v2-lite.q4_k_m"};
    for (int k = 0; k < 3; k++) {
        float *lg[3] = {NULL, NULL, NULL};
        int V = 0;
        const model_load_mode modes[] = {MODEL_LOAD_MAP, MODEL_LOAD_COPY, MODEL_LOAD_AUTO};
        for (int i = 0; i < 3; i++) {
            hearth_err err;
            model_params p = model_default_params();
            p.n_threads = 2;
            p.load = modes[i];
            model *m = model_load(golden(names[k]), &p, &err);
            if (!m) fail_msg("%s: %s", names[k], err.msg);
            const bool copied = model_weights_copied(m);
            const double huge = model_weights_huge_fraction(m);
            if (modes[i] == MODEL_LOAD_MAP) assert_false(copied);
            if (modes[i] == MODEL_LOAD_COPY) assert_true(copied);
            if (modes[i] == MODEL_LOAD_AUTO)
                assert_int_equal(copied, model_load_copies(gguf_file_size(model_gguf(m))));
            assert_true(copied ? huge >= -1 && huge <= 1 : huge == 0);
            /* Q4_K and Q6_K matrices are repacked in copied weights where the
             * kernels run KERN_LAYOUT_R8 (x86 with AVX2), never when mapped
             * (the tiny deepseek file's Q4_K_M mix has no Q4_K matrix:
             * its rows are not whole 256-blocks) */
            uint64_t rbytes = 0;
            const int repacked = model_weights_repacked(m, &rbytes);
            const bool r8 = copied && strstr(names[k], "qwen2") && strcmp(kern_name(), "ref") &&
                            strcmp(kern_name(), "neon");
            printf("%s %s: %d matrices repacked (%llu bytes)\n", names[k],
                   copied ? "copied" : "mapped", repacked, (unsigned long long)rbytes);
            assert_int_equal(repacked > 0, r8);
            assert_int_equal(rbytes > 0, r8);
            V = model_hparams_of(m)->n_vocab;
            enum { N = 9 };
            int32_t toks[N];
            for (int t = 0; t < N; t++) toks[t] = (int32_t)((t * 53 + 7) % V);
            model_ctx *c = model_ctx_new(m, 32, 16, &err);
            assert_non_null(c);
            lg[i] = malloc(sizeof(float) * N * (size_t)V);
            assert_int_equal(model_eval(c, toks, N, 0, lg[i], MODEL_LOGITS_ALL, &err), 0);
            /* and one token at a time (the repacked one-token tiles) */
            float *one = malloc(sizeof(float) * (size_t)V);
            assert_non_null(one);
            model_ctx_reset(c);
            for (int t = 0; t < N; t++) {
                assert_int_equal(model_eval(c, toks + t, 1, t, one, MODEL_LOGITS_LAST, &err), 0);
                assert_memory_equal(one, lg[i] + (size_t)t * (size_t)V, sizeof(float) * (size_t)V);
            }
            free(one);
            model_ctx_free(c);
            /* a context whose KV cache takes 64 MiB or more (in huge pages
             * where the kernel grants them) gives the same logits */
            const size_t per_pos =
                model_kv_bytes_per_token(m) * (size_t)model_hparams_of(m)->n_layer;
            c = model_ctx_new(m, (int)(((size_t)64 << 20) / per_pos + 64), 16, &err);
            assert_non_null(c);
            float *big = malloc(sizeof(float) * N * (size_t)V);
            assert_non_null(big);
            assert_int_equal(model_eval(c, toks, N, 0, big, MODEL_LOGITS_ALL, &err), 0);
            assert_memory_equal(big, lg[i], sizeof(float) * N * (size_t)V);
            free(big);
            model_ctx_free(c);
            model_free(m);
        }
        assert_memory_equal(lg[0], lg[1], sizeof(float) * 9 * (size_t)V);
        assert_memory_equal(lg[0], lg[2], sizeof(float) * 9 * (size_t)V);
        for (int i = 0; i < 3; i++) free(lg[i]);
    }
    /* a file far beyond the memory available is not copied by AUTO */
    assert_false(model_load_copies((size_t)1 << 60));
    /* errors name the file in either mode */
    hearth_err err = {{0}};
    model_params p = model_default_params();
    p.load = MODEL_LOAD_COPY;
    assert_null(model_load("/nonexistent/x.gguf", &p, &err));
    assert_non_null(strstr(err.msg, "/nonexistent/x.gguf"));
}

static void test_eval_errors(void **state) {
    (void)state;
    model *m = load("llama-spm.q8_0");
    hearth_err err;
    model_ctx *c = model_ctx_new(m, 16, 8, &err);
    assert_non_null(c);
    assert_int_equal(model_ctx_n_ctx(c), 16);
    assert_true(model_ctx_bytes(c) >= 2 * 2 * 16 * 128 * sizeof(float));
    int32_t toks[20] = {0};
    float *lg = malloc(sizeof(float) * 20 * 512);
    assert_int_equal(model_eval(c, toks, 17, 0, lg, MODEL_LOGITS_LAST, &err), -1);
    assert_non_null(strstr(err.msg, "17"));
    assert_non_null(strstr(err.msg, "16"));
    assert_int_equal(model_eval(c, toks, 10, 0, lg, MODEL_LOGITS_LAST, &err), 0);
    assert_int_equal(model_eval(c, toks, 7, 10, lg, MODEL_LOGITS_LAST, &err), -1);
    assert_non_null(strstr(err.msg, "context full"));
    toks[3] = 512;
    assert_int_equal(model_eval(c, toks, 5, 0, lg, MODEL_LOGITS_LAST, &err), -1);
    assert_non_null(strstr(err.msg, "512"));
    toks[3] = -1;
    assert_int_equal(model_eval(c, toks, 5, 0, lg, MODEL_LOGITS_LAST, &err), -1);
    toks[3] = 0;
    assert_int_equal(model_eval(c, toks, 0, 0, lg, MODEL_LOGITS_LAST, &err), -1);
    assert_int_equal(model_eval(c, toks, 1, 11, lg, MODEL_LOGITS_LAST, &err), -1); /* hole */
    assert_non_null(strstr(err.msg, "[0, 10]"));
    assert_int_equal(model_eval(c, toks, 1, 0, NULL, MODEL_LOGITS_LAST, &err), -1);
    assert_int_equal(model_eval(c, toks, 1, 0, lg, 7, &err), -1);
    assert_int_equal(model_ctx_truncate(c, 11, &err), -1);
    assert_int_equal(model_ctx_truncate(c, -1, &err), -1);
    free(lg);
    model_ctx_free(c);
    model_free(m);
}

/* Writes a copy of a golden model with one key or tensor changed. */
typedef struct alter {
    const char *drop_key;    /* key left out */
    const char *set_str_key; /* key set to set_str_val */
    const char *set_str_val;
    const char *set_u32_key; /* key set to set_u32_val */
    uint32_t set_u32_val;
    const char *drop_tensor;   /* tensor left out */
    const char *shrink_tensor; /* tensor written with ne[1] halved */
} alter;

static bool skip_key(const char *key, void *ud) {
    const alter *a = ud;
    return (a->drop_key && !strcmp(key, a->drop_key)) ||
           (a->set_str_key && !strcmp(key, a->set_str_key)) ||
           (a->set_u32_key && !strcmp(key, a->set_u32_key));
}

static const char *write_altered(const char *name, const alter *a) {
    static char out[256];
    snprintf(out, sizeof(out), "/tmp/hearth_test_model_%d.gguf", (int)getpid());
    hearth_err err;
    gguf_file *f = gguf_open(golden(name), &err);
    assert_non_null(f);
    gguf_writer *w = gguf_writer_new();
    assert_int_equal(gguf_writer_copy_kv(w, f, skip_key, (void *)a), 0);
    if (a->set_str_key) assert_int_equal(gguf_writer_set_str(w, a->set_str_key, a->set_str_val), 0);
    if (a->set_u32_key) assert_int_equal(gguf_writer_set_u32(w, a->set_u32_key, a->set_u32_val), 0);
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (a->drop_tensor && gguf_str_eq(t->name, a->drop_tensor)) continue;
        char *tn = gguf_str_dup(t->name);
        int64_t ne[GGUF_MAX_DIMS];
        memcpy(ne, t->ne, sizeof(ne));
        if (a->shrink_tensor && !strcmp(tn, a->shrink_tensor)) ne[1] /= 2;
        assert_int_equal(gguf_writer_add_tensor(w, tn, t->type, t->n_dims, ne, t->data, &err), 0);
        free(tn);
    }
    assert_int_equal(gguf_writer_write(w, out, &err), 0);
    gguf_writer_free(w);
    gguf_close(f);
    return out;
}

static void expect_load_error(const char *name, const alter *a, const char *want) {
    const char *path = write_altered(name, a);
    hearth_err err;
    model_params p = model_default_params();
    p.n_threads = 1;
    model *m = model_load(path, &p, &err);
    unlink(path);
    if (m) fail_msg("expected load to fail with '%s'", want);
    if (!strstr(err.msg, want)) fail_msg("expected '%s' in: %s", want, err.msg);
}

static void test_load_validation(void **state) {
    (void)state;
    alter a;
    /* an unaltered copy loads */
    memset(&a, 0, sizeof(a));
    const char *path = write_altered("llama-spm.q4_0", &a);
    hearth_err err;
    model *m = model_load(path, NULL, &err);
    if (!m) fail_msg("%s", err.msg);
    model_free(m);
    unlink(path);

    memset(&a, 0, sizeof(a));
    a.drop_tensor = "blk.1.ffn_up.weight";
    expect_load_error("llama-spm.q4_0", &a, "blk.1.ffn_up.weight: required tensor is missing");

    memset(&a, 0, sizeof(a));
    a.shrink_tensor = "blk.0.attn_q.weight";
    expect_load_error("llama-spm.f32", &a,
                      "blk.0.attn_q.weight: expected shape [256, 256], found [256, 128]");

    memset(&a, 0, sizeof(a));
    a.set_str_key = "general.architecture";
    a.set_str_val = "gpt-j";
    expect_load_error("llama-spm.f32", &a, "found 'gpt-j'");

    memset(&a, 0, sizeof(a));
    a.drop_key = "llama.block_count";
    expect_load_error("llama-spm.f32", &a, "llama.block_count: required key is missing");

    memset(&a, 0, sizeof(a));
    a.set_u32_key = "llama.block_count";
    a.set_u32_val = 3; /* blk.2.* do not exist */
    expect_load_error("llama-spm.f32", &a, "blk.2.attn_norm.weight: required tensor is missing");

    memset(&a, 0, sizeof(a));
    a.set_u32_key = "llama.attention.head_count_kv";
    a.set_u32_val = 3;
    expect_load_error("llama-spm.f32", &a, "head_count_kv");

    memset(&a, 0, sizeof(a));
    a.set_u32_key = "qwen2.embedding_length";
    a.set_u32_val = 0;
    expect_load_error("qwen2-chatml.f32", &a, "qwen2.embedding_length: expected a value in");

    memset(&a, 0, sizeof(a));
    a.shrink_tensor = "token_embd.weight"; /* n_vocab 256, output.weight has 512 rows */
    expect_load_error("llama-spm.f32", &a, "output.weight: expected shape [256, 256], found");

    assert_null(model_load("/nonexistent/x.gguf", NULL, &err));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hparams),         cmocka_unit_test(test_prefill_equals_decode),
        cmocka_unit_test(test_load_modes),      cmocka_unit_test(test_eval_errors),
        cmocka_unit_test(test_load_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
