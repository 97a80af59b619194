/* deepseek2 (MLA + MoE) beyond the golden logits (tests/deepseek2.cmake runs
 * those): routing by groups, the latent KV cache's size, the two GGUF layouts
 * of the key/value decompression, which expert bytes one token reads, and
 * errors for inconsistent files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "kernels/kernels.h"
#include "model/deepseek2.h"
#include "model/model.h"

static char *shared_model(const char *name) {
    const char *sh = getenv("HEARTH_SHARED");
    if (!sh) sh = "../shared";
    size_t n = strlen(sh) + strlen(name) + 32;
    char *p = malloc(n);
    snprintf(p, n, "%s/golden/models/%s.gguf", sh, name);
    return p;
}

static char *tmp_path(const char *tag) {
    char *p = malloc(256);
    snprintf(p, 256, "%s/hearth_ds2_%s_%d.gguf", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", tag,
             (int)getpid());
    return p;
}

/* ---- routing ---------------------------------------------------------- */

static float logit_of(float p) {
    return logf(p / (1 - p));
}

/* DeepSeek-V3 (noaux_tc): sigmoid scores, groups ranked by the sum of their
 * two best biased scores, weights from the unbiased scores, normalised and
 * scaled. Eight experts in four groups of two, two groups and two experts
 * used. Scores: g0 {0.95, 0.05} g1 {0.80, 0.70} g2 {0.60, 0.55} g3 {0.30, 0.20}.
 * Group sums 1.00, 1.50, 1.15, 0.50 keep g1 and g2, so the best single expert
 * (e0, in g0) is out and the choice is e2, e3. */
static void test_route_v3_groups(void **state) {
    (void)state;
    const float p[8] = {0.95f, 0.05f, 0.80f, 0.70f, 0.60f, 0.55f, 0.30f, 0.20f};
    float lg[8], scratch[3 * 8], wts[2];
    int ids[2];
    for (int i = 0; i < 8; i++) lg[i] = logit_of(p[i]);
    ds2_router r = {.n_expert = 8,
                    .n_used = 2,
                    .gating = DS2_GATING_SIGMOID,
                    .norm = true,
                    .scale = 2.5f,
                    .n_group = 4,
                    .n_group_used = 2};
    hearth_err err;
    assert_int_equal(ds2_router_check(&r, &err), 0);
    ds2_route(&r, lg, NULL, ids, wts, scratch);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 3);
    assert_float_equal(wts[0], 2.5 * 0.80 / 1.50, 1e-5);
    assert_float_equal(wts[1], 2.5 * 0.70 / 1.50, 1e-5);

    /* Without groups the best two overall win. */
    ds2_router flat = r;
    flat.n_group = 0;
    ds2_route(&flat, lg, NULL, ids, wts, scratch);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 2);
    assert_float_equal(wts[0], 2.5 * 0.95 / 1.75, 1e-5);

    /* The bias chooses (e4: 0.60 + 0.25 = 0.85 > e2's 0.80; g2 now sums 1.40,
     * still behind g1's 1.50 and ahead of g0) but does not weigh. */
    const float bias[8] = {0, 0, 0, 0, 0.25f, 0, 0, 0};
    ds2_route(&r, lg, bias, ids, wts, scratch);
    assert_int_equal(ids[0], 4);
    assert_int_equal(ids[1], 2);
    assert_float_equal(wts[0], 2.5 * 0.60 / 1.40, 1e-5);
    assert_float_equal(wts[1], 2.5 * 0.80 / 1.40, 1e-5);

    /* A bias that lifts g0's weak expert (0.05 + 1.0) makes g0 the best group
     * (sum 2.00) and that expert the first choice, weighed by its own 0.05. */
    const float bias1[8] = {0, 1.0f, 0, 0, 0, 0, 0, 0};
    ds2_route(&r, lg, bias1, ids, wts, scratch);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 0);
    assert_float_equal(wts[0], 2.5 * 0.05 / 1.00, 1e-5);
    assert_float_equal(wts[1], 2.5 * 0.95 / 1.00, 1e-5);
}

/* DeepSeek-V2 (group_limited_greedy): softmax scores, groups ranked by their
 * best score, no normalisation. Logits g0 {3.0, -3.0} g1 {2.5, 2.4}
 * g2 {2.0, 1.9} g3 {0.0, -1.0}: maxima keep g0 and g1 -> e0, e2 (a top-2 sum
 * would have kept g1 and g2 -> e2, e3). */
static void test_route_v2_groups(void **state) {
    (void)state;
    const float lg[8] = {3.0f, -3.0f, 2.5f, 2.4f, 2.0f, 1.9f, 0.0f, -1.0f};
    double z = 0;
    for (int i = 0; i < 8; i++) z += exp(lg[i]);
    float scratch[3 * 8], wts[3];
    int ids[3];
    ds2_router r = {.n_expert = 8,
                    .n_used = 2,
                    .gating = DS2_GATING_SOFTMAX,
                    .norm = false,
                    .scale = 1.0f,
                    .n_group = 4,
                    .n_group_used = 2};
    ds2_route(&r, lg, NULL, ids, wts, scratch);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 2);
    assert_float_equal(wts[0], exp(3.0) / z, 1e-6);
    assert_float_equal(wts[1], exp(2.5) / z, 1e-6);

    /* One group: g0 holds the best score, so both its experts, however weak
     * the second (e1, logit -3) is. */
    r.n_group_used = 1;
    ds2_route(&r, lg, NULL, ids, wts, scratch);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 1);
    assert_float_equal(wts[1], exp(-3.0) / z, 1e-7);

    /* Three used of two groups of four (groups {0..3}, {4..7}). */
    ds2_router r2 = r;
    r2.n_group = 2;
    r2.n_group_used = 1;
    r2.n_used = 3;
    r2.scale = 2.0f;
    ds2_route(&r2, lg, NULL, ids, wts, scratch);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 2);
    assert_int_equal(ids[2], 3);
    assert_float_equal(wts[2], 2.0 * exp(2.4) / z, 1e-6);
}

static void test_router_check(void **state) {
    (void)state;
    hearth_err err;
    ds2_router r = {.n_expert = 8, .n_used = 3, .gating = 2, .scale = 1, .n_group = 3};
    r.n_group_used = 1;
    assert_int_equal(ds2_router_check(&r, &err), -1); /* 3 does not divide 8 */
    assert_non_null(strstr(err.msg, "expert_group_count"));
    r.n_group = 4; /* groups of 2: one group cannot hold 3 experts */
    assert_int_equal(ds2_router_check(&r, &err), -1);
    assert_non_null(strstr(err.msg, "expert_group_used_count"));
    r.n_group_used = 2;
    assert_int_equal(ds2_router_check(&r, &err), 0);
    r.n_used = 9;
    assert_int_equal(ds2_router_check(&r, &err), -1);
    assert_non_null(strstr(err.msg, "expert_used_count"));
    r.n_used = 3;
    r.gating = 3;
    assert_int_equal(ds2_router_check(&r, &err), -1);
    assert_non_null(strstr(err.msg, "expert_gating_func"));
}

/* ---- rewriting golden files -------------------------------------------- */

typedef struct rewrite {
    const char *const *drop_keys; /* NULL-terminated suffixes after "deepseek2." */
} rewrite;

static bool skip_key(const char *key, void *ud) {
    const rewrite *rw = ud;
    if (strncmp(key, "deepseek2.", 10)) return false;
    for (const char *const *k = rw->drop_keys; k && *k; k++)
        if (!strcmp(key + 10, *k)) return true;
    return false;
}

/* Copies every key of f except rw's and every tensor; when split, each
 * attn_kv_b [H*(nope+v)][kvr] becomes what newer converters write:
 * attn_k_b, ne {nope, kvr, H} (W_kb transposed per head) and attn_v_b,
 * ne {kvr, v, H}. F32 files only. */
static gguf_writer *copy_model(const gguf_file *f, const rewrite *rw, bool split, int n_head,
                               int nope, int v) {
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(gguf_writer_copy_kv(w, f, skip_key, (void *)rw), 0);
    hearth_err err;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char *name = gguf_str_dup(t->name);
        size_t nl = strlen(name);
        const char *suffix = "attn_kv_b.weight";
        if (split && nl > strlen(suffix) && !strcmp(name + nl - strlen(suffix), suffix)) {
            assert_int_equal(t->type, HT_F32);
            const int kvr = (int)t->ne[0];
            assert_int_equal(t->ne[1], (int64_t)n_head * (nope + v));
            const float *kv = t->data;
            float *kb = malloc(sizeof(float) * (size_t)n_head * kvr * nope);
            float *vb = malloc(sizeof(float) * (size_t)n_head * v * kvr);
            for (int h = 0; h < n_head; h++) {
                for (int r = 0; r < kvr; r++)
                    for (int d = 0; d < nope; d++)
                        kb[((size_t)h * kvr + r) * nope + d] =
                            kv[((size_t)h * (nope + v) + d) * kvr + r];
                for (int j = 0; j < v; j++)
                    for (int r = 0; r < kvr; r++)
                        vb[((size_t)h * v + j) * kvr + r] =
                            kv[((size_t)h * (nope + v) + nope + j) * kvr + r];
            }
            char nk[96], nv[96];
            snprintf(nk, sizeof(nk), "%.*sattn_k_b.weight", (int)(nl - strlen(suffix)), name);
            snprintf(nv, sizeof(nv), "%.*sattn_v_b.weight", (int)(nl - strlen(suffix)), name);
            int64_t nek[3] = {nope, kvr, n_head}, nev[3] = {kvr, v, n_head};
            assert_int_equal(gguf_writer_add_tensor(w, nk, HT_F32, 3, nek, kb, &err), 0);
            assert_int_equal(gguf_writer_add_tensor(w, nv, HT_F32, 3, nev, vb, &err), 0);
            free(kb);
            free(vb);
        } else {
            assert_int_equal(
                gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, &err), 0);
        }
        free(name);
    }
    return w;
}

static float *eval_all(model *m, const int32_t *toks, int n) {
    hearth_err err;
    model_ctx *c = model_ctx_new(m, 128, 16, &err); /* several batches of 16 */
    assert_non_null(c);
    const int V = model_hparams_of(m)->n_vocab;
    float *lg = malloc(sizeof(float) * (size_t)V * (size_t)n);
    if (model_eval(c, toks, n, 0, lg, MODEL_LOGITS_ALL, &err) < 0) fail_msg("%s", err.msg);
    model_ctx_free(c);
    return lg;
}

/* Max over rows of max |a - b| / std(b). */
static double max_rel(const float *a, const float *b, int n_rows, int V) {
    double worst = 0;
    for (int t = 0; t < n_rows; t++) {
        const float *x = a + (size_t)t * V, *y = b + (size_t)t * V;
        double mean = 0, var = 0, md = 0;
        for (int i = 0; i < V; i++) mean += y[i];
        mean /= V;
        for (int i = 0; i < V; i++) {
            var += (y[i] - mean) * (y[i] - mean);
            double d = fabs((double)x[i] - y[i]);
            if (!(d <= md)) md = d;
        }
        double rel = md / sqrt(var / V);
        if (!(rel <= worst)) worst = rel;
    }
    return worst;
}

/* Case 0 of golden/f64/NAME.json through model m (reference kernels): the
 * exact tier's cos min and rel max. */
static void check_vs_f64(model *m, const char *name, double rel_tol) {
    const char *sh = getenv("HEARTH_SHARED");
    if (!sh) sh = "../shared";
    char jp[512], lp[512];
    snprintf(jp, sizeof(jp), "%s/golden/f64/%s.json", sh, name);
    snprintf(lp, sizeof(lp), "%s/golden/f64/%s.logits", sh, name);
    json_error_t je;
    json_t *root = json_load_file(jp, 0, &je);
    if (!root) fail_msg("%s: %s", jp, je.text);
    json_t *cs = json_array_get(json_object_get(root, "cases"), 0);
    json_t *jt = json_object_get(cs, "tokens");
    const int T = (int)json_array_size(jt), V = model_hparams_of(m)->n_vocab;
    assert_true(T > 0);
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)T);
    for (int i = 0; i < T; i++) toks[i] = (int32_t)json_integer_value(json_array_get(jt, i));
    float *want = malloc(sizeof(float) * (size_t)T * V);
    FILE *f = fopen(lp, "rb");
    assert_non_null(f);
    long off = (long)json_integer_value(json_object_get(cs, "logits_offset"));
    assert_int_equal(fseek(f, off * (long)sizeof(float), SEEK_SET), 0);
    assert_int_equal(fread(want, sizeof(float), (size_t)T * V, f), (size_t)T * V);
    fclose(f);
    hearth_err err;
    assert_int_equal(kern_select("ref", &err), 0);
    float *got = eval_all(m, toks, T);
    double cos_min = 1;
    for (int t = 0; t < T; t++) {
        double gg = 0, ww = 0, gw = 0;
        for (int i = 0; i < V; i++) {
            double g = got[(size_t)t * V + i], w = want[(size_t)t * V + i];
            gg += g * g;
            ww += w * w;
            gw += g * w;
        }
        double c = gw / sqrt(gg * ww);
        if (!(c >= cos_min)) cos_min = c;
    }
    double rel = max_rel(got, want, T, V);
    printf("%s, split layout, vs f64 case 0: cos min %.9f rel max %.3g\n", name, cos_min, rel);
    assert_true(cos_min >= 0.99999);
    assert_true(rel <= rel_tol);
    free(got);
    free(want);
    free(toks);
    json_decref(root);
}

/* The newer layout (attn_k_b / attn_v_b, head_count_kv 1, key_length =
 * kv_lora_rank + n_rot, value_length = kv_lora_rank, per-head widths under
 * key_length_mla / value_length_mla) gives the same logits as attn_kv_b. */
static void check_split(const char *name, double rel_tol) {
    char *src = shared_model(name), *dst = tmp_path(name);
    hearth_err err;
    gguf_file *f = gguf_open(src, &err);
    if (!f) fail_msg("%s", err.msg);
    uint32_t H, kvr, hk, hv, nrot;
    assert_int_equal(gguf_get_u32(f, "deepseek2.attention.head_count", &H, &err), 0);
    assert_int_equal(gguf_get_u32(f, "deepseek2.attention.kv_lora_rank", &kvr, &err), 0);
    assert_int_equal(gguf_get_u32(f, "deepseek2.attention.key_length", &hk, &err), 0);
    assert_int_equal(gguf_get_u32(f, "deepseek2.attention.value_length", &hv, &err), 0);
    assert_int_equal(gguf_get_u32(f, "deepseek2.rope.dimension_count", &nrot, &err), 0);
    static const char *const drop[] = {"attention.head_count_kv", "attention.key_length",
                                       "attention.value_length", NULL};
    rewrite rw = {drop};
    gguf_writer *w = copy_model(f, &rw, true, (int)H, (int)(hk - nrot), (int)hv);
    assert_int_equal(gguf_writer_set_u32(w, "deepseek2.attention.head_count_kv", 1), 0);
    assert_int_equal(gguf_writer_set_u32(w, "deepseek2.attention.key_length", kvr + nrot), 0);
    assert_int_equal(gguf_writer_set_u32(w, "deepseek2.attention.value_length", kvr), 0);
    assert_int_equal(gguf_writer_set_u32(w, "deepseek2.attention.key_length_mla", hk), 0);
    assert_int_equal(gguf_writer_set_u32(w, "deepseek2.attention.value_length_mla", hv), 0);
    if (gguf_writer_write(w, dst, &err) < 0) fail_msg("%s", err.msg);
    gguf_writer_free(w);
    gguf_close(f);

    model_params mp = model_default_params();
    mp.n_threads = 2;
    model *a = model_load(src, &mp, &err);
    if (!a) fail_msg("%s", err.msg);
    model *b = model_load(dst, &mp, &err);
    if (!b) fail_msg("%s: %s", dst, err.msg);
    const gguf_file *fb = model_gguf(b);
    assert_null(gguf_find_tensor(fb, "blk.0.attn_kv_b.weight"));
    const gguf_tensor *kb = gguf_find_tensor(fb, "blk.0.attn_k_b.weight");
    assert_non_null(kb);
    assert_int_equal(kb->ne[0], hk - nrot);
    assert_int_equal(kb->ne[1], kvr);
    assert_int_equal(kb->ne[2], H);
    assert_int_equal(model_kv_bytes_per_token(a), model_kv_bytes_per_token(b));

    int32_t toks[40];
    for (int i = 0; i < 40; i++) toks[i] = (int32_t)((i * 37 + 11) % model_hparams_of(a)->n_vocab);
    const int V = model_hparams_of(a)->n_vocab;
    float *la = eval_all(a, toks, 40), *lb = eval_all(b, toks, 40);
    double rel = max_rel(lb, la, 40, V);
    printf("%s: split attn_k_b/attn_v_b vs attn_kv_b: rel max %.3g\n", name, rel);
    /* Same maths, summed in another order (W_kb^T q as weighted rows of
     * attn_kv_b vs dot products with attn_k_b rows): agreement to float
     * rounding, amplified over 27 layers for v2-lite (~4e-5; the golden
     * tolerance is 2e-3). */
    assert_true(rel < 2e-4);
    int diff_rows = 0;
    for (int t = 0; t < 40; t++) {
        int ia = 0, ib = 0;
        for (int i = 1; i < V; i++) {
            if (la[(size_t)t * V + i] > la[(size_t)t * V + ia]) ia = i;
            if (lb[(size_t)t * V + i] > lb[(size_t)t * V + ib]) ib = i;
        }
        diff_rows += ia != ib;
    }
    assert_int_equal(diff_rows, 0);
    check_vs_f64(b, name, rel_tol);
    free(la);
    free(lb);
    model_free(a);
    model_free(b);
    unlink(dst);
    free(src);
    free(dst);
}

static void test_split_kv_b_v3(void **state) {
    (void)state;
    check_split("deepseek-v3.f32", 1e-3);
}

static void test_split_kv_b_v2_lite(void **state) {
    (void)state;
    check_split("deepseek-v2-lite.f32", 2e-3);
}

/* Files that contradict themselves are refused with a message naming the
 * key or tensor. */
static void expect_load_error(const char *name, const char *const *drop, const char *set_key,
                              uint32_t set_val, const char *want) {
    char *src = shared_model(name), *dst = tmp_path("bad");
    hearth_err err;
    gguf_file *f = gguf_open(src, &err);
    if (!f) fail_msg("%s", err.msg);
    rewrite rw = {drop};
    gguf_writer *w = copy_model(f, &rw, false, 0, 0, 0);
    if (set_key) assert_int_equal(gguf_writer_set_u32(w, set_key, set_val), 0);
    if (gguf_writer_write(w, dst, &err) < 0) fail_msg("%s", err.msg);
    gguf_writer_free(w);
    gguf_close(f);
    model *m = model_load(dst, NULL, &err);
    assert_null(m);
    if (!strstr(err.msg, want)) fail_msg("expected '%s' in: %s", want, err.msg);
    unlink(dst);
    free(src);
    free(dst);
}

static void test_bad_files(void **state) {
    (void)state;
    /* q-LoRA is decided by the key, so declaring it without its tensors fails
     * on the missing tensor (not on a guess from the layer count). */
    expect_load_error("deepseek-v2-lite.f32", NULL, "deepseek2.attention.q_lora_rank", 16,
                      "blk.0.attn_q_a.weight");
    static const char *const no_kvr[] = {"attention.kv_lora_rank", NULL};
    expect_load_error("deepseek-v3.f32", no_kvr, NULL, 0, "kv_lora_rank");
    expect_load_error("deepseek-v3.f32", NULL, "deepseek2.expert_used_count", 9,
                      "expert_used_count");
    expect_load_error("deepseek-v3.f32", NULL, "deepseek2.expert_gating_func", 7,
                      "expert_gating_func");
    expect_load_error("deepseek-v3.f32", NULL, "deepseek2.attention.kv_lora_rank", 48,
                      "attn_kv_a_mqa.weight");
    expect_load_error("deepseek-v3.f32", NULL, "deepseek2.expert_group_count", 3,
                      "expert_group_count");
}

/* ---- expert bytes ------------------------------------------------------ */

/* One decode token reads exactly its chosen experts' slices: n_used of the
 * n_expert slices of gate, up and down, in each MoE layer. */
static void check_expert_bytes(const char *name) {
    char *path = shared_model(name);
    hearth_err err;
    model *m = model_load(path, NULL, &err);
    if (!m) fail_msg("%s", err.msg);
    const gguf_file *f = model_gguf(m);
    uint32_t n_expert, n_used, n_layer, n_dense;
    assert_int_equal(gguf_get_u32(f, "deepseek2.expert_count", &n_expert, &err), 0);
    assert_int_equal(gguf_get_u32(f, "deepseek2.expert_used_count", &n_used, &err), 0);
    assert_int_equal(gguf_get_u32(f, "deepseek2.block_count", &n_layer, &err), 0);
    assert_int_equal(gguf_get_u32(f, "deepseek2.leading_dense_block_count", &n_dense, &err), 0);
    uint64_t per_token = 0, all = 0;
    for (uint32_t l = n_dense; l < n_layer; l++) {
        static const char *const kinds[] = {"gate", "up", "down"};
        for (int k = 0; k < 3; k++) {
            char tn[64];
            snprintf(tn, sizeof(tn), "blk.%u.ffn_%s_exps.weight", l, kinds[k]);
            const gguf_tensor *t = gguf_find_tensor(f, tn);
            assert_non_null(t);
            assert_int_equal(t->ne[2], n_expert);
            assert_int_equal(t->nbytes % n_expert, 0);
            per_token += t->nbytes / n_expert * n_used;
            all += t->nbytes;
        }
    }
    model_ctx *c = model_ctx_new(m, 64, 64, &err);
    assert_non_null(c);
    const int V = model_hparams_of(m)->n_vocab;
    float *lg = malloc(sizeof(float) * (size_t)V);
    int32_t toks[9] = {5, 77, 300, 12, 9, 401, 64, 250, 3};
    uint64_t b0 = ds2_expert_bytes_read(m);
    assert_int_equal(model_eval(c, toks, 8, 0, lg, MODEL_LOGITS_LAST, &err), 0);
    uint64_t b1 = ds2_expert_bytes_read(m);
    /* The prefill reads each expert at most once per layer, however many of
     * its 8 tokens chose it (token by token it would be 8 * n_used slices per
     * layer, more than all n_expert). */
    assert_true(b1 - b0 <= all);
    assert_true(b1 - b0 >= per_token);
    assert_int_equal(model_eval(c, &toks[8], 1, 8, lg, MODEL_LOGITS_LAST, &err), 0);
    uint64_t b2 = ds2_expert_bytes_read(m);
    printf("%s: one decode token read %llu expert bytes of %llu (%u of %u experts)\n", name,
           (unsigned long long)(b2 - b1), (unsigned long long)all, n_used, n_expert);
    assert_int_equal(b2 - b1, per_token);
    assert_true(per_token < all);
    free(lg);
    model_ctx_free(c);
    model_free(m);
    free(path);
}

static void test_expert_bytes(void **state) {
    (void)state;
    check_expert_bytes("deepseek-v3.f32");
    check_expert_bytes("deepseek-v3.q4_k_m");
    check_expert_bytes("deepseek-v2-lite.q8_0");
}

/* ---- prefill and decode agree ----------------------------------------- */

/* A batch and token-by-token decode give bitwise the same logits: decode
 * runs a token's chosen experts in one call and the batch groups tokens by
 * expert, and both add the experts in the same order. Both tiers. */
static void check_prefill_equals_decode(const char *name) {
    char *path = shared_model(name);
    hearth_err err;
    model_params mp = model_default_params();
    mp.n_threads = 2;
    model *m = model_load(path, &mp, &err);
    if (!m) fail_msg("%s", err.msg);
    const int V = model_hparams_of(m)->n_vocab;
    enum { N = 12 };
    int32_t toks[N];
    for (int i = 0; i < N; i++) toks[i] = (int32_t)((i * 97 + 13) % V);
    model_ctx *c = model_ctx_new(m, 64, 64, &err);
    assert_non_null(c);
    float *all = malloc(sizeof(float) * N * (size_t)V), *one = malloc(sizeof(float) * (size_t)V);
    assert_int_equal(model_eval(c, toks, N, 0, all, MODEL_LOGITS_ALL, &err), 0);
    model_ctx_reset(c);
    for (int i = 0; i < N; i++) {
        assert_int_equal(model_eval(c, &toks[i], 1, i, one, MODEL_LOGITS_LAST, &err), 0);
        if (memcmp(one, all + (size_t)i * V, sizeof(float) * (size_t)V))
            fail_msg("%s (%s kernels): token %d alone differs from the batch", name, kern_name(),
                     i);
    }
    free(all);
    free(one);
    model_ctx_free(c);
    model_free(m);
    free(path);
}

static void test_prefill_equals_decode(void **state) {
    (void)state;
    const char *names[] = {"deepseek-v3.q4_k_m", "deepseek-v2-lite.q8_0", "deepseek-v3.f32"};
    const char *variants[] = {"ref", "avx2", "avx512", "neon"}; /* those this CPU runs */
    const char *start = kern_name();
    for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
        if (kern_select(variants[v], NULL) < 0) continue;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            check_prefill_equals_decode(names[i]);
    }
    assert_int_equal(kern_select(start, NULL), 0);
}

/* ---- KV cache size ----------------------------------------------------- */

static void add_zero(gguf_writer *w, const char *name, ht_type type, uint32_t n_dims, int64_t ne0,
                     int64_t ne1, int64_t ne2) {
    int64_t ne[3] = {ne0, ne1, ne2};
    size_t row;
    hearth_err err;
    assert_int_equal(ht_row_size(type, ne0, &row, &err), 0);
    size_t n = row * (size_t)ne1 * (size_t)ne2;
    void *d = calloc(n, 1);
    if (type == HT_F32 && n_dims == 1)
        for (int64_t i = 0; i < ne0; i++) ((float *)d)[i] = 1.0f; /* norm weights */
    assert_int_equal(gguf_writer_add_tensor(w, name, type, n_dims, ne, d, &err), 0);
    free(d);
}

/* A DeepSeek-V3-shaped attention (128 heads, q_lora_rank 1536 -> here 64,
 * kv_lora_rank 512, qk_nope 128, qk_rope 64, v 128) in the newer layout with
 * zero weights: the cache holds 512 + 64 values per token and layer, 1152
 * bytes in F16 (hearth keeps F32: 2304), where full per-head K and V would be
 * 128 * (192 + 128) values, 81920 bytes in F16. */
static void test_kv_bytes_v3_shape(void **state) {
    (void)state;
    const int E = 64, H = 128, QL = 64, KVR = 512, NOPE = 128, ROT = 64, V = 128, NL = 2;
    const int VOCAB = 32, FF = 32;
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "deepseek2");
    gguf_writer_set_u32(w, "deepseek2.context_length", 4096);
    gguf_writer_set_u32(w, "deepseek2.embedding_length", E);
    gguf_writer_set_u32(w, "deepseek2.block_count", NL);
    gguf_writer_set_u32(w, "deepseek2.feed_forward_length", FF);
    gguf_writer_set_u32(w, "deepseek2.leading_dense_block_count", NL);
    gguf_writer_set_u32(w, "deepseek2.attention.head_count", H);
    gguf_writer_set_u32(w, "deepseek2.attention.head_count_kv", 1);
    gguf_writer_set_u32(w, "deepseek2.attention.q_lora_rank", QL);
    gguf_writer_set_u32(w, "deepseek2.attention.kv_lora_rank", KVR);
    gguf_writer_set_u32(w, "deepseek2.attention.key_length", KVR + ROT);
    gguf_writer_set_u32(w, "deepseek2.attention.value_length", KVR);
    gguf_writer_set_u32(w, "deepseek2.attention.key_length_mla", NOPE + ROT);
    gguf_writer_set_u32(w, "deepseek2.attention.value_length_mla", V);
    gguf_writer_set_u32(w, "deepseek2.rope.dimension_count", ROT);
    gguf_writer_set_f32(w, "deepseek2.attention.layer_norm_rms_epsilon", 1e-6f);
    gguf_writer_set_str(w, "deepseek2.rope.scaling.type", "yarn");
    gguf_writer_set_f32(w, "deepseek2.rope.scaling.factor", 40.0f);
    gguf_writer_set_u32(w, "deepseek2.rope.scaling.original_context_length", 4096);
    gguf_writer_set_f32(w, "deepseek2.rope.scaling.yarn_log_multiplier", 0.1f);
    add_zero(w, "token_embd.weight", HT_F32, 2, E, VOCAB, 1);
    add_zero(w, "output_norm.weight", HT_F32, 1, E, 1, 1);
    add_zero(w, "output.weight", HT_F32, 2, E, VOCAB, 1);
    for (int l = 0; l < NL; l++) {
        char n[64];
#define T(s) (snprintf(n, sizeof(n), "blk.%d." s, l), n)
        add_zero(w, T("attn_norm.weight"), HT_F32, 1, E, 1, 1);
        add_zero(w, T("attn_q_a.weight"), HT_F32, 2, E, QL, 1);
        add_zero(w, T("attn_q_a_norm.weight"), HT_F32, 1, QL, 1, 1);
        add_zero(w, T("attn_q_b.weight"), HT_Q8_0, 2, QL, (int64_t)H * (NOPE + ROT), 1);
        add_zero(w, T("attn_kv_a_mqa.weight"), HT_F32, 2, E, KVR + ROT, 1);
        add_zero(w, T("attn_kv_a_norm.weight"), HT_F32, 1, KVR, 1, 1);
        add_zero(w, T("attn_k_b.weight"), HT_Q8_0, 3, NOPE, KVR, H);
        add_zero(w, T("attn_v_b.weight"), HT_Q8_0, 3, KVR, V, H);
        add_zero(w, T("attn_output.weight"), HT_Q8_0, 2, (int64_t)H * V, E, 1);
        add_zero(w, T("ffn_norm.weight"), HT_F32, 1, E, 1, 1);
        add_zero(w, T("ffn_gate.weight"), HT_F32, 2, E, FF, 1);
        add_zero(w, T("ffn_up.weight"), HT_F32, 2, E, FF, 1);
        add_zero(w, T("ffn_down.weight"), HT_F32, 2, FF, E, 1);
#undef T
    }
    char *path = tmp_path("v3shape");
    hearth_err err;
    if (gguf_writer_write(w, path, &err) < 0) fail_msg("%s", err.msg);
    gguf_writer_free(w);

    model_params mp = model_default_params();
    mp.n_threads = 2;
    model *m = model_load(path, &mp, &err);
    if (!m) fail_msg("%s", err.msg);
    const size_t per = model_kv_bytes_per_token(m);
    const size_t f16_latent = per / sizeof(float) * 2;
    const size_t f16_full = (size_t)H * (NOPE + ROT + V) * 2;
    printf("KV cache per token and layer: %zu B (F32), %zu B in F16; full K/V in F16: %zu B\n", per,
           f16_latent, f16_full);
    assert_int_equal(per, (KVR + ROT) * sizeof(float));
    assert_int_equal(f16_latent, 1152);
    assert_int_equal(f16_full, 81920);

    /* What a context really allocates grows by that much per position and
     * layer, plus what the attention scratch grows by. */
    model_ctx *c1 = model_ctx_new(m, 100, 8, &err), *c2 = model_ctx_new(m, 200, 8, &err);
    assert_non_null(c1);
    assert_non_null(c2);
    size_t grow = model_ctx_bytes(c2) - model_ctx_bytes(c1);
    const int nt = model_n_threads(m);
    const size_t scratch_grow =
        kern_attn_scratch_floats(nt, 200, H, KVR, 8) - kern_attn_scratch_floats(nt, 100, H, KVR, 8);
    assert_int_equal(grow, 100 * (size_t)NL * per + scratch_grow * sizeof(float));

    /* And it runs: zero weights give zero logits. */
    int32_t toks[3] = {1, 2, 3};
    float lg[3 * 32];
    assert_int_equal(model_eval(c1, toks, 3, 0, lg, MODEL_LOGITS_ALL, &err), 0);
    for (int i = 0; i < 3 * VOCAB; i++) assert_float_equal(lg[i], 0.0, 0.0);
    model_ctx_free(c1);
    model_ctx_free(c2);
    model_free(m);
    unlink(path);
    free(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_v3_groups),       cmocka_unit_test(test_route_v2_groups),
        cmocka_unit_test(test_router_check),          cmocka_unit_test(test_split_kv_b_v3),
        cmocka_unit_test(test_split_kv_b_v2_lite),    cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_expert_bytes),          cmocka_unit_test(test_kv_bytes_v3_shape),
        cmocka_unit_test(test_prefill_equals_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
