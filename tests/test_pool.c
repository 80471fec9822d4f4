/* The thread pool: every chunk of every job runs exactly once, at more
 * threads than cores, and whole training steps give the same bits at any
 * thread count (the chunks are fixed-size, so the work does not depend on
 * how many threads share it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/pool.h"
#include "paramscope/blas.h"
#include "paramscope/rng.h"
#include "paramscope/trainer.h"

/* ---- every chunk exactly once ---- */

#define MAX_N 96

typedef struct job_ctx {
    int job;                    /* which job this context belongs to */
    atomic_int *current;        /* the job the caller is running now */
    atomic_int *runs;           /* [MAX_N] times each index ran */
    atomic_int *foreign;        /* chunks run under another job's number */
} job_ctx;

static void count_range(void *p, int i0, int i1)
{
    job_ctx *c = p;
    if (atomic_load(c->current) != c->job)
        atomic_fetch_add(c->foreign, 1);
    for (int i = i0; i < i1; i++)
        atomic_fetch_add(&c->runs[i], 1);
}

/* jobs of 1..MAX_N items, so the chunk count changes from job to job: the
 * old pool's race needed a worker that took no part in one job to read the
 * next one half-written. */
static long stress(int threads, int jobs, uint64_t seed)
{
    assert_int_equal(ps_blas_set_threads(threads, NULL), PS_OK);
    static atomic_int runs[MAX_N];
    atomic_int current = 0, foreign = 0;
    ps_rng rng;
    ps_rng_seed(&rng, seed);
    long wrong = 0;
    for (int j = 1; j <= jobs; j++) {
        int n = 1 + (int)ps_rng_below(&rng, (uint32_t)(j % 3 ? threads + 2 : MAX_N));
        for (int i = 0; i < MAX_N; i++)
            atomic_store(&runs[i], 0);
        atomic_store(&current, j);
        job_ctx c = {.job = j, .current = &current, .runs = runs, .foreign = &foreign};
        ps_parallel_for(n, count_range, &c);
        for (int i = 0; i < MAX_N; i++)
            wrong += atomic_load(&runs[i]) != (i < n);
    }
    return wrong + atomic_load(&foreign);
}

static void test_chunks_run_once(void **state)
{
    (void)state;
    /* 10^5 jobs in all */
    const int threads[] = {3, 4, 8, 16}, jobs[] = {40000, 30000, 20000, 10000};
    for (size_t k = 0; k < sizeof threads / sizeof threads[0]; k++)
        assert_int_equal(stress(threads[k], jobs[k], 11 + k), 0);
}

/* A chunk that itself calls ps_parallel_for runs its inner loop serially
 * (and must not deadlock). */
static void inner(void *p, int i0, int i1)
{
    atomic_int *sum = p;
    for (int i = i0; i < i1; i++)
        atomic_fetch_add(sum, i);
}

static void outer(void *p, int i0, int i1)
{
    for (int i = i0; i < i1; i++)
        ps_parallel_for(10, inner, p);
}

static void test_nested_runs_serially(void **state)
{
    (void)state;
    assert_int_equal(ps_blas_set_threads(4, NULL), PS_OK);
    atomic_int sum = 0;
    ps_parallel_for(7, outer, &sum);
    assert_int_equal(atomic_load(&sum), 7 * 45);
}

/* ---- the same bits at any thread count ---- */

/* Shapes above ps_sgemm's threading threshold, so the products are split
 * into bands as well as the heads and elementwise loops into chunks. */
static const ps_config cfg = {.n_layer = 2, .n_head = 4, .n_embd = 64, .n_ctx = 32, .vocab_size = 50};

typedef struct run { float *w; float loss[4]; double norm; } run;

static run train_at(int threads, const int *tok, size_t n_tok)
{
    assert_int_equal(ps_blas_set_threads(threads, NULL), PS_OK);
    ps_model *m = NULL;
    assert_int_equal(ps_model_init(&m, &cfg, NULL), PS_OK);
    ps_model_init_random(m, 5);
    ps_train_config c = ps_train_defaults(m);
    c.batch = 4;
    c.seq = 32;
    c.sched.lr = 3e-3f;
    ps_trainer *t = NULL;
    assert_int_equal(ps_trainer_init(&t, m, tok, n_tok, &c, NULL), PS_OK);
    run r;
    for (int s = 0; s < 4; s++) {
        assert_int_equal(ps_trainer_step(t, NULL), PS_OK);
        r.loss[s] = t->loss;
    }
    r.norm = t->grad_norm;
    r.w = malloc(m->n_floats * sizeof(float));
    memcpy(r.w, m->w, m->n_floats * sizeof(float));
    ps_trainer_free(t);
    ps_model_free(m);
    return r;
}

static void test_training_bits_independent_of_threads(void **state)
{
    (void)state;
    size_t n_tok = 4000;
    int *tok = malloc(n_tok * sizeof *tok);
    ps_rng rng;
    ps_rng_seed(&rng, 3);
    for (size_t i = 0; i < n_tok; i++)
        tok[i] = (int)ps_rng_below(&rng, (uint32_t)cfg.vocab_size);
    size_t n_floats = ps_config_param_count(&cfg);
    run one = train_at(1, tok, n_tok);
    const int threads[] = {2, 3, 8, 16};
    for (size_t k = 0; k < sizeof threads / sizeof threads[0]; k++) {
        run r = train_at(threads[k], tok, n_tok);
        assert_memory_equal(r.loss, one.loss, sizeof one.loss);
        assert_memory_equal(&r.norm, &one.norm, sizeof one.norm);
        assert_memory_equal(r.w, one.w, n_floats * sizeof(float));
        free(r.w);
    }
    /* and the steps did something */
    assert_true(one.loss[3] != one.loss[0]);
    free(one.w);
    free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunks_run_once),
        cmocka_unit_test(test_nested_runs_serially),
        cmocka_unit_test(test_training_bits_independent_of_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
