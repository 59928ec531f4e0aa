/* gate.c - readiness, the stop broadcast's receiving end, and blocking-accept emulation
 * (its common case, with little to save, is accept.c). */
#define _GNU_SOURCE
#include "gate.h"
#include "clock.h"
#include "config.h"
#include "direct.h"
#include "generation.h"
#include "inherit.h"
#include "log.h"
#include "real.h"
#include "registry.h"
#include "signals.h"
#include "twin.h"

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

static int stopped;   /* this process has dropped its listeners */

int gate_stopped(void) { return __atomic_load_n(&stopped, __ATOMIC_RELAXED); }

int gate_listening(int fd)
{
    int type = 0, domain = 0;
    socklen_t len = sizeof type;
    if (reg_kind(fd) == FD_LISTENER) /* a claimed listener, or a new backlog */
        return 1;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
        return 0;
    len = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
        (domain != AF_INET && domain != AF_INET6 && domain != AF_UNIX))
        return 0;
    int fl = REAL(fcntl64)(fd, F_GETFL);
    if (fl < 0)
        return 0;
    reg_listener_add(fd, (fl & O_NONBLOCK) != 0);
    twin_listening(fd);
    if (!(fl & O_NONBLOCK))
        REAL(fcntl64)(fd, F_SETFL, fl | O_NONBLOCK);
    LOG_DEBUG("listener on descriptor %d%s", fd, fl & O_NONBLOCK ? " (non-blocking)" : "");
    return 1;
}

int gate_bound(int fd, const struct sockaddr *addr, socklen_t len)
{
    int type = 0;
    socklen_t tlen = sizeof type;
    if (reg_kind(fd) != FD_NONE || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 ||
        type != SOCK_DGRAM || !addr || len < sizeof(sa_family_t))
        return 0;
    if (addr->sa_family == AF_INET) {
        if (len < sizeof(struct sockaddr_in) || ((const struct sockaddr_in *)addr)->sin_port == 0)
            return 0;
    } else if (addr->sa_family == AF_INET6) {
        if (len < sizeof(struct sockaddr_in6) || ((const struct sockaddr_in6 *)addr)->sin6_port == 0)
            return 0;
    } else if (addr->sa_family != AF_UNIX || len <= offsetof(struct sockaddr_un, sun_path)) {
        return 0; /* other families, and autobound Unix sockets */
    }
    LOG_DEBUG("datagram socket on descriptor %d", fd);
    gate_dgram_socket(fd);
    return 1;
}

/* Taking from a socket a stopping generation must not take from any more. */
static ssize_t refuse(int blocking)
{
    gate_local_stop();
    if (!blocking) {
        errno = EAGAIN;
        return -1;
    }
    /* The program expects to block until a client comes; none will come to this
     * generation. Keep the thread here until the generation exits or execs. */
    for (;;)
        pause();
}

/* Take one client (accept) or datagram (recv) off a socket shared with the other
 * processes and generations. Act on a pending cancel (accept and recv are
 * cancellation points; a thread cancelled after counting would leave the count
 * up); count first, so the leader never sees zero while something is being
 * taken; look at the state; take without sleeping in the kernel. A program that
 * blocks waits, in poll(), for the socket or the stop pipe, at most timeout_ms
 * (-1: no limit), when nothing is queued. Whether to try before waiting follows
 * the socket's wait hint (registry.h): a busy server finds a client queued and
 * pays no system call beyond its own; one whose queue was found empty waits
 * first (a take that fails would cost a call), and tries first again every
 * GATE_WAIT_FIRST_RUN takes, so it turns back as soon as clients queue up. Returns
 * call()'s result, counted once: as a connection, or with dgram as a datagram in
 * flight (generation.h). */

/* take()'s wait: 1 once the socket or the stop pipe is readable, or a restart
 * signal interrupted it; -1 with errno set (EINTR: a signal of the program's,
 * reported as the call would; EAGAIN: the timeout passed, SO_RCVTIMEO). Once the
 * program may cancel (direct.h), libc's poll(), a cancellation point as the
 * program's call is: a thread blocked here is cancelled like one in accept. */
static inline __attribute__((always_inline)) int wait_readable(int fd, int timeout_ms)
{
    int swap = twin_swap_fd(); /* --probe: the twins are swapped for the shared sockets */
    struct pollfd p[3];
    p[0] = (struct pollfd){ fd, POLLIN, 0 };
    p[1] = (struct pollfd){ gen_wake_rd, POLLIN, 0 };
    nfds_t n = 2;
    if (__builtin_expect(swap >= 0, 0))
        p[n++] = (struct pollfd){ swap, POLLIN, 0 };
    unsigned seen = signals_seen();
    int r = direct_ok() ? (int)direct_result(direct_poll(p, n, timeout_ms))
                        : REAL(poll)(p, n, timeout_ms);
    if (r < 0 && errno == EINTR && signals_seen() == seen)
        return -1;
    if (r > 0 && n == 3 && p[2].revents)
        twin_swap_here();
    if (r == 0) {
        errno = EAGAIN;
        return -1;
    }
    return 1;
}

static inline __attribute__((always_inline)) ssize_t
take(int fd, int blocking, int timeout_ms, ssize_t (*call)(int, void *), void *arg, int dgram)
{
    int hint = blocking ? reg_wait_hint(fd) : 0;
    if (hint > 0)
        reg_set_wait_hint(fd, hint - 1);
    for (int waited = 0;; waited = 1) {
        if (blocking && (waited || hint > 0) && wait_readable(fd, timeout_ms) < 0)
            return -1;
        if (!direct_ok()) /* else the program cannot have cancelled (direct.h) */
            pthread_testcancel();
        dgram ? gen_dgram_add(1) : gen_conn_add(1);
        if (gen_draining()) {
            dgram ? gen_dgram_add(-1) : gen_conn_add(-1);
            return refuse(blocking);
        }
        ssize_t got = call(fd, arg);
        if (got >= 0)
            return got;
        int e = errno;
        dgram ? gen_dgram_add(-1) : gen_conn_add(-1);
        if ((e != EAGAIN && e != EWOULDBLOCK) || !blocking) {
            errno = e;
            return -1;
        }
        if (!waited && hint == 0) /* tried first and found nothing: wait first */
            reg_set_wait_hint(fd, GATE_WAIT_FIRST_RUN);
        /* Nothing queued, or another process or thread took it: wait again. */
    }
}

/* A datagram is in flight from the moment a thread receives it until that
 * thread waits again: it counts like a connection, so an old generation drains
 * the datagrams it took before it exits. Which threads hold one is kept in a
 * pthread key, made when the first datagram socket appears: thread-local storage
 * in the shim would cost every thread the program creates. */
static pthread_key_t holding_key;
static int holding_key_made;
static pthread_once_t holding_once = PTHREAD_ONCE_INIT;

static void make_holding_key(void)
{
    if (pthread_key_create(&holding_key, NULL) == 0)
        __atomic_store_n(&holding_key_made, 1, __ATOMIC_RELEASE);
}

void gate_dgram_socket(int fd)
{
    reg_set_kind(fd, FD_DGRAM);
    pthread_once(&holding_once, make_holding_key);
}

static void set_holding(int on)
{
    pthread_setspecific(holding_key, on ? (void *)1 : NULL);
}

void gate_dgram_done(void)
{
    if (__atomic_load_n(&holding_key_made, __ATOMIC_ACQUIRE) &&
        pthread_getspecific(holding_key)) {
        set_holding(0);
        gen_dgram_add(-1);
    }
}

void gate_dgram_forked(void)
{
    if (__atomic_load_n(&holding_key_made, __ATOMIC_ACQUIRE))
        set_holding(0); /* the parent's count covers it */
}

/* How long a blocking receive may wait (SO_RCVTIMEO), in ms; -1: forever. */
static int receive_timeout_ms(int fd)
{
    struct timeval tv = { 0, 0 };
    socklen_t len = sizeof tv;
    if (getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) < 0 || (!tv.tv_sec && !tv.tv_usec))
        return -1;
    long ms = tv.tv_sec * 1000L + (tv.tv_usec + 999) / 1000;
    return ms > 0x7fffffffL ? 0x7fffffff : (int)ms;
}

struct recv_call { gate_recv_fn call; void *ctx; int flags; };

static ssize_t take_datagram(int fd, void *arg)
{
    struct recv_call *r = arg;
    return r->call(fd, r->flags | MSG_DONTWAIT, r->ctx);
}

/* recv on a datagram socket: the accept protocol (take() below), and what it
 * receives stays counted until this thread waits again. */
ssize_t gate_dgram_recv(int fd, int flags, gate_recv_fn call, void *ctx)
{
    gate_dgram_done();
    gate_note_wait();
    int fl = REAL(fcntl64)(fd, F_GETFL);
    int blocking = !(flags & MSG_DONTWAIT) && fl >= 0 && !(fl & O_NONBLOCK);
    struct recv_call r = { call, ctx, flags };
    ssize_t got = take(fd, blocking, blocking ? receive_timeout_ms(fd) : -1, take_datagram, &r, 1);
    if (got >= 0)
        set_holding(1);
    return got;
}


int gate_noted; /* this process has seen the generation ready and closed the unclaimed */

void gate_note_wait(void)
{
    if (__atomic_load_n(&gate_noted, __ATOMIC_RELAXED))
        return;
    if (!gen_is_waiting() && gen_mark_waiting())
        LOG_DEBUG("generation %d waits for clients", gen->number);
    if (!gen_is_ready())
        return; /* the leader is still letting the program claim its listeners */
    inherit_close_unclaimed();
    __atomic_store_n(&gate_noted, 1, __ATOMIC_RELAXED);
}

/* A socket that is listening but can never be reached: an autobound abstract
 * Unix socket. poll() never reports it, accept() on it never returns. */
static int quiet_socket(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (fd < 0)
        return -1;
    if (REAL(bind)(fd, (struct sockaddr *)&sa, sizeof(sa_family_t)) < 0 ||
        REAL(listen)(fd, 1) < 0) {
        REAL(close)(fd);
        return -1;
    }
    return fd;
}

void gate_local_stop(void)
{
    int n = 0;
    reg_lock();
    if (stopped) {
        reg_unlock();
        return;
    }
    stopped = 1;
    reg_epoll_drop_all(gen_wake_rd);
    int quiet = quiet_socket();
    for (int fd = reg_next(0, FD_LISTENER); fd >= 0; fd = reg_next(fd + 1, FD_LISTENER), n++) {
        int cloexec = REAL(fcntl64)(fd, F_GETFD) & FD_CLOEXEC;
        if (quiet < 0 || REAL(dup3)(quiet, fd, cloexec ? O_CLOEXEC : 0) < 0)
            REAL(close)(fd);
        reg_set_kind(fd, FD_STOPPED);
    }
    if (quiet >= 0)
        REAL(close)(quiet);
    reg_unlock();
    LOG_DEBUG("stopped accepting on %d listener%s", n, n == 1 ? "" : "s");
}

struct accept_call { struct sockaddr *addr; socklen_t *len; int flags; };

static ssize_t take_client(int fd, void *arg)
{
    struct accept_call *a = arg;
    return DIRECT6(SYS_accept4, fd, a->addr, a->len, a->flags, 0, 0);
}

int gate_wait_readable(int fd, int timeout_ms) { return wait_readable(fd, timeout_ms); }

/* The whole way: take() with everything it looks at. */
int gate_accept_slow(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    int blocking = !reg_program_nonblock(fd);
    if (reg_kind(fd) == FD_STOPPED)
        return (int)refuse(blocking);
    gate_note_wait();
    struct accept_call a = { addr, len, flags };
    int c = (int)take(fd, blocking, -1, take_client, &a, 0);
    if (c >= 0 && c < REG_MAX_FD)
        reg_set_kind(c, FD_CONN);
    else if (c >= 0)
        gen_conn_add(-1); /* above the registry: never counted down, so not counted */
    return c;
}
