/* generation.c - the shared page, the stop broadcast, and futex waits on them. */
#define _GNU_SOURCE
#include "generation.h"
#include "clock.h"
#include "control.h"
#include "log.h"
#include "registry.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct gen_page *gen;
int gen_wake_rd = -1;
static int gen_wake_wr = -1;

static long futex(int *addr, int op, int val, const struct timespec *timeout)
{
    return syscall(SYS_futex, addr, op, val, timeout, NULL, 0);
}

int gen_init(int number)
{
    int p[2];
    _Static_assert(sizeof(struct gen_page) <= GEN_PAGE_SIZE, "the page holds the struct");
    struct gen_page *page = control_map_page(number, GEN_PAGE_SIZE);
    if (!page) {
        log_info("cannot map the generation page: %s; behaving like plain libc", strerror(errno));
        return -1;
    }
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        log_info("cannot make the stop pipe: %s; behaving like plain libc", strerror(errno));
        munmap(page, GEN_PAGE_SIZE);
        control_forget(number);
        return -1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    gen = page;
    gen->number = number;
    gen->leader = (int)getpid();
    gen->started_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    __atomic_store_n(&gen->version, GEN_PAGE_VERSION, __ATOMIC_SEQ_CST);
    gen_wake_rd = p[0];
    gen_wake_wr = p[1];
    reg_adopt(&gen_wake_rd, FD_INTERNAL);
    reg_adopt(&gen_wake_wr, FD_INTERNAL);
    return 0;
}

void gen_conn_add(int delta)
{
    if (!gen)
        return;
    int now = __atomic_add_fetch(&gen->conns, delta, __ATOMIC_SEQ_CST);
    if (now <= 0 && __atomic_load_n(&gen->state, __ATOMIC_SEQ_CST) != GEN_SERVING)
        futex(&gen->conns, FUTEX_WAKE, 1, NULL);
}

int gen_stopping(void)
{
    return gen && __atomic_load_n(&gen->state, __ATOMIC_SEQ_CST) != GEN_SERVING;
}

int gen_retired(void)
{
    return gen && __atomic_load_n(&gen->state, __ATOMIC_SEQ_CST) == GEN_RETIRED;
}

void gen_broadcast_stop(void)
{
    __atomic_store_n(&gen->state, GEN_STOPPING, __ATOMIC_SEQ_CST);
    ssize_t w = write(gen_wake_wr, "s", 1);
    (void)w;
}

int gen_mark_waiting(void)
{
    if (!gen || __atomic_exchange_n(&gen->waiting, 1, __ATOMIC_SEQ_CST))
        return 0;
    /* Everyone: a daemonizing parent's thread may wait here beside its child's. */
    futex(&gen->waiting, FUTEX_WAKE, INT_MAX, NULL);
    return 1;
}

void gen_wait_waiting(void)
{
    while (!__atomic_load_n(&gen->waiting, __ATOMIC_SEQ_CST))
        futex(&gen->waiting, FUTEX_WAIT, 0, NULL);
}

void gen_set_ready(void)
{
    __atomic_store_n(&gen->ready, 1, __ATOMIC_SEQ_CST);
}

int gen_wait_drained(long timeout_ms)
{
    long deadline = now_ms() + timeout_ms;
    for (;;) {
        int n = __atomic_load_n(&gen->conns, __ATOMIC_SEQ_CST);
        if (n <= 0)
            return 0;
        long left = deadline - now_ms();
        if (left <= 0)
            return -1;
        struct timespec ts = { left / 1000, (left % 1000) * 1000000 };
        futex(&gen->conns, FUTEX_WAIT, n, &ts);
    }
}
