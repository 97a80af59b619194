/* Shared by the golden test programs: reading golden/<kind>/<name>.json +
 * .logits, and comparing logits rows the way golden/README.md defines. */
#ifndef HEARTH_TESTS_GOLDEN_COMPARE_H
#define HEARTH_TESTS_GOLDEN_COMPARE_H

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_GREEDY 24
#define NEAR_TIE 1e-3

typedef struct refset {
    const char *kind; /* "f64" or "ref" */
    json_t *root;
    float *logits;
    size_t n_logits;
} refset;

static inline char *path_of(const char *shared, const char *sub, const char *name,
                            const char *ext) {
    size_t n = strlen(shared) + strlen(sub) + strlen(name) + strlen(ext) + 16;
    char *p = malloc(n);
    snprintf(p, n, "%s/golden/%s/%s%s", shared, sub, name, ext);
    return p;
}

/* Loads PREFIX.json and PREFIX.logits (the logits may be absent: NULL);
 * 0 when the JSON is absent and not required, -1 on error, 1 when loaded. */
static inline int load_refset_prefix(refset *r, const char *prefix, int required) {
    memset(r, 0, sizeof(*r));
    size_t n = strlen(prefix) + 16;
    char *jp = malloc(n), *lp = malloc(n);
    snprintf(jp, n, "%s.json", prefix);
    snprintf(lp, n, "%s.logits", prefix);
    int rc = 1;
    json_error_t je;
    FILE *jf = fopen(jp, "rb");
    if (!jf) {
        if (required) fprintf(stderr, "missing %s\n", jp);
        rc = required ? -1 : 0;
        goto out;
    }
    fclose(jf);
    r->root = json_load_file(jp, 0, &je);
    if (!r->root) {
        fprintf(stderr, "%s: %s (line %d)\n", jp, je.text, je.line);
        rc = -1;
        goto out;
    }
    FILE *f = fopen(lp, "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fseek(f, 0, SEEK_SET);
        r->n_logits = sz > 0 ? (size_t)sz / sizeof(float) : 0;
        r->logits = malloc(r->n_logits * sizeof(float) + 4);
        if (fread(r->logits, sizeof(float), r->n_logits, f) != r->n_logits) {
            fprintf(stderr, "%s: short read\n", lp);
            rc = -1;
        }
        fclose(f);
    }
out:
    free(jp);
    free(lp);
    return rc;
}

/* golden/<kind>/<name>.json and .logits. */
static inline int load_refset(refset *r, const char *shared, const char *kind, const char *name,
                              int required) {
    char *prefix = path_of(shared, kind, name, "");
    int rc = load_refset_prefix(r, prefix, required);
    r->kind = kind;
    free(prefix);
    return rc;
}

static inline int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

typedef struct row_stats {
    double cos_min, rel_max, top1;
    int n_excused;
} row_stats;

/* Compares T rows of `got` with `want` (n_vocab wide). gaps: per row
 * top12 gap over std, or NULL (then computed from `want`). */
static inline row_stats compare_rows(const float *got, const float *want, int T, int V,
                                     const json_t *gaps) {
    row_stats s = {1.0, 0.0, 0.0, 0};
    int agree = 0;
    for (int t = 0; t < T; t++) {
        const float *g = got + (size_t)t * V, *w = want + (size_t)t * V;
        double gg = 0, ww = 0, gw = 0, mean = 0, var = 0, md = 0;
        for (int i = 0; i < V; i++) {
            gg += (double)g[i] * g[i];
            ww += (double)w[i] * w[i];
            gw += (double)g[i] * w[i];
            mean += w[i];
        }
        mean /= V;
        for (int i = 0; i < V; i++) {
            var += (w[i] - mean) * (w[i] - mean);
            double d = fabs((double)g[i] - w[i]);
            if (!(d <= md)) md = d; /* NaN propagates */
        }
        double sd = sqrt(var / V);
        double cos = gw / sqrt(gg * ww);
        double rel = md / sd;
        if (!(cos >= s.cos_min)) s.cos_min = cos;
        if (!(rel <= s.rel_max)) s.rel_max = rel;
        int a = argmax(g, V), b = argmax(w, V);
        double gap;
        if (gaps) {
            gap = json_number_value(json_array_get(gaps, (size_t)t));
        } else {
            double second = -INFINITY;
            for (int i = 0; i < V; i++)
                if (i != b && w[i] > second) second = w[i];
            gap = (w[b] - second) / sd;
        }
        if (a == b)
            agree++;
        else if (gap < NEAR_TIE) {
            agree++;
            s.n_excused++;
        }
    }
    s.top1 = (double)agree / T;
    return s;
}

#endif
