/* Benchmark shapes, bytes per token and the bandwidth probe. The real shapes
 * are checked by arithmetic (no big file is written); the tiny shapes are
 * written, read back and run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/bandwidth.h"
#include "bench/bench_shape.h"
#include "bench/bench_sol.h"
#include "gguf/gguf.h"
#include "model/model.h"

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/hearth-bench-test-XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    return rmdir(tmpdir);
}

static bench_bytes shape_bytes(const char *name, bench_ftype ft, double positions) {
    const bench_shape *s = bench_shape_find(name);
    assert_non_null(s);
    bench_tensor *t = NULL;
    size_t n = 0;
    hearth_err err;
    assert_int_equal(bench_shape_tensors(s, ft, &t, &n, &err), 0);
    bench_bytes b;
    bench_bytes_of(t, n, s->n_expert_used, bench_shape_kv_bytes(s), s->n_layer, positions, &b);
    free(t);
    return b;
}

/* Bytes of n elements: Q8_0 34 per 32, Q4_K 144 per 256, Q6_K 210 per 256,
 * Q5_0 22 per 32, F16 2, F32 4. */
#define Q8(n)  ((uint64_t)(n) / 32 * 34)
#define Q4K(n) ((uint64_t)(n) / 256 * 144)
#define Q6K(n) ((uint64_t)(n) / 256 * 210)
#define Q50(n) ((uint64_t)(n) / 32 * 22)
#define F16(n) ((uint64_t)(n)*2)
#define F32(n) ((uint64_t)(n)*4)

static bool more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static void test_qwen2_bytes_per_token(void **state) {
    (void)state;
    const uint64_t e = 1536, kv = 256, ff = 8960, V = 151936, L = 28;
    const uint64_t mat = e * e * 2 + e * kv * 2 + 3 * e * ff;   /* per layer */
    const uint64_t vec = (e + kv + kv) + 2 * e;                 /* biases, norms */
    const double pos = 64.5;                                    /* tg128: (128 + 1) / 2 */
    const uint64_t kvb = (uint64_t)(2 * 2 * 128 * 4 * L * pos); /* F32 K and V, 2 KV heads */

    bench_bytes b = shape_bytes("bench-qwen2-1.5b", BENCH_Q8_0, pos);
    assert_int_equal(b.weights, L * (Q8(mat) + F32(vec)) + Q8(V * e) + F32(e));
    assert_int_equal(b.embd_row, Q8(e));
    assert_int_equal(b.experts, 0);
    assert_int_equal(b.kv, kvb);
    assert_int_equal(b.total, b.weights + b.embd_row + b.kv);
    /* The README's figure: about 1.64 GB per token. */
    assert_true(b.total > 1.60e9 && b.total < 1.68e9);

    b = shape_bytes("bench-qwen2-1.5b", BENCH_F16, pos);
    assert_int_equal(b.weights, L * (F16(mat) + F32(vec)) + F16(V * e) + F32(e));
    assert_int_equal(b.embd_row, F16(e));
    assert_true(b.total > 3.0e9 && b.total < 3.2e9); /* "about 3.1 GB" */

    /* Q4_K_M: Q6_K for output and for attn_v / ffn_down where more_bits. */
    uint64_t w = Q6K(V * e) + F32(e);
    for (uint64_t i = 0; i < L; i++) {
        bool more = more_bits((int)i, (int)L);
        w += Q4K(e * e * 2 + e * kv + 2 * e * ff) + F32(vec);
        w += more ? Q6K(e * kv) + Q6K(e * ff) : Q4K(e * kv) + Q4K(e * ff);
    }
    b = shape_bytes("bench-qwen2-1.5b", BENCH_Q4_K_M, pos);
    assert_int_equal(b.weights, w);
    assert_int_equal(b.embd_row, Q4K(e));
    assert_true(b.total > 0.95e9 && b.total < 1.1e9); /* "about 1.0 GB" */
}

static void test_moe_bytes_per_token(void **state) {
    (void)state;
    const uint64_t e = 2048, V = 102400, L = 4, h = 16;
    const uint64_t attn =
        e * (512 + 64) + 512 * h * (128 + 128) + h * 128 * e + e * 1536 + 1536 * h * (128 + 64);
    const uint64_t norms = e + 512 + 1536 + e;
    const uint64_t dense_ffn = 3 * e * 10944, shared = 3 * e * 1408 * 2, router = e * 64;
    const uint64_t expert = 3 * e * 1408; /* one routed expert's three matrices */
    const double pos = 64.5;

    bench_bytes b = shape_bytes("bench-deepseek2-moe", BENCH_Q8_0, pos);
    uint64_t w = Q8(V * e) + F32(e) + L * (Q8(attn) + F32(norms)) + Q8(dense_ffn) +
                 (L - 1) * (Q8(shared) + F32(router));
    assert_int_equal(b.weights, w);
    assert_int_equal(b.experts, (L - 1) * 6 * Q8(expert));
    assert_int_equal(b.embd_row, Q8(e));
    assert_int_equal(b.kv, (uint64_t)((512 + 64) * 4 * L * pos)); /* MLA latent, F32 */

    /* Q4_K_M: ffn_down* counts 1 + 2 * 3 tensors, layer 2 gets more bits;
     * rows of 1408 and 10944 are not whole 256-blocks: Q4_K -> Q5_0,
     * Q6_K -> Q8_0. */
    b = shape_bytes("bench-deepseek2-moe", BENCH_Q4_K_M, pos);
    const uint64_t gu_exp = 2 * e * 1408, down_exp = 1408 * e;
    uint64_t ex = 0;
    for (int l = 1; l < 4; l++) ex += 6 * (Q4K(gu_exp) + (l == 2 ? Q8(down_exp) : Q50(down_exp)));
    assert_int_equal(b.experts, ex);
    uint64_t w4 =
        Q6K(V * e) + F32(e) + L * (Q4K(attn) + F32(norms)) + Q4K(2 * e * 10944) + Q50(10944 * e);
    for (int l = 1; l < 4; l++)
        w4 += Q4K(2 * e * 2816) + (l == 2 ? Q6K(2816 * e) : Q4K(2816 * e)) + F32(router);
    assert_int_equal(b.weights, w4);
    assert_int_equal(b.embd_row, Q4K(e));
}

/* Writes a tiny shape, reads it back, compares it with the tensor list,
 * runs it, and checks both byte counts agree. */
static void check_tiny(const char *name, bench_ftype ft) {
    const bench_shape *s = bench_shape_find(name);
    assert_non_null(s);
    char path[512];
    snprintf(path, sizeof path, "%s/%s.%s.gguf", tmpdir, name, bench_ftype_name(ft));
    hearth_err err;
    int rc = bench_shape_write(s, ft, 7, path, 1, &err);
    if (rc) fail_msg("%s", err.msg);

    bench_tensor *t = NULL;
    size_t n = 0;
    assert_int_equal(bench_shape_tensors(s, ft, &t, &n, &err), 0);
    gguf_file *f = gguf_open(path, &err);
    assert_non_null(f);
    assert_int_equal(gguf_n_tensors(f), n);
    for (size_t i = 0; i < n; i++) {
        const gguf_tensor *g = gguf_find_tensor(f, t[i].name);
        if (!g) fail_msg("tensor %s missing", t[i].name);
        assert_int_equal(g->type, t[i].type);
        assert_int_equal(g->nbytes, t[i].nbytes);
        for (int d = 0; d < 4; d++) assert_int_equal(g->ne[d], t[i].ne[d]);
    }
    gguf_close(f);

    model_params mp = model_default_params();
    mp.n_threads = 1;
    model *m = model_load(path, &mp, &err);
    if (!m) fail_msg("%s: %s", path, err.msg);
    const model_hparams *hp = model_hparams_of(m);
    assert_int_equal(hp->n_vocab, s->n_vocab);
    assert_int_equal(hp->n_layer, s->n_layer);
    assert_int_equal(model_kv_bytes_per_token(m), bench_shape_kv_bytes(s));
    model_ctx *c = model_ctx_new(m, 16, 8, &err);
    assert_non_null(c);
    float *logits = malloc(sizeof(float) * (size_t)hp->n_vocab);
    assert_non_null(logits);
    int32_t tok[5] = {1, 300, 77, 450, 5};
    assert_int_equal(model_eval(c, tok, 4, 0, logits, MODEL_LOGITS_LAST, &err), 0);
    assert_int_equal(model_eval(c, &tok[4], 1, 4, logits, MODEL_LOGITS_LAST, &err), 0);
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < hp->n_vocab; i++) {
        if (!isfinite(logits[i])) fail_msg("%s: logit %d is %f", path, i, (double)logits[i]);
        lo = fmin(lo, logits[i]), hi = fmax(hi, logits[i]);
    }
    assert_true(hi - lo > 1e-3); /* random weights give spread logits */

    bench_bytes a, b;
    assert_int_equal(bench_model_bytes(m, 10.0, &a, &err), 0);
    bench_bytes_of(t, n, s->n_expert_used, bench_shape_kv_bytes(s), s->n_layer, 10.0, &b);
    assert_memory_equal(&a, &b, sizeof a);
    char line[256];
    assert_int_equal(bench_sol_line(m, 0, 8, 0.5, 20.0, line, sizeof line), 0);
    assert_non_null(strstr(line, "GB/token"));
    assert_non_null(strstr(line, "% of 20.0 GB/s"));

    free(logits);
    model_ctx_free(c);
    model_free(m);
    free(t);
    assert_int_equal(unlink(path), 0);
}

static void test_tiny_qwen2(void **state) {
    (void)state;
    for (int ft = 0; ft < 3; ft++) check_tiny("tiny-qwen2", (bench_ftype)ft);
}

static void test_tiny_deepseek2(void **state) {
    (void)state;
    for (int ft = 0; ft < 3; ft++) check_tiny("tiny-deepseek2-moe", (bench_ftype)ft);
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)len);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* Same seed, same bytes whatever the thread count; another seed differs. */
static void test_seed(void **state) {
    (void)state;
    const bench_shape *s = bench_shape_find("tiny-qwen2");
    char a[512], b[512], c[512];
    snprintf(a, sizeof a, "%s/a.gguf", tmpdir);
    snprintf(b, sizeof b, "%s/b.gguf", tmpdir);
    snprintf(c, sizeof c, "%s/c.gguf", tmpdir);
    hearth_err err;
    assert_int_equal(bench_shape_write(s, BENCH_Q8_0, 3, a, 1, &err), 0);
    assert_int_equal(bench_shape_write(s, BENCH_Q8_0, 3, b, 2, &err), 0);
    assert_int_equal(bench_shape_write(s, BENCH_Q8_0, 4, c, 1, &err), 0);
    size_t na, nb, nc;
    unsigned char *pa = slurp(a, &na), *pb = slurp(b, &nb), *pc = slurp(c, &nc);
    assert_int_equal(na, nb);
    assert_int_equal(na, nc);
    assert_memory_equal(pa, pb, na);
    assert_memory_not_equal(pa, pc, na);
    free(pa), free(pb), free(pc);
    unlink(a), unlink(b), unlink(c);
}

/* Quantized blocks are made directly: their values must still have mean ~0
 * and std ~1/sqrt(row length), per type. */
static void check_values(const gguf_file *f, const char *name, ht_type want) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) fail_msg("no %s", name);
    assert_int_equal(t->type, want);
    int64_t n = gguf_tensor_n_elements(t);
    float *x = malloc(sizeof(float) * (size_t)n);
    assert_non_null(x);
    ht_dequantize_row(t->type, t->data, x, n);
    double s = 0, ss = 0;
    for (int64_t i = 0; i < n; i++) s += x[i], ss += (double)x[i] * x[i];
    double mean = s / (double)n, sd = sqrt(ss / (double)n - mean * mean);
    double want_sd = 1.0 / sqrt((double)t->ne[0]);
    if (fabs(mean) > 0.1 * want_sd || sd < 0.8 * want_sd || sd > 1.25 * want_sd)
        fail_msg("%s (%s): mean %g, std %g, expected 0 and %g", name, ht_type_get(t->type)->name,
                 mean, sd, want_sd);
    free(x);
}

static void test_values(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/v.gguf", tmpdir);
    hearth_err err;
    const bench_shape *s = bench_shape_find("tiny-deepseek2-moe");
    assert_int_equal(bench_shape_write(s, BENCH_Q4_K_M, 9, path, 1, &err), 0);
    gguf_file *f = gguf_open(path, &err);
    assert_non_null(f);
    check_values(f, "token_embd.weight", HT_Q4_K);
    check_values(f, "output.weight", HT_Q6_K);
    check_values(f, "blk.1.ffn_down_exps.weight", HT_Q5_0);
    check_values(f, "blk.2.ffn_down_exps.weight", HT_Q8_0);
    check_values(f, "blk.1.ffn_gate_inp.weight", HT_F32);
    gguf_close(f);
    assert_int_equal(bench_shape_write(s, BENCH_F16, 9, path, 1, &err), 0);
    f = gguf_open(path, &err);
    assert_non_null(f);
    check_values(f, "blk.0.attn_q_b.weight", HT_F16);
    gguf_close(f);
    unlink(path);
}

static void test_bandwidth(void **state) {
    (void)state;
    hearth_err err;
    for (int k = 0; k < 2; k++) {
        bw_result r;
        assert_int_equal(bw_measure(16 << 20, 2, (bw_pages)k, 2, &r, &err), 0);
        assert_true(r.gbs > 0 && isfinite(r.gbs));
        assert_true(r.mean_gbs > 0 && r.mean_gbs <= r.gbs);
        assert_int_equal(r.n_threads, 2);
        assert_true(r.bytes > (15 << 20) && r.bytes <= (16 << 20));
    }
    bw_result r;
    assert_int_equal(bw_measure(1024, 1, BW_PAGES_4K, 1, &r, &err), -1);
    assert_non_null(strstr(err.msg, "1 MiB"));
    assert_int_equal(bw_measure(16 << 20, 1, BW_PAGES_4K, 0, &r, &err), -1);
    assert_int_equal(bw_measure(16 << 20, 100000, BW_PAGES_4K, 1, &r, &err), -1);
    /* More than half of physical memory is refused before anything is
     * mapped or touched (a 1 TiB --size used to be memset whole). */
    size_t phys = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
    size_t big = phys / 2 + (64u << 20);
    if (big <= ((size_t)1 << 40)) {
        assert_int_equal(bw_measure(big, 1, BW_PAGES_4K, 1, &r, &err), -1);
        assert_non_null(strstr(err.msg, "half of this machine's"));
    }
    assert_int_equal(bw_measure((size_t)1 << 40, 1, BW_PAGES_4K, 1, &r, &err), -1);
}

static void test_names(void **state) {
    (void)state;
    assert_int_equal(bench_ftype_parse("q4_k_m"), BENCH_Q4_K_M);
    assert_int_equal(bench_ftype_parse("F16"), BENCH_F16);
    assert_int_equal(bench_ftype_parse("Q5_K"), -1);
    assert_null(bench_shape_find("nope"));
    assert_non_null(bench_shape_find("bench-deepseek2-moe"));
    assert_int_equal(bench_mean_kv_positions(0, 128), 64.5);
    assert_int_equal(bench_mean_kv_positions(512, 1), 513);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_qwen2_bytes_per_token),
        cmocka_unit_test(test_moe_bytes_per_token),
        cmocka_unit_test(test_tiny_qwen2),
        cmocka_unit_test(test_tiny_deepseek2),
        cmocka_unit_test(test_seed),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_bandwidth),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
