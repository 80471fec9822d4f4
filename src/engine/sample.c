/* Softmax, top-k selection and the token sampler.
 *
 * Rankings use one total order everywhere: larger value first, equal values
 * by lower index, NaN after every number.  So the same logits always give the
 * same candidates, whatever the implementation of the selection. */
#include "paramscope/sample.h"

#include <math.h>
#include <stdlib.h>

/* ---- probabilities ---- */

int ps_argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best] || (isnan(x[best]) && !isnan(x[i])))
            best = i;
    return best;
}

void ps_probs(float *probs, const float *logits, int V, float temperature)
{
    if (V <= 0)
        return;
    int imax = ps_argmax(logits, V);
    float max = logits[imax];
    if (temperature == 0.0f || isnan(max)) {
        for (int i = 0; i < V; i++)
            probs[i] = 0.0f;
        probs[imax] = 1.0f;
        return;
    }
    if (isinf(max)) {
        /* All -Inf, or some +Inf: exp() of the shifted logits is 0/0.  The
         * limit of the softmax shares the mass among the entries at max. */
        int n_at_max = 0;
        for (int i = 0; i < V; i++)
            n_at_max += logits[i] == max;
        float share = 1.0f / (float)n_at_max;
        for (int i = 0; i < V; i++)
            probs[i] = logits[i] == max ? share : 0.0f;
        return;
    }
    /* Shifting by the maximum keeps every exponent <= 0: no overflow, and the
     * largest term is exactly 1, so the sum is >= 1.  The exponent is formed
     * and exponentiated in double: in float, rounding an argument of -25
     * alone moves exp() by 1.5e-6 relative, and probabilities are what people
     * read off this tool.  50k exp() calls cost well under a millisecond. */
    double inv_t = 1.0 / (double)temperature;
    double sum = 0.0;
    for (int i = 0; i < V; i++) {
        double e = exp(((double)logits[i] - (double)max) * inv_t);
        probs[i] = (float)e;
        sum += e;
    }
    double scale = 1.0 / sum;
    for (int i = 0; i < V; i++)
        probs[i] = (float)((double)probs[i] * scale);
}

double ps_entropy(const float *probs, int n)
{
    double h = 0.0;
    for (int i = 0; i < n; i++)
        if (probs[i] > 0.0f)
            h -= (double)probs[i] * log((double)probs[i]);
    return h;
}

/* ---- top-k ---- */

/* Whether index a ranks before index b. */
static int ranks_before(const float *x, int a, int b)
{
    float xa = x[a], xb = x[b];
    if (xa > xb)
        return 1;
    if (xa < xb)
        return 0;
    if (xa == xb)
        return a < b;
    /* At least one NaN. */
    if (isnan(xa) && isnan(xb))
        return a < b;
    return isnan(xb);
}

/* heap[0..n) is a heap whose root ranks last; restores that from `at` down. */
static void sift_down(const float *x, int *heap, int n, int at)
{
    int item = heap[at];
    for (;;) {
        int child = 2 * at + 1;
        if (child >= n)
            break;
        if (child + 1 < n && ranks_before(x, heap[child], heap[child + 1]))
            child++;
        if (!ranks_before(x, item, heap[child]))
            break;
        heap[at] = heap[child];
        at = child;
    }
    heap[at] = item;
}

int ps_topk(const float *x, int n, int k, int *idx_out, int *scratch)
{
    (void)scratch;   /* the heap lives in idx_out; see sample.h */
    if (k > n)
        k = n;
    if (k <= 0)
        return 0;
    /* A heap of the k best seen so far, rooted at the one that ranks last: a
     * newcomer needs one comparison to be turned away, which is the common
     * case once the heap holds large values.  O(n log k). */
    for (int i = 0; i < k; i++)
        idx_out[i] = i;
    for (int i = k / 2 - 1; i >= 0; i--)
        sift_down(x, idx_out, k, i);
    for (int i = k; i < n; i++) {
        if (ranks_before(x, i, idx_out[0])) {
            idx_out[0] = i;
            sift_down(x, idx_out, k, 0);
        }
    }
    /* Heapsort in place: moving the root (last in rank) to the end each time
     * leaves the array best first. */
    for (int end = k - 1; end > 0; end--) {
        int t = idx_out[0];
        idx_out[0] = idx_out[end];
        idx_out[end] = t;
        sift_down(x, idx_out, end, 0);
    }
    return k;
}

/* ---- the sampler ---- */

int ps_sampler_init(ps_sampler *s, int V, float temperature, int top_k,
                    float top_p, unsigned long long seed, ps_error *err)
{
    s->probs = NULL;
    s->idx = NULL;
    if (V <= 0)
        return ps_error_set(err, PS_ERR_INVALID,
                            "sampler: vocabulary size %d must be positive", V);
    if (!(temperature >= 0.0f && isfinite(temperature)))
        return ps_error_set(err, PS_ERR_RANGE,
                            "sampler: temperature %g must be >= 0",
                            (double)temperature);
    if (top_k < 0)
        return ps_error_set(err, PS_ERR_RANGE,
                            "sampler: top_k %d must be >= 0 (0: off)", top_k);
    if (!(top_p > 0.0f && top_p <= 1.0f))
        return ps_error_set(err, PS_ERR_RANGE,
                            "sampler: top_p %g is outside (0, 1]",
                            (double)top_p);
    s->temperature = temperature;
    s->top_k = top_k;
    s->top_p = top_p;
    s->V = V;
    ps_rng_seed(&s->rng, (uint64_t)seed);
    s->probs = malloc((size_t)V * sizeof *s->probs);
    s->idx = malloc((size_t)V * sizeof *s->idx);
    if (!s->probs || !s->idx) {
        ps_sampler_free(s);
        return ps_error_set(err, PS_ERR_NOMEM,
                            "sampler: cannot allocate scratch for %d tokens", V);
    }
    return 0;
}

void ps_sampler_free(ps_sampler *s)
{
    if (!s)
        return;
    free(s->probs);
    free(s->idx);
    s->probs = NULL;
    s->idx = NULL;
}

/* Uniform in [0, 1) with 53 bits: a float's 24 would give the rarest of
 * 50k tokens a visibly wrong chance. */
static double uniform53(ps_rng *r)
{
    return (double)(ps_rng_u64(r) >> 11) * 0x1.0p-53;
}

/* Candidates for top-p without top-k: the ranking only matters as far as the
 * nucleus reaches, which is usually a few dozen tokens.  So take the top 64,
 * and double until their mass reaches `want`; a flat distribution ends in one
 * full ranking, at O(V log V). */
static int nucleus_candidates(ps_sampler *s, const float *logits, double want)
{
    int V = s->V;
    int k = V < 64 ? V : 64;
    for (;;) {
        ps_topk(logits, V, k, s->idx, NULL);
        double m = 0.0;
        for (int i = 0; i < k; i++)
            m += s->probs[s->idx[i]];
        if (m >= want || k == V)
            return k;
        k = k > V / 2 ? V : 2 * k;
    }
}

int ps_sample(ps_sampler *s, const float *logits)
{
    int V = s->V;
    ps_probs(s->probs, logits, V, s->temperature);
    if (s->temperature == 0.0f)
        return ps_argmax(logits, V);

    int top_k = s->top_k > 0 && s->top_k < V ? s->top_k : 0;
    int nucleus = s->top_p < 1.0f;
    double total = 0.0;
    for (int i = 0; i < V; i++)
        total += s->probs[i];
    if (!top_k && !nucleus) {
        double u = uniform53(&s->rng) * total, cum = 0.0;
        int last = 0;
        for (int i = 0; i < V; i++) {
            if (s->probs[i] > 0.0f) {
                cum += s->probs[i];
                last = i;
                if (u < cum)
                    return i;
            }
        }
        return last;
    }

    /* Ranked candidates in s->idx[0..n), best first, and the mass that top-p
     * takes its share of: what top-k kept, or else everything (not just the
     * candidates ranked so far).  The ranking is by logit, which orders like
     * the probabilities but does not merge tokens whose probabilities
     * underflow to the same float. */
    int n;
    double mass = 0.0;
    if (top_k) {
        n = ps_topk(logits, V, top_k, s->idx, NULL);
        for (int i = 0; i < n; i++)
            mass += s->probs[s->idx[i]];
    } else {
        mass = total;
        n = nucleus_candidates(s, logits, (double)s->top_p * total);
    }
    if (nucleus) {
        /* Top-p applies to what top-k kept, renormalised: the smallest prefix
         * whose share of that mass reaches top_p. */
        double want = (double)s->top_p * mass, cum = 0.0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += s->probs[s->idx[i]];
            if (cum >= want) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        mass = cum;
    }
    double u = uniform53(&s->rng) * mass, cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += s->probs[s->idx[i]];
        if (u < cum)
            return s->idx[i];
    }
    return s->idx[0];
}
