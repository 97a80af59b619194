/* Every golden model's prompts, tokenized with the model's BOS rule and
 * special tokens recognised, must give exactly the reference runtime's ids
 * ($HEARTH_SHARED/golden/ref/<name>.json, cases[i].prompt / .tokens). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>

#include "text/tok_test_util.h"

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_golden_prompts(void **state) {
    (void)state;
    char dir[4096];
    shared_path(dir, sizeof dir, "golden/models");
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *names[256];
    size_t n_models = 0;
    for (struct dirent *de; (de = readdir(d));) {
        size_t l = strlen(de->d_name);
        if (l > 5 && strcmp(de->d_name + l - 5, ".gguf") == 0 && n_models < 256)
            names[n_models++] = strndup(de->d_name, l - 5);
    }
    closedir(d);
    qsort(names, n_models, sizeof names[0], cmp_str);
    assert_true(n_models >= 6);

    size_t total_cases = 0, total_pass = 0;
    for (size_t m = 0; m < n_models; m++) {
        char rel[512], path[4096];
        snprintf(rel, sizeof rel, "golden/models/%s.gguf", names[m]);
        tok_vocab *v = load_vocab(rel);
        snprintf(rel, sizeof rel, "golden/ref/%s.json", names[m]);
        shared_path(path, sizeof path, rel);
        json_error_t je;
        json_t *root = json_load_file(path, 0, &je);
        if (!root) fprintf(stderr, "%s: %s\n", path, je.text);
        assert_non_null(root);
        json_t *cases = json_object_get(root, "cases");
        assert_true(json_is_array(cases));
        size_t pass = 0;
        for (size_t i = 0; i < json_array_size(cases); i++) {
            json_t *c = json_array_get(cases, i);
            json_t *prompt = json_object_get(c, "prompt"), *want = json_object_get(c, "tokens");
            assert_true(json_is_string(prompt));
            assert_true(json_is_array(want));
            hearth_err e;
            int32_t *ids;
            size_t n;
            assert_int_equal(tok_encode(v, json_string_value(prompt), json_string_length(prompt),
                                        true, true, &ids, &n, &e),
                             0);
            bool ok = n == json_array_size(want);
            for (size_t k = 0; ok && k < n; k++)
                ok = ids[k] == json_integer_value(json_array_get(want, k));
            if (ok)
                pass++;
            else
                fprintf(stderr, "%s: case %zu differs (%zu ids, want %zu)\n", names[m], i, n,
                        json_array_size(want));
            free(ids);
        }
        printf("golden %-24s %zu/%zu prompts match\n", names[m], pass, json_array_size(cases));
        total_cases += json_array_size(cases);
        total_pass += pass;
        json_decref(root);
        tok_free(v);
        free(names[m]);
    }
    assert_true(total_cases >= n_models);
    assert_int_equal(total_pass, total_cases);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_prompts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
