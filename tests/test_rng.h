/* A seedable xorshift64 generator for the unit tests (header-only; each
 * test file has its own state). A test that must not depend on the others'
 * draws sets its seed with trng_seed(). */
#ifndef HEARTH_TESTS_TEST_RNG_H
#define HEARTH_TESTS_TEST_RNG_H

#include <math.h>
#include <stdint.h>

static uint64_t trng_state = 0x9e3779b97f4a7c15ull;

/* seed must not be 0 (xorshift would stay at 0) */
static inline void trng_seed(uint64_t seed) {
    trng_state = seed ? seed : 0x9e3779b97f4a7c15ull;
}

static inline uint64_t trng_next(void) {
    trng_state ^= trng_state << 13;
    trng_state ^= trng_state >> 7;
    trng_state ^= trng_state << 17;
    return trng_state;
}

static inline double trng_urand(void) { /* [0, 1) */
    return (double)(trng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static inline float trng_gauss(void) { /* standard normal (Box-Muller) */
    double u = trng_urand() + 1e-12, v = trng_urand();
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

#endif
