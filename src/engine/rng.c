/* xoshiro256** (Blackman and Vigna) with its state filled by splitmix64, so
 * that any 64-bit seed, including 0, gives a well-mixed non-zero state and the
 * same stream on every machine. */
#include "paramscope/rng.h"

#include <math.h>

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ps_rng_seed(ps_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    r->has_spare = 0;
    r->spare = 0.0f;
}

uint64_t ps_rng_u64(ps_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

float ps_rng_uniform(ps_rng *r)
{
    /* The top 24 bits fill a float's mantissa exactly: multiples of 2^-24,
     * never rounding up to 1. */
    return (float)(ps_rng_u64(r) >> 40) * 0x1.0p-24f;
}

uint32_t ps_rng_below(ps_rng *r, uint32_t n)
{
    /* Lemire's multiply-and-shift: the high word of x * n is in [0, n); the
     * low word tells whether x fell in the short, over-represented slice, and
     * those draws are redone.  The threshold (2^32 mod n) is computed only
     * when a draw lands near the edge, which is rare for small n. */
    uint64_t m = (uint64_t)(uint32_t)(ps_rng_u64(r) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(ps_rng_u64(r) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float ps_rng_normal(ps_rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    /* Box-Muller in double: u1 in (0, 1] keeps log() finite, and 53 bits give
     * tails out to about 8.6 sigma. */
    double u1 = (double)((ps_rng_u64(r) >> 11) + 1) * 0x1.0p-53;
    double u2 = (double)(ps_rng_u64(r) >> 11) * 0x1.0p-53;
    double rad = sqrt(-2.0 * log(u1));
    double theta = 6.283185307179586476925286766559 * u2;
    r->spare = (float)(rad * sin(theta));
    r->has_spare = 1;
    return (float)(rad * cos(theta));
}
