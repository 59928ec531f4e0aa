/* generation.c - the shared page, the stop broadcast, and futex waits on them. */
#define _GNU_SOURCE
#include "generation.h"
#include "clock.h"
#include "log.h"
#include "real.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(struct gen_page) <= GEN_PAGE_SIZE, "the page holds the struct");

struct gen_page *gen;
int gen_wake_rd = -1;
int gen_wake_wr = -1;

static long futex(int *addr, int op, int val, const struct timespec *timeout)
{
    return syscall(SYS_futex, addr, op, val, timeout, NULL, 0);
}

static int load(int *field) { return __atomic_load_n(field, __ATOMIC_SEQ_CST); }
static void store(int *field, int v) { __atomic_store_n(field, v, __ATOMIC_SEQ_CST); }

int gen_init(struct gen_page *page, int number)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        log_info("cannot make the stop pipe: %s; behaving like plain libc", strerror(errno));
        return -1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    page->number = number;
    page->leader = (int)getpid();
    page->started_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    store(&page->version, GEN_PAGE_VERSION);
    gen = page;
    gen_wake_rd = p[0];
    gen_wake_wr = p[1];
    return 0;
}

void gen_wake_drained(void) { futex(&gen->conns, FUTEX_WAKE, 1, NULL); }

int gen_conns(void) { return load(&gen->conns); }

void gen_dgram_add(int delta)
{
    if (gen)
        __atomic_add_fetch(&gen->datagrams, delta, __ATOMIC_SEQ_CST);
}

int gen_datagrams(void) { return load(&gen->datagrams); }


void gen_broadcast_stop(void)
{
    store(&gen->state, GEN_DRAINING);
    ssize_t w = REAL(write)(gen_wake_wr, "s", 1);
    (void)w;
}

void gen_retire(void) { store(&gen->state, GEN_RETIRED); }

int gen_mark_waiting(void)
{
    if (!gen || __atomic_exchange_n(&gen->waiting, 1, __ATOMIC_SEQ_CST))
        return 0;
    /* Everyone: a daemonizing parent's thread may wait here beside its child's. */
    futex(&gen->waiting, FUTEX_WAKE, INT_MAX, NULL);
    return 1;
}

/* The two readers the hot path calls once per process, relaxed. */
int gen_is_waiting(void) { return __atomic_load_n(&gen->waiting, __ATOMIC_RELAXED); }
int gen_is_ready(void) { return __atomic_load_n(&gen->ready, __ATOMIC_RELAXED); }

int gen_wait_waiting(long timeout_ms)
{
    long deadline = now_ms() + timeout_ms;
    while (!load(&gen->waiting)) {
        long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct timespec ts = { left / 1000, (left % 1000) * 1000000 };
        futex(&gen->waiting, FUTEX_WAIT, 0, &ts);
    }
    return 1;
}

void gen_set_ready(void) { store(&gen->ready, 1); }

int gen_leader(void) { return load(&gen->leader); }

int gen_take_leadership(int parent, int self)
{
    return __atomic_compare_exchange_n(&gen->leader, &parent, self, 0, __ATOMIC_SEQ_CST,
                                       __ATOMIC_SEQ_CST);
}

void gen_set_listeners(const char *text)
{
    /* Read while written only by --status, which takes the text up to its NUL. */
    size_t n = strnlen(text, sizeof gen->listeners - 1);
    memcpy(gen->listeners, text, n);
    memset(gen->listeners + n, 0, sizeof gen->listeners - n);
}

int gen_wait_drained(long timeout_ms)
{
    long deadline = now_ms() + timeout_ms;
    for (;;) {
        int n = load(&gen->conns);
        if (n <= 0)
            return 0;
        long left = deadline - now_ms();
        if (left <= 0)
            return -1;
        struct timespec ts = { left / 1000, (left % 1000) * 1000000 };
        futex(&gen->conns, FUTEX_WAIT, n, &ts);
    }
}
