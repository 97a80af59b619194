/* Token sampling from a row of logits.
 *
 * The chain runs in llama.cpp's order:
 *   penalties (repetition, presence, frequency over the last N accepted tokens)
 *   -> top-k -> top-p -> min-p -> temperature -> draw.
 * Top-p and min-p are judged on the softmax at temperature 1, as llama.cpp does;
 * temperature only reshapes what survives. Temperature <= 0 means greedy: the
 * argmax of the penalised logits (lowest id on ties), no randomness.
 *
 * Penalty semantics (llama.cpp / OpenAI): for a token seen c > 0 times in the
 * window, a positive logit is divided by repeat_penalty and a negative one
 * multiplied by it; then presence_penalty is subtracted once and
 * c * frequency_penalty on top.
 *
 * Randomness comes from our own xoshiro256** seeded through splitmix64, so the
 * same seed and the same logits give the same tokens on every machine.
 * All buffers are sized to n_vocab at creation: nothing is allocated per token. */
#ifndef HEARTH_GENERATE_SAMPLER_H
#define HEARTH_GENERATE_SAMPLER_H

#include <stdint.h>

#include "base/error.h"

typedef struct sampler_params {
    float temp;              /* <= 0: greedy */
    int32_t top_k;           /* <= 0: off */
    float top_p;             /* >= 1: off; in (0, 1] */
    float min_p;             /* <= 0: off; in [0, 1] */
    float repeat_penalty;    /* 1: off; > 0 */
    float presence_penalty;  /* 0: off */
    float frequency_penalty; /* 0: off */
    int32_t penalty_last_n;  /* window of accepted tokens the penalties see; 0: off */
    uint64_t seed;
} sampler_params;

/* llama.cpp's defaults: temp 0.8, top-k 40, top-p 0.95, min-p 0.05, no
 * penalties (repeat 1.0), window 64, seed 0. */
sampler_params sampler_default_params(void);

/* Checks ranges (finite numbers, top_p in (0,1], min_p in [0,1], repeat > 0,
 * window <= 1<<20); -1 with a message naming the parameter otherwise. */
int sampler_params_check(const sampler_params *p, hearth_err *err);

typedef struct sampler sampler;

sampler *sampler_new(int32_t n_vocab, const sampler_params *p, hearth_err *err);
void sampler_free(sampler *s);

/* Changes the parameters, keeping the token history; reseeds the generator
 * when the seed changed. The window may not grow beyond the one given at
 * creation (-1 with a message). */
int sampler_set_params(sampler *s, const sampler_params *p, hearth_err *err);
const sampler_params *sampler_get_params(const sampler *s);

/* Forgets the token history and reseeds from params.seed. */
void sampler_reset(sampler *s);

/* Records a token (prompt or generated) for the penalties. Ids outside
 * [0, n_vocab) are ignored. */
void sampler_accept(sampler *s, int32_t token);

/* Picks the next token from logits (n_vocab floats, not modified). Does not
 * call sampler_accept. */
int32_t sampler_sample(sampler *s, const float *logits);

/* The distribution sampler_sample would draw from, for inspection and tests:
 * *ids and *probs point to n entries (n is returned) inside the sampler, valid
 * until its next call; probabilities sum to 1, sorted by falling probability
 * when any truncation or temperature stage ran (greedy: one entry, p = 1). */
int32_t sampler_distribution(sampler *s, const float *logits, const int32_t **ids,
                             const float **probs);

/* The PRNG on its own (tests, and anyone who needs the same stream). */
typedef struct sampler_rng {
    uint64_t s[4];
} sampler_rng;
void sampler_rng_seed(sampler_rng *r, uint64_t seed);
uint64_t sampler_rng_next(sampler_rng *r);
double sampler_rng_uniform(sampler_rng *r); /* [0, 1) with 53 random bits */

#endif
