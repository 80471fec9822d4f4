/* The one door to BLIS.
 *
 * Why force a kernel family: Debian's BLIS 0.9 detects the CPU to choose its
 * kernels and does not know every CPU.  On an AMD EPYC (Zen 4) with AVX-512 it
 * falls back to the 'generic' family: measured on such a 2-core machine, sgemm
 * 1024^3 with 2 threads ran at 53 GFLOP/s with 'generic', 157 with 'haswell',
 * 178 with 'zen3' and 237 with 'skx'.  So when the CPU has the AVX-512 subsets
 * the skx kernels use (F, DQ, BW, VL) and the library was built with them, we
 * select skx through BLIS_ARCH_TYPE before BLIS first initialises.  A user's
 * own BLIS_ARCH_TYPE always wins. */
#include "paramscope/blas.h"
#include "pool.h"

#include <blis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Products of fewer multiply-adds than this run on one BLIS thread.  BLIS's
 * OpenMP threads spin for a while after each product; below ~16M
 * multiply-adds that spinning costs more than the second core gains, and it
 * steals the core from the pool (pool.h) that runs attention and the
 * elementwise kernels.  Measured on the tiny preset: 10.9 ms a step with a
 * 1M threshold, see docs/performance.md for the chosen value. */
#ifndef PS_SGEMM_THREADED_MIN
#define PS_SGEMM_THREADED_MIN 1e6
#endif

static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;
/* Read without the lock by every thread that multiplies (ps_sgemm), written
 * by ps_blas_set_threads from any thread: atomics. */
static atomic_int blas_ready;
static atomic_int blas_threads = 1;
static rntm_t blas_rntm;          /* multithreaded products */
static rntm_t blas_rntm_single;   /* products too small to be worth threads */
static const char *blas_reason = "cpu detection";
static const char *blas_arch_name = "unknown";

static int cpu_has_avx512(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

/* BLIS 0.9 reads BLIS_ARCH_TYPE as a number only (a name reads as 0, skx);
 * let people write the family's name, as newer BLIS does. */
static int translate_arch_name(const char *user)
{
    static const struct { const char *name; int id; } names[] = {
#ifdef BLIS_CONFIG_SKX
        {"skx", BLIS_ARCH_SKX},
#endif
#ifdef BLIS_CONFIG_HASWELL
        {"haswell", BLIS_ARCH_HASWELL},
#endif
#ifdef BLIS_CONFIG_ZEN3
        {"zen3", BLIS_ARCH_ZEN3},
#endif
#ifdef BLIS_CONFIG_ZEN2
        {"zen2", BLIS_ARCH_ZEN2},
#endif
#ifdef BLIS_CONFIG_ZEN
        {"zen", BLIS_ARCH_ZEN},
#endif
#ifdef BLIS_CONFIG_SANDYBRIDGE
        {"sandybridge", BLIS_ARCH_SANDYBRIDGE},
#endif
#ifdef BLIS_CONFIG_GENERIC
        {"generic", BLIS_ARCH_GENERIC},
#endif
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(user, names[i].name)) {
            char id[16];
            snprintf(id, sizeof id, "%d", names[i].id);
            setenv("BLIS_ARCH_TYPE", id, 1);
            return 1;
        }
    char *end;
    long v = strtol(user, &end, 10);
    return !*end && v >= 0 && v < BLIS_NUM_ARCHS;
}

static int ignored_user;   /* BLIS_ARCH_TYPE named no family of this BLIS */

static void choose_family(void)
{
    const char *user = getenv("BLIS_ARCH_TYPE");
    if (user && *user) {
        if (translate_arch_name(user)) {
            blas_reason = "BLIS_ARCH_TYPE from the environment";
            return;
        }
        /* unknown: BLIS would abort or quietly read it as 0 */
        unsetenv("BLIS_ARCH_TYPE");
        ignored_user = 1;
    }
#ifdef BLIS_CONFIG_SKX
    if (cpu_has_avx512()) {
        char id[16];
        snprintf(id, sizeof id, "%d", (int)BLIS_ARCH_SKX);
        setenv("BLIS_ARCH_TYPE", id, 1);
        blas_reason = "forced: the CPU has AVX-512";
    }
#endif
}

static int online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int ps_blas_init(int threads, ps_error *err)
{
    pthread_mutex_lock(&blas_lock);
    if (!blas_ready) {
        choose_family();
        bli_init();
        blas_arch_name = bli_arch_string(bli_arch_query_id());
        bli_rntm_init(&blas_rntm_single);
        bli_rntm_set_num_threads(1, &blas_rntm_single);
        blas_ready = 1;
    }
    pthread_mutex_unlock(&blas_lock);
    return ps_blas_set_threads(threads, err);
}

static void sgemm_one(int transa, int transb, int m, int n, int k, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc);

/* ---- BLIS's memory, taken before the model's ----
 *
 * Why: BLIS packs the operands of a product into blocks from pools that it
 * grows with malloc, and when malloc fails it aborts the process
 * (bli_malloc.c: "heap memory is likely exhausted"), which nothing can catch.
 * So at start every thread of the pool runs one product big enough for the
 * packing path, all at the same moment, and the pools then hold a block for
 * each thread before the model, its gradients and its moments take the
 * memory; later products reuse those blocks.  Out of memory afterwards is
 * then an allocation of ours, reported as such. */
#define WARM_N 512

typedef struct warm_job {
    atomic_int arrived;
    int want;
    float *buf;               /* [want, 3, WARM_N, WARM_N] */
} warm_job;

static void warm_part(void *p, int i0, int i1)
{
    warm_job *w = p;
    for (int i = i0; i < i1; i++) {
        /* wait (at most 0.2 s) for the others, so that the products overlap
         * and each thread holds blocks of its own */
        atomic_fetch_add(&w->arrived, 1);
        for (int spin = 0; atomic_load(&w->arrived) < w->want && spin < 2000; spin++)
            usleep(100);
        float *A = w->buf + (size_t)i * 3 * WARM_N * WARM_N;
        sgemm_one(0, 0, WARM_N, WARM_N, WARM_N, 1.0f, A, WARM_N, A + WARM_N * WARM_N, WARM_N,
                  0.0f, A + 2 * WARM_N * WARM_N, WARM_N);
    }
}

static int warm_up(int threads, ps_error *err)
{
    float *buf = calloc((size_t)threads * 3 * WARM_N * WARM_N, sizeof *buf);
    if (!buf)
        return ps_error_set(err, PS_ERR_NOMEM, "out of memory while preparing BLIS's buffers "
                            "for %d thread%s", threads, threads == 1 ? "" : "s");
    warm_job w = {.want = threads, .buf = buf};
    atomic_init(&w.arrived, 0);
    if (threads > 1 && !ps_in_parallel())
        ps_parallel_for(threads, warm_part, &w);
    else
        warm_part(&w, 0, 1);
    free(buf);
    return PS_OK;
}

static int blas_warmed;           /* threads whose blocks the pools hold */

int ps_blas_set_threads(int threads, ps_error *err)
{
    const char *env = getenv("PARAMSCOPE_THREADS");
    if (threads <= 0 && env && atoi(env) > 0)
        threads = atoi(env);
    if (threads <= 0)
        threads = online_cores();
    if (threads > 256)
        return ps_error_set(err, PS_ERR_RANGE, "threads: %d is more than 256", threads);
    pthread_mutex_lock(&blas_lock);
    blas_threads = threads;
    bli_rntm_init(&blas_rntm);
    bli_rntm_set_num_threads(threads, &blas_rntm);
    int warm = threads > blas_warmed;
    if (warm)
        blas_warmed = threads;
    pthread_mutex_unlock(&blas_lock);
    return warm ? warm_up(threads, err) : PS_OK;
}

int ps_blas_threads(void)
{
    return blas_threads;
}

const char *ps_blas_arch(void)
{
    if (!blas_ready)
        ps_blas_init(0, NULL);
    return blas_arch_name;
}

const char *ps_blas_arch_reason(void)
{
    static char buf[160];
    if (!ignored_user)
        return blas_reason;
    snprintf(buf, sizeof buf, "%s; BLIS_ARCH_TYPE was ignored: not a family of this BLIS", blas_reason);
    return buf;
}

static void sgemm_one(int transa, int transb, int m, int n, int k, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta,
                      float *C, int ldc)
{
    rntm_t rntm = blas_rntm_single;
    bli_sgemm_ex(transa ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 transb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 m, n, k, &alpha,
                 (float *)A, lda, 1,
                 (float *)B, ldb, 1,
                 &beta, C, ldc, 1, NULL, &rntm);
}

typedef struct split_job {
    int transa, transb, m, n, k, lda, ldb, ldc, parts;
    float alpha, beta;
    const float *A, *B;
    float *C;
} split_job;

/* Part p of the product: a band of C's columns (or rows, when C is tall and
 * narrow), each computed by single-threaded BLIS. */
static void sgemm_part(void *p, int i0, int i1)
{
    const split_job *j = p;
    for (int part = i0; part < i1; part++) {
        int cols = j->n >= j->m || j->n >= 256;
        int len = cols ? j->n : j->m;
        int a = (int)((long)len * part / j->parts) & ~31;
        int b = part == j->parts - 1 ? len : (int)((long)len * (part + 1) / j->parts) & ~31;
        if (b <= a)
            continue;
        if (cols) {
            const float *Bp = j->transb ? j->B + (size_t)a * j->ldb : j->B + a;
            sgemm_one(j->transa, j->transb, j->m, b - a, j->k, j->alpha, j->A, j->lda, Bp, j->ldb,
                      j->beta, j->C + a, j->ldc);
        } else {
            const float *Ap = j->transa ? j->A + a : j->A + (size_t)a * j->lda;
            sgemm_one(j->transa, j->transb, b - a, j->n, j->k, j->alpha, Ap, j->lda, j->B, j->ldb,
                      j->beta, j->C + (size_t)a * j->ldc, j->ldc);
        }
    }
}

void ps_sgemm(int transa, int transb, int m, int n, int k, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta,
              float *C, int ldc)
{
    if (!blas_ready)
        ps_blas_init(0, NULL);
    if (m <= 0 || n <= 0)
        return;
    /* Large products are split into bands over the thread pool, each band
     * one single-threaded BLIS call: BLIS's own OpenMP threads would spin
     * between products and fight the pool for the cores. */
    int threads = blas_threads;
    if (threads > 1 && !ps_in_parallel() && (double)m * n * k >= PS_SGEMM_THREADED_MIN &&
        (n >= 64 * threads || m >= 64 * threads)) {
        split_job j = {transa, transb, m, n, k, lda, ldb, ldc, threads, alpha, beta, A, B, C};
        ps_parallel_for(threads, sgemm_part, &j);
        return;
    }
    sgemm_one(transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
