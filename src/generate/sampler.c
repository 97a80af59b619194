#include "generate/sampler.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLER_MAX_WINDOW (1 << 20)

typedef struct cand {
    float logit;
    int32_t id;
} cand;

struct sampler {
    int32_t n_vocab;
    sampler_params p;
    sampler_rng rng;
    cand *c;          /* (n_vocab,) working candidates */
    float *probs;     /* (n_vocab,) distribution of the last build */
    int32_t *ids;     /* (n_vocab,) ids matching probs */
    int32_t *counts;  /* (n_vocab,) occurrences in the penalty window */
    uint32_t *stamp;  /* (n_vocab,) "penalty applied in call #stamp" marks */
    uint32_t call;    /* current stamp */
    int32_t *ring;    /* (ring_cap,) last accepted tokens */
    int32_t ring_cap; /* the window given at creation */
    int32_t ring_head, ring_len;
};

/* ---- PRNG: splitmix64 seeds xoshiro256** (Blackman & Vigna). ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sampler_rng_seed(sampler_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t sampler_rng_next(sampler_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double sampler_rng_uniform(sampler_rng *r) {
    return (double)(sampler_rng_next(r) >> 11) * 0x1.0p-53;
}

/* ---- parameters ---- */

sampler_params sampler_default_params(void) {
    sampler_params p = {
        .temp = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .presence_penalty = 0.0f,
        .frequency_penalty = 0.0f,
        .penalty_last_n = 64,
        .seed = 0,
    };
    return p;
}

int sampler_params_check(const sampler_params *p, hearth_err *err) {
    if (!isfinite(p->temp)) return hearth_errf(err, "temperature must be a finite number");
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return hearth_errf(err, "top-p must be in (0, 1], got %g", (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return hearth_errf(err, "min-p must be in [0, 1], got %g", (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f) || !isfinite(p->repeat_penalty))
        return hearth_errf(err, "repeat penalty must be a finite number > 0, got %g",
                           (double)p->repeat_penalty);
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return hearth_errf(err, "presence and frequency penalties must be finite numbers");
    if (p->penalty_last_n < 0 || p->penalty_last_n > SAMPLER_MAX_WINDOW)
        return hearth_errf(err, "penalty window must be in [0, %d], got %d", SAMPLER_MAX_WINDOW,
                           (int)p->penalty_last_n);
    return 0;
}

sampler *sampler_new(int32_t n_vocab, const sampler_params *p, hearth_err *err) {
    if (n_vocab <= 0) {
        hearth_errf(err, "sampler: vocabulary size must be > 0, got %d", (int)n_vocab);
        return NULL;
    }
    if (sampler_params_check(p, err) < 0) return NULL;
    sampler *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->n_vocab = n_vocab;
    s->p = *p;
    s->ring_cap = p->penalty_last_n;
    s->c = malloc((size_t)n_vocab * sizeof *s->c);
    s->probs = malloc((size_t)n_vocab * sizeof *s->probs);
    s->ids = malloc((size_t)n_vocab * sizeof *s->ids);
    s->counts = calloc((size_t)n_vocab, sizeof *s->counts);
    s->stamp = calloc((size_t)n_vocab, sizeof *s->stamp);
    s->ring = malloc((size_t)(s->ring_cap > 0 ? s->ring_cap : 1) * sizeof *s->ring);
    if (!s->c || !s->probs || !s->ids || !s->counts || !s->stamp || !s->ring) goto oom;
    sampler_rng_seed(&s->rng, p->seed);
    return s;
oom:
    sampler_free(s);
    hearth_errf(err, "sampler: out of memory for a vocabulary of %d", (int)n_vocab);
    return NULL;
}

void sampler_free(sampler *s) {
    if (!s) return;
    free(s->c);
    free(s->probs);
    free(s->ids);
    free(s->counts);
    free(s->stamp);
    free(s->ring);
    free(s);
}

/* Drops the oldest token of the window. */
static void ring_pop(sampler *s) {
    int32_t tail = s->ring_head - s->ring_len;
    if (tail < 0) tail += s->ring_cap;
    s->counts[s->ring[tail]]--;
    s->ring_len--;
}

int sampler_set_params(sampler *s, const sampler_params *p, hearth_err *err) {
    if (sampler_params_check(p, err) < 0) return -1;
    if (p->penalty_last_n > s->ring_cap)
        return hearth_errf(err,
                           "penalty window can not grow beyond %d (the size at creation), got %d",
                           (int)s->ring_cap, (int)p->penalty_last_n);
    bool reseed = p->seed != s->p.seed;
    s->p = *p;
    while (s->ring_len > s->p.penalty_last_n) ring_pop(s);
    if (reseed) sampler_rng_seed(&s->rng, p->seed);
    return 0;
}

const sampler_params *sampler_get_params(const sampler *s) {
    return &s->p;
}

void sampler_reset(sampler *s) {
    while (s->ring_len > 0) ring_pop(s);
    s->ring_head = 0;
    sampler_rng_seed(&s->rng, s->p.seed);
}

void sampler_accept(sampler *s, int32_t token) {
    if (token < 0 || token >= s->n_vocab || s->p.penalty_last_n <= 0) return;
    if (s->ring_len == s->p.penalty_last_n) ring_pop(s);
    s->ring[s->ring_head] = token;
    s->ring_head = (s->ring_head + 1) % s->ring_cap;
    s->ring_len++;
    s->counts[token]++;
}

/* ---- the chain ---- */

/* Higher logit first; lower id first on ties, so every order is total and the
 * result does not depend on qsort's stability. */
static inline bool cand_before(const cand *a, const cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cand_cmp(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    if (cand_before(a, b)) return -1;
    if (cand_before(b, a)) return 1;
    return 0;
}

/* Min-heap (by cand_before: the root is the worst kept) for top-k selection. */
static void heap_down(cand *h, int32_t n, int32_t i) {
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && cand_before(&h[m], &h[l])) m = l;
        if (r < n && cand_before(&h[m], &h[r])) m = r;
        if (m == i) return;
        cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Keeps the k best of c[0..n) in c[0..k), sorted. O(n log k). */
static void top_k_select(cand *c, int32_t n, int32_t k) {
    for (int32_t i = k / 2 - 1; i >= 0; i--) heap_down(c, k, i);
    for (int32_t i = k; i < n; i++) {
        if (cand_before(&c[i], &c[0])) {
            c[0] = c[i];
            heap_down(c, k, 0);
        }
    }
    qsort(c, (size_t)k, sizeof *c, cand_cmp);
}

static void apply_penalties(sampler *s) {
    const sampler_params *p = &s->p;
    if (s->ring_len == 0) return;
    if (p->repeat_penalty == 1.0f && p->presence_penalty == 0.0f && p->frequency_penalty == 0.0f)
        return;
    if (++s->call == 0) { /* stamp wrapped: clear the marks once every 2^32 calls */
        memset(s->stamp, 0, (size_t)s->n_vocab * sizeof *s->stamp);
        s->call = 1;
    }
    for (int32_t i = 0; i < s->ring_len; i++) {
        int32_t at = s->ring_head - 1 - i;
        if (at < 0) at += s->ring_cap;
        int32_t t = s->ring[at];
        if (s->stamp[t] == s->call) continue; /* each distinct token once */
        s->stamp[t] = s->call;
        float *l = &s->c[t].logit; /* c is still indexed by id here */
        if (*l > 0)
            *l /= p->repeat_penalty;
        else
            *l *= p->repeat_penalty;
        *l -= (float)s->counts[t] * p->frequency_penalty + p->presence_penalty;
    }
}

/* Builds the distribution into ids/probs; returns its size (>= 1). */
static int32_t build(sampler *s, const float *logits) {
    const sampler_params *p = &s->p;
    int32_t n = s->n_vocab;
    for (int32_t i = 0; i < n; i++) {
        float l = logits[i];
        s->c[i].logit = isnan(l) ? -INFINITY : l;
        s->c[i].id = i;
    }
    apply_penalties(s);

    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (s->c[i].logit > s->c[best].logit) best = i;
    float max = s->c[best].logit;
    if (p->temp <= 0.0f || !isfinite(max)) { /* greedy, or nothing sensible to draw from */
        s->ids[0] = best;
        s->probs[0] = 1.0f;
        return 1;
    }

    /* Truncation. Every cut keeps a prefix of the candidates sorted by logit,
     * so the kept set is the shortest of the prefixes. */
    cand *c = s->c;
    double z; /* softmax normaliser (temperature 1) over what top-k kept */
    if (p->top_k > 0 && p->top_k < n) {
        top_k_select(c, n, p->top_k);
        n = p->top_k;
        z = 0;
        for (int32_t i = 0; i < n; i++) z += exp((double)c[i].logit - max);
    } else {
        z = 0;
        for (int32_t i = 0; i < n; i++) z += exp((double)c[i].logit - max);
        /* min-p's cut is known before sorting (p_i >= min_p * p_max, i.e.
         * logit_i >= max + log(min_p)): drop the tail first so the sort is short. */
        if (p->min_p > 0.0f) {
            float thr = max + logf(p->min_p);
            int32_t m = 0;
            for (int32_t i = 0; i < n; i++)
                if (c[i].logit >= thr) c[m++] = c[i];
            n = m;
        }
        qsort(c, (size_t)n, sizeof *c, cand_cmp);
    }
    if (p->top_p < 1.0f) {
        double cum = 0;
        int32_t keep = n;
        for (int32_t i = 0; i < n; i++) {
            cum += exp((double)c[i].logit - max) / z;
            if (cum >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    if (p->min_p > 0.0f) {
        float thr = max + logf(p->min_p);
        int32_t keep = 1;
        while (keep < n && c[keep].logit >= thr) keep++;
        n = keep;
    }

    /* Temperature, then the distribution we draw from. */
    double sum = 0;
    for (int32_t i = 0; i < n; i++) {
        double e = exp(((double)c[i].logit - max) / p->temp);
        s->probs[i] = (float)e;
        s->ids[i] = c[i].id;
        sum += e;
    }
    for (int32_t i = 0; i < n; i++) s->probs[i] = (float)(s->probs[i] / sum);
    return n;
}

int32_t sampler_distribution(sampler *s, const float *logits, const int32_t **ids,
                             const float **probs) {
    int32_t n = build(s, logits);
    *ids = s->ids;
    *probs = s->probs;
    return n;
}

int32_t sampler_sample(sampler *s, const float *logits) {
    int32_t n = build(s, logits);
    if (n == 1) return s->ids[0];
    double u = sampler_rng_uniform(&s->rng), cum = 0;
    for (int32_t i = 0; i < n; i++) {
        cum += s->probs[i];
        if (u < cum) return s->ids[i];
    }
    return s->ids[n - 1]; /* rounding left u above the last partial sum */
}
