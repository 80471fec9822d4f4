/* A fixed set of worker threads woken through a condition variable: each
 * ps_parallel_for publishes one job, workers take their chunk, the caller
 * runs chunk 0 and waits for the rest. */
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>

#include "paramscope/blas.h"

#define MAX_WORKERS 63

static _Thread_local int in_parallel;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t call_lock = PTHREAD_MUTEX_INITIALIZER;  /* one job at a time */
static int n_workers;
static unsigned long job_id;
static struct {
    void (*fn)(void *, int, int);
    void *ctx;
    int n, chunks, remaining;
} job;

int ps_in_parallel(void)
{
    return in_parallel;
}

static void run_chunk(int c)
{
    int i0 = (int)((long)job.n * c / job.chunks);
    int i1 = (int)((long)job.n * (c + 1) / job.chunks);
    if (i1 > i0)
        job.fn(job.ctx, i0, i1);
}

static void *worker(void *arg)
{
    int me = (int)(long)arg;   /* chunk index: 1 .. n_workers */
    unsigned long seen = 0;
    in_parallel = 1;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (job_id == seen)
            pthread_cond_wait(&wake, &lock);
        seen = job_id;
        int mine = me < job.chunks;
        pthread_mutex_unlock(&lock);
        if (mine)
            run_chunk(me);
        pthread_mutex_lock(&lock);
        if (mine && --job.remaining == 0)
            pthread_cond_signal(&done);
    }
    return NULL;
}

static void grow(int want)
{
    while (n_workers < want && n_workers < MAX_WORKERS) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, worker, (void *)(long)(n_workers + 1));
        pthread_attr_destroy(&attr);
        if (rc)
            break;
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
    job.remaining = chunks - 1;
    job_id++;
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);

    in_parallel = 1;
    run_chunk(0);
    in_parallel = 0;

    pthread_mutex_lock(&lock);
    while (job.remaining > 0)
        pthread_cond_wait(&done, &lock);
    pthread_mutex_unlock(&lock);
    pthread_mutex_unlock(&call_lock);
}
