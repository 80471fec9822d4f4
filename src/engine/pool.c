/* A fixed set of worker threads.  ps_parallel_for cuts a job into chunks;
 * the caller and the workers claim chunks one at a time from a counter, run
 * them, and the caller returns when every chunk has run.
 *
 * Why a claim counter stamped with the job: the counter word holds the job's
 * generation beside the next chunk index, and a chunk is taken by one
 * compare-and-swap of that word.  A worker that wakes late, after its job is
 * over, finds another generation or no chunk left and touches nothing, so no
 * worker can run one job's chunk under another's function or count it for
 * the wrong job.  (The pool this replaced gave worker k chunk k and read the
 * chunk count after the job id; a worker descheduled between the two ran the
 * next job's chunk for this one.)  Claiming also means a descheduled worker
 * never holds a job up: the caller takes the chunks nobody came for, so more
 * threads than cores cost little.
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
#define GEN_SHIFT 16            /* chunks <= MAX_WORKERS + 1 fit below */
#define INDEX_MASK ((1ull << GEN_SHIFT) - 1)

static _Thread_local int in_parallel;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t call_lock = PTHREAD_MUTEX_INITIALIZER;  /* one job at a time */
static int n_workers;           /* under lock */
static int sleepers;            /* workers waiting on `wake` (under lock) */
static int caller_sleeping;     /* the caller waits on `done` (under lock) */

/* Written by the caller only, under call_lock:
 *   job_word  generation << GEN_SHIFT | chunk count: what wakes the workers;
 *   claim     generation << GEN_SHIFT | next chunk to run: what they take.
 * `job` is read only by a thread holding a claimed chunk of the current
 * generation; the caller rewrites it only once every chunk has finished. */
static atomic_ullong job_word;
static atomic_ullong claim;
static atomic_int finished;     /* chunks of the current job that have run */
static struct {
    void (*fn)(void *, int, int);
    void *ctx;
    int n;
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

/* Claims and runs chunks of generation `gen` (of `chunks` chunks) until none
 * is left; returns how many this thread ran. */
static int run_claimed(unsigned long long gen, int chunks)
{
    int ran = 0;
    unsigned long long c = atomic_load_explicit(&claim, memory_order_acquire);
    for (;;) {
        if (c >> GEN_SHIFT != gen || (int)(c & INDEX_MASK) >= chunks)
            return ran;
        if (!atomic_compare_exchange_weak_explicit(&claim, &c, c + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;           /* c now holds the word another thread left */
        int k = (int)(c & INDEX_MASK);
        int i0 = (int)((long)job.n * k / chunks);
        int i1 = (int)((long)job.n * (k + 1) / chunks);
        if (i1 > i0)
            job.fn(job.ctx, i0, i1);
        ran++;
        if (atomic_fetch_add_explicit(&finished, 1, memory_order_acq_rel) + 1 == chunks) {
            pthread_mutex_lock(&lock);
            if (caller_sleeping)
                pthread_cond_signal(&done);
            pthread_mutex_unlock(&lock);
        }
        c = atomic_load_explicit(&claim, memory_order_acquire);
    }
}

/* The first job word different from `seen`: spins a little, then sleeps. */
static unsigned long long next_job(unsigned long long seen)
{
    unsigned long long w;
    for (int spins = 0; spins < SPIN_ROUNDS; spins++) {
        if ((w = atomic_load_explicit(&job_word, memory_order_acquire)) != seen)
            return w;
        cpu_relax();
    }
    pthread_mutex_lock(&lock);
    sleepers++;
    while ((w = atomic_load_explicit(&job_word, memory_order_acquire)) == seen)
        pthread_cond_wait(&wake, &lock);
    sleepers--;
    pthread_mutex_unlock(&lock);
    return w;
}

static void *worker(void *arg)
{
    /* The job word current when the thread was made: the job that grow()'s
     * caller publishes next is then new to it, however late it starts. */
    unsigned long long seen = *(unsigned long long *)arg;
    free(arg);
    in_parallel = 1;
    for (;;) {
        seen = next_job(seen);
        run_claimed(seen >> GEN_SHIFT, (int)(seen & INDEX_MASK));
    }
    return NULL;
}

static void grow(int want)
{
    while (n_workers < want && n_workers < MAX_WORKERS) {
        pthread_t t;
        pthread_attr_t attr;
        unsigned long long *seen = malloc(sizeof *seen);
        if (!seen)
            break;
        *seen = atomic_load(&job_word);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, worker, seen);
        pthread_attr_destroy(&attr);
        if (rc) {
            free(seen);
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
    pthread_mutex_unlock(&lock);

    /* No chunk of the previous job is claimed or running: rewriting `job`
     * races with nobody. */
    job.fn = fn;
    job.ctx = ctx;
    job.n = n;
    unsigned long long gen = (atomic_load_explicit(&job_word, memory_order_relaxed) >> GEN_SHIFT) + 1;
    atomic_store_explicit(&finished, 0, memory_order_relaxed);
    atomic_store_explicit(&claim, gen << GEN_SHIFT, memory_order_release);
    atomic_store_explicit(&job_word, gen << GEN_SHIFT | (unsigned long long)chunks,
                          memory_order_release);
    pthread_mutex_lock(&lock);
    if (sleepers)
        pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);

    in_parallel = 1;
    run_claimed(gen, chunks);
    in_parallel = 0;

    for (int spins = 0; spins < SPIN_ROUNDS &&
         atomic_load_explicit(&finished, memory_order_acquire) < chunks; spins++)
        cpu_relax();
    if (atomic_load_explicit(&finished, memory_order_acquire) < chunks) {
        pthread_mutex_lock(&lock);
        caller_sleeping = 1;
        while (atomic_load_explicit(&finished, memory_order_acquire) < chunks)
            pthread_cond_wait(&done, &lock);
        caller_sleeping = 0;
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_unlock(&call_lock);
}
