/* Tests of engine/sample (softmax, top-k, the sampler) and engine/rng, which
 * the sampler's reproducibility rests on.  References are naive double loops
 * and full sorts written here. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "paramscope/rng.h"
#include "paramscope/sample.h"

#define assert_near(a, b, tol)                                               \
    do {                                                                     \
        double a_ = (a), b_ = (b), t_ = (tol);                               \
        if (!(fabs(a_ - b_) <= t_))                                          \
            fail_msg("%s = %.10g, expected %.10g (tolerance %g)", #a, a_,    \
                     b_, t_);                                                \
    } while (0)

/* ---- rng ---- */

static void test_rng_known_stream(void **state)
{
    (void)state;
    /* splitmix64(0) fills the state with e220a8397b1dcdaf 6e789e6aa1b965f4
     * 06c45d188009454f f88bb8a8724c81ec (the published splitmix64 stream);
     * the xoshiro256** outputs below were computed from that state by an
     * independent implementation. */
    ps_rng r;
    ps_rng_seed(&r, 0);
    assert_true(r.s[0] == 0xe220a8397b1dcdafull);
    assert_true(r.s[3] == 0xf88bb8a8724c81ecull);
    assert_true(ps_rng_u64(&r) == 0x99ec5f36cb75f2b4ull);
    assert_true(ps_rng_u64(&r) == 0xbf6e1f784956452aull);
    assert_true(ps_rng_u64(&r) == 0x1a5f849d4933e6e0ull);
    ps_rng_seed(&r, 42);
    assert_true(ps_rng_u64(&r) == 0x15780b2e0c2ec716ull);
}

static void test_rng_reproducible(void **state)
{
    (void)state;
    ps_rng a, b, c;
    ps_rng_seed(&a, 1234);
    ps_rng_seed(&b, 1234);
    ps_rng_seed(&c, 1235);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = ps_rng_u64(&a);
        assert_true(x == ps_rng_u64(&b));
        differ += x != ps_rng_u64(&c);
    }
    assert_true(differ > 990);
    /* The kept Box-Muller value is part of the stream, and reseeding drops it. */
    (void)ps_rng_normal(&a);
    ps_rng_seed(&a, 7);
    ps_rng_seed(&b, 7);
    for (int i = 0; i < 10; i++)
        assert_true(ps_rng_normal(&a) == ps_rng_normal(&b));
}

static void test_rng_uniform_moments(void **state)
{
    (void)state;
    ps_rng r;
    ps_rng_seed(&r, 99);
    const int n = 1000000;
    double sum = 0.0, sum_sq = 0.0;
    float lo = 1.0f, hi = 0.0f;
    for (int i = 0; i < n; i++) {
        float u = ps_rng_uniform(&r);
        assert_true(u >= 0.0f && u < 1.0f);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
        sum += u;
        sum_sq += (double)u * u;
    }
    double mean = sum / n, var = sum_sq / n - mean * mean;
    /* Standard error of the mean: 0.289 / 1000; these bounds are ~7 sigma. */
    assert_near(mean, 0.5, 0.002);
    assert_near(var, 1.0 / 12.0, 0.0015);
    assert_true(lo < 1e-5f && hi > 1.0f - 1e-5f);
}

static void test_rng_normal_moments(void **state)
{
    (void)state;
    ps_rng r;
    ps_rng_seed(&r, 2024);
    const int n = 1000000;
    double sum = 0.0, sum_sq = 0.0;
    int within1 = 0, beyond3 = 0;
    for (int i = 0; i < n; i++) {
        double x = ps_rng_normal(&r);
        assert_true(isfinite(x));
        sum += x;
        sum_sq += x * x;
        within1 += fabs(x) < 1.0;
        beyond3 += fabs(x) > 3.0;
    }
    double mean = sum / n, std = sqrt(sum_sq / n - mean * mean);
    assert_near(mean, 0.0, 0.005);
    assert_near(std, 1.0, 0.005);
    /* The shape, not just two moments: P(|x| < 1) = 0.6827, P(|x| > 3) = 0.0027. */
    assert_near((double)within1 / n, 0.682689, 0.003);
    assert_near((double)beyond3 / n, 0.002700, 0.0004);
}

static void test_rng_below(void **state)
{
    (void)state;
    ps_rng r;
    ps_rng_seed(&r, 5);
    enum { N = 10 };
    long counts[N] = {0};
    const int draws = 1000000;
    for (int i = 0; i < draws; i++) {
        uint32_t x = ps_rng_below(&r, N);
        assert_true(x < N);
        counts[x]++;
    }
    /* Each count is Binomial(1e6, 0.1): sd 300; 1500 is 5 sd. */
    for (int i = 0; i < N; i++)
        assert_true(labs(counts[i] - draws / N) < 1500);

    for (int i = 0; i < 100; i++)
        assert_int_equal(ps_rng_below(&r, 1), 0);

    /* n = 3 * 2^30, where 2^32 = n + 2^30 makes shortcuts visible.  A
     * modulo gives [0, 2^30) twice the weight of the rest: the mean drops to
     * 0.4167 n.  A multiply-shift without its rejection step maps four
     * inputs to three outputs and gives every x = 0 (mod 3) two of them:
     * P(x mod 3 = 0) becomes 1/2. */
    uint32_t big = 3u << 30;
    double mean = 0.0;
    long mod3[3] = {0};
    for (int i = 0; i < 200000; i++) {
        uint32_t x = ps_rng_below(&r, big);
        assert_true(x < big);
        mean += x;
        mod3[x % 3]++;
    }
    mean /= 200000.0 * big;
    assert_near(mean, 0.5, 0.004);
    for (int i = 0; i < 3; i++)
        assert_near(mod3[i] / 200000.0, 1.0 / 3.0, 0.01);
    for (int i = 0; i < 1000; i++)
        assert_true(ps_rng_below(&r, UINT32_MAX) < UINT32_MAX);
}

/* ---- probabilities ---- */

static void naive_softmax(double *out, const float *logits, int V, double t)
{
    double max = -INFINITY, sum = 0.0;
    for (int i = 0; i < V; i++)
        max = logits[i] > max ? logits[i] : max;
    for (int i = 0; i < V; i++) {
        out[i] = exp(((double)logits[i] - max) / t);
        sum += out[i];
    }
    for (int i = 0; i < V; i++)
        out[i] /= sum;
}

static void test_probs_match_double_softmax(void **state)
{
    (void)state;
    const int V = 50257;
    float *logits = malloc(V * sizeof *logits);
    float *probs = malloc(V * sizeof *probs);
    double *ref = malloc(V * sizeof *ref);
    ps_rng r;
    ps_rng_seed(&r, 11);
    const float temps[] = {1.0f, 0.7f, 1.5f};
    for (int ti = 0; ti < 3; ti++) {
        /* An offset of 40 checks the max is subtracted (exp(60) overflows
         * no float, but exp(40 / 0.7) would). */
        for (int i = 0; i < V; i++)
            logits[i] = 40.0f + 3.0f * ps_rng_normal(&r);
        ps_probs(probs, logits, V, temps[ti]);
        naive_softmax(ref, logits, V, temps[ti]);
        double sum = 0.0;
        for (int i = 0; i < V; i++) {
            sum += probs[i];
            assert_true(probs[i] >= 0.0f);
            if (!(fabs(probs[i] - ref[i]) <= 1e-6 * ref[i]))
                fail_msg("T=%g: probs[%d] = %.9g, double softmax %.9g",
                         (double)temps[ti], i, (double)probs[i], ref[i]);
        }
        assert_near(sum, 1.0, 1e-6);
    }
    free(logits);
    free(probs);
    free(ref);
}

static void test_probs_temperature(void **state)
{
    (void)state;
    enum { V = 200 };
    float logits[V], probs[V];
    ps_rng r;
    ps_rng_seed(&r, 3);
    for (int i = 0; i < V; i++)
        logits[i] = 2.0f * ps_rng_normal(&r);
    logits[17] = 9.0f;
    logits[150] = 9.0f;   /* a tie for the maximum: the first one wins */

    ps_probs(probs, logits, V, 0.0f);
    for (int i = 0; i < V; i++)
        assert_true(probs[i] == (i == 17 ? 1.0f : 0.0f));
    assert_int_equal(ps_argmax(logits, V), 17);

    const float temps[] = {0.5f, 1.0f, 2.0f, 10.0f, 1000.0f};
    double prev = -1.0;
    for (int i = 0; i < 5; i++) {
        ps_probs(probs, logits, V, temps[i]);
        double h = ps_entropy(probs, V);
        assert_true(h > prev + 1e-3);
        prev = h;
    }
    /* Very hot: almost uniform. */
    assert_near(prev, log((double)V), 1e-3);

    /* Infinite logits: the mass goes to what is at the maximum. */
    float inf[4] = {1.0f, INFINITY, 0.0f, INFINITY};
    ps_probs(probs, inf, 4, 1.0f);
    assert_true(probs[0] == 0.0f && probs[1] == 0.5f && probs[2] == 0.0f &&
                probs[3] == 0.5f);
}

static void test_argmax_entropy(void **state)
{
    (void)state;
    float x[6] = {NAN, -3.0f, 2.0f, NAN, 2.0f, 1.0f};
    assert_int_equal(ps_argmax(x, 6), 2);
    float u[8];
    for (int i = 0; i < 8; i++)
        u[i] = 0.125f;
    assert_near(ps_entropy(u, 8), log(8.0), 1e-12);
    float one[3] = {0.0f, 1.0f, 0.0f};
    assert_near(ps_entropy(one, 3), 0.0, 0.0);
    float two[2] = {0.25f, 0.75f};
    assert_near(ps_entropy(two, 2), -(0.25 * log(0.25) + 0.75 * log(0.75)),
                1e-12);
}

/* ---- top-k ---- */

static const float *sort_keys;

/* Reference order: value descending, then index ascending; NaN last. */
static int cmp_rank(const void *pa, const void *pb)
{
    int a = *(const int *)pa, b = *(const int *)pb;
    float xa = sort_keys[a], xb = sort_keys[b];
    int na = isnan(xa), nb = isnan(xb);
    if (na != nb)
        return na - nb;
    if (!na && xa != xb)
        return xa > xb ? -1 : 1;
    return (a > b) - (a < b);
}

static void test_topk_against_sort(void **state)
{
    (void)state;
    ps_rng r;
    ps_rng_seed(&r, 77);
    const int sizes[] = {1, 2, 7, 64, 100, 1000, 5003};
    for (int si = 0; si < 7; si++) {
        int n = sizes[si];
        float *x = malloc(n * sizeof *x);
        int *ref = malloc(n * sizeof *ref);
        int *out = malloc((n + 5) * sizeof *out);
        int *scratch = malloc(n * sizeof *scratch);
        for (int trial = 0; trial < 4; trial++) {
            for (int i = 0; i < n; i++) {
                /* Trials 0-1: few distinct values, so ties everywhere;
                 * trial 2: continuous; trial 3: with NaNs and infinities. */
                if (trial < 2)
                    x[i] = (float)ps_rng_below(&r, trial == 0 ? 3 : 20);
                else
                    x[i] = ps_rng_normal(&r);
                if (trial == 3 && ps_rng_below(&r, 10) == 0)
                    x[i] = ps_rng_below(&r, 2) ? NAN : -INFINITY;
            }
            for (int i = 0; i < n; i++)
                ref[i] = i;
            sort_keys = x;
            qsort(ref, n, sizeof *ref, cmp_rank);
            const int ks[] = {1, 3, n / 2, n - 1, n, n + 5};
            for (int ki = 0; ki < 6; ki++) {
                int k = ks[ki];
                if (k <= 0)
                    continue;
                int got = ps_topk(x, n, k, out, scratch);
                assert_int_equal(got, k < n ? k : n);
                for (int i = 0; i < got; i++)
                    if (out[i] != ref[i])
                        fail_msg("n=%d k=%d trial %d: rank %d is %d, sort says %d",
                                 n, k, trial, i, out[i], ref[i]);
            }
        }
        assert_int_equal(ps_topk(x, n, 0, out, NULL), 0);
        free(x);
        free(ref);
        free(out);
        free(scratch);
    }
}

/* ---- the sampler ---- */

static void test_sampler_init_checks(void **state)
{
    (void)state;
    ps_sampler s;
    ps_error err = {0};
    assert_int_equal(ps_sampler_init(&s, 0, 1.0f, 0, 1.0f, 1, &err),
                     PS_ERR_INVALID);
    assert_int_equal(ps_sampler_init(&s, 10, -1.0f, 0, 1.0f, 1, &err),
                     PS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "temperature"));
    assert_int_equal(ps_sampler_init(&s, 10, 1.0f, -2, 1.0f, 1, &err),
                     PS_ERR_RANGE);
    assert_int_equal(ps_sampler_init(&s, 10, 1.0f, 0, 0.0f, 1, &err),
                     PS_ERR_RANGE);
    assert_int_equal(ps_sampler_init(&s, 10, 1.0f, 0, 1.5f, 1, &err),
                     PS_ERR_RANGE);
    assert_null(s.probs);
    ps_sampler_free(NULL);
}

/* logits[i] = log p[i] for a distribution given as probabilities. */
static void logits_of(float *logits, const double *p, int n)
{
    for (int i = 0; i < n; i++)
        logits[i] = (float)log(p[i]);
}

static void test_sampler_frequencies(void **state)
{
    (void)state;
    enum { V = 10 };
    const double p[V] = {0.02, 0.18, 0.05, 0.30, 0.01,
                         0.14, 0.10, 0.08, 0.07, 0.05};
    float logits[V];
    logits_of(logits, p, V);
    ps_sampler s;
    assert_int_equal(ps_sampler_init(&s, V, 1.0f, 0, 1.0f, 123, NULL), 0);
    long counts[V] = {0};
    const int draws = 100000;
    for (int i = 0; i < draws; i++) {
        int id = ps_sample(&s, logits);
        assert_true(id >= 0 && id < V);
        counts[id]++;
    }
    /* sd of a frequency <= sqrt(0.3 * 0.7 / 1e5) = 0.00145: 0.01 is ~7 sd. */
    for (int i = 0; i < V; i++)
        assert_near((double)counts[i] / draws, p[i], 0.01);
    /* and tighter, to catch an off-by-one in the walk (which would move
     * whole probabilities between neighbours). */
    for (int i = 0; i < V; i++)
        assert_near((double)counts[i] / draws, p[i], 0.006);
    ps_sampler_free(&s);
}

static void test_sampler_top_k(void **state)
{
    (void)state;
    enum { V = 1000, K = 5 };
    float logits[V];
    int ref[V];
    ps_rng r;
    ps_rng_seed(&r, 8);
    for (int i = 0; i < V; i++)
        logits[i] = 0.5f * ps_rng_normal(&r);   /* flat: the tail has mass */
    for (int i = 0; i < V; i++)
        ref[i] = i;
    sort_keys = logits;
    qsort(ref, V, sizeof *ref, cmp_rank);
    int in_top[V] = {0};
    for (int i = 0; i < K; i++)
        in_top[ref[i]] = 1;

    ps_sampler s;
    assert_int_equal(ps_sampler_init(&s, V, 1.0f, K, 1.0f, 9, NULL), 0);
    int seen[V] = {0};
    for (int i = 0; i < 10000; i++) {
        int id = ps_sample(&s, logits);
        assert_true(id >= 0 && id < V);
        if (!in_top[id])
            fail_msg("draw %d: id %d is not among the top %d", i, id, K);
        seen[id] = 1;
    }
    for (int i = 0; i < K; i++)
        assert_true(seen[ref[i]]);
    ps_sampler_free(&s);
}

static void test_sampler_top_p(void **state)
{
    (void)state;
    enum { V = 5 };
    const double p[V] = {0.05, 0.40, 0.10, 0.30, 0.15};
    float logits[V];
    logits_of(logits, p, V);
    struct {
        int top_k;
        float top_p;
        int allowed[V];
        double expect1;   /* expected frequency of id 1 */
    } cases[] = {
        /* 0.4 < 0.5 <= 0.4 + 0.3: ids 1 and 3, renormalised. */
        {0, 0.5f, {0, 1, 0, 1, 0}, 0.4 / 0.7},
        /* 0.7 < 0.75 <= 0.85: ids 1, 3, 4. */
        {0, 0.75f, {0, 1, 0, 1, 1}, 0.4 / 0.85},
        /* Top-k first: {1, 3} hold 0.7, and id 1 alone is 0.57 >= 0.5 of it. */
        {2, 0.5f, {0, 1, 0, 0, 0}, 1.0},
    };
    for (int c = 0; c < 3; c++) {
        ps_sampler s;
        assert_int_equal(ps_sampler_init(&s, V, 1.0f, cases[c].top_k,
                                         cases[c].top_p, 31, NULL), 0);
        long counts[V] = {0};
        const int draws = 20000;
        for (int i = 0; i < draws; i++) {
            int id = ps_sample(&s, logits);
            assert_true(id >= 0 && id < V);
            if (!cases[c].allowed[id])
                fail_msg("case %d: id %d is outside the nucleus", c, id);
            counts[id]++;
        }
        for (int i = 0; i < V; i++)
            if (cases[c].allowed[i])
                assert_true(counts[i] > 0);
        assert_near((double)counts[1] / draws, cases[c].expect1, 0.015);
        ps_sampler_free(&s);
    }
}

static void test_sampler_top_p_large_vocab(void **state)
{
    (void)state;
    /* Nucleus larger than the first guess of 64 candidates: all 500 equal
     * top tokens must be reachable, none of the tail. */
    enum { V = 3000 };
    float *logits = malloc(V * sizeof *logits);
    for (int i = 0; i < V; i++)
        logits[i] = (i % 6 == 0) ? 5.0f : -20.0f;
    ps_sampler s;
    assert_int_equal(ps_sampler_init(&s, V, 1.0f, 0, 0.905f, 4, NULL), 0);
    int seen_hi = 0;
    char *seen = calloc(V, 1);
    for (int i = 0; i < 20000; i++) {
        int id = ps_sample(&s, logits);
        /* Each top token holds 1/500: the nucleus is the first 453 of them,
         * and ties go by index, so ids 0, 6, ..., 6 * 452. */
        if (!(id >= 0 && id <= 6 * 452 && id % 6 == 0))
            fail_msg("draw %d: id %d is outside the nucleus", i, id);
        seen_hi += !seen[id];
        seen[id] = 1;
    }
    /* ~44 draws each: all of them turn up. */
    assert_int_equal(seen_hi, 453);
    ps_sampler_free(&s);
    free(seen);
    free(logits);
}

static void test_sampler_top_p_share_of_all(void **state)
{
    (void)state;
    /* A geometric distribution, p ~ 0.97^rank over 1000 tokens, ranks
     * scattered over the ids.  The first n ranks hold 1 - 0.97^n of the
     * mass: top_p = 0.5 needs 23 of them (0.4883 at 22, 0.5036 at 23).  The
     * first 64 hold only 0.857, so taking 0.5 of *their* mass would stop at
     * 19: the share is of the whole distribution. */
    enum { V = 1000 };
    float logits[V];
    for (int rank = 0; rank < V; rank++)
        logits[(rank * 7) % V] = (float)(rank * log(0.97));
    ps_sampler s;
    assert_int_equal(ps_sampler_init(&s, V, 1.0f, 0, 0.5f, 12, NULL), 0);
    int rank_of[V], max_rank = -1;
    for (int rank = 0; rank < V; rank++)
        rank_of[(rank * 7) % V] = rank;
    for (int i = 0; i < 20000; i++) {
        int id = ps_sample(&s, logits);
        assert_true(id >= 0 && id < V);
        if (rank_of[id] > 22)
            fail_msg("draw %d: id %d has rank %d, outside the nucleus", i, id,
                     rank_of[id]);
        max_rank = rank_of[id] > max_rank ? rank_of[id] : max_rank;
    }
    /* Rank 22 holds ~3% of the nucleus: ~600 draws of 20000. */
    assert_int_equal(max_rank, 22);
    ps_sampler_free(&s);
}

static void test_sampler_seeds_and_greedy(void **state)
{
    (void)state;
    enum { V = 50 };
    float logits[V];
    ps_rng r;
    ps_rng_seed(&r, 1);
    for (int i = 0; i < V; i++)
        logits[i] = ps_rng_normal(&r);
    ps_sampler a, b, c;
    assert_int_equal(ps_sampler_init(&a, V, 0.8f, 20, 0.95f, 42, NULL), 0);
    assert_int_equal(ps_sampler_init(&b, V, 0.8f, 20, 0.95f, 42, NULL), 0);
    assert_int_equal(ps_sampler_init(&c, V, 0.8f, 20, 0.95f, 43, NULL), 0);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        int x = ps_sample(&a, logits);
        assert_int_equal(x, ps_sample(&b, logits));
        differ += x != ps_sample(&c, logits);
    }
    assert_true(differ > 100);

    /* Greedy: always the argmax, and the generator does not move. */
    ps_sampler g;
    assert_int_equal(ps_sampler_init(&g, V, 0.0f, 0, 1.0f, 42, NULL), 0);
    ps_rng before = g.rng;
    for (int i = 0; i < 10; i++)
        assert_int_equal(ps_sample(&g, logits), ps_argmax(logits, V));
    assert_memory_equal(&before.s, &g.rng.s, sizeof before.s);
    assert_true(g.probs[ps_argmax(logits, V)] == 1.0f);

    ps_sampler_free(&a);
    ps_sampler_free(&b);
    ps_sampler_free(&c);
    ps_sampler_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_known_stream),
        cmocka_unit_test(test_rng_reproducible),
        cmocka_unit_test(test_rng_uniform_moments),
        cmocka_unit_test(test_rng_normal_moments),
        cmocka_unit_test(test_rng_below),
        cmocka_unit_test(test_probs_match_double_softmax),
        cmocka_unit_test(test_probs_temperature),
        cmocka_unit_test(test_argmax_entropy),
        cmocka_unit_test(test_topk_against_sort),
        cmocka_unit_test(test_sampler_init_checks),
        cmocka_unit_test(test_sampler_frequencies),
        cmocka_unit_test(test_sampler_top_k),
        cmocka_unit_test(test_sampler_top_p),
        cmocka_unit_test(test_sampler_top_p_large_vocab),
        cmocka_unit_test(test_sampler_top_p_share_of_all),
        cmocka_unit_test(test_sampler_seeds_and_greedy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
