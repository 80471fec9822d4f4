/* The SIGBUS guard for mapped files (mapguard.h). */
#include "paramscope/mapguard.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLOTS 64

/* A slot is free when its start is 0; add claims one with a compare-and-swap
 * on the start, then publishes the length.  The handler reads both. */
static atomic_uintptr_t slot_start[SLOTS];
static atomic_size_t slot_len[SLOTS];
static atomic_ulong mended;
static atomic_int installed;
static struct sigaction previous;

int ps_mapguard_handle(const siginfo_t *si)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    for (int i = 0; i < SLOTS; i++) {
        uintptr_t s = atomic_load(&slot_start[i]);
        size_t n = atomic_load(&slot_len[i]);
        if (!s || a < s || a - s >= n)
            continue;
        long page = sysconf(_SC_PAGESIZE);
        uintptr_t p = a & ~(uintptr_t)(page - 1);
        /* zeros in place of the page the file no longer has */
        if (mmap((void *)p, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
            MAP_FAILED)
            return 0;
        atomic_fetch_add(&mended, 1);
        return 1;
    }
    return 0;
}

static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
    if (ps_mapguard_handle(si))
        return;
    if (previous.sa_flags & SA_SIGINFO && previous.sa_sigaction) {
        previous.sa_sigaction(sig, si, ctx);
        return;
    }
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN && previous.sa_handler) {
        previous.sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

int ps_mapguard_install(void)
{
    if (atomic_exchange(&installed, 1))
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGBUS, &sa, &previous);
}

int ps_mapguard_add(const void *addr, size_t len)
{
    for (int i = 0; i < SLOTS; i++) {
        uintptr_t free_slot = 0;
        if (atomic_compare_exchange_strong(&slot_start[i], &free_slot, (uintptr_t)1)) {
            /* claimed: length first, then the real start */
            atomic_store(&slot_len[i], len);
            atomic_store(&slot_start[i], (uintptr_t)addr);
            return 0;
        }
    }
    return -1;
}

void ps_mapguard_remove(const void *addr)
{
    for (int i = 0; i < SLOTS; i++)
        if (atomic_load(&slot_start[i]) == (uintptr_t)addr) {
            atomic_store(&slot_len[i], 0);
            atomic_store(&slot_start[i], 0);
            return;
        }
}

unsigned long ps_mapguard_mended(void)
{
    return atomic_load(&mended);
}
