/* hearth bench: prompt-processing and generation speed of a model, measured
 * as llama-bench does, next to its speed of light (bytes read per generated
 * token against the read bandwidth measured in the same run); the read
 * bandwidth probe alone; and the random-weight benchmark files of real
 * shapes (../shared/bench/README.md). */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/bandwidth.h"
#include "base/hugemem.h"
#include "base/threadpool.h"
#include "bench/bench_shape.h"
#include "bench/bench_sol.h"
#include "kernels/kernels.h"
#include "cli.h"
#include "cli_util.h"
#include "model_arg.h"
#include "model/model.h"

#define MAX_REPS   1000
#define MAX_TOKENS 65536

static void usage(FILE *out) {
    fprintf(out,
            "usage: hearth bench -m MODEL [-p N] [-n N] [-t N] [-r N] [--json]\n"
            "       hearth bench --bandwidth [--size MIB] [-t N] [--passes N]\n"
            "       hearth bench --write-shape NAME TYPE OUT.gguf [--seed S] [-t N]\n\n"
            "  -m, --model FILE     GGUF file to benchmark\n"
            "  -p, --n-prompt N     prompt tokens processed in one batch (default 512; 0: skip)\n"
            "  -n, --n-gen N        tokens generated one at a time (default 128; 0: skip)\n"
            "  -t, --threads N      CPU threads (default: all)\n"
            "  -r, --repetitions N  timed runs per test after one warm-up (default 5)\n"
            "      --json           print one JSON object instead of the table\n"
            "      --mmap, --no-mmap  weights used from the file mapping (4 KiB pages), or\n"
            "                       copied into 2 MiB huge pages (default: copy if THP is on\n"
            "                       and they fit in 3/4 of the available memory)\n"
            "      --bw-size MIB    buffer of the bandwidth measurement (default 1024)\n"
            "      --bw-pages 4k|thp  its pages (default: those the weights live in)\n"
            "      --bandwidth      only measure read bandwidth, 4 KiB pages and 2 MiB THP\n"
            "      --size MIB       its buffer (default 1024)\n"
            "      --passes N       its timed passes, best reported (default 5)\n"
            "      --write-shape NAME TYPE OUT\n"
            "                       write a random-weight model of a real shape; TYPE is\n"
            "                       F16, Q8_0 or Q4_K_M; shapes:");
    for (int i = 0; bench_shape_at(i); i++) fprintf(out, " %s", bench_shape_at(i)->name);
    fprintf(out, "\n      --seed S         weights' seed (default 1)\n\n"
                 "pp: tokens / wall time of one batch of -p random tokens (logits of the last\n"
                 "only); tg: -n tokens one at a time from an empty context. Means and standard\n"
                 "deviations are over the repetitions. The speed of light: bytes read per\n"
                 "generated token (non-expert weights with the output matrix, one embedding\n"
                 "row, the chosen experts, the KV cache at the mean position) x tg tok/s, as\n"
                 "a share of the read bandwidth measured with the weights' kind of pages (4 KiB\n"
                 "for a file mapping, 2 MiB THP for a copy mostly in huge pages; --bw-pages).\n");
}

typedef struct opts {
    const char *model;
    int n_prompt, n_gen, threads, reps, bw_mib, size_mib, passes;
    bool json, bandwidth, bw_pages_set;
    bw_pages bw_pages;
    model_load_mode load;
    const char *shape, *type, *out;
    uint64_t seed;
} opts;

/* 0: parsed; 2: usage error (printed); 3: --help. */
static int parse(int argc, char **argv, opts *o) {
    *o = (opts){.n_prompt = 512,
                .n_gen = 128,
                .reps = 5,
                .bw_mib = 1024,
                .size_mib = 1024,
                .passes = 5,
                .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define INT_OPT(s, l, field, lo, hi)                                                               \
    if (!strcmp(a, s) || !strcmp(a, l)) {                                                          \
        if (opt_int("bench", a, v, lo, hi, &o->field)) return 2;                                   \
        i++;                                                                                       \
        continue;                                                                                  \
    }
        INT_OPT("-p", "--n-prompt", n_prompt, 0, MAX_TOKENS)
        INT_OPT("-n", "--n-gen", n_gen, 0, MAX_TOKENS)
        INT_OPT("-t", "--threads", threads, 1, TP_MAX_THREADS)
        INT_OPT("-r", "--repetitions", reps, 1, MAX_REPS)
        INT_OPT("--bw-size", "--bw-size", bw_mib, 2, 1 << 20)
        INT_OPT("--size", "--size", size_mib, 2, 1 << 20)
        INT_OPT("--passes", "--passes", passes, 1, 1000)
#undef INT_OPT
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return 3;
        if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--bandwidth")) {
            o->bandwidth = true;
        } else if (!strcmp(a, "--bw-pages") && v && (!strcmp(v, "4k") || !strcmp(v, "thp"))) {
            o->bw_pages = !strcmp(v, "thp") ? BW_PAGES_THP : BW_PAGES_4K;
            o->bw_pages_set = true;
            i++;
        } else if (!strcmp(a, "--mmap") || !strcmp(a, "--no-mmap")) {
            o->load = !strcmp(a, "--mmap") ? MODEL_LOAD_MAP : MODEL_LOAD_COPY;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && v) {
            o->model = v, i++;
        } else if (!strcmp(a, "--seed") && v) {
            if (opt_u64("bench", a, v, &o->seed)) return 2;
            i++;
        } else if (!strcmp(a, "--write-shape")) {
            if (i + 3 >= argc) {
                fprintf(stderr, "hearth bench: --write-shape expects NAME TYPE OUT.gguf\n");
                return 2;
            }
            o->shape = argv[i + 1], o->type = argv[i + 2], o->out = argv[i + 3];
            i += 3;
        } else {
            fprintf(stderr, "hearth bench: unknown or incomplete option '%s' (see --help)\n", a);
            return 2;
        }
    }
    int modes = (o->model != NULL) + o->bandwidth + (o->shape != NULL);
    if (modes != 1) {
        fprintf(stderr, "hearth bench: expected exactly one of -m MODEL, --bandwidth, "
                        "--write-shape (see --help)\n");
        return 2;
    }
    if (o->model && o->n_prompt == 0 && o->n_gen == 0) {
        fprintf(stderr, "hearth bench: -p and -n are both 0: nothing to measure\n");
        return 2;
    }
    return 0;
}

/* ---- --write-shape ------------------------------------------------------- */

static int write_shape(const opts *o) {
    const bench_shape *s = bench_shape_find(o->shape);
    if (!s) {
        fprintf(stderr, "hearth bench: unknown shape '%s'; known:", o->shape);
        for (int i = 0; bench_shape_at(i); i++) fprintf(stderr, " %s", bench_shape_at(i)->name);
        fprintf(stderr, "\n");
        return 2;
    }
    int ft = bench_ftype_parse(o->type);
    if (ft < 0) {
        fprintf(stderr, "hearth bench: type '%s': expected F16, Q8_0 or Q4_K_M\n", o->type);
        return 2;
    }
    hearth_err err;
    double t0 = tp_now();
    if (bench_shape_write(s, (bench_ftype)ft, o->seed, o->out, (int)o->threads, &err)) {
        fprintf(stderr, "hearth bench: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "wrote %s (%s %s, seed %llu) in %.1f s\n", o->out, s->name,
            bench_ftype_name((bench_ftype)ft), (unsigned long long)o->seed, tp_now() - t0);
    return 0;
}

/* ---- --bandwidth --------------------------------------------------------- */

static int bandwidth(const opts *o) {
    hearth_err err;
    for (int k = 0; k < 2; k++) {
        bw_result r;
        if (bw_measure((size_t)o->size_mib << 20, (int)o->threads, (bw_pages)k, (int)o->passes, &r,
                       &err)) {
            fprintf(stderr, "hearth bench: %s\n", err.msg);
            return 1;
        }
        printf("read bandwidth, %-9s pages: %6.1f GB/s best, %6.1f mean (%d threads, %zu MiB, "
               "%d passes",
               bw_pages_name((bw_pages)k), r.gbs, r.mean_gbs, r.n_threads, r.bytes >> 20, r.passes);
        if (r.huge_fraction >= 0) printf(", %.0f%% in huge pages", 100 * r.huge_fraction);
        printf(")\n");
    }
    return 0;
}

/* ---- -m MODEL ------------------------------------------------------------ */

typedef struct test_result {
    char name[32];
    int n_prompt, n_gen;
    double *ts; /* [reps] tokens per second */
    double mean, sd;
} test_result;

static void stats(test_result *t, int n) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += t->ts[i];
    t->mean = s / n;
    for (int i = 0; i < n; i++) ss += (t->ts[i] - t->mean) * (t->ts[i] - t->mean);
    t->sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

/* Peak resident set (VmHWM) in bytes; 0 when unknown. */
static uint64_t peak_rss(void) {
    return hm_proc_bytes("/proc/self/status", "VmHWM");
}

static int run_pp(model_ctx *c, const int32_t *tok, int n, float *logits, double *secs,
                  hearth_err *err) {
    model_ctx_reset(c);
    double t0 = tp_now();
    if (model_eval(c, tok, n, 0, logits, MODEL_LOGITS_LAST, err)) return -1;
    *secs = tp_now() - t0;
    return 0;
}

static int run_tg(model_ctx *c, const int32_t *tok, int n, float *logits, double *secs,
                  hearth_err *err) {
    model_ctx_reset(c);
    double t0 = tp_now();
    for (int i = 0; i < n; i++)
        if (model_eval(c, &tok[i], 1, i, logits, MODEL_LOGITS_LAST, err)) return -1;
    *secs = tp_now() - t0;
    return 0;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void human(double bytes, char *buf, size_t cap) {
    if (bytes >= 1024.0 * 1024 * 1024)
        snprintf(buf, cap, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
    else
        snprintf(buf, cap, "%.2f MiB", bytes / (1024.0 * 1024));
}

static int bench_model(const opts *o) {
    hearth_err err;
    model_params mp = model_default_params();
    mp.n_threads = (int)o->threads;
    mp.load = o->load;
    model *m = model_load(o->model, &mp, &err);
    if (!m) {
        fprintf(stderr, "hearth bench: %s\n", err.msg);
        return 1;
    }
    const model_hparams *hp = model_hparams_of(m);
    const gguf_file *gf = model_gguf(m);
    int n_prompt = (int)o->n_prompt, n_gen = (int)o->n_gen, reps = (int)o->reps;
    int n_ctx = n_prompt > n_gen ? n_prompt : n_gen;
    int rc = 1;
    model_ctx *c = NULL;
    float *logits = NULL;
    int32_t *tok = NULL;
    test_result tests[2];
    memset(tests, 0, sizeof tests);
    int n_tests = 0;
    json_t *js = NULL;
    if (n_ctx > hp->n_ctx_train) {
        fprintf(stderr, "hearth bench: %d tokens do not fit the model's context of %d\n", n_ctx,
                hp->n_ctx_train);
        goto done;
    }
    c = model_ctx_new(m, n_ctx, n_prompt > 0 ? n_prompt : 1, &err);
    logits = malloc(sizeof(float) * (size_t)hp->n_vocab);
    tok = malloc(sizeof(int32_t) * (size_t)n_ctx);
    for (int i = 0; i < 2; i++) tests[i].ts = calloc((size_t)reps, sizeof(double));
    if (!c) {
        fprintf(stderr, "hearth bench: %s\n", err.msg);
        goto done;
    }
    if (!logits || !tok || !tests[0].ts || !tests[1].ts) {
        fprintf(stderr, "hearth bench: out of memory\n");
        goto done;
    }
    uint64_t x = 0x2545f4914f6cdd1dULL; /* random prompt tokens, fixed seed */
    for (int i = 0; i < n_ctx; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        tok[i] = (int32_t)(x % (uint64_t)hp->n_vocab);
    }
    double secs;
    /* Warm-up: faults the mapped weights in and wakes the threads. */
    if (n_prompt > 0 && run_pp(c, tok, n_prompt, logits, &secs, &err)) goto eval_fail;
    if (n_gen > 0 && run_tg(c, tok, 1, logits, &secs, &err)) goto eval_fail;
    if (n_prompt > 0) {
        test_result *t = &tests[n_tests++];
        snprintf(t->name, sizeof t->name, "pp%d", n_prompt);
        t->n_prompt = n_prompt;
        for (int r = 0; r < reps; r++) {
            if (run_pp(c, tok, n_prompt, logits, &secs, &err)) goto eval_fail;
            t->ts[r] = n_prompt / secs;
        }
        stats(t, reps);
    }
    /* Bytes the kernels read during the tg runs (kernels.h counter: one
     * relaxed atomic add per kernel call), to check the computed figure. */
    double measured = 0;
    if (n_gen > 0) {
        test_result *t = &tests[n_tests++];
        snprintf(t->name, sizeof t->name, "tg%d", n_gen);
        t->n_gen = n_gen;
        kern_count_reset();
        kern_count_enable(true);
        for (int r = 0; r < reps; r++) {
            if (run_tg(c, tok, n_gen, logits, &secs, &err)) {
                kern_count_enable(false);
                goto eval_fail;
            }
            t->ts[r] = n_gen / secs;
        }
        kern_count_enable(false);
        measured = (double)kern_count_bytes() / ((double)reps * n_gen);
        stats(t, reps);
    }
    for (int i = 0; i < hp->n_vocab; i++)
        if (!isfinite(logits[i])) {
            fprintf(stderr, "hearth bench: warning: logit %d is not finite\n", i);
            break;
        }
    uint64_t rss = peak_rss(); /* before the bandwidth buffer exists */
    /* the memory rule of ../shared/bench: RSS <= file + KV cache + 10% */
    uint64_t kv_cache = (uint64_t)model_kv_bytes_per_token(m) * (uint64_t)hp->n_layer *
                        (uint64_t)model_ctx_n_ctx(c);
    uint64_t rss_limit = (gguf_file_size(gf) + kv_cache) / 10 * 11;

    /* Measured with the pages the weights live in: 4 KiB for a file
     * mapping, 2 MiB for a copy the kernel backed mostly with huge pages. */
    const bool copied = model_weights_copied(m);
    const double huge = model_weights_huge_fraction(m);
    const bw_pages pages = o->bw_pages_set         ? o->bw_pages
                           : copied && huge >= 0.5 ? BW_PAGES_THP
                                                   : BW_PAGES_4K;
    bw_result bw;
    if (bw_measure((size_t)o->bw_mib << 20, model_n_threads(m), pages, 5, &bw, &err)) {
        fprintf(stderr, "hearth bench: %s\n", err.msg);
        goto done;
    }
    bench_bytes b = {0};
    if (bench_model_bytes(m, bench_mean_kv_positions(0, n_gen), &b, &err)) {
        fprintf(stderr, "hearth bench: %s\n", err.msg);
        goto done;
    }
    uint64_t n_params = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(gf); i++)
        n_params += (uint64_t)gguf_tensor_n_elements(gguf_tensor_at(gf, i));
    double tg = n_gen > 0 ? tests[n_tests - 1].mean : 0;
    double gbs = (double)b.total * tg / 1e9;
    double pct = bw.gbs > 0 ? 100.0 * gbs / bw.gbs : 0;

    if (o->json) {
        js = json_object();
        json_t *jt = json_array();
        json_object_set_new(js, "model", json_string(base_name(o->model)));
        json_object_set_new(js, "path", json_string(o->model));
        json_object_set_new(js, "arch", json_string(hp->arch));
        json_object_set_new(js, "size_bytes", json_integer((json_int_t)gguf_file_size(gf)));
        json_object_set_new(js, "n_params", json_integer((json_int_t)n_params));
        json_object_set_new(js, "n_threads", json_integer(model_n_threads(m)));
        json_object_set_new(js, "kernels", json_string(kern_name()));
        json_object_set_new(js, "bf16_products", json_boolean(kern_act_bf16(HT_F16)));
        json_object_set_new(js, "amx", json_boolean(kern_amx()));
        uint64_t rb = 0;
        const int nr = model_weights_repacked(m, &rb);
        json_object_set_new(js, "repacked",
                            json_pack("{s:i, s:I}", "matrices", nr, "bytes", (json_int_t)rb));
        json_object_set_new(js, "repetitions", json_integer(reps));
        for (int i = 0; i < n_tests; i++) {
            json_t *s = json_array();
            for (int r = 0; r < reps; r++) json_array_append_new(s, json_real(tests[i].ts[r]));
            json_array_append_new(jt, json_pack("{s:s, s:i, s:i, s:f, s:f, s:o}", "test",
                                                tests[i].name, "n_prompt", tests[i].n_prompt,
                                                "n_gen", tests[i].n_gen, "avg_ts", tests[i].mean,
                                                "stddev_ts", tests[i].sd, "samples_ts", s));
        }
        json_object_set_new(js, "tests", jt);
        json_object_set_new(js, "bytes_per_token",
                            json_pack("{s:I, s:I, s:I, s:I, s:I, s:f}", "total",
                                      (json_int_t)b.total, "weights", (json_int_t)b.weights,
                                      "embd_row", (json_int_t)b.embd_row, "experts",
                                      (json_int_t)b.experts, "kv", (json_int_t)b.kv, "kv_positions",
                                      bench_mean_kv_positions(0, n_gen)));
        json_object_set_new(js, "measured_bytes_per_token", json_real(measured));
        json_object_set_new(js, "achieved_gbs", json_real(gbs));
        json_object_set_new(js, "bandwidth",
                            json_pack("{s:f, s:f, s:s, s:I, s:i}", "gbs", bw.gbs, "mean_gbs",
                                      bw.mean_gbs, "pages", bw_pages_name(pages), "bytes",
                                      (json_int_t)bw.bytes, "n_threads", bw.n_threads));
        json_object_set_new(js, "pct_of_bandwidth", json_real(pct));
        json_object_set_new(
            js, "weights_memory",
            json_pack("{s:s, s:f}", "held", copied ? "copy" : "mmap", "huge_fraction", huge));
        json_object_set_new(js, "peak_rss_bytes", json_integer((json_int_t)rss));
        json_object_set_new(js, "kv_cache_bytes", json_integer((json_int_t)kv_cache));
        json_object_set_new(js, "rss_limit_bytes", json_integer((json_int_t)rss_limit));
        char *s = json_dumps(js, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        if (!s) {
            fprintf(stderr, "hearth bench: out of memory for the JSON\n");
            goto done;
        }
        printf("%s\n", s);
        free(s);
    } else {
        char size[32], rs[32];
        human((double)gguf_file_size(gf), size, sizeof size);
        human((double)rss, rs, sizeof rs);
        printf("| %-32s | %10s | %8s | %7s | %7s | %16s | %8s | %6s | %6s |\n", "model", "size",
               "params", "threads", "test", "t/s", "GB/token", "GB/s", "% BW");
        printf("| %.32s | %.10s | %.8s | %.7s | %.7s | %.16s | %.8s | %.6s | %.6s |\n",
               "--------------------------------", "----------", "--------", "-------", "-------",
               "----------------", "--------", "------", "------");
        for (int i = 0; i < n_tests; i++) {
            char ts[40], params[16];
            snprintf(ts, sizeof ts, "%.2f ± %.2f", tests[i].mean, tests[i].sd);
            if (n_params >= 1000000000)
                snprintf(params, sizeof params, "%.2f B", (double)n_params / 1e9);
            else
                snprintf(params, sizeof params, "%.2f M", (double)n_params / 1e6);
            printf("| %-32.32s | %10s | %8s | %7d | %7s | %17s |", base_name(o->model), size,
                   params, model_n_threads(m), tests[i].name, ts);
            if (tests[i].n_gen)
                printf(" %8.3f | %6.1f | %5.0f%% |\n", (double)b.total / 1e9, gbs, pct);
            else
                printf(" %8s | %6s | %6s |\n", "", "", "");
        }
        printf("\nbytes per generated token: %.3f GB = weights %.3f + embedding row %.6f + "
               "experts %.3f + KV %.3f (at %.1f positions)\n",
               (double)b.total / 1e9, (double)b.weights / 1e9, (double)b.embd_row / 1e9,
               (double)b.experts / 1e9, (double)b.kv / 1e9, bench_mean_kv_positions(0, n_gen));
        if (n_gen > 0)
            printf("measured B/token: %.3f GB read by the kernels in tg (%+.1f%% of computed)\n",
                   measured / 1e9, 100.0 * (measured - (double)b.total) / (double)b.total);
        printf("kernels: %s\n", kern_name());
        if (kern_act_bf16(HT_F16))
            printf("F16 / BF16 weights: BF16 products (AVX512_BF16; HEARTH_AVX512_BF16=0: F32)\n");
        if (kern_amx())
            printf("batches of Q8_0, Q4_0, Q5_0, IQ4_NL weights%s: AMX tiles (HEARTH_AMX=0: "
                   "AVX-512)\n",
                   kern_act_bf16(HT_F16) ? ", of F16 / BF16 as BF16" : "");
        if (copied && huge >= 0)
            printf("weights: copied into anonymous memory, %.0f%% in 2 MiB huge pages\n",
                   100 * huge);
        else
            printf("weights: %s\n", copied ? "copied into anonymous memory"
                                           : "used from the file mapping (4 KiB pages)");
        uint64_t rbytes = 0;
        const int nrep = model_weights_repacked(m, &rbytes);
        if (nrep > 0)
            printf("repacked at load: %d matrices, %.2f GB (Q4_K, Q6_K in 8-row groups; "
                   "HEARTH_REPACK=0: as in the file)\n",
                   nrep, (double)rbytes / 1e9);
        printf("read bandwidth (%s pages, %d threads, %zu MiB): %.1f GB/s best, %.1f mean\n",
               bw_pages_name(pages), bw.n_threads, bw.bytes >> 20, bw.gbs, bw.mean_gbs);
        char ls[32];
        human((double)rss_limit, ls, sizeof ls);
        printf("peak RSS: %s (%s the limit file + KV cache + 10%% = %s)\n", rs,
               rss <= rss_limit ? "within" : "OVER", ls);
    }
    rc = 0;
    goto done;
eval_fail:
    fprintf(stderr, "hearth bench: %s\n", err.msg);
done:
    json_decref(js);
    for (int i = 0; i < 2; i++) free(tests[i].ts);
    free(tok);
    free(logits);
    model_ctx_free(c);
    model_free(m);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc == 3) {
        usage(stdout);
        return 0;
    }
    if (rc) return rc;
    if (o.shape) return write_shape(&o);
    if (o.bandwidth) return bandwidth(&o);
    char resolved[4096];
    if (cli_model_path("bench", o.model, resolved, sizeof resolved) < 0) return 1;
    o.model = resolved;
    return bench_model(&o);
}
