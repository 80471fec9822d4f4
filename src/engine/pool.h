/* Internal: a small pool of threads for the loops around BLIS.
 *
 * Why: BLIS parallelises one large product well, but attention is many small
 * products (one per sequence and head) and the elementwise kernels are
 * plain loops; with one BLIS thread each, two cores can run two heads at
 * once.  Work inside ps_parallel_for calls BLIS single-threaded, so threads
 * never stack on threads.  The pool size follows ps_blas_threads(). */
#ifndef PARAMSCOPE_POOL_H
#define PARAMSCOPE_POOL_H

/* Calls fn(ctx, i0, i1) on disjoint chunks covering [0, n), in parallel, and
 * returns when all are done.  Runs serially when n is small, when the pool
 * has one thread, or when called from inside another ps_parallel_for. */
void ps_parallel_for(int n, void (*fn)(void *ctx, int i0, int i1), void *ctx);

/* Nonzero inside a ps_parallel_for chunk (ps_sgemm then stays single-threaded). */
int ps_in_parallel(void);

#endif
