/* paramscope — statistics of tensors and views.
 * A view is a strided matrix: rows x cols, consecutive rows ld floats apart. */
#ifndef PARAMSCOPE_STATS_H
#define PARAMSCOPE_STATS_H

#include <stddef.h>

typedef struct ps_stats {
    size_t count;
    double mean, std;         /* population std */
    double min, max;
    double l2;                /* sqrt of sum of squares */
    double mean_abs;
    double frac_zero;         /* exact zeros / count */
    size_t n_nonfinite;       /* NaN and Inf are counted here and left out */
} ps_stats;

/* Statistics of the finite values of the view, accumulated in double (two
 * passes).  count and every figure cover the finite values only; NaN and Inf
 * are counted in n_nonfinite.  With no finite value, count is 0 and every
 * figure is 0.  ld >= cols unless rows <= 1. */
void ps_stats_compute(ps_stats *st, const float *x, size_t rows, size_t cols,
                      size_t ld);

/* counts[bins] of values in [lo, hi] split into equal bins by exact edges,
 * numpy's convention: with w = (hi - lo) / bins, bin i holds [lo + i w,
 * lo + (i + 1) w) (edges computed so in double), the last bin is closed and
 * holds hi; values outside and non-finite values are not counted.  If lo >=
 * hi (or either is not finite), lo and hi are taken from the data's finite
 * min and max; when all those values are equal the range is [v, v] and they
 * all go in the last bin; with no finite value it is [0, 0].  Returns the
 * number of values counted; *lo_out and *hi_out receive the range used (each
 * may be NULL).  counts is zeroed first. */
size_t ps_histogram(const float *x, size_t rows, size_t cols, size_t ld,
                    int bins, double lo, double hi, size_t *counts,
                    double *lo_out, double *hi_out);

#endif
