/* accept.c - the common case of the accept emulation, in frames with little to
 * save (accept.h chooses it; gate.c has the whole way). */
#define _GNU_SOURCE
#include "accept.h"
#include "gate.h"
#include "generation.h"
#include "real.h"
#include "signals.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>

/* The take did not give a client the registry can track: it found nothing
 * queued or failed, or the generation is draining, or the client's descriptor
 * is above the registry. c: what the system call returned, or -EAGAIN if it
 * was not made. */
static __attribute__((noinline)) int accept_missed(int fd, struct sockaddr *addr,
                                                   socklen_t *len, int flags, long c)
{
    gen_conn_add(-1);
    if ((unsigned long)c < -4096UL) /* taken, above the registry: never counted down */
        return (int)c;
    if (gen_draining())
        return gate_accept_slow(fd, addr, len, flags); /* refuses */
    if (c == -EAGAIN && !reg_program_nonblock(fd)) /* found nothing: wait first from now */
        return accept_wait_first(fd, addr, len, flags, GATE_WAIT_FIRST_RUN);
    return (int)direct_failed(c);
}

static inline __attribute__((always_inline)) int
accept_now(int fd, struct sockaddr *addr, socklen_t *len, int flags, int may_cancel)
{
    if (may_cancel && !direct_ok())
        pthread_testcancel();
    struct gen_page *g = gen; /* there is one: the process saw its generation ready */
    __atomic_add_fetch(&g->conns, 1, __ATOMIC_SEQ_CST);
    long c = -EAGAIN;
    if (__builtin_expect(__atomic_load_n(&g->state, __ATOMIC_SEQ_CST) == GEN_SERVING, 1)) {
        c = direct_raw6(SYS_accept4, fd, (long)addr, (long)len, flags, 0, 0);
        if (__builtin_expect((unsigned long)c < REG_MAX_FD, 1)) {
            reg_set_kind((int)c, FD_CONN);
            return (int)c;
        }
    }
    return accept_missed(fd, addr, len, flags, c);
}

int accept_busy(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    return accept_now(fd, addr, len, flags, 1);
}

int accept_idle_libc(int fd, struct sockaddr *addr, socklen_t *len, int flags, int hint)
{
    reg_wait_hints[fd] = (uint8_t)hint; /* fd is tracked: a listener */
    if (__builtin_expect(twin_swap_fd() < 0, 1)) { /* wait_readable(), no twins, via libc */
        struct pollfd p[2] = { { fd, POLLIN, 0 }, { gen_wake_rd, POLLIN, 0 } };
        unsigned seen = signals_seen();
        if (REAL(poll)(p, 2, -1) < 0 && errno == EINTR && signals_seen() == seen)
            return -1;
    } else if (gate_wait_readable(fd, -1) < 0) {
        return -1;
    }
    /* poll() acted on a cancel pending or sent while it waited; one sent since
     * acts at the program's next cancellation point, as after libc's accept */
    return accept_now(fd, addr, len, flags, 0);
}

/* The direct idle wait was not simply woken by the socket or the stop pipe: r,
 * poll's answer, is an error. A signal of the program's is reported as EINTR; a
 * restart signal only woke it. */
static __attribute__((noinline)) int idle_woken(int fd, struct sockaddr *addr, socklen_t *len,
                                                int flags, long r, unsigned seen)
{
    if (r == -EINTR && signals_seen() == seen)
        return (int)direct_failed(r);
    return accept_now(fd, addr, len, flags, 0); /* as wait_readable(): take, or wait again */
}

int accept_idle(int fd, struct sockaddr *addr, socklen_t *len, int flags, int hint)
{
    reg_wait_hints[fd] = (uint8_t)hint; /* fd is tracked: a listener */
    /* wait_readable(), made directly, in a frame with nothing to save */
    struct pollfd p[2] = { { fd, POLLIN, 0 }, { gen_wake_rd, POLLIN, 0 } };
    unsigned seen = signals_seen();
    long r = direct_poll(p, 2, -1);
    if (__builtin_expect(r <= 0, 0))
        return idle_woken(fd, addr, len, flags, r, seen);
    return accept_now(fd, addr, len, flags, 0);
}
