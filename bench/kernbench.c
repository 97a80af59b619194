/* Single-kernel timing: kern_matmul of one benchmark-shaped weight (default
 * 1536 -> 8960, the qwen2-1.5b FFN up) for each weight type, each kernel
 * variant the CPU runs (ref, avx2, avx512, neon; KB_VARIANTS="avx2 avx512" to
 * choose) in the same run, on the calling thread only; reports thread CPU time of the
 * fastest call (robust on a loaded machine) as GMAC/s and, for one token, GB/s of weights.
 *   cc -O2 -Isrc bench/kernbench.c build-X/src/libhearth_kernels.a
 *      build-X/src/libhearth_tensor.a build-X/src/libhearth_base.a -lm -lpthread
 *   kernbench [n_tok...]
 * KB_COLS / KB_ROWS change the shape (e.g. 8960 / 1536: the FFN down).
 * KB_COPIES=N cycles through N copies of the weight (default 1: cache-warm;
 * 16 copies of Q8_0 are ~230 MB, beyond any cache: the DRAM-bound decode).
 * KB_THREADS=N runs on a pool of N threads (wall-clock times), KB_TYPE=q4_K
 * only that type. KB_REPACK=1 also times each variant on the weights as
 * kern_repack leaves them, where it repacks the type ("avx2+r8").
 * KB_ATTN=mla|gqa times kern_attention instead: the benchmark shapes' MLA
 * (16 heads on one 576-wide latent row, values its first 512) or GQA (12
 * heads on 2 kv heads of 128), the last n_tok (default 64) positions of a
 * KB_CTX-position cache (default 2048), as GMAC/s of q.k and p.v products. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double attn_time(tp_pool *pool, const kern_attn *a) {
    kern_attention(pool, a); /* warm */
    double per = 1e30, total = 0;
    while (total < 0.3) {
        double t0 = pool ? tp_now() : cpu_now();
        kern_attention(pool, a);
        double t = (pool ? tp_now() : cpu_now()) - t0;
        total += t;
        if (t < per) per = t;
    }
    return per;
}

static void attn_bench(tp_pool *pool, const char *shape, int T, const char *const *variants,
                       int n_variants) {
    const char *ec = getenv("KB_CTX");
    const int mla = strcmp(shape, "mla") == 0, n_kv = ec && atoi(ec) > 0 ? atoi(ec) : 2048;
    const int H = mla ? 16 : 12, HKV = mla ? 1 : 2, DK = mla ? 576 : 128, DV = mla ? 512 : 128;
    if (T > n_kv) T = n_kv;
    const size_t ldq = (size_t)H * DK, ldk = (size_t)HKV * DK, ldv = mla ? ldk : (size_t)HKV * DV;
    float *q = malloc(sizeof(float) * ldq * T), *k = malloc(sizeof(float) * ldk * n_kv);
    float *v = mla ? k : malloc(sizeof(float) * ldv * n_kv);
    float *out = malloc(sizeof(float) * (size_t)H * DV * T);
    float *scratch =
        malloc(sizeof(float) * kern_attn_scratch_floats(tp_n_threads(pool), n_kv, H, DV, T));
    int32_t *pos = malloc(sizeof(int32_t) * T);
    for (size_t i = 0; i < ldq * T; i++) q[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (size_t i = 0; i < ldk * n_kv; i++) k[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
    if (!mla)
        for (size_t i = 0; i < ldv * n_kv; i++) v[i] = (float)((i * 31) % 1000) / 1000.0f;
    double macs = 0;
    for (int t = 0; t < T; t++) {
        pos[t] = n_kv - T + t;
        macs += (double)(pos[t] + 1) * H * (DK + DV);
    }
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
                   .ldo = (size_t)H * DV,
                   .scratch = scratch};
    hearth_err err;
    for (int vi = 0; vi < n_variants; vi++) {
        if (kern_select(variants[vi], &err) < 0) continue;
        const double per = attn_time(pool, &a);
        printf("attn %-3s %-9s T=%-3d ctx %-6d %8.3f ms  %7.2f GMAC/s\n", shape, variants[vi], T,
               n_kv, per * 1e3, macs / per * 1e-9);
    }
    free(q);
    free(k);
    if (!mla) free(v);
    free(out);
    free(scratch);
    free(pos);
}

int main(int argc, char **argv) {
    const char *ec = getenv("KB_COLS"), *er = getenv("KB_ROWS");
    const int64_t C = ec ? atoll(ec) : 1536, R = er ? atoll(er) : 8960;
    const ht_type types[] = {HT_F16,  HT_Q8_0, HT_Q4_0, HT_Q5_0, HT_Q2_K,
                             HT_Q3_K, HT_Q4_K, HT_Q5_K, HT_Q6_K};
    int toks[8] = {1, 64}, n_toks = 2;
    if (argc > 1) {
        n_toks = 0;
        for (int i = 1; i < argc && n_toks < 8; i++) toks[n_toks++] = atoi(argv[i]);
    }
    int maxt = 1;
    for (int i = 0; i < n_toks; i++)
        if (toks[i] > maxt) maxt = toks[i];
    float *x = malloc(sizeof(float) * C * maxt), *y = malloc(sizeof(float) * R * maxt);
    for (int64_t i = 0; i < C * maxt; i++) x[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    hearth_err err;
    /* KB_THREADS=N: a pool of N threads and wall-clock times (else the caller, CPU time) */
    const char *et = getenv("KB_THREADS");
    tp_pool *pool = et && atoi(et) > 1 ? tp_new(atoi(et), &err) : NULL;
    const char *only = getenv("KB_TYPE"); /* one type by name, e.g. q4_K */
    /* KB_VARIANTS="avx2 avx512": those kernel variants (default: every one
     * this CPU runs, ref first) */
    const char *variants[8] = {"ref", "avx2", "avx512", "neon"};
    int n_variants = 4;
    static char vbuf[256];
    const char *ev = getenv("KB_VARIANTS");
    if (ev && *ev) {
        snprintf(vbuf, sizeof vbuf, "%s", ev);
        n_variants = 0;
        for (char *tok = strtok(vbuf, " ,"); tok && n_variants < 8; tok = strtok(NULL, " ,"))
            variants[n_variants++] = tok;
    }
    const char *ea = getenv("KB_ATTN");
    if (ea && *ea) {
        attn_bench(pool, ea, argc > 1 ? toks[0] : 64, variants, n_variants);
        tp_free(pool);
        free(x);
        free(y);
        return 0;
    }
    for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
        size_t rb;
        if (only && strcmp(only, ht_type_get(types[k])->name) != 0) continue;
        if (ht_row_size(types[k], C, &rb, &err) < 0) continue;
        const char *cs = getenv("KB_COPIES");
        int copies = cs && atoi(cs) > 0 ? atoi(cs) : 1;
        uint8_t *w = malloc(rb * R * copies);
        for (size_t i = 0; i < rb * R * copies; i++) w[i] = (uint8_t)((i * 2654435761u) >> 13);
        /* moderate F16 scales: overwrite every 2-byte field with a small f16 pattern is
         * not needed for timing; only finite values matter for FP speed */
        if (types[k] == HT_F16)
            for (size_t i = 0; i < rb * R * copies / 2; i++)
                ((uint16_t *)w)[i] = 0x3000 | (i & 0x3ff);
        kern_mat m0;
        if (kern_mat_init(&m0, types[k], C, R, w, &err) < 0) continue;
        const char *er = getenv("KB_REPACK");
        const int packs = er && atoi(er) ? 2 : 1;
        uint8_t *wp = packs > 1 ? malloc(rb * R * copies) : NULL;
        int cur = 0;
        for (int ti = 0; ti < n_toks; ti++) {
            int T = toks[ti];
            for (int v = 0; v < n_variants * packs; v++) {
                if (kern_select(variants[v / packs], &err) < 0) continue;
                kern_mat m = m0;
                uint8_t *wv = w;
                if (v % packs) { /* the repacked copies */
                    memcpy(wp, w, rb * R * copies);
                    bool ok = true;
                    for (int c = 0; c < copies && ok; c++) {
                        kern_mat mc = m0;
                        mc.data = wp + rb * R * (size_t)c;
                        ok = kern_repack(pool, &mc, wp + rb * R * (size_t)c);
                        m.layout = mc.layout;
                    }
                    if (!ok) continue;
                    wv = wp;
                }
                m.data = wv;
                kern_matmul(pool, &m, x, C, y, R, T); /* warm */
                /* the fastest of the calls in 0.3 s of CPU time: the least disturbed */
                double per = 1e30, total = 0;
                int calls = 0;
                while (total < 0.3) {
                    const size_t at = rb * R * (size_t)(cur++ % copies);
                    m.data = wv + at;
                    double t0 = pool ? tp_now() : cpu_now();
                    kern_matmul(pool, &m, x, C, y, R, T);
                    double t = (pool ? tp_now() : cpu_now()) - t0;
                    total += t;
                    calls++;
                    if (t < per) per = t;
                }
                char vn[32];
                snprintf(vn, sizeof vn, "%s%s", variants[v / packs], v % packs ? "+r8" : "");
                printf("%-5s %-9s T=%-3d %8.3f ms  %7.2f GMAC/s  %6.2f GB/s(w)  mean %6.2f GB/s\n",
                       ht_type_get(types[k])->name, vn, T, per * 1e3,
                       (double)C * R * T / per * 1e-9, (double)rb * R / per * 1e-9,
                       (double)rb * R * calls / total * 1e-9);
            }
        }
        free(w);
        free(wp);
    }
    tp_free(pool);
    free(x);
    free(y);
    return 0;
}
