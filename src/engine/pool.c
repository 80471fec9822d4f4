/* A fixed set of worker threads.  Each ps_parallel_for publishes one job;
 * workers take their chunk, the caller runs chunk 0 and waits for the rest.
 *
 * Why spin first: a step of a small model calls ps_parallel_for about a
 * hundred times, and a sleep/wake through the kernel costs tens of
 * microseconds each time.  Workers and the caller therefore spin for a short
 * bounded while (SPIN_ROUNDS, about 50 us) before they sleep on a condition
 * variable; unlike OpenMP's long spins this gives the core back quickly when
 * the machine is busy. */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "paramscope/blas.h"

#define MAX_WORKERS 63
#define SPIN_ROUNDS 4000

static _Thread_local int in_parallel;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t call_lock = PTHREAD_MUTEX_INITIALIZER;  /* one job at a time */
static int n_workers;
static atomic_ulong job_id;
static atomic_int remaining;
static int sleepers;            /* workers waiting on `wake` (under lock) */
static int caller_sleeping;     /* the caller waits on `done` (under lock) */
static struct {
    void (*fn)(void *, int, int);
    void *ctx;
    int n, chunks;
} job;

int ps_in_parallel(void)
{
    return in_parallel;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_chunk(int c)
{
    int i0 = (int)((long)job.n * c / job.chunks);
    int i1 = (int)((long)job.n * (c + 1) / job.chunks);
    if (i1 > i0)
        job.fn(job.ctx, i0, i1);
}

typedef struct start { int me; unsigned long seen; } start;

static void *worker(void *arg)
{
    /* The job id current when the thread was made: the job that grow()'s
     * caller publishes next is then new to it, however late it starts. */
    start st = *(start *)arg;
    free(arg);
    int me = st.me;            /* chunk index: 1 .. n_workers */
    unsigned long seen = st.seen;
    in_parallel = 1;
    for (;;) {
        unsigned long id;
        int spins = 0;
        while ((id = atomic_load_explicit(&job_id, memory_order_acquire)) == seen && spins < SPIN_ROUNDS) {
            cpu_relax();
            spins++;
        }
        if (id == seen) {
            pthread_mutex_lock(&lock);
            sleepers++;
            while ((id = atomic_load(&job_id)) == seen)
                pthread_cond_wait(&wake, &lock);
            sleepers--;
            pthread_mutex_unlock(&lock);
        }
        seen = id;
        if (me >= job.chunks)
            continue;
        run_chunk(me);
        if (atomic_fetch_sub_explicit(&remaining, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&lock);
            if (caller_sleeping)
                pthread_cond_signal(&done);
            pthread_mutex_unlock(&lock);
        }
    }
    return NULL;
}

static void grow(int want)
{
    while (n_workers < want && n_workers < MAX_WORKERS) {
        pthread_t t;
        pthread_attr_t attr;
        start *st = malloc(sizeof *st);
        if (!st)
            break;
        st->me = n_workers + 1;
        st->seen = atomic_load(&job_id);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, worker, st);
        pthread_attr_destroy(&attr);
        if (rc) {
            free(st);
            break;
        }
        n_workers++;
    }
}

void ps_parallel_for(int n, void (*fn)(void *ctx, int i0, int i1), void *ctx)
{
    int threads = ps_blas_threads();
    if (n <= 1 || threads <= 1 || in_parallel) {
        if (n > 0)
            fn(ctx, 0, n);
        return;
    }
    pthread_mutex_lock(&call_lock);
    pthread_mutex_lock(&lock);
    grow(threads - 1);
    int chunks = threads < n_workers + 1 ? threads : n_workers + 1;
    chunks = n < chunks ? n : chunks;
    job.fn = fn;
    job.ctx = ctx;
    job.n = n;
    job.chunks = chunks;
    atomic_store(&remaining, chunks - 1);
    atomic_fetch_add_explicit(&job_id, 1, memory_order_release);
    if (sleepers)
        pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);

    in_parallel = 1;
    run_chunk(0);
    in_parallel = 0;

    for (int spins = 0; atomic_load_explicit(&remaining, memory_order_acquire) > 0 && spins < SPIN_ROUNDS; spins++)
        cpu_relax();
    if (atomic_load(&remaining) > 0) {
        pthread_mutex_lock(&lock);
        caller_sleeping = 1;
        while (atomic_load(&remaining) > 0)
            pthread_cond_wait(&done, &lock);
        caller_sleeping = 0;
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_unlock(&call_lock);
}
