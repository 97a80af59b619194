/* Reference kernels against naive double-precision computations: matmul for
 * every weight type (against dequantize-then-dot), rope in both pairings
 * with frequency factors and YaRN, rmsnorm, softmax, swiglu, attention.
 * Every active variant is checked: ref, and the default if it differs. */
#include <math.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/kernels.h"
#include "kernels/ref.h"
#include "kern_test_util.h"

static void check_matmul_shape(ht_type type, tp_pool *pool, int n_tok, int64_t n_cols,
                               int64_t n_rows) {
    const size_t ldx = n_cols + 3, ldy = n_rows + 2;
    size_t rb;
    void *wd = ktu_random_matrix(type, n_cols, n_rows, &rb);
    assert_non_null(wd);
    kern_mat w;
    hearth_err err;
    assert_int_equal(kern_mat_init(&w, type, n_cols, n_rows, wd, &err), 0);
    assert_int_equal(w.row_bytes, rb);
    float *x = malloc(sizeof(float) * ldx * n_tok);
    float *y = malloc(sizeof(float) * ldy * n_tok);
    float *row = malloc(sizeof(float) * n_cols);
    for (size_t i = 0; i < ldx * n_tok; i++) x[i] = ktu_frand();
    for (size_t i = 0; i < ldy * n_tok; i++) y[i] = 12345.0f; /* padding must stay */
    kern_matmul(pool, &w, x, ldx, y, ldy, n_tok);
    /* Fast variants round activations to 8-bit blocks for some weight types
     * (x ~ d*q, d = max|x|/127 over kern_act_block(type) values, q =
     * round(x * 127/max|x|)): the expected value is then the exact dot with
     * those activations. */
    const int64_t ab0 = kern_act_block(type);
    const bool act_q8 = ab0 > 0;
    const int64_t ab = act_q8 ? ab0 : 32;
    /* or weights and activations both rounded to BF16 */
    const bool bf = kern_act_bf16(type);
    for (int64_t r = 0; r < n_rows; r++) {
        ht_dequantize_row(type, (const uint8_t *)wd + r * rb, row, n_cols);
        for (int64_t c = 0; bf && c < n_cols; c++) row[c] = ktu_bf16(row[c]);
        for (int t = 0; t < n_tok; t++) {
            double ref = 0, mag = 0;
            for (int64_t c0 = 0; c0 < n_cols; c0 += ab) {
                const int64_t ce = c0 + ab < n_cols ? c0 + ab : n_cols;
                float amax = 0;
                for (int64_t c = c0; c < ce; c++) amax = fmaxf(amax, fabsf(x[t * ldx + c]));
                float id = amax > 0 ? 127.0f / amax : 0.0f;
                for (int64_t c = c0; c < ce; c++) {
                    double xv = x[t * ldx + c];
                    if (act_q8) xv = (double)(amax / 127.0f) * nearbyintf(x[t * ldx + c] * id);
                    if (bf) xv = ktu_bf16(x[t * ldx + c]);
                    ref += (double)row[c] * xv;
                    mag += fabs((double)row[c] * xv);
                }
            }
            assert_true(isfinite(ref));
            double got = y[t * ldy + r];
            if (!(fabs(got - ref) <= 1e-5 * mag + 1e-30))
                fail_msg("%s row %lld tok %d: got %.9g, expected %.9g (mag %g)",
                         ht_type_get(type)->name, (long long)r, t, got, ref, mag);
        }
    }
    for (int t = 0; t < n_tok; t++)
        for (size_t r = n_rows; r < ldy; r++) assert_true(y[t * ldy + r] == 12345.0f);

    /* embedding row fetch equals the dequantized row */
    kern_get_row(&w, n_rows - 1, x);
    ht_dequantize_row(type, (const uint8_t *)wd + (n_rows - 1) * rb, row, n_cols);
    assert_memory_equal(x, row, sizeof(float) * n_cols);
    free(wd);
    free(x);
    free(y);
    free(row);
}

static void check_matmul_type(ht_type type, tp_pool *pool, int n_tok) {
    /* several chunks, a partial row tile */
    check_matmul_shape(type, pool, n_tok, 2304, 13);
    /* odd sizes: 3 blocks (or superblocks), rows not a multiple of 4; float
     * types with a tail after the last 16 columns */
    int64_t bs = ht_type_get(type)->block_size;
    check_matmul_shape(type, pool, n_tok, bs == 1 ? 37 : 3 * bs, 7);
}

static void test_matmul(void **state) {
    (void)state;
    hearth_err err;
    tp_pool *pool = tp_new(3, &err);
    assert_non_null(pool);
    for (size_t i = 0; i < sizeof(ktu_layouts) / sizeof(ktu_layouts[0]); i++) {
        check_matmul_type(ktu_layouts[i].type, NULL, 5);
        check_matmul_type(ktu_layouts[i].type, pool, 5);
        check_matmul_type(ktu_layouts[i].type, pool, 1);
        /* 16-token AMX groups and a remainder (avx512 where AMX is on) */
        check_matmul_type(ktu_layouts[i].type, pool, 37);
    }
    tp_free(pool);
}

/* Results do not depend on the thread count or the batch: token t of a
 * batch gets bitwise the same row as token t alone (so prefill and decode
 * agree exactly). */
/* y1 = the batch of T tokens (no pool), y2 = with pool8, then each token
 * alone with pool: all bitwise equal. */
static void check_identical(ht_type type, tp_pool *pool, tp_pool *pool8, int T, int C, int R) {
    hearth_err err;
    float *x = malloc(sizeof(float) * T * C), *y1 = malloc(sizeof(float) * T * R);
    float *y2 = malloc(sizeof(float) * T * R);
    for (int i = 0; i < T * C; i++) x[i] = ktu_frand();
    size_t rb;
    void *wd = ktu_random_matrix(type, C, R, &rb);
    assert_non_null(wd);
    kern_mat w;
    assert_int_equal(kern_mat_init(&w, type, C, R, wd, &err), 0);
    kern_matmul(NULL, &w, x, C, y1, R, T);  /* tiles of 16 rows */
    kern_matmul(pool8, &w, x, C, y2, R, T); /* tiles of 9 rows */
    assert_memory_equal(y1, y2, sizeof(float) * T * R);
    for (int t = 0; t < T; t++) {
        kern_matmul(pool, &w, x + t * C, C, y2, R, 1);
        if (memcmp(y1 + t * R, y2, sizeof(float) * R))
            fail_msg("%s [%d x %d]: token %d alone differs from the batch", ht_type_get(type)->name,
                     R, C, t);
    }
    free(wd);
    free(x);
    free(y1);
    free(y2);
}

/* Results do not depend on the thread count or the batch: token t of a
 * batch gets bitwise the same row as token t alone (so prefill and decode
 * agree exactly). */
static void test_matmul_threads_identical(void **state) {
    (void)state;
    hearth_err err;
    tp_pool *pool = tp_new(4, &err), *pool8 = tp_new(8, &err);
    for (size_t k = 0; k < sizeof(ktu_layouts) / sizeof(ktu_layouts[0]); k++)
        check_identical(ktu_layouts[k].type, pool, pool8, 6, 512, 300);
    /* float rows with a tail, row count not a multiple of 4 */
    check_identical(HT_F32, pool, pool8, 5, 37, 7);
    check_identical(HT_F16, pool, pool8, 5, 37, 7);
    tp_free(pool);
    tp_free(pool8);
}

/* kern_matmul_n: several matrices of mixed types on one input give bitwise
 * what kern_matmul gives for each alone, batch or single token, any pool. */
static void test_matmul_n(void **state) {
    (void)state;
    hearth_err err;
    tp_pool *pool = tp_new(3, &err);
    assert_non_null(pool);
    const ht_type types[] = {HT_Q8_0, HT_Q4_K, HT_F16, HT_Q6_K, HT_Q5_0, HT_Q4_0, HT_BF16, HT_F32};
    enum { NW = sizeof(types) / sizeof(types[0]), C = 512 };
    const int rows[NW] = {40, 17, 9, 33, 64, 5, 12, 3};
    for (int T = 1; T <= 7; T += 6) {
        float *x = malloc(sizeof(float) * C * T);
        for (int i = 0; i < C * T; i++) x[i] = ktu_frand();
        void *wd[NW];
        kern_mat w[NW];
        kern_mm mm[NW];
        float *y1[NW], *y2[NW];
        for (int i = 0; i < NW; i++) {
            size_t rb;
            wd[i] = ktu_random_matrix(types[i], C, rows[i], &rb);
            assert_non_null(wd[i]);
            assert_int_equal(kern_mat_init(&w[i], types[i], C, rows[i], wd[i], &err), 0);
            y1[i] = malloc(sizeof(float) * (rows[i] + 1) * T);
            y2[i] = calloc((size_t)(rows[i] + 1) * T, sizeof(float));
            kern_matmul(pool, &w[i], x, C, y1[i], rows[i] + 1, T);
            mm[i] = (kern_mm){&w[i], y2[i], (size_t)rows[i] + 1};
        }
        for (int p = 0; p < 2; p++) {
            kern_matmul_n(p ? pool : NULL, mm, NW, x, C, T);
            for (int i = 0; i < NW; i++)
                for (int t = 0; t < T; t++)
                    if (memcmp(y1[i] + t * (rows[i] + 1), y2[i] + t * (rows[i] + 1),
                               sizeof(float) * rows[i]))
                        fail_msg("matmul_n: %s token %d of %d differs from kern_matmul",
                                 ht_type_get(types[i])->name, t, T);
        }
        for (int i = 0; i < NW; i++) {
            free(wd[i]);
            free(y1[i]);
            free(y2[i]);
        }
        free(x);
    }
    tp_free(pool);
}

static void test_mat_init_errors(void **state) {
    (void)state;
    kern_mat w;
    hearth_err err;
    char dummy[64] = {0};
    assert_int_equal(kern_mat_init(&w, HT_Q4_0, 33, 1, dummy, &err), -1);
    assert_int_equal(kern_mat_init(&w, (ht_type)99, 32, 1, dummy, &err), -1);
    assert_int_equal(kern_mat_init(&w, HT_F32, 0, 1, dummy, &err), -1);
}

static void test_rmsnorm(void **state) {
    (void)state;
    enum { N = 300, T = 3 };
    float x[T * N], w[N], y[T * N];
    for (int i = 0; i < T * N; i++) x[i] = ktu_frand() * 3;
    for (int i = 0; i < N; i++) w[i] = ktu_frand();
    kern_rmsnorm(y, x, w, N, T, 1e-5f);
    for (int t = 0; t < T; t++) {
        double ss = 0;
        for (int i = 0; i < N; i++) ss += (double)x[t * N + i] * x[t * N + i];
        double s = 1 / sqrt(ss / N + 1e-5);
        for (int i = 0; i < N; i++) assert_float_equal(y[t * N + i], x[t * N + i] * s * w[i], 1e-6);
    }
    kern_rmsnorm(x, x, NULL, N, T, 1e-5f); /* in place, no weight */
    for (int t = 0; t < T; t++) {
        double ss = 0;
        for (int i = 0; i < N; i++) ss += (double)x[t * N + i] * x[t * N + i];
        assert_float_equal(ss / N, 1.0, 1e-4);
    }
}

static void test_softmax_swiglu_add(void **state) {
    (void)state;
    enum { N = 257 };
    float x[N], g[N], u[N], o[N];
    double ref[N], sum = 0, mx = -1e30;
    for (int i = 0; i < N; i++) {
        x[i] = ktu_frand() * 50 + 1000; /* large offsets: must not overflow */
        if (x[i] > mx) mx = x[i];
    }
    for (int i = 0; i < N; i++) sum += ref[i] = exp((double)x[i] - mx);
    kern_softmax(x, N);
    for (int i = 0; i < N; i++)
        assert_float_equal(x[i], ref[i] / sum, 1e-6 * (ref[i] / sum) + 1e-12);
    for (int i = 0; i < N; i++) {
        g[i] = ktu_frand() * 8;
        u[i] = ktu_frand();
    }
    kern_swiglu(o, g, u, N);
    for (int i = 0; i < N; i++) {
        double s = g[i] / (1 + exp(-(double)g[i])) * u[i];
        assert_float_equal(o[i], s, 1e-6 * fabs(s) + 1e-7);
    }
    memcpy(o, u, sizeof(o));
    kern_add(o, g, N);
    for (int i = 0; i < N; i++) assert_true(o[i] == u[i] + g[i]);
    float b[4] = {1, 2, 3, 4}, y[8] = {0};
    kern_add_bias(y, b, 4, 2);
    for (int i = 0; i < 8; i++) assert_true(y[i] == b[i % 4]);
}

/* Naive rope in double, straight from the definition in kernels.h. */
static void naive_rope(const kern_rope_params *p, double *x, int head_dim, int n_head, double pos) {
    int half = p->n_rot / 2;
    for (int h = 0; h < n_head; h++) {
        double *xh = x + h * head_dim;
        for (int i = 0; i < half; i++) {
            double te = pos / pow(p->freq_base, 2.0 * i / p->n_rot);
            if (p->freq_factors) te /= p->freq_factors[i];
            double ti = te * p->freq_scale, th = ti, ms = p->attn_factor;
            if (p->ext_factor != 0) {
                double y = (i - p->corr_dims[0]) / fmax(0.001, p->corr_dims[1] - p->corr_dims[0]);
                double ramp = (1 - fmin(1, fmax(0, y))) * p->ext_factor;
                th = ti * (1 - ramp) + te * ramp;
                ms *= 1 + 0.1 * log(1 / p->freq_scale);
            }
            int a = p->mode == KERN_ROPE_NEOX ? i : 2 * i;
            int b = p->mode == KERN_ROPE_NEOX ? i + half : 2 * i + 1;
            double x0 = xh[a], x1 = xh[b];
            xh[a] = (x0 * cos(th) - x1 * sin(th)) * ms;
            xh[b] = (x0 * sin(th) + x1 * cos(th)) * ms;
        }
    }
}

static void check_rope(kern_rope_params p, int head_dim) {
    enum { T = 3, H = 2 };
    const size_t ld = H * head_dim + 5;
    float *x = malloc(sizeof(float) * ld * T);
    double *ref = malloc(sizeof(double) * ld * T);
    int32_t pos[T] = {0, 17, 4000};
    for (size_t i = 0; i < ld * T; i++) ref[i] = x[i] = ktu_frand();
    kern_rope(&p, x, ld, T, H, head_dim, pos);
    for (int t = 0; t < T; t++) naive_rope(&p, ref + t * ld, head_dim, H, pos[t]);
    for (size_t i = 0; i < ld * T; i++) assert_float_equal(x[i], ref[i], 2e-6);
    free(x);
    free(ref);
}

static void test_rope(void **state) {
    (void)state;
    float ff[16];
    for (int i = 0; i < 16; i++) ff[i] = 1.0f + (float)i * 0.5f;
    for (int mode = 0; mode <= 2; mode += 2) {
        kern_rope_params p = kern_rope_default((kern_rope_mode)mode, 64, 10000.0f);
        check_rope(p, 64);
        p = kern_rope_default((kern_rope_mode)mode, 32, 500000.0f); /* partial rotation */
        p.freq_factors = ff;
        check_rope(p, 48);
        p = kern_rope_default((kern_rope_mode)mode, 32, 10000.0f); /* YaRN */
        p.freq_scale = 0.25f;
        p.ext_factor = 1.0f;
        p.attn_factor = 1.0f;
        p.corr_dims[0] = 3.5f;
        p.corr_dims[1] = 11.2f;
        check_rope(p, 32);
    }
    /* NORM and NEOX really differ */
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[8];
    memcpy(b, a, sizeof(a));
    int32_t pos = 3;
    kern_rope_params pn = kern_rope_default(KERN_ROPE_NORM, 8, 10000.0f);
    kern_rope_params px = kern_rope_default(KERN_ROPE_NEOX, 8, 10000.0f);
    kern_rope(&pn, a, 8, 1, 1, 8, &pos);
    kern_rope(&px, b, 8, 1, 1, 8, &pos);
    assert_true(fabsf(a[1] - b[1]) > 1e-3f);
}

static void test_attention(void **state) {
    (void)state;
    enum { T = 3, NKV = 9, H = 4, HKV = 2, DK = 24, DV = 16 };
    float q[T * H * DK], k[NKV * HKV * DK], v[NKV * HKV * DV], out[T * H * DV];
    for (size_t i = 0; i < sizeof(q) / 4; i++) q[i] = ktu_frand();
    for (size_t i = 0; i < sizeof(k) / 4; i++) k[i] = ktu_frand();
    for (size_t i = 0; i < sizeof(v) / 4; i++) v[i] = ktu_frand();
    int32_t pos[T] = {6, 7, 8};
    hearth_err err;
    tp_pool *pool = tp_new(2, &err);
    float *scratch = malloc(sizeof(float) * kern_attn_scratch_floats(2, NKV, H, DV, T));
    kern_attn a = {.n_tok = T,
                   .n_kv = NKV,
                   .n_head = H,
                   .n_head_kv = HKV,
                   .head_dim_k = DK,
                   .head_dim_v = DV,
                   .scale = 0.3f,
                   .pos = pos,
                   .q = q,
                   .ldq = H * DK,
                   .k = k,
                   .ldk = HKV * DK,
                   .v = v,
                   .ldv = HKV * DV,
                   .out = out,
                   .ldo = H * DV,
                   .scratch = scratch};
    kern_attention(pool, &a);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            int g = h / (H / HKV);
            double s[NKV], mx = -1e30, sum = 0;
            for (int j = 0; j <= pos[t]; j++) {
                double d = 0;
                for (int e = 0; e < DK; e++)
                    d += (double)q[t * H * DK + h * DK + e] * k[j * HKV * DK + g * DK + e];
                s[j] = 0.3 * d;
                if (s[j] > mx) mx = s[j];
            }
            for (int j = 0; j <= pos[t]; j++) sum += s[j] = exp(s[j] - mx);
            for (int e = 0; e < DV; e++) {
                double o = 0;
                for (int j = 0; j <= pos[t]; j++) o += s[j] / sum * v[j * HKV * DV + g * DV + e];
                assert_float_equal(out[t * H * DV + h * DV + e], o, 1e-5);
            }
        }
    free(scratch);
    tp_free(pool);
}

/* kern_matmul_kn: close to the double-precision sum, each token's row
 * bitwise the same alone as in the batch, padding of y untouched; shapes
 * with column tails of every length and batches beyond one tile of 4. */
static void test_matmul_kn(void **state) {
    (void)state;
    static const int shapes[][3] = {{128, 512, 7}, {5, 37, 5}, {3, 8, 1},   {1, 33, 4},
                                    {64, 100, 9},  {7, 1, 3},  {16, 63, 2}, {2, 40, 6}};
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        const int k = shapes[s][0], m = shapes[s][1], T = shapes[s][2];
        const size_t ldx = (size_t)k + 3, ldb = (size_t)m + 5, ldy = (size_t)m + 2;
        float *x = malloc(sizeof(float) * ldx * (size_t)T), *b = malloc(sizeof(float) * ldb * k);
        float *y = malloc(sizeof(float) * ldy * (size_t)T), *y1 = malloc(sizeof(float) * ldy);
        assert_true(x && b && y && y1);
        for (size_t i = 0; i < ldx * (size_t)T; i++) x[i] = ktu_frand();
        for (size_t i = 0; i < ldb * (size_t)k; i++) b[i] = ktu_frand();
        for (size_t i = 0; i < ldy * (size_t)T; i++) y[i] = 12345.0f;
        kern_matmul_kn(x, ldx, b, ldb, k, m, y, ldy, T);
        for (int t = 0; t < T; t++) {
            for (int i = 0; i < m; i++) {
                double ref = 0, mag = 0;
                for (int d = 0; d < k; d++) {
                    ref += (double)x[(size_t)t * ldx + d] * b[(size_t)d * ldb + i];
                    mag += fabs((double)x[(size_t)t * ldx + d] * b[(size_t)d * ldb + i]);
                }
                const double got = y[(size_t)t * ldy + i];
                if (!(fabs(got - ref) <= 1e-5 * mag + 1e-30))
                    fail_msg("kn %d x %d, token %d col %d: %.9g, expected %.9g", k, m, t, i, got,
                             ref);
            }
            for (size_t i = (size_t)m; i < ldy; i++)
                assert_true(y[(size_t)t * ldy + i] == 12345.0f);
            kern_matmul_kn(x + (size_t)t * ldx, ldx, b, ldb, k, m, y1, ldy, 1);
            if (memcmp(y1, y + (size_t)t * ldy, sizeof(float) * (size_t)m))
                fail_msg("kn %d x %d: token %d alone differs from the batch of %d", k, m, t, T);
        }
        free(x);
        free(b);
        free(y);
        free(y1);
    }
}

/* Dispatch: ref always exists; the default is neon on aarch64, avx512 where the
 * CPU has AVX-512 VNNI, else avx2 where it has AVX2 (unless HEARTH_KERNELS
 * names a variant; avx512emu only so); unknown names are refused. */
static const char *initial; /* the variant chosen at start-up */

static void test_dispatch(void **state) {
    (void)state;
    const char *env = getenv("HEARTH_KERNELS");
    const char *before = kern_name();
    if (!env || !*env)
        assert_string_equal(initial, kern_neon_supported()     ? "neon"
                                     : kern_avx512_supported() ? "avx512"
                                     : kern_avx2_supported()   ? "avx2"
                                                               : "ref");
    if (env && !strcmp(env, "avx2"))
        assert_string_equal(initial, kern_avx2_supported() ? "avx2" : "ref");
    if (env && !strcmp(env, "avx512"))
        assert_string_equal(initial, kern_avx512_supported() ? "avx512" : "ref");
    /* avx512 runs only where avx2 does */
    if (kern_avx512_supported()) assert_true(kern_avx2_supported());
    if (env && !strcmp(env, "neon"))
        assert_string_equal(initial, kern_neon_supported() ? "neon" : "ref");
    if (env && !strcmp(env, "ref")) assert_string_equal(initial, "ref");
    /* test programs link avx512emu (tests/CMakeLists.txt): by name only */
    if (env && !strcmp(env, "avx512emu"))
        assert_string_equal(initial, kern_avx512emu_supported() ? "avx512emu" : "ref");
    /* scripts/test-neon.sh says which NEON dot path the emulated CPU must get */
    const char *sdot = getenv("HEARTH_EXPECT_SDOT");
    if (sdot && *sdot) assert_int_equal(kern_neon_uses_sdot(), !strcmp(sdot, "1"));
    hearth_err err;
    assert_int_equal(kern_select("nonesuch", &err), -1);
    assert_non_null(strstr(err.msg, "nonesuch"));
    assert_string_equal(kern_name(), before);
    assert_int_equal(kern_select("ref", &err), 0);
    assert_string_equal(kern_name(), "ref");
    assert_int_equal(kern_select(before, &err), 0);
}

/* kern_get_row (embedding rows, MLA's attn_kv_b rows) gives bitwise what
 * ht_dequantize_row gives, for every type, in every variant. */
static void test_get_row(void **state) {
    (void)state;
    for (size_t k = 0; k < sizeof(ktu_layouts) / sizeof(ktu_layouts[0]); k++) {
        const ht_type type = ktu_layouts[k].type;
        const int64_t C = 512, R = 5;
        size_t rb;
        void *wd = ktu_random_matrix(type, C, R, &rb);
        assert_non_null(wd);
        kern_mat w;
        hearth_err err;
        assert_int_equal(kern_mat_init(&w, type, C, R, wd, &err), 0);
        float got[512], want[512];
        for (int64_t r = 0; r < R; r++) {
            kern_get_row(&w, r, got);
            ht_dequantize_row(type, (const uint8_t *)wd + (size_t)r * rb, want, C);
            if (memcmp(got, want, sizeof got))
                fail_msg("%s: row %lld differs from dequantize_row", ht_type_get(type)->name,
                         (long long)r);
        }
        free(wd);
    }
}

static int use_ref(void **state) {
    (void)state;
    return kern_select("ref", NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul),    cmocka_unit_test(test_matmul_threads_identical),
        cmocka_unit_test(test_matmul_n),  cmocka_unit_test(test_mat_init_errors),
        cmocka_unit_test(test_rmsnorm),   cmocka_unit_test(test_softmax_swiglu_add),
        cmocka_unit_test(test_rope),      cmocka_unit_test(test_attention),
        cmocka_unit_test(test_dispatch),  cmocka_unit_test(test_get_row),
        cmocka_unit_test(test_matmul_kn),
    };
    /* The default variant first, then ref (the same when no fast variant exists). */
    ktu_seed(88172645463325252ull);
    const char *def = initial = kern_name();
    int fails = cmocka_run_group_tests_name(def, tests, NULL, NULL);
    if (strcmp(def, "ref")) fails += cmocka_run_group_tests_name("ref", tests, use_ref, NULL);
    return fails;
}
