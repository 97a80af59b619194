/* Model store: directory selection, listing and `-m NAME` resolution, in a
 * temporary HEARTH_MODELS directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/store.h"

static char g_root[256];   /* temp root */
static char g_models[512]; /* g_root/models */

static void write_file(const char *dir, const char *name, size_t size) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < size; i++) fputc((int)(i & 0xff), f);
    fclose(f);
}

static int rm_rf(const char *path) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    return system(cmd);
}

static int setup(void **state) {
    (void)state;
    snprintf(g_root, sizeof g_root, "/tmp/hearth-store-test-XXXXXX");
    if (!mkdtemp(g_root)) return -1;
    /* An empty working directory, so that no name is taken for a local file. */
    char cwd[300];
    snprintf(cwd, sizeof cwd, "%s/cwd", g_root);
    if (mkdir(cwd, 0755) != 0 || chdir(cwd) != 0) return -1;
    snprintf(g_models, sizeof g_models, "%s/models", g_root);
    if (mkdir(g_models, 0755) != 0) return -1;
    setenv("HEARTH_MODELS", g_models, 1);
    write_file(g_models, "qwen2-7b.q4_0.gguf", 100);
    write_file(g_models, "qwen2-7b.q8_0.gguf", 200);
    write_file(g_models, "llama.gguf", 300);
    write_file(g_models, "tiny.gguf", 10);
    write_file(g_models, "tiny-extra.gguf", 20);
    write_file(g_models, "notes", 5);
    write_file(g_models, "mist.gguf.partial", 7);
    write_file(g_models, ".hidden.gguf", 1);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/subdir.gguf", g_models);
    if (mkdir(sub, 0755) != 0) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (chdir("/") != 0) return -1;
    return rm_rf(g_root) == 0 ? 0 : -1;
}

static void expect_resolves(const char *arg, const char *name) {
    char out[1024], want[1024];
    hearth_err e = {{0}};
    int rc = store_resolve(arg, out, sizeof out, &e);
    if (rc != 0) print_error("store_resolve('%s'): %s\n", arg, e.msg);
    assert_int_equal(rc, 0);
    snprintf(want, sizeof want, "%s/%s", g_models, name);
    assert_string_equal(out, want);
}

static void expect_fails(const char *arg, const char *needle1, const char *needle2) {
    char out[1024];
    hearth_err e = {{0}};
    assert_int_equal(store_resolve(arg, out, sizeof out, &e), -1);
    if (needle1 && !strstr(e.msg, needle1)) fail_msg("'%s' not in: %s", needle1, e.msg);
    if (needle2 && !strstr(e.msg, needle2)) fail_msg("'%s' not in: %s", needle2, e.msg);
}

static void test_exact_file_name(void **state) {
    (void)state;
    expect_resolves("llama.gguf", "llama.gguf");
    expect_resolves("qwen2-7b.q8_0.gguf", "qwen2-7b.q8_0.gguf");
    expect_resolves("notes", "notes"); /* any regular file, not only .gguf */
}

static void test_name_without_extension(void **state) {
    (void)state;
    expect_resolves("llama", "llama.gguf");
    expect_resolves("qwen2-7b.q4_0", "qwen2-7b.q4_0.gguf");
    /* "tiny" is a prefix of two models but names one exactly: the exact one wins. */
    expect_resolves("tiny", "tiny.gguf");
}

static void test_unique_prefix(void **state) {
    (void)state;
    expect_resolves("ll", "llama.gguf");
    expect_resolves("qwen2-7b.q8", "qwen2-7b.q8_0.gguf");
    expect_resolves("tiny-", "tiny-extra.gguf");
}

static void test_ambiguous_prefix_lists_candidates(void **state) {
    (void)state;
    char out[1024];
    hearth_err e = {{0}};
    assert_int_equal(store_resolve("qwen2", out, sizeof out, &e), -1);
    assert_non_null(strstr(e.msg, "ambiguous"));
    assert_non_null(strstr(e.msg, "qwen2-7b.q4_0.gguf"));
    assert_non_null(strstr(e.msg, "qwen2-7b.q8_0.gguf"));
    assert_null(strstr(e.msg, "llama.gguf"));
    expect_fails("t", "ambiguous", "tiny-extra.gguf");
}

static void test_unknown_name_names_directory(void **state) {
    (void)state;
    expect_fails("mistral", "not found", g_models);
    expect_fails("zzz", "llama.gguf", NULL); /* lists what is there */
}

static void test_partial_hidden_and_dirs_are_not_models(void **state) {
    (void)state;
    expect_fails("mist", "not found", NULL);              /* only mist.gguf.partial exists */
    expect_fails("mist.gguf.partial", "not found", NULL); /* not even by its full name */
    expect_fails(".hidden", "not found", NULL);
    expect_fails("subdir", "not found", NULL);
}

static void test_paths(void **state) {
    (void)state;
    char path[1024], out[1024];
    hearth_err e = {{0}};
    snprintf(path, sizeof path, "%s/outside.gguf", g_root);
    write_file(g_root, "outside.gguf", 3);
    assert_int_equal(store_resolve(path, out, sizeof out, &e), 0);
    assert_string_equal(out, path);
    /* A relative file in the working directory is a path, before any store name. */
    write_file(".", "llama", 1);
    assert_int_equal(store_resolve("llama", out, sizeof out, &e), 0);
    assert_string_equal(out, "llama");
    unlink("llama");
    expect_resolves("llama", "llama.gguf");
    /* Something with a '/' is a path only: a missing one is an error, no store lookup. */
    expect_fails("./llama.gguf", "./llama.gguf", "No such file");
    expect_fails(g_models, "directory", NULL);
    expect_fails("", "expected a path or a model name", NULL);
    /* Too small an output buffer is an error, not a truncated path. */
    char small[8];
    assert_int_equal(store_resolve("llama", small, sizeof small, &e), -1);
    assert_int_equal(store_resolve(path, small, sizeof small, &e), -1);
}

static void test_empty_store_says_so(void **state) {
    (void)state;
    char empty[600];
    snprintf(empty, sizeof empty, "%s/empty-models", g_root);
    setenv("HEARTH_MODELS", empty, 1);
    expect_fails("llama", "empty", "hearth pull");
    store_entry *v;
    size_t n = 99;
    hearth_err e;
    assert_int_equal(store_list(&v, &n, &e), 0); /* missing directory: nothing, no error */
    assert_int_equal(n, 0);
    free(v);
    setenv("HEARTH_MODELS", g_models, 1);
}

static void test_list_sorted_with_sizes(void **state) {
    (void)state;
    store_entry *v;
    size_t n;
    hearth_err e;
    assert_int_equal(store_list(&v, &n, &e), 0);
    /* The 7 visible regular files written at setup (hidden files and directories left out). */
    assert_int_equal(n, 7);
    for (size_t i = 1; i < n; i++) assert_true(strcmp(v[i - 1].name, v[i].name) < 0);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(v[i].name, "llama.gguf")) {
            assert_int_equal(v[i].size, 300);
            assert_false(v[i].partial);
            seen++;
        }
        if (!strcmp(v[i].name, "mist.gguf.partial")) {
            assert_int_equal(v[i].size, 7);
            assert_true(v[i].partial);
            seen++;
        }
        assert_true(v[i].name[0] != '.');
        assert_string_not_equal(v[i].name, "subdir.gguf");
    }
    assert_int_equal(seen, 2);
    free(v);
}

static void test_dir_precedence_and_creation(void **state) {
    (void)state;
    char out[1024], want[1024];
    hearth_err e;
    unsetenv("HEARTH_MODELS");
    setenv("XDG_DATA_HOME", g_root, 1);
    assert_int_equal(store_dir(out, sizeof out, &e), 0);
    snprintf(want, sizeof want, "%s/hearth/models", g_root);
    assert_string_equal(out, want);
    /* Created with its parents, mode 0755 (umask permitting). */
    mode_t old = umask(022);
    struct stat st;
    assert_int_not_equal(stat(want, &st), 0);
    assert_int_equal(store_dir_create(out, sizeof out, &e), 0);
    assert_int_equal(stat(want, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0755);
    assert_int_equal(store_dir_create(out, sizeof out, &e), 0); /* again: already there */
    umask(old);
    unsetenv("XDG_DATA_HOME");
    setenv("HOME", "/home/someone", 1);
    assert_int_equal(store_dir(out, sizeof out, &e), 0);
    assert_string_equal(out, "/home/someone/.local/share/hearth/models");
    /* HEARTH_MODELS wins over both. */
    setenv("XDG_DATA_HOME", g_root, 1);
    setenv("HEARTH_MODELS", g_models, 1);
    assert_int_equal(store_dir(out, sizeof out, &e), 0);
    assert_string_equal(out, g_models);
    char tiny[4];
    assert_int_equal(store_dir(tiny, sizeof tiny, &e), -1);
    /* A file where the directory should be. */
    char file_dir[700];
    snprintf(file_dir, sizeof file_dir, "%s/notes", g_models);
    setenv("HEARTH_MODELS", file_dir, 1);
    assert_int_equal(store_dir_create(out, sizeof out, &e), -1);
    assert_non_null(strstr(e.msg, "not a directory"));
    setenv("HEARTH_MODELS", g_models, 1);
}

static void test_name_ok(void **state) {
    (void)state;
    assert_true(store_name_ok("model.gguf"));
    assert_true(store_name_ok("Qwen2.5-7B-Instruct-Q4_K_M.gguf"));
    assert_false(store_name_ok(""));
    assert_false(store_name_ok(".."));
    assert_false(store_name_ok(".hidden"));
    assert_false(store_name_ok("a/b.gguf"));
    assert_false(store_name_ok("line\nbreak"));
    char longname[400];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_false(store_name_ok(longname));
    longname[255] = 0;
    assert_true(store_name_ok(longname));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_file_name),
        cmocka_unit_test(test_name_without_extension),
        cmocka_unit_test(test_unique_prefix),
        cmocka_unit_test(test_ambiguous_prefix_lists_candidates),
        cmocka_unit_test(test_unknown_name_names_directory),
        cmocka_unit_test(test_partial_hidden_and_dirs_are_not_models),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_empty_store_says_so),
        cmocka_unit_test(test_list_sorted_with_sizes),
        cmocka_unit_test(test_dir_precedence_and_creation),
        cmocka_unit_test(test_name_ok),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
