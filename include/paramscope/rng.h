/* paramscope — a seeded random number generator held in a struct.
 * xoshiro256** seeded through splitmix64: the same seed gives the same stream
 * on every machine. */
#ifndef PARAMSCOPE_RNG_H
#define PARAMSCOPE_RNG_H

#include <stdint.h>

typedef struct ps_rng {
    uint64_t s[4];
    int has_spare;            /* Box-Muller keeps its second value */
    float spare;
} ps_rng;

void ps_rng_seed(ps_rng *r, uint64_t seed);
uint64_t ps_rng_u64(ps_rng *r);
/* Uniform in [0, 1). */
float ps_rng_uniform(ps_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint32_t ps_rng_below(ps_rng *r, uint32_t n);
/* Standard normal. */
float ps_rng_normal(ps_rng *r);

#endif
