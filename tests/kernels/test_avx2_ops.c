/* The AVX2 small ops (src/kernels/avx2_ops.c) against double precision and
 * the reference kernels, over more shapes than test_kernels: every tail
 * length, exp's whole range (denormals, overflow), rope bitwise equal to the
 * reference, attention with odd head widths and MLA-like shapes. Skipped
 * (passes trivially, saying so) where the CPU has no AVX2. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels/avx2_ops.h"
#include "kernels/kernels.h"
#include "kernels/ref.h"
#include "kern_test_util.h"

static bool have_avx2(void) {
    if (kern_avx2_supported()) return true;
    printf("no AVX2 on this CPU: nothing to test\n");
    return false;
}

/* softmax of n values spread over `spread`, for every n in 1..70 (all tails)
 * and a long row; relative error against double. */
static void test_softmax(void **state) {
    (void)state;
    if (!have_avx2()) return;
    static float x[5000];
    static double ref[5000];
    double worst = 0;
    for (int n = 1; n <= 5000; n = n < 70 ? n + 1 : n * 3) {
        for (int rep = 0; rep < 3; rep++) {
            double spread = rep == 0 ? 1 : rep == 1 ? 30 : 200; /* 200: some exps underflow */
            double mx = -1e300, sum = 0;
            for (int i = 0; i < n; i++) {
                x[i] = (float)(ktu_frand() * spread + 1000);
                if (x[i] > mx) mx = x[i];
            }
            for (int i = 0; i < n; i++) sum += ref[i] = exp((double)x[i] - mx);
            kern_avx2_softmax(x, n);
            for (int i = 0; i < n; i++) {
                double want = ref[i] / sum, err = fabs(x[i] - want);
                if (err > 1e-6 * want + 1e-37)
                    fail_msg("softmax n=%d spread %g [%d]: %.9g, want %.9g", n, spread, i,
                             (double)x[i], want);
                if (want > 1e-30 && err / want > worst) worst = err / want;
            }
        }
    }
    printf("softmax: worst relative error %.3g\n", worst);
}

/* swiglu over exp's whole range: the reference formula in double. */
static void test_swiglu(void **state) {
    (void)state;
    if (!have_avx2()) return;
    enum { N = 4099 };
    static float g[N], u[N], o[N];
    for (int i = 0; i < N; i++) {
        g[i] = (float)((ktu_urand() * 2 - 1) * (i % 3 == 0 ? 120 : i % 3 == 1 ? 20 : 2));
        u[i] = ktu_frand() * 4;
    }
    g[0] = 0;
    g[1] = -104.5f;
    g[2] = 89.0f;
    g[3] = -88.0f;
    g[4] = 87.5f;
    g[5] = -1e-30f;
    double worst = 0;
    for (int n = 1; n <= N; n = n < 40 ? n + 1 : n * 2 + 1) {
        memset(o, 0, sizeof(o));
        kern_avx2_swiglu(o, g, u, n);
        for (int i = 0; i < n; i++) {
            double s = (double)g[i] / (1 + exp(-(double)g[i])) * u[i];
            double err = fabs(o[i] - s);
            if (!(err <= 1e-6 * fabs(s) + 1e-30)) /* below 1e-30: expf overflows, as in ref */
                fail_msg("swiglu n=%d [%d]: g %g u %g -> %.9g, want %.9g", n, i, (double)g[i],
                         (double)u[i], (double)o[i], s);
            if (fabs(s) > 1e-30 && err / fabs(s) > worst) worst = err / fabs(s);
        }
        for (int i = n; i < N; i++) assert_true(o[i] == 0); /* nothing past the end */
    }
    /* in place, aliasing gate */
    memcpy(o, g, sizeof(o));
    kern_avx2_swiglu(o, o, u, N);
    for (int i = 0; i < N; i++) {
        float want;
        kern_avx2_swiglu(&want, &g[i], &u[i], 1);
        assert_true(o[i] == want || (isnan(o[i]) && isnan(want)));
    }
    printf("swiglu: worst relative error %.3g\n", worst);
}

/* rmsnorm: double reference, every tail, with and without weights, in place. */
static void test_rmsnorm(void **state) {
    (void)state;
    if (!have_avx2()) return;
    enum { T = 3 };
    static float x[T * 2100], y[T * 2100], w[2100];
    for (int n = 1; n <= 2100; n = n < 40 ? n + 1 : n * 2 + 7) {
        for (int i = 0; i < T * n; i++) x[i] = ktu_frand() * 5;
        for (int i = 0; i < n; i++) w[i] = ktu_frand();
        kern_avx2_rmsnorm(y, x, w, n, T, 1e-6f);
        for (int t = 0; t < T; t++) {
            double ss = 0;
            for (int i = 0; i < n; i++) ss += (double)x[t * n + i] * x[t * n + i];
            double s = 1 / sqrt(ss / n + 1e-6);
            for (int i = 0; i < n; i++) {
                double want = x[t * n + i] * s * w[i];
                if (fabs(y[t * n + i] - want) > 1e-6 * fabs(want) + 1e-7)
                    fail_msg("rmsnorm n=%d t=%d [%d]: %.9g, want %.9g", n, t, i,
                             (double)y[t * n + i], want);
            }
        }
        memcpy(y, x, sizeof(float) * T * n);
        kern_avx2_rmsnorm(x, x, NULL, n, T, 1e-6f); /* in place, no weight */
        for (int t = 0; t < T; t++) {
            double ss = 0;
            for (int i = 0; i < n; i++) ss += (double)y[t * n + i] * y[t * n + i];
            double s = 1 / sqrt(ss / n + 1e-6);
            for (int i = 0; i < n; i++) {
                double want = y[t * n + i] * s;
                if (fabs(x[t * n + i] - want) > 1e-6 * fabs(want) + 1e-7)
                    fail_msg("rmsnorm in place n=%d t=%d [%d]: %.9g, want %.9g", n, t, i,
                             (double)x[t * n + i], want);
            }
        }
    }
}

/* rope: bitwise the reference, both pairings, factors, YaRN, partial
 * rotation, odd pair counts (tails of the vector loops). */
static void test_rope(void **state) {
    (void)state;
    if (!have_avx2()) return;
    float ff[64];
    for (int i = 0; i < 64; i++) ff[i] = 1.0f + (float)i * 0.25f;
    const int rots[] = {2, 6, 14, 16, 18, 32, 64, 128};
    for (int mode = 0; mode <= 2; mode += 2)
        for (size_t r = 0; r < sizeof(rots) / sizeof(rots[0]); r++)
            for (int var = 0; var < 3; var++) {
                const int n_rot = rots[r], hd = n_rot + (var == 1 ? 10 : 0), H = 3, T = 4;
                kern_rope_params p = kern_rope_default((kern_rope_mode)mode, n_rot, 10000.0f);
                if (var == 1) p.freq_factors = ff;
                if (var == 2) {
                    p.freq_scale = 0.025f;
                    p.ext_factor = 1.0f;
                    p.attn_factor = 0.7f;
                    p.corr_dims[0] = 1.0f;
                    p.corr_dims[1] = (float)n_rot / 2 - 1;
                }
                const size_t ld = (size_t)H * hd + 3;
                float *a = malloc(sizeof(float) * ld * T), *b = malloc(sizeof(float) * ld * T);
                for (size_t i = 0; i < ld * T; i++) a[i] = b[i] = ktu_frand() * 3;
                int32_t pos[4] = {0, 1, 77, 40000};
                kern_ref_rope(&p, a, ld, T, H, hd, pos);
                kern_avx2_rope(&p, b, ld, T, H, hd, pos);
                if (memcmp(a, b, sizeof(float) * ld * T))
                    fail_msg("rope mode %d n_rot %d variant %d differs from the reference", mode,
                             n_rot, var);
                free(a);
                free(b);
            }
}

/* attention against double, GQA and MLA-like shapes (values = keys' head). */
static void check_attention(int T, int n_kv, int H, int HKV, int DK, int DV, bool shared_kv,
                            tp_pool *pool) {
    const size_t ldq = (size_t)H * DK, ldk = (size_t)HKV * DK;
    const size_t ldv = shared_kv ? ldk : (size_t)HKV * DV, ldo = (size_t)H * DV;
    float *q = malloc(sizeof(float) * ldq * T), *k = malloc(sizeof(float) * ldk * n_kv);
    float *v = shared_kv ? k : malloc(sizeof(float) * ldv * n_kv);
    float *out = malloc(sizeof(float) * ldo * T);
    float *scratch =
        malloc(sizeof(float) * kern_attn_scratch_floats(tp_n_threads(pool), n_kv, H, DV, T));
    int32_t *pos = malloc(sizeof(int32_t) * T);
    double *s = malloc(sizeof(double) * n_kv);
    for (size_t i = 0; i < ldq * T; i++) q[i] = ktu_frand() * 2;
    /* later keys larger: the running max grows (more slowly over a long
     * cache, whose scores would grow beyond what float rounds to within the
     * tolerance below) */
    const float growth = n_kv > 300 ? 400.0f : 40.0f;
    for (size_t i = 0; i < ldk * n_kv; i++)
        k[i] = ktu_frand() * 2 * (1.0f + (float)(i / ldk) / growth);
    if (!shared_kv)
        for (size_t i = 0; i < ldv * n_kv; i++) v[i] = ktu_frand();
    for (int t = 0; t < T; t++) pos[t] = n_kv - T + t;
    kern_attn a = {.n_tok = T,
                   .n_kv = n_kv,
                   .n_head = H,
                   .n_head_kv = HKV,
                   .head_dim_k = DK,
                   .head_dim_v = DV,
                   .scale = 1.0f / sqrtf((float)DK),
                   .pos = pos,
                   .q = q,
                   .ldq = ldq,
                   .k = k,
                   .ldk = ldk,
                   .v = v,
                   .ldv = ldv,
                   .out = out,
                   .ldo = ldo,
                   .scratch = scratch};
    kern_avx2_attention(pool, &a);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            int g = h / (H / HKV);
            double mx = -1e300, sum = 0;
            for (int j = 0; j <= pos[t]; j++) {
                double d = 0;
                for (int e = 0; e < DK; e++)
                    d += (double)q[t * ldq + h * DK + e] * k[j * ldk + g * DK + e];
                s[j] = a.scale * d;
                if (s[j] > mx) mx = s[j];
            }
            for (int j = 0; j <= pos[t]; j++) sum += s[j] = exp(s[j] - mx);
            for (int e = 0; e < DV; e++) {
                double o = 0, mag = 0; /* mag: the scale float rounding works at */
                for (int j = 0; j <= pos[t]; j++) {
                    o += s[j] / sum * v[j * ldv + g * DV + e];
                    mag += s[j] / sum * fabs(v[j * ldv + g * DV + e]);
                }
                if (fabs(out[t * ldo + h * DV + e] - o) > 3e-6 * mag + 1e-7)
                    fail_msg("attention T %d n_kv %d H %d/%d dk %d dv %d: [%d][%d][%d] %.7g, "
                             "want %.7g",
                             T, n_kv, H, HKV, DK, DV, t, h, e, (double)out[t * ldo + h * DV + e],
                             o);
            }
        }
    /* each token alone gives bitwise the same rows */
    float *one = malloc(sizeof(float) * ldo);
    for (int t = 0; t < T; t++) {
        kern_attn b = a;
        b.n_tok = 1;
        b.pos = &pos[t];
        b.q = q + t * ldq;
        b.out = one;
        kern_avx2_attention(NULL, &b);
        assert_memory_equal(one, out + t * ldo, sizeof(float) * ldo);
    }
    free(one);
    free(q);
    free(k);
    if (!shared_kv) free(v);
    free(out);
    free(scratch);
    free(pos);
    free(s);
}

static void test_attention(void **state) {
    (void)state;
    if (!have_avx2()) return;
    hearth_err err;
    tp_pool *pool = tp_new(3, &err);
    assert_non_null(pool);
    check_attention(3, 9, 4, 2, 24, 16, false, pool);
    check_attention(5, 40, 6, 1, 7, 5, false, pool);       /* widths below one vector */
    check_attention(2, 70, 4, 4, 64, 64, false, pool);     /* MHA */
    check_attention(4, 33, 8, 2, 128, 100, false, pool);   /* tails of the 32-wide value loop */
    check_attention(2, 17, 4, 1, 72, 64, true, pool);      /* MLA: values are the keys' start */
    check_attention(3, 300, 16, 1, 72, 64, true, pool);    /* MLA, blocks of the cache, 16 heads */
    check_attention(2, 150, 12, 2, 128, 128, false, pool); /* GQA 6:1 over several blocks */
    check_attention(1, 129, 3, 3, 40, 24, false, pool);    /* a block and one position */
    /* spans merged: split across the threads (decode), or one task's (batch) */
    check_attention(2, 1100, 16, 1, 72, 64, true, pool);  /* MLA-like, 3 spans */
    check_attention(1, 1537, 12, 2, 64, 40, false, pool); /* GQA, one position past 3 spans */
    check_attention(6, 1030, 4, 2, 40, 24, false, pool);  /* a batch across a span's end */
    tp_free(pool);
}

int main(void) {
    ktu_seed(0x9E3779B97F4A7C15ull);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax),   cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_rmsnorm),   cmocka_unit_test(test_rope),
        cmocka_unit_test(test_attention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
