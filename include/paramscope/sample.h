/* paramscope — turning logits into probabilities and choices. */
#ifndef PARAMSCOPE_SAMPLE_H
#define PARAMSCOPE_SAMPLE_H

#include "paramscope/error.h"
#include "paramscope/rng.h"

/* probs = softmax(logits / temperature) over V.  temperature == 0 puts all the
 * probability on the first maximum (greedy).  temperature < 0 is the caller's
 * error (checked by the callers that take user input). */
void ps_probs(float *probs, const float *logits, int V, float temperature);

/* Index of the first maximum. */
int ps_argmax(const float *x, int n);

/* The k largest entries' indices, largest first (ties: lower index first);
 * k is clamped to n.  Returns the number written.  scratch: [n] ints. */
int ps_topk(const float *x, int n, int k, int *idx_out, int *scratch);

/* Entropy in nats of a distribution. */
double ps_entropy(const float *probs, int n);

typedef struct ps_sampler {
    float temperature;        /* 0: greedy */
    int top_k;                /* 0: off */
    float top_p;              /* 1: off; keep the smallest set with mass >= top_p */
    ps_rng rng;
    int V;
    float *probs;             /* [V] scratch */
    int *idx;                 /* [V] scratch */
} ps_sampler;

int ps_sampler_init(ps_sampler *s, int V, float temperature, int top_k,
                    float top_p, unsigned long long seed, ps_error *err);
void ps_sampler_free(ps_sampler *s);

/* Draws one id from logits [V] with the sampler's settings. */
int ps_sample(ps_sampler *s, const float *logits);

#endif
