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

/* Any seed, 0 included, gives a usable state; also drops a kept normal. */
void ps_rng_seed(ps_rng *r, uint64_t seed);
uint64_t ps_rng_u64(ps_rng *r);
/* Uniform in [0, 1): a multiple of 2^-24, from the top 24 bits of one draw. */
float ps_rng_uniform(ps_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias (Lemire's method:
 * one draw almost always, more only to reject the biased slice). */
uint32_t ps_rng_below(ps_rng *r, uint32_t n);
/* Standard normal by Box-Muller in double; every second call returns the
 * value kept from the call before. */
float ps_rng_normal(ps_rng *r);

#endif
