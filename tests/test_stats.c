/* Tests of engine/stats against naive double loops written here.  Views are
 * strided with gaps filled with huge values, so that a wrong stride shows. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "paramscope/rng.h"
#include "paramscope/stats.h"

#define assert_near(a, b, tol)                                               \
    do {                                                                     \
        double a_ = (a), b_ = (b), t_ = (tol);                               \
        if (!(fabs(a_ - b_) <= t_))                                          \
            fail_msg("%s = %.17g, expected %.17g (tolerance %g)", #a, a_,    \
                     b_, t_);                                                \
    } while (0)

#define assert_rel(a, b, rtol) assert_near(a, b, (rtol) * fabs((double)(b)))

#define GAP_VALUE 3.0e37f

/* rows x cols values at stride ld, the gaps between rows set to GAP_VALUE. */
static float *make_view(size_t rows, size_t cols, size_t ld, ps_rng *r,
                        float scale, float offset)
{
    float *x = malloc(rows * ld * sizeof *x);
    for (size_t i = 0; i < rows * ld; i++)
        x[i] = GAP_VALUE;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++)
            x[i * ld + j] = offset + scale * ps_rng_normal(r);
    return x;
}

typedef struct naive {
    size_t count, zeros, nonfinite;
    double mean, std, min, max, l2, mean_abs;
} naive;

static naive naive_stats(const float *x, size_t rows, size_t cols, size_t ld)
{
    naive n = {0};
    double sum = 0.0, sq = 0.0, abs_sum = 0.0;
    n.min = INFINITY;
    n.max = -INFINITY;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            double v = x[i * ld + j];
            if (isnan(v) || isinf(v)) {
                n.nonfinite++;
                continue;
            }
            n.count++;
            n.zeros += v == 0.0;
            sum += v;
            sq += v * v;
            abs_sum += fabs(v);
            if (v < n.min)
                n.min = v;
            if (v > n.max)
                n.max = v;
        }
    n.mean = sum / n.count;
    n.l2 = sqrt(sq);
    n.mean_abs = abs_sum / n.count;
    double dev = 0.0;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            double v = x[i * ld + j];
            if (!isnan(v) && !isinf(v))
                dev += (v - n.mean) * (v - n.mean);
        }
    n.std = sqrt(dev / n.count);
    return n;
}

static void check_against_naive(const float *x, size_t rows, size_t cols,
                                 size_t ld)
{
    ps_stats st;
    ps_stats_compute(&st, x, rows, cols, ld);
    naive n = naive_stats(x, rows, cols, ld);
    assert_int_equal(st.count, n.count);
    assert_int_equal(st.n_nonfinite, n.nonfinite);
    assert_true(st.min == n.min);
    assert_true(st.max == n.max);
    assert_near(st.mean, n.mean, 1e-12 * (fabs(n.mean) + n.std));
    assert_rel(st.std, n.std, 1e-10);
    assert_rel(st.l2, n.l2, 1e-12);
    assert_rel(st.mean_abs, n.mean_abs, 1e-12);
    assert_near(st.frac_zero, (double)n.zeros / n.count, 0.0);
}

static void test_stats_random_contiguous(void **state)
{
    (void)state;
    ps_rng r;
    ps_rng_seed(&r, 1);
    float *x = make_view(1, 100003, 100003, &r, 0.02f, 0.001f);
    check_against_naive(x, 1, 100003, 100003);
    /* The same data seen as a matrix. */
    check_against_naive(x, 1000, 100, 100);
    free(x);
}

static void test_stats_strided(void **state)
{
    (void)state;
    ps_rng r;
    ps_rng_seed(&r, 2);
    size_t rows = 300, cols = 37, ld = 64;
    float *x = make_view(rows, cols, ld, &r, 1.5f, -0.25f);
    check_against_naive(x, rows, cols, ld);
    ps_stats st;
    ps_stats_compute(&st, x, rows, cols, ld);
    /* A value from a gap anywhere would dominate all of these. */
    assert_true(st.max < 100.0 && st.l2 < 1e4 && st.std < 10.0);
    assert_int_equal(st.count, rows * cols);
    /* One column: cols = 1, ld = 64. */
    check_against_naive(x + 5, rows, 1, ld);
    free(x);
}

static void test_stats_precision(void **state)
{
    (void)state;
    /* A LayerNorm-like gain: mean 1, spread 1e-4.  E[x^2] - E[x]^2 would
     * lose most digits of the variance here. */
    ps_rng r;
    ps_rng_seed(&r, 3);
    float *x = make_view(1, 200000, 200000, &r, 1e-4f, 1.0f);
    ps_stats st;
    ps_stats_compute(&st, x, 1, 200000, 200000);
    naive n = naive_stats(x, 1, 200000, 200000);
    assert_rel(st.std, n.std, 1e-9);
    assert_near(st.std, 1e-4, 2e-6);
    free(x);
}

static void test_stats_zeros_and_nonfinite(void **state)
{
    (void)state;
    size_t rows = 10, cols = 40, ld = 48;
    float x[10 * 48];
    for (size_t i = 0; i < rows * ld; i++)
        x[i] = GAP_VALUE;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++)
            x[i * ld + j] = (j % 4 == 0) ? (j % 8 == 0 ? 0.0f : -0.0f)
                                         : (float)(i + j) * 0.5f - 6.75f;
    ps_stats st;
    ps_stats_compute(&st, x, rows, cols, ld);
    assert_near(st.frac_zero, 0.25, 0.0);   /* -0.0 is a zero too */
    assert_int_equal(st.n_nonfinite, 0);
    check_against_naive(x, rows, cols, ld);

    x[3] = NAN;
    x[ld + 1] = INFINITY;
    x[5 * ld + 39] = -INFINITY;
    x[9 * ld + 2] = NAN;
    ps_stats_compute(&st, x, rows, cols, ld);
    assert_int_equal(st.n_nonfinite, 4);
    assert_int_equal(st.count, rows * cols - 4);
    assert_true(isfinite(st.mean) && isfinite(st.std) && isfinite(st.l2));
    assert_true(isfinite(st.min) && isfinite(st.max));
    check_against_naive(x, rows, cols, ld);

    float bad[3] = {NAN, INFINITY, -INFINITY};
    ps_stats_compute(&st, bad, 1, 3, 3);
    assert_int_equal(st.count, 0);
    assert_int_equal(st.n_nonfinite, 3);
    assert_true(st.mean == 0.0 && st.std == 0.0 && st.min == 0.0 &&
                st.max == 0.0 && st.frac_zero == 0.0);
}

static void test_stats_constant(void **state)
{
    (void)state;
    float x[1000];
    for (int i = 0; i < 1000; i++)
        x[i] = 0.1f;
    ps_stats st;
    ps_stats_compute(&st, x, 1, 1000, 1000);
    assert_true(st.std == 0.0);
    assert_true(st.min == (double)0.1f && st.max == (double)0.1f);
    assert_rel(st.mean, (double)0.1f, 1e-15);
}

/* ---- histogram ---- */

static void naive_histogram(const float *x, size_t rows, size_t cols,
                            size_t ld, int bins, double lo, double hi,
                            size_t *counts)
{
    memset(counts, 0, bins * sizeof *counts);
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            double v = x[i * ld + j];
            if (isnan(v) || v < lo || v > hi || isinf(v))
                continue;
            int b = (int)floor((v - lo) * (bins / (hi - lo)));
            counts[b < bins ? b : bins - 1]++;
        }
}

static void test_histogram_random(void **state)
{
    (void)state;
    ps_rng r;
    ps_rng_seed(&r, 4);
    size_t rows = 200, cols = 50, ld = 53;
    float *x = make_view(rows, cols, ld, &r, 1.0f, 0.0f);
    x[7] = NAN;
    x[ld * 3 + 4] = INFINITY;
    enum { BINS = 17 };
    size_t counts[BINS], ref[BINS];
    double lo, hi;

    /* Automatic range: the finite min and max of the view, not the gaps. */
    size_t n = ps_histogram(x, rows, cols, ld, BINS, 0.0, 0.0, counts, &lo, &hi);
    ps_stats st;
    ps_stats_compute(&st, x, rows, cols, ld);
    assert_true(lo == st.min && hi == st.max);
    assert_int_equal(n, rows * cols - 2);
    naive_histogram(x, rows, cols, ld, BINS, lo, hi, ref);
    size_t sum = 0;
    for (int b = 0; b < BINS; b++) {
        assert_int_equal(counts[b], ref[b]);
        sum += counts[b];
    }
    assert_int_equal(sum, n);
    assert_true(counts[BINS - 1] >= 1);   /* the maximum itself */

    /* A fixed range: values outside are left out. */
    n = ps_histogram(x, rows, cols, ld, BINS, -1.0, 1.0, counts, NULL, NULL);
    naive_histogram(x, rows, cols, ld, BINS, -1.0, 1.0, ref);
    sum = 0;
    for (int b = 0; b < BINS; b++) {
        assert_int_equal(counts[b], ref[b]);
        sum += counts[b];
    }
    assert_int_equal(sum, n);
    /* About 68% of a standard normal lies in [-1, 1]. */
    assert_true(n > 0.64 * rows * cols && n < 0.72 * rows * cols);
    free(x);
}

static void test_histogram_edges(void **state)
{
    (void)state;
    float x[6] = {0.0f, 0.25f, 0.5f, 0.75f, 1.0f, 1.5f};
    size_t counts[4];
    size_t n = ps_histogram(x, 1, 6, 6, 4, 0.0, 1.0, counts, NULL, NULL);
    /* lo opens bin 0, each edge opens the next bin, hi closes the last. */
    assert_int_equal(n, 5);
    assert_int_equal(counts[0], 1);
    assert_int_equal(counts[1], 1);
    assert_int_equal(counts[2], 1);
    assert_int_equal(counts[3], 2);

    /* The data's range: 1.5 is now hi and lands in the last bin. */
    double lo, hi;
    n = ps_histogram(x, 1, 6, 6, 3, 5.0, 5.0, counts, &lo, &hi);
    assert_int_equal(n, 6);
    assert_true(lo == 0.0 && hi == 1.5);
    assert_int_equal(counts[0], 2);   /* 0, 0.25 */
    assert_int_equal(counts[1], 2);   /* 0.5, 0.75 */
    assert_int_equal(counts[2], 2);   /* 1.0, 1.5 */
}

static void test_histogram_constant_and_empty(void **state)
{
    (void)state;
    float x[2 * 8];
    for (int i = 0; i < 16; i++)
        x[i] = (i % 8 < 5) ? 2.5f : GAP_VALUE;
    size_t counts[10];
    double lo = -1.0, hi = -1.0;
    size_t n = ps_histogram(x, 2, 5, 8, 10, 0.0, 0.0, counts, &lo, &hi);
    assert_int_equal(n, 10);
    assert_true(lo == 2.5 && hi == 2.5);
    for (int b = 0; b < 9; b++)
        assert_int_equal(counts[b], 0);
    assert_int_equal(counts[9], 10);

    float bad[3] = {NAN, INFINITY, NAN};
    for (int b = 0; b < 10; b++)
        counts[b] = 99;
    n = ps_histogram(bad, 1, 3, 3, 10, 0.0, 0.0, counts, &lo, &hi);
    assert_int_equal(n, 0);
    assert_true(lo == 0.0 && hi == 0.0);
    for (int b = 0; b < 10; b++)
        assert_int_equal(counts[b], 0);
}

/* The bin of v by the edges themselves: numpy's convention, bin i holds
 * [lo + i w, lo + (i + 1) w), the last one closed. */
static int bin_by_edges(double v, double lo, double hi, int bins)
{
    double w = (hi - lo) / bins;
    int b = 0;
    while (b < bins - 1 && v >= lo + (double)(b + 1) * w)
        b++;
    return b;
}

/* A value exactly on a lower edge goes in the bin above it (where
 * (v - lo) * bins / (hi - lo) rounds down to the bin below); and every
 * float next to every edge of many ranges lands where the edges say. */
static void test_histogram_exact_edges(void **state)
{
    (void)state;
    float x[3] = {-0x1.576762p+0f, 0x1.1a3f7cp+0f, -0x1.e93f3p-4f};
    size_t counts[176];
    double lo, hi;
    ps_histogram(x, 1, 3, 3, 176, 0.0, 0.0, counts, &lo, &hi);
    assert_true(-0x1.e93f3p-4 == lo + 88 * ((hi - lo) / 176));   /* on edge 88 */
    assert_int_equal(counts[87], 0);
    assert_int_equal(counts[88], 1);
    ps_rng r;
    ps_rng_seed(&r, 9);
    for (int trial = 0; trial < 300; trial++) {
        float data[2 + 3 * 64];
        int bins = 3 + (int)ps_rng_below(&r, 60);
        data[0] = (float)(-3.0 * ps_rng_uniform(&r));
        data[1] = (float)(0.1 + 3.0 * ps_rng_uniform(&r));
        double l = data[0], h = data[1], w = (h - l) / bins;
        int n = 2;
        for (int i = 1; i < bins; i++) {
            float e = (float)(l + i * w);
            data[n++] = e;
            data[n++] = nextafterf(e, -INFINITY);
            data[n++] = nextafterf(e, INFINITY);
        }
        size_t got[64] = {0}, want[64] = {0};
        ps_histogram(data, 1, (size_t)n, (size_t)n, bins, 0.0, 0.0, got, NULL, NULL);
        for (int i = 0; i < n; i++)
            want[bin_by_edges(data[i], l, h, bins)]++;
        assert_memory_equal(got, want, sizeof(size_t) * (size_t)bins);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_random_contiguous),
        cmocka_unit_test(test_histogram_exact_edges),
        cmocka_unit_test(test_stats_strided),
        cmocka_unit_test(test_stats_precision),
        cmocka_unit_test(test_stats_zeros_and_nonfinite),
        cmocka_unit_test(test_stats_constant),
        cmocka_unit_test(test_histogram_random),
        cmocka_unit_test(test_histogram_edges),
        cmocka_unit_test(test_histogram_constant_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
