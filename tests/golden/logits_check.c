/* logits_check OUT NAME: checks `hearth logits` output (OUT.json +
 * OUT.logits) against golden/f64/NAME at the exact tier: same n_vocab, same
 * prompts, token ids equal to the reference's exactly, per prompt cos min >=
 * 0.99999, rel max <= 1e-3, top-1 >= 0.999 (near-ties excused), and greedy
 * tokens (when OUT has them) equal up to the first near-tie step. */
#include "golden_compare.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: logits_check OUT_PREFIX NAME\n");
        return 2;
    }
    const char *shared = getenv("HEARTH_SHARED");
    if (!shared) shared = "../shared";
    refset out, f64;
    if (load_refset_prefix(&out, argv[1], 1) < 0 ||
        load_refset(&f64, shared, "f64", argv[2], 1) < 0)
        return 1;
    if (!out.logits || !f64.logits) {
        fprintf(stderr, "missing .logits file\n");
        return 1;
    }
    int fails = 0;
    json_int_t V = json_integer_value(json_object_get(out.root, "n_vocab"));
    if (V != json_integer_value(json_object_get(f64.root, "n_vocab")) || V < 2) {
        fprintf(stderr, "n_vocab: expected %lld, found %lld\n",
                (long long)json_integer_value(json_object_get(f64.root, "n_vocab")), (long long)V);
        return 1;
    }
    json_t *oc = json_object_get(out.root, "cases"), *fc = json_object_get(f64.root, "cases");
    if (json_array_size(oc) != json_array_size(fc)) {
        fprintf(stderr, "cases: expected %zu, found %zu\n", json_array_size(fc),
                json_array_size(oc));
        return 1;
    }
    size_t rows = 0;
    for (size_t ci = 0; ci < json_array_size(fc); ci++) {
        json_t *o = json_array_get(oc, ci), *f = json_array_get(fc, ci);
        const char *op = json_string_value(json_object_get(o, "prompt"));
        const char *fp = json_string_value(json_object_get(f, "prompt"));
        if (!op || !fp || strcmp(op, fp)) {
            printf("case %zu: prompt text differs from the reference  FAIL\n", ci);
            fails++;
        }
        json_t *ot = json_object_get(o, "tokens"), *ft = json_object_get(f, "tokens");
        int T = (int)json_array_size(ft);
        int same = (int)json_array_size(ot) == T;
        for (int i = 0; same && i < T; i++)
            same = json_integer_value(json_array_get(ot, i)) ==
                   json_integer_value(json_array_get(ft, i));
        if (!same) {
            printf("case %zu: token ids differ from the reference (%zu vs %d tokens)  FAIL\n", ci,
                   json_array_size(ot), T);
            fails++;
            continue;
        }
        size_t oo = (size_t)json_integer_value(json_object_get(o, "logits_offset"));
        size_t fo = (size_t)json_integer_value(json_object_get(f, "logits_offset"));
        if (oo != rows * (size_t)V || oo + (size_t)T * V > out.n_logits ||
            fo + (size_t)T * V > f64.n_logits) {
            printf("case %zu: logits_offset %zu out of place  FAIL\n", ci, oo);
            fails++;
            continue;
        }
        rows += (size_t)T;
        row_stats s = compare_rows(out.logits + oo, f64.logits + fo, T, (int)V,
                                   json_object_get(f, "row_top12_gap_over_std"));
        int ok = s.cos_min >= 0.99999 && s.rel_max <= 1e-3 && s.top1 >= 0.999;
        printf("case %zu (%d tokens): cos_min %.9f  rel_max %.3g  top1 %.4f%s\n", ci, T, s.cos_min,
               s.rel_max, s.top1, ok ? "" : "  FAIL");
        if (!ok) fails++;
        json_t *og = json_object_get(o, "greedy"), *fg = json_object_get(f, "greedy");
        json_t *gaps = json_object_get(f, "greedy_top12_gap_over_std");
        if (og) {
            size_t n = json_array_size(fg);
            if (json_array_size(og) < n) n = json_array_size(og);
            size_t i = 0;
            for (; i < n && json_number_value(json_array_get(gaps, i)) >= NEAR_TIE; i++)
                if (json_integer_value(json_array_get(og, i)) !=
                    json_integer_value(json_array_get(fg, i)))
                    break;
            int gok = i == n || json_number_value(json_array_get(gaps, i)) < NEAR_TIE;
            printf("case %zu: greedy equal for %zu of %zu steps%s\n", ci, i, n,
                   gok ? "" : "  FAIL");
            if (!gok || n == 0) fails++;
        }
    }
    if (rows * (size_t)V != out.n_logits) {
        printf(".logits: expected %zu floats, found %zu  FAIL\n", rows * (size_t)V, out.n_logits);
        fails++;
    }
    json_decref(out.root);
    json_decref(f64.root);
    free(out.logits);
    free(f64.logits);
    printf("%s\n", fails ? "FAILED" : "passed");
    return fails ? 1 : 0;
}
