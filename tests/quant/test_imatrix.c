/* Importance matrices (src/quant/imatrix.c, model observers, quantize
 * --imatrix).
 *
 * - accumulation, means, shapes and the GGUF round trip;
 * - hostile GGUF and legacy files: a clear error, never a crash (every
 *   truncation of a legacy file is tried);
 * - observing a real forward: on a golden llama model the sums of
 *   blk.0.attn_q equal the squares of rmsnorm(embedding) * attn_norm computed
 *   here, q/k/v (and gate/up) see the same inputs; on the golden DeepSeek-V2
 *   model the expert tensors have one matrix per expert, their token counts
 *   add up to tokens x experts used, and token-by-token decoding observes
 *   what one batch does;
 * - quantizing with an importance matrix measured on one text lowers the KL
 *   divergence from the F32 model on another (the golden prompts), records
 *   the quantize.imatrix.* keys, and a matrix of the wrong shape is refused. */
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
#include "quant/imatrix.h"
#include "quant/quantize.h"
#include "text/tokenizer.h"

static char tmpdir[256];

static const char *shared_dir(void) {
    const char *s = getenv("HEARTH_SHARED");
    return s ? s : "../shared";
}

static void tmp_path(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", tmpdir, name);
}

static void golden(char *buf, size_t n, const char *name, const char *variant) {
    snprintf(buf, n, "%s/golden/models/%s.%s.gguf", shared_dir(), name, variant);
}

/* ---- accumulation and files -------------------------------------------- */

static void test_accumulate_and_roundtrip(void **state) {
    (void)state;
    hearth_err err;
    imat *im = imat_new(&err);
    assert_non_null(im);
    /* tensor a: 1 matrix of 3 columns, two calls; tensor b: 2 matrices of 2 */
    const float x1[2][4] = {{1, 2, 3, 99}, {-1, 0, 0.5f, 99}}; /* ldx 4: col 3 unused */
    const float x2[1][3] = {{2, -2, 2}};
    assert_int_equal(imat_add(im, "a.weight", 0, 1, 3, &x1[0][0], 4, 2, &err), 0);
    assert_int_equal(imat_add(im, "a.weight", 0, 1, 3, &x2[0][0], 3, 1, &err), 0);
    const float y[3][2] = {{3, 4}, {1, 1}, {0, 2}};
    assert_int_equal(imat_add(im, "b.weight", 1, 2, 2, &y[0][0], 2, 3, &err), 0);
    /* a different shape for a known name is refused, with the name */
    assert_int_equal(imat_add(im, "a.weight", 0, 1, 4, &x2[0][0], 4, 1, &err), -1);
    assert_non_null(strstr(err.msg, "a.weight"));
    assert_int_equal(imat_add(im, "b.weight", 2, 2, 2, &y[0][0], 2, 1, &err), -1);
    assert_int_equal(imat_n_entries(im), 2);

    const float *v;
    assert_int_equal(imat_values(im, "a.weight", 0, 1, 3, &v, &err), 0);
    assert_non_null(v);
    assert_true(fabsf(v[0] - (1 + 1 + 4) / 3.0f) < 1e-6f);
    assert_true(fabsf(v[1] - (4 + 0 + 4) / 3.0f) < 1e-6f);
    assert_true(fabsf(v[2] - (9 + 0.25f + 4) / 3.0f) < 1e-6f);
    assert_int_equal(imat_values(im, "b.weight", 0, 2, 2, &v, &err), 0);
    assert_null(v); /* no token reached matrix 0 */
    assert_int_equal(imat_values(im, "b.weight", 1, 2, 2, &v, &err), 0);
    assert_non_null(v);
    assert_true(fabsf(v[0] - 10 / 3.0f) < 1e-6f && fabsf(v[1] - 21 / 3.0f) < 1e-6f);
    assert_int_equal(imat_values(im, "c.weight", 0, 1, 3, &v, &err), 0);
    assert_null(v);
    assert_int_equal(imat_values(im, "a.weight", 0, 1, 5, &v, &err), -1);
    assert_non_null(strstr(err.msg, "a.weight"));

    char path[512];
    tmp_path(path, sizeof path, "rt.gguf");
    assert_int_equal(imat_set_info(im, "calib.txt", 7, 64, &err), 0);
    assert_int_equal(imat_save(im, path, &err), 0);
    imat *back = imat_load(path, &err);
    if (!back) fail_msg("%s", err.msg);
    assert_int_equal(imat_n_entries(back), 2);
    assert_int_equal(imat_chunk_count(back), 7);
    assert_string_equal(imat_dataset(back), "calib.txt");
    assert_int_equal(imat_values(back, "b.weight", 1, 2, 2, &v, &err), 0);
    assert_non_null(v);
    assert_true(fabsf(v[1] - 7.0f) < 1e-6f);
    gguf_file *f = gguf_open(path, &err);
    assert_non_null(f);
    const gguf_tensor *t = gguf_find_tensor(f, "b.weight.in_sum2");
    assert_non_null(t);
    assert_true(t->type == HT_F32 && t->ne[0] == 2 && t->ne[1] == 2);
    t = gguf_find_tensor(f, "b.weight.counts");
    assert_true(t && t->ne[0] == 1 && t->ne[1] == 2);
    gguf_close(f);
    imat_free(back);
    imat_free(im);
}

/* Writes a GGUF with the given tensors (name, type, ne0, ne1, value). */
typedef struct gt {
    const char *name;
    ht_type type;
    int64_t ne0, ne1;
    float value;
} gt;

static void write_gguf(const char *path, const char *gtype, const gt *ts, int n) {
    hearth_err err;
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    if (gtype) assert_int_equal(gguf_writer_set_str(w, "general.type", gtype), 0);
    for (int i = 0; i < n; i++) {
        int64_t ne[2] = {ts[i].ne0, ts[i].ne1};
        size_t nb = (size_t)(ne[0] * ne[1]) * (ts[i].type == HT_F16 ? 2 : 4);
        uint8_t *buf = calloc(1, nb);
        assert_non_null(buf);
        if (ts[i].type == HT_F32)
            for (int64_t j = 0; j < ne[0] * ne[1]; j++) memcpy(buf + 4 * j, &ts[i].value, 4);
        assert_int_equal(gguf_writer_add_tensor(w, ts[i].name, ts[i].type, 2, ne, buf, &err), 0);
        free(buf);
    }
    assert_int_equal(gguf_writer_write(w, path, &err), 0);
    gguf_writer_free(w);
}

static void expect_refused(const char *path, const char *word) {
    hearth_err err = {{0}};
    imat *im = imat_load(path, &err);
    if (im) {
        imat_free(im);
        fail_msg("%s: loaded; expected an error mentioning '%s'", path, word);
    }
    if (!strstr(err.msg, word)) fail_msg("error '%s' does not mention '%s'", err.msg, word);
}

static void test_gguf_hostile(void **state) {
    (void)state;
    char p[512];
    tmp_path(p, sizeof p, "bad.gguf");
    const float nan = NAN;
    write_gguf(p, "imatrix", (gt[]){{"x.weight.in_sum2", HT_F32, 4, 1, 1}}, 1);
    expect_refused(p, "x.weight.counts");
    write_gguf(p, "imatrix", (gt[]){{"x.weight.counts", HT_F32, 1, 1, 1}}, 1);
    expect_refused(p, "x.weight.in_sum2");
    write_gguf(p, "imatrix",
               (gt[]){{"x.weight.in_sum2", HT_F16, 4, 1, 1}, {"x.weight.counts", HT_F32, 1, 1, 1}},
               2);
    expect_refused(p, "F32");
    write_gguf(p, "imatrix",
               (gt[]){{"x.weight.in_sum2", HT_F32, 4, 3, 1}, {"x.weight.counts", HT_F32, 1, 2, 1}},
               2);
    expect_refused(p, "x.weight");
    write_gguf(
        p, "imatrix",
        (gt[]){{"x.weight.in_sum2", HT_F32, 4, 1, nan}, {"x.weight.counts", HT_F32, 1, 1, 1}}, 2);
    expect_refused(p, "finite");
    write_gguf(p, "imatrix",
               (gt[]){{"x.weight.in_sum2", HT_F32, 4, 1, 1}, {"x.weight.counts", HT_F32, 1, 1, -2}},
               2);
    expect_refused(p, "count");
    write_gguf(p, "imatrix", (gt[]){{"token_embd.weight", HT_F32, 4, 1, 1}}, 1);
    expect_refused(p, "token_embd.weight");
    write_gguf(p, "model",
               (gt[]){{"x.weight.in_sum2", HT_F32, 4, 1, 1}, {"x.weight.counts", HT_F32, 1, 1, 1}},
               2);
    expect_refused(p, "general.type");
    /* a model is not an importance matrix */
    char m[512];
    golden(m, sizeof m, "llama3-bpe", "f32");
    expect_refused(m, "in_sum2");
    expect_refused("/nonexistent/imatrix.gguf", "nonexistent");
}

static void put32(uint8_t **p, uint32_t v) {
    for (int i = 0; i < 4; i++) *(*p)++ = (uint8_t)(v >> (8 * i));
}

static void putf(uint8_t **p, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    put32(p, u);
}

static void write_bytes(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* The legacy format: values are sums of ncall means; an expert tensor is one
 * row of all experts' columns. */
static void test_legacy(void **state) {
    (void)state;
    uint8_t buf[512], *p = buf;
    put32(&p, 2);
    put32(&p, 10), memcpy(p, "a.weight.x", 10), p += 10; /* name */
    put32(&p, 4);                                        /* ncall */
    put32(&p, 3);                                        /* values */
    putf(&p, 4), putf(&p, 8), putf(&p, 2);
    put32(&p, 8), memcpy(p, "e.weight", 8), p += 8;
    put32(&p, 2);
    put32(&p, 4); /* 2 experts x 2 columns */
    putf(&p, 2), putf(&p, 4), putf(&p, 6), putf(&p, 8);
    const size_t entries_end = (size_t)(p - buf);
    put32(&p, 11);
    put32(&p, 9), memcpy(p, "calib.txt", 9), p += 9;
    const size_t n = (size_t)(p - buf);
    char path[512];
    tmp_path(path, sizeof path, "legacy.dat");
    write_bytes(path, buf, n);
    hearth_err err;
    imat *im = imat_load(path, &err);
    if (!im) fail_msg("%s", err.msg);
    assert_int_equal(imat_chunk_count(im), 11);
    assert_string_equal(imat_dataset(im), "calib.txt");
    const float *v;
    assert_int_equal(imat_values(im, "a.weight.x", 0, 1, 3, &v, &err), 0);
    assert_true(v && v[0] == 1 && v[1] == 2 && v[2] == 0.5f);
    assert_int_equal(imat_values(im, "e.weight", 1, 2, 2, &v, &err), 0); /* expert 1 */
    assert_true(v && v[0] == 3 && v[1] == 4);
    assert_int_equal(imat_values(im, "e.weight", 0, 3, 2, &v, &err), -1); /* 3 x 2 != 4 */
    imat_free(im);

    /* every truncation: cut inside the entries is an error, never a crash */
    for (size_t k = 0; k < n; k++) {
        write_bytes(path, buf, k);
        im = imat_load(path, &err);
        if (k < entries_end) {
            if (im) fail_msg("a legacy file cut at %zu of %zu bytes loaded", k, n);
        } else {
            assert_non_null(im); /* the trailer is optional */
            imat_free(im);
        }
    }
    /* lengths that promise more than the file holds */
    uint8_t big[64];
    p = big;
    put32(&p, 1), put32(&p, 1), *p++ = 'a', put32(&p, 1), put32(&p, 0x7fffffff);
    write_bytes(path, big, (size_t)(p - big));
    expect_refused(path, "values");
    p = big;
    put32(&p, 1), put32(&p, 0x7fffffff);
    write_bytes(path, big, (size_t)(p - big));
    expect_refused(path, "name");
    p = big;
    put32(&p, 0xffffffff);
    write_bytes(path, big, (size_t)(p - big));
    expect_refused(path, "entries");
    p = big;
    put32(&p, 1), put32(&p, 1), *p++ = 'a', put32(&p, 1), put32(&p, 1), putf(&p, -1);
    write_bytes(path, big, (size_t)(p - big));
    expect_refused(path, "finite");
}

/* ---- observing a forward ----------------------------------------------- */

static model *load_path(const char *path) {
    hearth_err err;
    model_params mp = model_default_params();
    mp.n_threads = 2;
    model *m = model_load(path, &mp, &err);
    if (!m) fail_msg("%s: %s", path, err.msg);
    return m;
}

static model *load_golden(const char *name, const char *variant) {
    char path[512];
    golden(path, sizeof path, name, variant);
    return load_path(path);
}

static int32_t *tokens_of(const gguf_file *f, const char *text, size_t *n) {
    hearth_err err;
    tok_vocab *v = tok_load(f, &err);
    if (!v) fail_msg("%s", err.msg);
    int32_t *t = NULL;
    if (tok_encode(v, text, strlen(text), true, false, &t, n, &err)) fail_msg("%s", err.msg);
    tok_free(v);
    return t;
}

static const char *const calib_text =
    "Importance matrices weigh each column of a weight matrix by the mean square of the "
    "activations it meets, so that quantization spends its precision where it matters. "
    "They are measured on a calibration text, here this very sentence, repeated with small "
    "changes: columns that see large values get small errors; columns that stay near zero "
    "can take larger ones. 12 + 30 = 42; the quick test ends here.";

static imat *observe(model *m, const int32_t *tok, int n, int batch, hearth_err *err) {
    imat *im = imat_new(err);
    model_ctx *c = model_ctx_new(m, 256, batch, err);
    if (!im || !c) fail_msg("%s", err->msg);
    model_ctx_set_observer(c, imat_observe, im);
    for (int i = 0; i < n; i += batch) {
        int k = n - i < batch ? n - i : batch;
        if (model_eval(c, tok + i, k, i, NULL, MODEL_LOGITS_NONE, err)) fail_msg("%s", err->msg);
    }
    if (imat_error(im, err)) fail_msg("%s", err->msg);
    model_ctx_free(c);
    return im;
}

static void values_or_fail(imat *im, const char *name, int slice, int n_slices, int64_t n_cols,
                           const float **v) {
    hearth_err err;
    if (imat_values(im, name, slice, n_slices, n_cols, v, &err)) fail_msg("%s", err.msg);
    if (!*v) fail_msg("%s: no values for matrix %d of %d", name, slice, n_slices);
}

static void test_observer_llama(void **state) {
    (void)state;
    hearth_err err;
    model *m = load_golden("llama3-bpe", "f32");
    const gguf_file *gf = model_gguf(m);
    const model_hparams *hp = model_hparams_of(m);
    size_t n;
    int32_t *tok = tokens_of(gf, calib_text, &n);
    assert_true(n > 20 && n < 256);
    imat *im = observe(m, tok, (int)n, 64, &err);
    /* 7 matrices per layer, no output.weight */
    assert_int_equal(imat_n_entries(im), 7 * hp->n_layer);
    const int64_t E = hp->n_embd;
    const float *q, *k, *vv, *g, *u;
    values_or_fail(im, "blk.0.attn_q.weight", 0, 1, E, &q);
    values_or_fail(im, "blk.0.attn_k.weight", 0, 1, E, &k);
    values_or_fail(im, "blk.0.attn_v.weight", 0, 1, E, &vv);
    assert_memory_equal(q, k, sizeof(float) * (size_t)E);
    assert_memory_equal(q, vv, sizeof(float) * (size_t)E);
    values_or_fail(im, "blk.1.ffn_gate.weight", 0, 1, E, &g);
    values_or_fail(im, "blk.1.ffn_up.weight", 0, 1, E, &u);
    assert_memory_equal(g, u, sizeof(float) * (size_t)E);
    /* layer 0's attention input by hand: rmsnorm(embedding) * attn_norm */
    const gguf_tensor *te = gguf_find_tensor(gf, "token_embd.weight");
    const gguf_tensor *an = gguf_find_tensor(gf, "blk.0.attn_norm.weight");
    assert_true(te && an && te->type == HT_F32 && an->type == HT_F32 && te->ne[0] == E);
    double *want = calloc((size_t)E, sizeof(double));
    assert_non_null(want);
    for (size_t t = 0; t < n; t++) {
        const float *row = (const float *)te->data + (size_t)tok[t] * (size_t)E;
        double ss = 0;
        for (int64_t j = 0; j < E; j++) ss += (double)row[j] * row[j];
        double s = 1.0 / sqrt(ss / (double)E + hp->rms_eps);
        for (int64_t j = 0; j < E; j++) {
            double x = row[j] * s * ((const float *)an->data)[j];
            want[j] += x * x / (double)n;
        }
    }
    double worst = 0;
    for (int64_t j = 0; j < E; j++) {
        double r = fabs(q[j] - want[j]) / (want[j] + 1e-12);
        if (r > worst) worst = r;
    }
    print_message("blk.0.attn_q: %lld columns, largest relative difference %.2e\n", (long long)E,
                  worst);
    assert_true(worst < 1e-4);
    free(want);
    free(tok);
    imat_free(im);
    model_free(m);
}

static void test_observer_moe(void **state) {
    (void)state;
    hearth_err err;
    model *m = load_golden("deepseek-v2-lite", "f32");
    const gguf_file *gf = model_gguf(m);
    const model_hparams *hp = model_hparams_of(m);
    size_t n;
    int32_t *tok = tokens_of(gf, calib_text, &n);
    if (n > 64) n = 64; /* token by token below: keep it short for the sanitizer build */
    uint32_t n_expert = 0, n_used = 0;
    assert_int_equal(gguf_get_u32(gf, "deepseek2.expert_count", &n_expert, &err), 0);
    assert_int_equal(gguf_get_u32(gf, "deepseek2.expert_used_count", &n_used, &err), 0);
    imat *batch = observe(m, tok, (int)n, 64, &err);
    imat *one = observe(m, tok, (int)n, 1, &err); /* the decode paths */
    int n_checked = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(gf); i++) {
        const gguf_tensor *t = gguf_tensor_at(gf, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (!strstr(name, "_exps.weight")) continue;
        const int64_t nm = t->ne[2];
        assert_int_equal(nm, n_expert);
        double tokens = 0;
        for (int64_t e = 0; e < nm; e++) {
            const float *a, *b;
            assert_int_equal(imat_values(batch, name, (int)e, (int)nm, t->ne[0], &a, &err), 0);
            assert_int_equal(imat_values(one, name, (int)e, (int)nm, t->ne[0], &b, &err), 0);
            assert_true((a == NULL) == (b == NULL)); /* the same experts were chosen */
            if (!a) continue;
            tokens += 1;
            for (int64_t j = 0; j < t->ne[0]; j++)
                assert_true(fabsf(a[j] - b[j]) <= 1e-4f * fabsf(a[j]) + 1e-12f);
        }
        assert_true(tokens >= 1);
        n_checked++;
    }
    print_message("%d expert tensors, %u experts, %u used, %zu tokens\n", n_checked, n_expert,
                  n_used, n);
    assert_true(n_checked >= 3);
    /* counts: every token reaches n_used experts of each MoE layer */
    char cpath[512];
    tmp_path(cpath, sizeof cpath, "moe.gguf");
    assert_int_equal(imat_save(batch, cpath, &err), 0);
    gguf_file *f = gguf_open(cpath, &err);
    assert_non_null(f);
    int n_moe = 0;
    for (int l = 0; l < hp->n_layer; l++) {
        char cn[96];
        snprintf(cn, sizeof cn, "blk.%d.ffn_down_exps.weight.counts", l);
        const gguf_tensor *c = gguf_find_tensor(f, cn);
        if (!c) continue;
        double sum = 0;
        for (int64_t e = 0; e < c->ne[1]; e++) sum += ((const float *)c->data)[e];
        assert_true(sum == (double)n * n_used);
        n_moe++;
    }
    assert_true(n_moe >= 1);
    assert_null(gguf_find_tensor(f, "output.weight.in_sum2"));
    gguf_close(f);
    imat_free(one);
    imat_free(batch);
    free(tok);
    model_free(m);
}

/* ---- quantize --imatrix --------------------------------------------------- */

static float *all_logits(const char *path, const int32_t *tok, int n, int *n_vocab) {
    hearth_err err;
    model *m = load_path(path);
    *n_vocab = model_hparams_of(m)->n_vocab;
    float *out = malloc((size_t)n * (size_t)*n_vocab * sizeof(float));
    model_ctx *c = model_ctx_new(m, n, 64, &err);
    assert_true(out && c);
    if (model_eval(c, tok, n, 0, out, MODEL_LOGITS_ALL, &err)) fail_msg("%s", err.msg);
    model_ctx_free(c);
    model_free(m);
    return out;
}

static double mean_kl(const float *base, const float *q, int nv, int rows) {
    double total = 0;
    for (int r = 0; r < rows; r++) {
        const float *a = base + (size_t)r * (size_t)nv, *b = q + (size_t)r * (size_t)nv;
        double ma = a[0], mb = b[0], sa = 0, sb = 0, kl = 0;
        for (int i = 1; i < nv; i++) ma = a[i] > ma ? a[i] : ma, mb = b[i] > mb ? b[i] : mb;
        for (int i = 0; i < nv; i++) sa += exp(a[i] - ma), sb += exp(b[i] - mb);
        for (int i = 0; i < nv; i++) {
            double la = a[i] - ma - log(sa), lb = b[i] - mb - log(sb);
            kl += exp(la) * (la - lb);
        }
        total += kl > 0 ? kl : 0;
    }
    return total / rows;
}

/* The markdown files of ../shared as calibration text (none of it is in the
 * golden prompts), run in chunks of 128 tokens from an empty cache each, as
 * hearth imatrix does. */
static imat *calibrate(model *m, hearth_err *err) {
    static const char *const files[] = {"README.md", "docs/architecture.md", "docs/style.md",
                                        "golden/README.md", "bench/README.md"};
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", shared_dir(), files[i]);
        FILE *f = fopen(path, "rb");
        if (!f) fail_msg("%s: missing", path);
        len += fread(text + len, 1, cap - 1 - len, f);
        fclose(f);
    }
    text[len] = 0;
    size_t n;
    int32_t *tok = tokens_of(model_gguf(m), text, &n);
    free(text);
    imat *im = imat_new(err);
    model_ctx *c = model_ctx_new(m, 128, 128, err);
    if (!im || !c) fail_msg("%s", err->msg);
    model_ctx_set_observer(c, imat_observe, im);
    int chunks = 0;
    for (size_t i = 0; i + 128 <= n && chunks < 16; i += 128, chunks++) {
        model_ctx_reset(c);
        if (model_eval(c, tok + i, 128, 0, NULL, MODEL_LOGITS_NONE, err)) fail_msg("%s", err->msg);
    }
    if (imat_error(im, err)) fail_msg("%s", err->msg);
    assert_true(chunks >= 10);
    assert_int_equal(imat_set_info(im, "shared-docs", chunks, 128, err), 0);
    model_ctx_free(c);
    free(tok);
    return im;
}

static void test_quantize_with_imatrix(void **state) {
    (void)state;
    static const char *const names[] = {"llama3-bpe", "qwen2-r1distill"};
    static const char *const types[] = {"Q4_K_M", "Q3_K_M", "Q4_0"};
    char prompts_path[512];
    snprintf(prompts_path, sizeof prompts_path, "%s/golden/prompts.txt", shared_dir());
    FILE *pf = fopen(prompts_path, "rb");
    assert_non_null(pf);
    static char prompts[8192];
    size_t plen = fread(prompts, 1, sizeof prompts - 1, pf);
    fclose(pf);
    prompts[plen] = 0;
    hearth_err err;
    double ratio_sum = 0;
    int n_cases = 0;
    print_message("%-16s %-7s %12s %12s %7s\n", "model", "type", "KL plain", "KL imatrix", "ratio");
    for (size_t mi = 0; mi < sizeof names / sizeof *names; mi++) {
        char f32[512], imp[512], qa[512], qb[512];
        golden(f32, sizeof f32, names[mi], "f32");
        tmp_path(imp, sizeof imp, "q.imatrix");
        tmp_path(qa, sizeof qa, "plain.gguf");
        tmp_path(qb, sizeof qb, "weighted.gguf");
        model *m = load_path(f32);
        size_t ne;
        int32_t *et = tokens_of(model_gguf(m), prompts, &ne);
        if (ne > 128) ne = 128;
        imat *im = calibrate(m, &err);
        model_free(m);
        assert_int_equal(imat_save(im, imp, &err), 0);
        imat_free(im);
        im = imat_load(imp, &err);
        assert_non_null(im);
        int nv;
        float *base = all_logits(f32, et, (int)ne, &nv);
        for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
            quant_params p = {.ftype = (quant_ftype)quant_ftype_from_name(types[ti]),
                              .n_threads = 2};
            if (quant_file(f32, qa, &p, &err)) fail_msg("%s", err.msg);
            p.imatrix = im;
            p.imatrix_file = "q.imatrix";
            if (quant_file(f32, qb, &p, &err)) fail_msg("%s", err.msg);
            float *la = all_logits(qa, et, (int)ne, &nv), *lb = all_logits(qb, et, (int)ne, &nv);
            double ka = mean_kl(base, la, nv, (int)ne), kb = mean_kl(base, lb, nv, (int)ne);
            print_message("%-16s %-7s %12.6f %12.6f %7.3f\n", names[mi], types[ti], ka, kb,
                          kb / ka);
            /* each case no worse (Q4_0 gains least: its one scale per 32
             * has little to choose), and clearly better over all */
            assert_true(kb <= 1.005 * ka);
            ratio_sum += kb / ka;
            n_cases++;
            free(la);
            free(lb);
        }
        /* the keys llama.cpp writes */
        gguf_file *g = gguf_open(qb, &err);
        assert_non_null(g);
        gguf_str s;
        assert_int_equal(gguf_get_str(g, "quantize.imatrix.file", &s, &err), 0);
        assert_true(gguf_str_eq(s, "q.imatrix"));
        assert_true(gguf_has(g, "quantize.imatrix.entries_count"));
        assert_true(gguf_has(g, "quantize.imatrix.chunks_count"));
        gguf_close(g);
        free(base);
        free(et);
        imat_free(im);
    }
    print_message("mean KL ratio with / without the importance matrix: %.3f\n",
                  ratio_sum / n_cases);
    assert_true(ratio_sum / n_cases <= 0.97);
    /* a matrix of the wrong shape is refused, naming the tensor */
    imat *bad = imat_new(&err);
    const float x[7] = {1, 2, 3, 4, 5, 6, 7};
    assert_int_equal(imat_add(bad, "blk.0.attn_q.weight", 0, 1, 7, x, 7, 1, &err), 0);
    char f32[512], out[512];
    golden(f32, sizeof f32, "llama3-bpe", "f32");
    tmp_path(out, sizeof out, "refused.gguf");
    quant_params p = {.ftype = QUANT_FTYPE_Q4_K_M, .n_threads = 2, .imatrix = bad};
    assert_int_equal(quant_file(f32, out, &p, &err), -1);
    assert_non_null(strstr(err.msg, "blk.0.attn_q.weight"));
    assert_int_equal(access(out, F_OK), -1);
    imat_free(bad);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/hearth-imatrix-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accumulate_and_roundtrip),
        cmocka_unit_test(test_gguf_hostile),
        cmocka_unit_test(test_legacy),
        cmocka_unit_test(test_observer_llama),
        cmocka_unit_test(test_observer_moe),
        cmocka_unit_test(test_quantize_with_imatrix),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) rc = rc ? rc : 1;
    return rc;
}
