/* paramscope — turning logits into probabilities and choices. */
#ifndef PARAMSCOPE_SAMPLE_H
#define PARAMSCOPE_SAMPLE_H

#include "paramscope/error.h"
#include "paramscope/rng.h"

/* probs = softmax(logits / temperature) over V, max-subtracted, summed in
 * double.  temperature == 0 puts all the probability on the first maximum
 * (greedy).  temperature < 0 is the caller's error (checked by the callers that
 * take user input).  If the largest logit is +Inf (or all are -Inf) the mass is
 * shared equally by the entries equal to it; a NaN logit among finite ones
 * makes every probability NaN, so that a diverged model shows as one. */
void ps_probs(float *probs, const float *logits, int V, float temperature);

/* Index of the first maximum; NaN entries are passed over (0 if all NaN). */
int ps_argmax(const float *x, int n);

/* The k largest entries' indices into idx_out [k], largest first (ties: lower
 * index first; NaN ranks after every number); k is clamped to n.  Returns the
 * number written.  O(n log k), with a heap kept in idx_out: scratch is not
 * used and may be NULL (kept so that callers need not change). */
int ps_topk(const float *x, int n, int k, int *idx_out, int *scratch);

/* Entropy in nats of a distribution (-sum p ln p over p > 0, in double). */
double ps_entropy(const float *probs, int n);

typedef struct ps_sampler {
    float temperature;        /* 0: greedy */
    int top_k;                /* 0: off */
    float top_p;              /* 1: off; keep the smallest set with mass >= top_p */
    ps_rng rng;
    int V;
    float *probs;             /* [V] after ps_sample: the tempered softmax,
                                 before top-k/top-p truncation */
    int *idx;                 /* [V] scratch: ranked candidates */
} ps_sampler;

/* Fills *s (caller-owned struct) and allocates its scratch.  Checks V > 0,
 * temperature >= 0 and finite, top_k >= 0, top_p in (0, 1].  On failure
 * nothing is left allocated.  Free with ps_sampler_free (NULL: nothing). */
int ps_sampler_init(ps_sampler *s, int V, float temperature, int top_k,
                    float top_p, unsigned long long seed, ps_error *err);
void ps_sampler_free(ps_sampler *s);

/* Draws one id from logits [V] with the sampler's settings.  temperature 0:
 * the argmax, and the generator is not advanced.  Otherwise top-k keeps the k
 * highest logits, then top-p keeps the smallest best-first prefix of those
 * whose share of their mass reaches top_p, and one id is drawn from what is
 * kept, renormalised, with one 53-bit uniform from s->rng: the same seed and
 * logits give the same sequence of ids. */
int ps_sample(ps_sampler *s, const float *logits);

#endif
