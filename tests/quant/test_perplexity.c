/* hearth perplexity (the CLI, through HEARTH_BIN) against a computation done
 * here from model_eval logits: the same chunks (BOS in front of each, second
 * half scored), exp(mean NLL). Then --save-logits / --kl-base: a model against
 * itself gives KL 0 and 100% top-1 agreement; Q8_0 against F32 a small
 * positive KL; Q4_K_M a larger one. And the errors: bad numbers exit 2,
 * mismatched tokens, bad or truncated logits files exit 1 with a message. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/model.h"
#include "text/tokenizer.h"

#define CTX 64

static char tmpdir[256];
static char text_path[512];

static const char *bin(void) {
    const char *b = getenv("HEARTH_BIN");
    if (!b) fail_msg("HEARTH_BIN is not set");
    return b;
}

static void model_path(char *buf, size_t n, const char *name) {
    const char *s = getenv("HEARTH_SHARED");
    snprintf(buf, n, "%s/golden/models/%s.gguf", s ? s : "../shared", name);
}

/* Runs a shell command; returns its exit status, stdout+stderr in out. */
static int run(const char *cmd, char *out, size_t cap) {
    char full[4096];
    snprintf(full, sizeof(full), "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static double field(const char *out, const char *key) {
    const char *p = strstr(out, key);
    if (!p) fail_msg("'%s' not in the output:\n%s", key, out);
    return strtod(p + strlen(key), NULL);
}

/* exp(mean NLL) as llama.cpp's perplexity defines it, from model_eval. */
static double ppl_here(const char *model_file, int n_chunks_max) {
    hearth_err err;
    model_params mp = model_default_params();
    mp.n_threads = 2;
    model *m = model_load(model_file, &mp, &err);
    if (!m) fail_msg("%s", err.msg);
    tok_vocab *v = tok_load(model_gguf(m), &err);
    if (!v) fail_msg("%s", err.msg);
    FILE *f = fopen(text_path, "rb");
    assert_non_null(f);
    static char text[1 << 16];
    size_t len = fread(text, 1, sizeof(text), f);
    fclose(f);
    int32_t *tok = NULL;
    size_t n_tok = 0;
    assert_int_equal(tok_encode(v, text, len, true, false, &tok, &n_tok, &err), 0);
    int n_vocab = model_hparams_of(m)->n_vocab;
    model_ctx *c = model_ctx_new(m, CTX, 16, &err);
    assert_non_null(c);
    float *logits = malloc(sizeof(float) * CTX * (size_t)n_vocab);
    int32_t chunk[CTX];
    double nll = 0;
    long count = 0;
    size_t n_chunks = n_tok / CTX;
    if (n_chunks_max > 0 && (size_t)n_chunks_max < n_chunks) n_chunks = (size_t)n_chunks_max;
    assert_true(n_chunks >= 2);
    for (size_t ci = 0; ci < n_chunks; ci++) {
        memcpy(chunk, tok + ci * CTX, sizeof(chunk));
        if (tok_add_bos(v)) chunk[0] = tok_bos(v);
        model_ctx_reset(c);
        assert_int_equal(model_eval(c, chunk, CTX, 0, logits, MODEL_LOGITS_ALL, &err), 0);
        for (int j = CTX / 2; j < CTX - 1; j++) {
            const float *row = logits + (size_t)j * (size_t)n_vocab;
            double mx = row[0], s = 0;
            for (int i = 1; i < n_vocab; i++) mx = row[i] > mx ? row[i] : mx;
            for (int i = 0; i < n_vocab; i++) s += exp(row[i] - mx);
            int next = tok[ci * CTX + (size_t)j + 1];
            nll += -(row[next] - mx - log(s));
            count++;
        }
    }
    free(logits);
    free(tok);
    model_ctx_free(c);
    tok_free(v);
    model_free(m);
    return exp(nll / (double)count);
}

static void test_ppl_matches_independent(void **state) {
    (void)state;
    static const char *const names[] = {"llama-spm.f32", "qwen2-r1distill.f32"};
    for (int i = 0; i < 2; i++) {
        char model[1024], cmd[4096], out[1 << 16];
        model_path(model, sizeof(model), names[i]);
        snprintf(cmd, sizeof(cmd), "'%s' perplexity -m '%s' -f '%s' -c %d -b 16 -t 2 --chunks 5",
                 bin(), model, text_path, CTX);
        assert_int_equal(run(cmd, out, sizeof(out)), 0);
        double got = field(out, "Final estimate: PPL = "), want = ppl_here(model, 5);
        print_message("%s: hearth perplexity %.4f, computed here %.4f\n", names[i], got, want);
        /* printed with 4 decimals */
        assert_true(fabs(got - want) <= 1e-4 + 1e-6 * want);
        assert_non_null(strstr(out, "[5]"));
        assert_null(strstr(out, "[6]"));
    }
}

static void test_kl_base(void **state) {
    (void)state;
    char f32[1024], q8[1024], q4[1024], bpe[1024], base[512], cmd[4096], out[1 << 16];
    model_path(f32, sizeof(f32), "llama-spm.f32");
    model_path(q8, sizeof(q8), "llama-spm.q8_0");
    model_path(q4, sizeof(q4), "llama-spm.q4_k_m");
    model_path(bpe, sizeof(bpe), "llama3-bpe.f32");
    snprintf(base, sizeof(base), "%s/base.logits", tmpdir);
    snprintf(cmd, sizeof(cmd),
             "'%s' perplexity -m '%s' -f '%s' -c %d -t 2 --chunks 6 --save-logits '%s'", bin(), f32,
             text_path, CTX, base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    double ppl_f32 = field(out, "Final estimate: PPL = ");

    /* against itself, tokens from the base file (no -f) */
    snprintf(cmd, sizeof(cmd), "'%s' perplexity -m '%s' -c %d -t 2 --kl-base '%s'", bin(), f32, CTX,
             base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_true(field(out, "Mean KLD         : ") == 0.0);
    assert_true(field(out, "Maximum KLD      : ") == 0.0);
    assert_true(field(out, "Same top-1       : ") == 100.0);
    assert_true(fabs(field(out, "PPL ratio Q/base : ") - 1.0) < 1e-9);
    assert_true(fabs(field(out, "Mean PPL(base)   : ") - ppl_f32) <= 1e-4 + 1e-6 * ppl_f32);

    /* Q8_0: small positive KL; Q4_K_M: larger */
    snprintf(cmd, sizeof(cmd), "'%s' perplexity -m '%s' -f '%s' -c %d -t 2 --kl-base '%s'", bin(),
             q8, text_path, CTX, base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    double kl8 = field(out, "Mean KLD         : "), top8 = field(out, "Same top-1       : ");
    double p99 = field(out, "99.0% KLD        : "), mx = field(out, "Maximum KLD      : ");
    print_message("q8_0 vs f32: mean KLD %.6f, 99%% %.6f, max %.6f, top-1 %.2f%%\n", kl8, p99, mx,
                  top8);
    assert_true(kl8 > 0 && kl8 < 0.01);
    assert_true(kl8 <= p99 && p99 <= mx);
    assert_true(top8 > 90 && top8 <= 100);
    snprintf(cmd, sizeof(cmd), "'%s' perplexity -m '%s' -f '%s' -c %d -t 2 --kl-base '%s'", bin(),
             q4, text_path, CTX, base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    double kl4 = field(out, "Mean KLD         : ");
    print_message("q4_k_m vs f32: mean KLD %.6f\n", kl4);
    assert_true(kl4 > kl8 && kl4 < 1.0);

    /* another tokenizer: the tokens differ */
    snprintf(cmd, sizeof(cmd), "'%s' perplexity -m '%s' -f '%s' -c %d -t 2 --kl-base '%s'", bin(),
             bpe, text_path, CTX, base);
    assert_int_equal(run(cmd, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "tokens differ"));
    /* another context size */
    snprintf(cmd, sizeof(cmd), "'%s' perplexity -m '%s' -f '%s' -c %d -t 2 --kl-base '%s'", bin(),
             f32, text_path, CTX * 2, base);
    assert_int_equal(run(cmd, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "-c 64"));

    /* a truncated base file, and one that is not a logits file */
    char bad[512];
    snprintf(bad, sizeof(bad), "%s/bad.logits", tmpdir);
    snprintf(cmd, sizeof(cmd),
             "head -c 1000 '%s' > '%s' && '%s' perplexity -m '%s' -c %d --kl-base '%s'", base, bad,
             bin(), f32, CTX, bad);
    assert_int_equal(run(cmd, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "bad.logits"));
    snprintf(cmd, sizeof(cmd), "'%s' perplexity -m '%s' -c %d --kl-base '%s'", bin(), f32, CTX,
             text_path);
    assert_int_equal(run(cmd, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "not a hearth logits file"));
}

static void test_usage_errors(void **state) {
    (void)state;
    char f32[1024], cmd[4096], out[1 << 14];
    model_path(f32, sizeof(f32), "llama-spm.f32");
    static const char *const bad[] = {"-c x",         "-c 0", "-c 99999999", "-b -1",
                                      "--chunks 1.5", "-t 0", "--bogus 1",   "-c"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(cmd, sizeof(cmd), "'%s' perplexity -m '%s' -f '%s' %s", bin(), f32, text_path,
                 bad[i]);
        if (run(cmd, out, sizeof(out)) != 2) fail_msg("'%s': expected exit 2:\n%s", bad[i], out);
    }
    snprintf(cmd, sizeof(cmd), "'%s' perplexity -m '%s'", bin(), f32);
    assert_int_equal(run(cmd, out, sizeof(out)), 2);
    snprintf(cmd, sizeof(cmd), "'%s' perplexity -m /nonexistent.gguf -f '%s'", bin(), text_path);
    assert_int_equal(run(cmd, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "nonexistent.gguf"));
    snprintf(cmd, sizeof(cmd), "'%s' perplexity -m '%s' -f /nonexistent.txt", bin(), f32);
    assert_int_equal(run(cmd, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "nonexistent.txt"));
    /* too short for one chunk */
    snprintf(cmd, sizeof(cmd), "'%s' perplexity -m '%s' -f '%s' -c 100000", bin(), f32, text_path);
    assert_int_equal(run(cmd, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "needs at least"));
}

/* A text of a few hundred tokens, the same on every machine. */
static int setup(void **state) {
    (void)state;
    setenv("HEARTH_KERNELS", "ref", 1);
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/hearth-ppl-XXXXXX", t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(text_path, sizeof(text_path), "%s/text.txt", tmpdir);
    FILE *f = fopen(text_path, "wb");
    if (!f) return -1;
    static const char *const words[] = {"the",   "hearth", "keeps", "a",     "small",  "fire",
                                        "while", "models", "run",   "on",    "CPUs",   "people",
                                        "own,",  "and",    "every", "token", "counts."};
    unsigned s = 12345;
    for (int i = 0; i < 600; i++) {
        s = s * 1103515245u + 12345u;
        fprintf(f, "%s%s", words[(s >> 16) % 17], i % 13 == 12 ? ".\n" : " ");
    }
    fclose(f);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ppl_matches_independent),
        cmocka_unit_test(test_kl_base),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
