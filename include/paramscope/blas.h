/* paramscope — the one door to BLIS: kernel family, threads, row-major sgemm.
 *
 * Debian's BLIS 0.9 chooses its kernels by CPU detection and does not know
 * every CPU (AMD Zen 4 falls back to the slow 'generic' family).  ps_blas_init
 * picks the fastest family the CPU supports before BLIS initialises, unless
 * the user set BLIS_ARCH_TYPE, and reports which one runs. */
#ifndef PARAMSCOPE_BLAS_H
#define PARAMSCOPE_BLAS_H

#include "paramscope/error.h"

/* Idempotent.  threads <= 0 means $PARAMSCOPE_THREADS if set, else one per
 * online core. */
int ps_blas_init(int threads, ps_error *err);

/* Number of threads BLIS uses from now on (>= 1). */
int ps_blas_set_threads(int threads, ps_error *err);
int ps_blas_threads(void);

/* Name of the kernel family in use ("skx", "haswell", "generic", ...). */
const char *ps_blas_arch(void);

/* How the family was chosen: "cpu detection", "forced: avx512" or
 * "BLIS_ARCH_TYPE from the environment". */
const char *ps_blas_arch_reason(void);

/* Row-major C[m,n] = alpha * op(A) op(B) + beta * C, with op(X) = X or X^T
 * as transa/transb say.  lda, ldb, ldc are row strides of the stored
 * matrices. */
void ps_sgemm(int transa, int transb, int m, int n, int k, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta,
              float *C, int ldc);

#endif
