/* hearth quantize against the reference runtime's quantized golden files.
 *
 * For every golden model and every quantized variant in ../shared/golden:
 * the tensor type chosen for each tensor (quant_plan) equals the type in the
 * reference file, and the file quant_file writes has the same tensors in the
 * same order with the same bytes. Then the acceptance measure: on the golden
 * prompts, with the reference kernels, the mean over positions of
 * KL(softmax(f32 logits) || softmax(quantized logits)) of our Q4_K_M and
 * Q8_0 files is at most 1.1x that of the reference files. Also: every file
 * type quantizes, loads and stays close to F32; requantizing is refused
 * without allow_requantize; metadata keys are written. */
#include <jansson.h>
#include <math.h>
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
#include "model/model.h"
#include "quant/quantize.h"

static char tmpdir[256];

static const char *shared_dir(void) {
    const char *s = getenv("HEARTH_SHARED");
    return s ? s : "../shared";
}

static void model_path(char *buf, size_t n, const char *name, const char *variant) {
    snprintf(buf, n, "%s/golden/models/%s.%s.gguf", shared_dir(), name, variant);
}

static gguf_file *open_or_fail(const char *path) {
    hearth_err err;
    gguf_file *f = gguf_open(path, &err);
    if (!f) fail_msg("%s", err.msg);
    return f;
}

static const char *const models[] = {"llama-spm",    "llama3-bpe",  "qwen2-r1distill",
                                     "qwen2-chatml", "deepseek-v3", "deepseek-v2-lite"};
static const char *const variants[] = {"q4_k_m", "q8_0", "q4_0", "q6_k"};

static quant_ftype variant_ftype(const char *v) {
    char up[16];
    size_t i = 0;
    for (; v[i] && i + 1 < sizeof(up); i++)
        up[i] = (char)(v[i] >= 'a' && v[i] <= 'z' ? v[i] - 32 : v[i]);
    up[i] = 0;
    int ft = quant_ftype_from_name(up);
    if (ft < 0) fail_msg("unknown variant %s", v);
    return (quant_ftype)ft;
}

static char *name_of(const gguf_tensor *t) {
    char *s = gguf_str_dup(t->name);
    assert_non_null(s);
    return s;
}

/* Every tensor's type as the reference chose it. */
static void test_plan_matches_reference(void **state) {
    (void)state;
    int n_files = 0;
    for (size_t mi = 0; mi < sizeof(models) / sizeof(models[0]); mi++) {
        char path[1024];
        model_path(path, sizeof(path), models[mi], "f32");
        gguf_file *f = open_or_fail(path);
        for (size_t vi = 0; vi < sizeof(variants) / sizeof(variants[0]); vi++) {
            char rpath[1024];
            model_path(rpath, sizeof(rpath), models[mi], variants[vi]);
            if (access(rpath, R_OK)) continue; /* not every model has every variant */
            gguf_file *r = open_or_fail(rpath);
            quant_params p = {.ftype = variant_ftype(variants[vi])};
            ht_type *types = calloc(gguf_n_tensors(f), sizeof(*types));
            hearth_err err;
            if (quant_plan(f, &p, types, &err)) fail_msg("%s: %s", path, err.msg);
            assert_int_equal(gguf_n_tensors(f), gguf_n_tensors(r));
            int n_diff = 0;
            for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
                const gguf_tensor *t = gguf_tensor_at(f, i);
                char *name = name_of(t);
                const gguf_tensor *rt = gguf_find_tensor(r, name);
                if (!rt) fail_msg("%s: %s missing from the reference file", rpath, name);
                if (rt->type != types[i]) {
                    print_message("%s.%s: %s: ours %s, reference %s\n", models[mi], variants[vi],
                                  name, ht_type_get(types[i])->name, ht_type_get(rt->type)->name);
                    n_diff++;
                }
                free(name);
            }
            assert_int_equal(n_diff, 0);
            free(types);
            gguf_close(r);
            n_files++;
        }
        gguf_close(f);
    }
    print_message("type mix equal to the reference in %d files\n", n_files);
    assert_true(n_files >= 20);
}

static void out_path(char *buf, size_t n, const char *name, const char *variant) {
    snprintf(buf, n, "%s/%s.%s.gguf", tmpdir, name, variant);
}

/* Our file: the same tensors, order, types and bytes as the reference's;
 * general.file_type and general.quantization_version set. */
static void test_bytes_match_reference(void **state) {
    (void)state;
    int n_files = 0;
    for (size_t mi = 0; mi < sizeof(models) / sizeof(models[0]); mi++) {
        for (size_t vi = 0; vi < sizeof(variants) / sizeof(variants[0]); vi++) {
            char in[1024], ref[1024], out[1024];
            model_path(in, sizeof(in), models[mi], "f32");
            model_path(ref, sizeof(ref), models[mi], variants[vi]);
            out_path(out, sizeof(out), models[mi], variants[vi]);
            if (access(ref, R_OK)) continue;
            quant_params p = {.ftype = variant_ftype(variants[vi]), .n_threads = 2};
            hearth_err err;
            if (quant_file(in, out, &p, &err)) fail_msg("%s: %s", in, err.msg);
            gguf_file *o = open_or_fail(out), *r = open_or_fail(ref);
            uint32_t ft = 0, qv = 0;
            assert_int_equal(gguf_get_u32(o, "general.file_type", &ft, &err), 0);
            assert_int_equal(gguf_get_u32(o, "general.quantization_version", &qv, &err), 0);
            uint32_t rft = 0;
            assert_int_equal(gguf_get_u32(r, "general.file_type", &rft, &err), 0);
            assert_int_equal(ft, rft);
            assert_int_equal(qv, 2);
            assert_true(gguf_has(o, "tokenizer.ggml.tokens"));
            assert_int_equal(gguf_n_tensors(o), gguf_n_tensors(r));
            for (uint64_t i = 0; i < gguf_n_tensors(o); i++) {
                const gguf_tensor *a = gguf_tensor_at(o, i), *b = gguf_tensor_at(r, i);
                char *an = name_of(a), *bn = name_of(b);
                assert_string_equal(an, bn); /* same order */
                assert_int_equal(a->type, b->type);
                assert_int_equal(a->n_dims, b->n_dims);
                for (int d = 0; d < GGUF_MAX_DIMS; d++) assert_int_equal(a->ne[d], b->ne[d]);
                assert_int_equal(a->nbytes, b->nbytes);
                if (memcmp(a->data, b->data, a->nbytes))
                    fail_msg("%s: tensor %s (%s): bytes differ from the reference", out, an,
                             ht_type_get(a->type)->name);
                free(an);
                free(bn);
            }
            gguf_close(o);
            gguf_close(r);
            n_files++;
        }
    }
    print_message("byte-identical to the reference in %d files\n", n_files);
    assert_true(n_files >= 20);
}

/* Golden prompts' token ids. */
typedef struct prompts {
    int n;
    int32_t *tok[16];
    int len[16];
} prompts;

static void load_prompts(const char *name, prompts *pr) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/golden/f64/%s.f32.json", shared_dir(), name);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) fail_msg("%s: %s", path, je.text);
    json_t *cases = json_object_get(root, "cases");
    assert_true(json_is_array(cases));
    memset(pr, 0, sizeof(*pr));
    for (size_t i = 0; i < json_array_size(cases) && pr->n < 16; i++) {
        json_t *toks = json_object_get(json_array_get(cases, i), "tokens");
        int n = (int)json_array_size(toks);
        assert_true(n > 0);
        pr->tok[pr->n] = malloc((size_t)n * sizeof(int32_t));
        for (int j = 0; j < n; j++)
            pr->tok[pr->n][j] = (int32_t)json_integer_value(json_array_get(toks, (size_t)j));
        pr->len[pr->n++] = n;
    }
    json_decref(root);
    assert_true(pr->n > 0);
}

static void free_prompts(prompts *pr) {
    for (int i = 0; i < pr->n; i++) free(pr->tok[i]);
}

/* logits of every prompt position, concatenated; *n_rows set. */
static float *all_logits(const char *path, const prompts *pr, int *n_vocab, int *n_rows) {
    hearth_err err;
    model_params mp = model_default_params();
    mp.n_threads = 2;
    model *m = model_load(path, &mp, &err);
    if (!m) fail_msg("%s: %s", path, err.msg);
    int nv = model_hparams_of(m)->n_vocab, total = 0;
    for (int i = 0; i < pr->n; i++) total += pr->len[i];
    float *out = malloc((size_t)total * (size_t)nv * sizeof(float));
    assert_non_null(out);
    model_ctx *c = model_ctx_new(m, 256, 64, &err);
    if (!c) fail_msg("%s", err.msg);
    int row = 0;
    for (int i = 0; i < pr->n; i++) {
        model_ctx_reset(c);
        if (model_eval(c, pr->tok[i], pr->len[i], 0, out + (size_t)row * (size_t)nv,
                       MODEL_LOGITS_ALL, &err))
            fail_msg("%s: %s", path, err.msg);
        row += pr->len[i];
    }
    model_ctx_free(c);
    model_free(m);
    *n_vocab = nv;
    *n_rows = total;
    return out;
}

static double mean_kl(const float *base, const float *q, int n_vocab, int n_rows) {
    double total = 0;
    for (int r = 0; r < n_rows; r++) {
        const float *a = base + (size_t)r * (size_t)n_vocab, *b = q + (size_t)r * (size_t)n_vocab;
        double ma = a[0], mb = b[0];
        for (int i = 1; i < n_vocab; i++) {
            if (a[i] > ma) ma = a[i];
            if (b[i] > mb) mb = b[i];
        }
        double sa = 0, sb = 0;
        for (int i = 0; i < n_vocab; i++) {
            sa += exp(a[i] - ma);
            sb += exp(b[i] - mb);
        }
        double kl = 0;
        for (int i = 0; i < n_vocab; i++) {
            double la = a[i] - ma - log(sa), lb = b[i] - mb - log(sb);
            kl += exp(la) * (la - lb);
        }
        total += kl > 0 ? kl : 0; /* rounding can make an all-but-zero KL negative */
    }
    return total / n_rows;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > m) m = fabs((double)a[i] - b[i]);
    return m;
}

/* The acceptance measure, on the four llama/qwen2 models. */
static void test_kl_vs_reference(void **state) {
    (void)state;
    static const char *const dense[] = {"llama-spm", "llama3-bpe", "qwen2-r1distill",
                                        "qwen2-chatml"};
    static const char *const kinds[] = {"q4_k_m", "q8_0"};
    print_message("%-16s %-7s %14s %14s %8s %12s\n", "model", "type", "KL(ours)", "KL(reference)",
                  "ratio", "max|dlogit|");
    for (size_t mi = 0; mi < 4; mi++) {
        prompts pr;
        load_prompts(dense[mi], &pr);
        char f32[1024];
        model_path(f32, sizeof(f32), dense[mi], "f32");
        int nv, nr;
        float *base = all_logits(f32, &pr, &nv, &nr);
        for (size_t k = 0; k < 2; k++) {
            char ours[1024], ref[1024];
            out_path(ours, sizeof(ours), dense[mi], kinds[k]);
            model_path(ref, sizeof(ref), dense[mi], kinds[k]);
            quant_params p = {.ftype = variant_ftype(kinds[k]), .n_threads = 2};
            hearth_err err;
            /* test_bytes_match_reference wrote it already when run first */
            if (access(ours, R_OK) && quant_file(f32, ours, &p, &err)) fail_msg("%s", err.msg);
            int nv2, nr2;
            float *lo = all_logits(ours, &pr, &nv2, &nr2);
            float *lr = all_logits(ref, &pr, &nv2, &nr2);
            assert_int_equal(nr2, nr);
            double klo = mean_kl(base, lo, nv, nr), klr = mean_kl(base, lr, nv, nr);
            double diff = max_abs_diff(base, lo, (size_t)nr * (size_t)nv);
            print_message("%-16s %-7s %14.6e %14.6e %8.4f %12.4f\n", dense[mi], kinds[k], klo, klr,
                          klr > 0 ? klo / klr : 1.0, diff);
            assert_true(isfinite(klo) && klo >= 0);
            assert_true(diff > 0); /* quantization changed the logits */
            /* the bound; the slack covers KLs that underflow to ~1e-15 when
             * the logits are extremely peaked (qwen2-chatml) */
            assert_true(klo <= 1.1 * klr + 1e-12);
            free(lo);
            free(lr);
        }
        free(base);
        free_prompts(&pr);
    }
}

/* Every file type: writes, loads, runs, stays near F32 (KL bounded), with
 * Q8_0 closer than Q4_K_M, closer than Q2_K. */
static void test_all_types_run(void **state) {
    (void)state;
    static const char *const names[] = {"F16",    "BF16",   "Q8_0",   "Q6_K",   "Q5_K_M", "Q5_K_S",
                                        "Q5_1",   "Q5_0",   "Q4_K_M", "Q4_K_S", "Q4_1",   "Q4_0",
                                        "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K"};
    prompts pr;
    load_prompts("llama3-bpe", &pr);
    char f32[1024];
    model_path(f32, sizeof(f32), "llama3-bpe", "f32");
    int nv, nr;
    float *base = all_logits(f32, &pr, &nv, &nr);
    double kl_q8 = 0, kl_q4km = 0, kl_q2 = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char out[1024];
        snprintf(out, sizeof(out), "%s/all.%s.gguf", tmpdir, names[i]);
        quant_params p = {.ftype = (quant_ftype)quant_ftype_from_name(names[i]), .n_threads = 2};
        assert_true((int)p.ftype >= 0);
        assert_string_equal(quant_ftype_name((int)p.ftype), names[i]);
        hearth_err err;
        if (quant_file(f32, out, &p, &err)) fail_msg("%s: %s", names[i], err.msg);
        int nv2, nr2;
        float *lq = all_logits(out, &pr, &nv2, &nr2);
        double kl = mean_kl(base, lq, nv, nr);
        print_message("llama3-bpe %-7s mean KL %.6f\n", names[i], kl);
        assert_true(isfinite(kl) && kl >= 0 && kl < 2.0);
        if (!strcmp(names[i], "Q8_0")) kl_q8 = kl;
        if (!strcmp(names[i], "Q2_K")) kl_q2 = kl;
        if (!strcmp(names[i], "Q4_K_M")) kl_q4km = kl;
        free(lq);
        unlink(out);
    }
    assert_true(kl_q8 < kl_q4km && kl_q4km < kl_q2); /* more bits, closer to F32 */
    free(base);
    free_prompts(&pr);
    /* unknown names */
    assert_int_equal(quant_ftype_from_name("Q4_K_X"), -1);
    assert_int_equal(quant_ftype_from_name(""), -1);
    assert_null(quant_ftype_name(99));
}

/* Quantized input: refused unless allowed; with --pure every quantizable
 * tensor gets the base type. */
static void test_requantize_and_pure(void **state) {
    (void)state;
    char in[1024], out[1024];
    model_path(in, sizeof(in), "llama-spm", "q8_0");
    snprintf(out, sizeof(out), "%s/requant.gguf", tmpdir);
    quant_params p = {.ftype = QUANT_FTYPE_Q4_K_M, .n_threads = 2};
    hearth_err err;
    assert_int_equal(quant_file(in, out, &p, &err), -1);
    assert_non_null(strstr(err.msg, "--allow-requantize"));
    assert_int_equal(access(out, F_OK), -1); /* nothing written */
    p.allow_requantize = true;
    if (quant_file(in, out, &p, &err)) fail_msg("%s", err.msg);
    gguf_file *o = open_or_fail(out);
    const gguf_tensor *t = gguf_find_tensor(o, "output.weight");
    assert_non_null(t);
    assert_int_equal(t->type, HT_Q6_K);
    gguf_close(o);

    model_path(in, sizeof(in), "llama3-bpe", "f32");
    p = (quant_params){.ftype = QUANT_FTYPE_Q4_K_M, .pure = true};
    gguf_file *f = open_or_fail(in);
    ht_type *types = calloc(gguf_n_tensors(f), sizeof(*types));
    assert_int_equal(quant_plan(f, &p, types, &err), 0);
    int n_q = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *ti = gguf_tensor_at(f, i);
        if (ti->n_dims >= 2) {
            assert_int_equal(types[i], HT_Q4_K);
            n_q++;
        } else {
            assert_int_equal(types[i], HT_F32);
        }
    }
    assert_true(n_q > 10);
    free(types);
    gguf_close(f);
    unlink(out);
}

/* A hand-made file: arch keys and tensors of the given names and shapes. */
static void write_file(const char *path, bool with_block_count, int n_expert,
                       const char *const *names, const int64_t (*shapes)[3], const ht_type *types,
                       int n) {
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", "llama"), 0);
    if (with_block_count) assert_int_equal(gguf_writer_set_u32(w, "llama.block_count", 2), 0);
    assert_int_equal(gguf_writer_set_u32(w, "llama.attention.head_count", 4), 0);
    if (n_expert)
        assert_int_equal(gguf_writer_set_u32(w, "llama.expert_count", (uint32_t)n_expert), 0);
    for (int i = 0; i < n; i++) {
        int64_t ne[3] = {shapes[i][0], shapes[i][1], shapes[i][2]};
        uint32_t nd = ne[2] > 1 ? 3 : ne[1] > 1 ? 2 : 1;
        size_t row;
        hearth_err err;
        assert_int_equal(ht_row_size(types[i], ne[0], &row, &err), 0);
        size_t bytes = row * (size_t)(ne[1] * ne[2]);
        void *data = calloc(1, bytes);
        if (types[i] == HT_F32)
            for (size_t k = 0; k < bytes / 4; k++)
                ((float *)data)[k] = (float)((k * 7919) % 61) / 61.0f - 0.5f;
        if (gguf_writer_add_tensor(w, names[i], types[i], nd, ne, data, &err))
            fail_msg("%s", err.msg);
        free(data);
    }
    hearth_err err;
    if (gguf_writer_write(w, path, &err)) fail_msg("%s", err.msg);
    gguf_writer_free(w);
}

/* Shapes the golden files do not have: rows not a multiple of 256 or of 32,
 * expert tensors naming a layer the model does not have, missing keys,
 * integer tensors. */
/* A tensor with no rows may have any row length: it must not size the
 * conversion scratch (2^40 floats per thread were asked of malloc). */
static void test_empty_tensor_with_huge_rows(void **state) {
    (void)state;
    char path[512], out[512];
    snprintf(path, sizeof(path), "%s/empty_rows.gguf", tmpdir);
    snprintf(out, sizeof(out), "%s/empty_rows.q8_0.gguf", tmpdir);
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", "llama"), 0);
    assert_int_equal(gguf_writer_set_u32(w, "llama.block_count", 1), 0);
    hearth_err err;
    int64_t ne_empty[2] = {(int64_t)1 << 40, 0};
    if (gguf_writer_add_tensor(w, "blk.0.ffn_up.weight", HT_F32, 2, ne_empty, NULL, &err))
        fail_msg("%s", err.msg);
    float x[256 * 2];
    for (int i = 0; i < 512; i++) x[i] = (float)(i % 17) / 17.0f - 0.5f;
    int64_t ne[2] = {256, 2};
    if (gguf_writer_add_tensor(w, "blk.0.ffn_down.weight", HT_F32, 2, ne, x, &err))
        fail_msg("%s", err.msg);
    if (gguf_writer_write(w, path, &err)) fail_msg("%s", err.msg);
    gguf_writer_free(w);
    quant_params p = {.ftype = QUANT_FTYPE_Q8_0, .n_threads = 2};
    if (quant_file(path, out, &p, &err)) fail_msg("%s", err.msg);
    gguf_file *o = open_or_fail(out);
    const gguf_tensor *t = gguf_find_tensor(o, "blk.0.ffn_up.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], (int64_t)1 << 40);
    assert_int_equal(t->nbytes, 0);
    assert_int_equal(gguf_find_tensor(o, "blk.0.ffn_down.weight")->type, HT_Q8_0);
    gguf_close(o);
    unlink(out);
    unlink(path);
}

static void test_fallbacks_and_bad_input(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof(path), "%s/made.gguf", tmpdir);
    static const char *const names[] = {"output.weight",         "token_embd.weight",
                                        "blk.0.attn_q.weight",   "blk.0.attn_k.weight",
                                        "blk.0.ffn_up.weight",   "blk.0.attn_norm.weight",
                                        "blk.1.ffn_down.weight", "blk.1.ffn_gate_exps.weight"};
    static const int64_t shapes[][3] = {{96, 8, 1},  {96, 8, 1},  {48, 8, 1},  {256, 8, 1},
                                        {160, 8, 1}, {256, 1, 1}, {512, 4, 1}, {64, 8, 4}};
    static const ht_type f32s[8] = {HT_F32, HT_F32, HT_F32, HT_F32, HT_F32, HT_F32, HT_F32, HT_F32};
    write_file(path, true, 0, names, shapes, f32s, 8);
    gguf_file *f = open_or_fail(path);
    ht_type types[8];
    hearth_err err;
    quant_params p = {.ftype = QUANT_FTYPE_Q4_K_M};
    if (quant_plan(f, &p, types, &err)) fail_msg("%s", err.msg);
    /* ffn_down: without experts the reference counts ffn_down tensors rather
     * than reading the layer, so the only one is "layer 0": no more bits */
    static const ht_type want_q4km[8] = {HT_Q8_0, HT_Q5_0, HT_F16,  HT_Q4_K,
                                         HT_Q5_0, HT_F32,  HT_Q4_K, HT_Q5_0};
    for (int i = 0; i < 8; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, (uint64_t)i);
        char *nm = name_of(t);
        if (types[i] != want_q4km[i])
            fail_msg("Q4_K_M %s: %s, expected %s", nm, ht_type_get(types[i])->name,
                     ht_type_get(want_q4km[i])->name);
        free(nm);
    }
    p.ftype = QUANT_FTYPE_Q3_K_S; /* Q3_K rows of 96 -> Q4_0; Q6_K output -> Q8_0 */
    if (quant_plan(f, &p, types, &err)) fail_msg("%s", err.msg);
    assert_int_equal(types[0], HT_Q8_0);
    assert_int_equal(types[1], HT_Q4_0);
    assert_int_equal(types[2], HT_F16);
    p.ftype = QUANT_FTYPE_Q8_0; /* 48 is not a multiple of 32 */
    if (quant_plan(f, &p, types, &err)) fail_msg("%s", err.msg);
    assert_int_equal(types[2], HT_F16);
    assert_int_equal(types[3], HT_Q8_0);
    char out[512];
    snprintf(out, sizeof(out), "%s/made.q4_k_m.gguf", tmpdir);
    p = (quant_params){.ftype = QUANT_FTYPE_Q4_K_M, .n_threads = 3};
    if (quant_file(path, out, &p, &err)) fail_msg("%s", err.msg);
    gguf_file *o = open_or_fail(out);
    /* the 3-D expert tensor was quantized row by row: dequantized, it is
     * close to the input */
    const gguf_tensor *qe = gguf_find_tensor(o, "blk.1.ffn_gate_exps.weight");
    const gguf_tensor *fe = gguf_find_tensor(f, "blk.1.ffn_gate_exps.weight");
    assert_non_null(qe);
    assert_int_equal(qe->type, HT_Q5_0);
    assert_int_equal(qe->ne[2], 4);
    float row[64];
    size_t qrow;
    assert_int_equal(ht_row_size(qe->type, 64, &qrow, &err), 0);
    for (int r = 0; r < 32; r++) {
        ht_dequantize_row(qe->type, (const uint8_t *)qe->data + (size_t)r * qrow, row, 64);
        const float *x = (const float *)fe->data + (size_t)r * 64;
        for (int i = 0; i < 64; i++) assert_true(fabsf(row[i] - x[i]) < 0.05f);
    }
    gguf_close(o);
    gguf_close(f);

    /* experts in a layer the model does not have */
    static const char *const bad_names[] = {"blk.7.ffn_down_exps.weight"};
    static const int64_t bad_shapes[][3] = {{256, 4, 4}};
    write_file(path, true, 4, bad_names, bad_shapes, f32s, 1);
    f = open_or_fail(path);
    assert_int_equal(quant_plan(f, &p, types, &err), -1);
    assert_non_null(strstr(err.msg, "blk.7.ffn_down_exps.weight"));
    gguf_close(f);
    /* no block count */
    write_file(path, false, 0, names, shapes, f32s, 2);
    f = open_or_fail(path);
    assert_int_equal(quant_plan(f, &p, types, &err), -1);
    assert_non_null(strstr(err.msg, "llama.block_count"));
    gguf_close(f);
    /* an integer matrix named like a weight */
    static const ht_type i32s[1] = {HT_I32};
    write_file(path, true, 0, names + 2, shapes + 3, i32s, 1);
    f = open_or_fail(path);
    assert_int_equal(quant_plan(f, &p, types, &err), -1);
    assert_non_null(strstr(err.msg, "cannot convert"));
    gguf_close(f);
}

static int setup(void **state) {
    (void)state;
    setenv("HEARTH_KERNELS", "ref", 1);
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/hearth-quant-XXXXXX", t ? t : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_matches_reference),
        cmocka_unit_test(test_bytes_match_reference),
        cmocka_unit_test(test_kl_vs_reference),
        cmocka_unit_test(test_all_types_run),
        cmocka_unit_test(test_requantize_and_pure),
        cmocka_unit_test(test_fallbacks_and_bad_input),
        cmocka_unit_test(test_empty_tensor_with_huge_rows),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
