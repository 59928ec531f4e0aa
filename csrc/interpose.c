/* interpose.c - the libc entry points the shim replaces.
 *
 * Each wrapper is plain libc when the shim is inert or the descriptor is not one
 * it tracks; otherwise it hands over to the part that owns the concept. These are
 * the only exported symbols besides the huptime_* helpers, defined without symbol
 * versions so the dynamic linker binds the program's calls here whatever version
 * the program was linked against. The shim's own code never calls these names
 * (REAL() instead; a test reads the library's relocations to keep it so).
 *
 * A wrapper that changes the shim's state checks config_in_vfork_child() first:
 * a vfork child (posix_spawn, subprocess) shares this memory until it execs.
 * bind, listen, close (but of a connection), close_range, dup*, F_DUPFD,
 * epoll_ctl (of a handed-over socket) and setsid do: never per connection.
 * accept, poll and the receives only count while the child waits for nothing;
 * F_SETFL/FIONBIO and signal/sigaction on the restart signal only record the
 * program's choice, which the child's exec discards.
 */
#define _GNU_SOURCE
#include "accept.h"
#include "config.h"
#include "direct.h"
#include "gate.h"
#include "generation.h"
#include "handoff.h"
#include "inherit.h"
#include "log.h"
#include "real.h"
#include "registry.h"
#include "restart.h"
#include "signals.h"
#include "twin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ACTIVE (cfg.active)

static int is_listener(int fd)
{
    int k = reg_kind(fd);
    return k == FD_LISTENER || k == FD_STOPPED;
}

/* ---- sockets ---- */

/* --probe: bind() to an inherited stream listener's address makes a private
 * twin (twin.h); its listen() registers it. 1 if it did. */
static int bind_twin(int fd, const struct sockaddr *addr, socklen_t len)
{
    int type = 0, i;
    socklen_t tlen = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_STREAM ||
        (i = inherit_match(fd, addr, len)) < 0)
        return 0;
    if (twin_make(fd, cfg.inherited[i]) < 0) {
        log_info("cannot bind a private twin for --probe: %s; the shared socket is used at once",
                 strerror(errno));
        return 0;
    }
    inherit_release(i);
    return 1;
}

HUPTIME_API int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    int claimed;
    if (ACTIVE && cfg.n_inherited && twin_wanted() && bind_twin(fd, addr, len))
        return 0;
    if (ACTIVE && cfg.n_inherited && (claimed = inherit_claim(fd, addr, len))) {
        if (claimed == SOCK_DGRAM)
            gate_dgram_socket(fd);
        /* Announced now: a program that sees the socket already listens
         * (SO_ACCEPTCONN) may never call listen() on it. */
        restart_socket_added();
        return 0;
    }
    int r = REAL(bind)(fd, addr, len);
    if (r == 0 && ACTIVE && !config_in_vfork_child()) {
        int saved = errno;
        if (gate_bound(fd, addr, len))
            restart_socket_added();
        errno = saved;
    }
    return r;
}

HUPTIME_API int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
    /* --probe: until the swap, a twin says the address the program bound. */
    if (ACTIVE && __builtin_expect(twin_swap_fd() >= 0, 0) && twin_sockname(fd, addr, len))
        return 0;
    return REAL(getsockname)(fd, addr, len);
}

HUPTIME_API int unlink(const char *path)
{
    if (ACTIVE && cfg.n_inherited && inherit_protects_path(AT_FDCWD, path))
        return 0;
    return REAL(unlink)(path);
}

HUPTIME_API int unlinkat(int dirfd, const char *path, int flags)
{
    if (ACTIVE && cfg.n_inherited && !(flags & AT_REMOVEDIR) &&
        inherit_protects_path(dirfd, path))
        return 0;
    return REAL(unlinkat)(dirfd, path, flags);
}

HUPTIME_API int listen(int fd, int backlog)
{
    /* --backlog: a short queue cannot absorb the moment of a restart (clients
     * whose SYN is dropped wait a second for its retransmission). */
    if (ACTIVE && backlog >= 0 && backlog < cfg.backlog)
        backlog = cfg.backlog;
    int r = REAL(listen)(fd, backlog);
    if (r == 0 && ACTIVE && !config_in_vfork_child()) {
        int saved = errno;
        if (gate_listening(fd))
            restart_socket_added();
        errno = saved;
    }
    return r;
}

HUPTIME_API int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    int k;
    if (ACTIVE && ((k = reg_kind(fd)) == FD_LISTENER || k == FD_STOPPED))
        return accept_take(fd, addr, len, flags, k);
    return REAL(accept4)(fd, addr, len, flags);
}

HUPTIME_API int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
    int k;
    if (ACTIVE && ((k = reg_kind(fd)) == FD_LISTENER || k == FD_STOPPED))
        return accept_take(fd, addr, len, 0, k);
    return REAL(accept)(fd, addr, len);
}

/* ---- descriptors ---- */

/* close() of a tracked descriptor that is not a connection: apart, so that the
 * connections' path has no frame. */
static __attribute__((noinline)) int close_tracked(int fd)
{
    if (config_in_vfork_child())
        return REAL(close)(fd);
    if (reg_closing(fd))
        return 0; /* the shim's own, or an inherited listener not claimed yet */
    return REAL(close)(fd);
}

/* The count reached zero as the generation drains: wake the drain, then return
 * the close's result, or close through libc (fd >= 0). */
static __attribute__((noinline, cold)) int close_woke(long r, int fd)
{
    gen_wake_drained();
    return fd >= 0 ? REAL(close)(fd) : (int)direct_result(r);
}

/* The generation's count goes down by one: 1 if the drain must be woken. */
static inline int conn_gone(void)
{
    struct gen_page *g = gen;
    return g && __atomic_add_fetch(&g->conns, -1, __ATOMIC_SEQ_CST) <= 0 &&
           __atomic_load_n(&g->state, __ATOMIC_SEQ_CST) != GEN_SERVING;
}

HUPTIME_API int close(int fd)
{
    int k;
    if (!ACTIVE || (k = reg_kind(fd)) == FD_NONE)
        return direct_ok() ? (int)DIRECT3(SYS_close, fd, 0, 0) : REAL(close)(fd);
    if (__builtin_expect(k != FD_CONN, 0))
        return close_tracked(fd);
    /* The hot path, with no frame: forget it before the number can be reused,
     * count it down. No getpid() for the vfork check: a vfork child closing a
     * connection it inherited (a subprocess closing descriptors one by one) only
     * lowers the count while the parent still holds it, and a drain trusts the
     * kernel's view over the count (held.h). */
    if (__atomic_exchange_n(&reg_kinds[fd], (uint8_t)FD_NONE, __ATOMIC_RELAXED) != FD_CONN)
        return REAL(close)(fd); /* another thread's close of the same number counted it */
    if (!direct_ok()) /* through libc, a cancellation point: counted down first */
        return conn_gone() ? close_woke(0, fd) : REAL(close)(fd);
    long r = direct_raw3(SYS_close, fd, 0, 0); /* counted down once closed */
    return conn_gone() ? close_woke(r, -1) : (int)direct_result(r);
}

static int real_close_range(unsigned first, unsigned last, int flags)
{
    if (real.close_range || (real_init(), real.close_range))
        return real.close_range(first, last, flags);
    return (int)syscall(SYS_close_range, first, last, flags);
}

HUPTIME_API int close_range(unsigned first, unsigned last, int flags)
{
    if (!ACTIVE || (flags & CLOSE_RANGE_CLOEXEC) || config_in_vfork_child())
        return real_close_range(first, last, flags);
    /* Close around the protected descriptors, forgetting the tracked ones. */
    unsigned lo = first;
    for (unsigned fd = first; fd <= last && fd < REG_MAX_FD; fd++) {
        if (reg_kind((int)fd) == FD_NONE)
            continue;
        if (reg_closing((int)fd)) {
            if (fd > lo && real_close_range(lo, fd - 1, flags) < 0)
                return -1;
            lo = fd + 1;
        }
    }
    if (lo > last || lo < first)
        return 0;
    return real_close_range(lo, last, flags);
}

HUPTIME_API int dup(int fd)
{
    int r = REAL(dup)(fd);
    if (r >= 0 && ACTIVE && reg_kind(fd) != FD_NONE && !config_in_vfork_child())
        reg_duped(fd, r);
    return r;
}

static int dup_onto(int oldfd, int newfd, int flags, int use3)
{
    if (!ACTIVE || config_in_vfork_child() || oldfd == newfd ||
        REAL(fcntl64)(oldfd, F_GETFD) < 0)
        return use3 ? REAL(dup3)(oldfd, newfd, flags) : REAL(dup2)(oldfd, newfd);
    if (reg_kind(newfd) != FD_NONE)
        reg_retarget(newfd);
    int r = use3 ? REAL(dup3)(oldfd, newfd, flags) : REAL(dup2)(oldfd, newfd);
    if (r >= 0)
        reg_duped(oldfd, newfd);
    return r;
}

HUPTIME_API int dup2(int oldfd, int newfd) { return dup_onto(oldfd, newfd, 0, 0); }
HUPTIME_API int dup3(int oldfd, int newfd, int flags) { return dup_onto(oldfd, newfd, flags, 1); }

static int shim_fcntl(int fd, int cmd, void *arg)
{
    if (!ACTIVE)
        return REAL(fcntl64)(fd, cmd, arg);
    int r;
    switch (cmd) {
    case F_GETFL:
        r = REAL(fcntl64)(fd, cmd);
        if (r >= 0 && is_listener(fd))
            r = (r & ~O_NONBLOCK) | (reg_program_nonblock(fd) ? O_NONBLOCK : 0);
        return r;
    case F_SETFL:
        if (!is_listener(fd))
            return REAL(fcntl64)(fd, cmd, arg);
        r = REAL(fcntl64)(fd, cmd, (long)arg | O_NONBLOCK);
        if (r == 0)
            reg_set_program_nonblock(fd, ((long)arg & O_NONBLOCK) != 0);
        return r;
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
        r = REAL(fcntl64)(fd, cmd, arg);
        if (r >= 0 && reg_kind(fd) != FD_NONE && !config_in_vfork_child())
            reg_duped(fd, r);
        return r;
    default:
        return REAL(fcntl64)(fd, cmd, arg);
    }
}

HUPTIME_API int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return shim_fcntl(fd, cmd, arg);
}

HUPTIME_API int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return shim_fcntl(fd, cmd, arg);
}

HUPTIME_API int ioctl(int fd, unsigned long request, ...)
{
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (ACTIVE && request == FIONBIO && arg && is_listener(fd)) {
        reg_set_program_nonblock(fd, *(int *)arg != 0);
        return 0; /* the socket stays non-blocking underneath */
    }
    return REAL(ioctl)(fd, request, arg);
}

/* ---- processes ---- */

/* Forks are seen through pthread_atfork (shim.c); this wrapper only refuses
 * them once a generation has drained and is ending its processes. */
HUPTIME_API pid_t fork(void)
{
    if (ACTIVE && gen_retired()) {
        errno = EAGAIN;
        return -1;
    }
    return REAL(fork)();
}

/* A daemon's child: it may take over from the leader that forked it. */
HUPTIME_API pid_t setsid(void)
{
    pid_t r = REAL(setsid)();
    if (r >= 0 && ACTIVE && !config_in_vfork_child()) {
        int saved = errno;
        restart_daemon_child();
        errno = saved;
    }
    return r;
}

/* ---- signals ---- */

HUPTIME_API sighandler_t signal(int sig, sighandler_t handler)
{
    if (ACTIVE && sig == cfg.signo)
        return signals_program_signal(handler);
    return REAL(signal)(sig, handler);
}

HUPTIME_API int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (ACTIVE && sig == cfg.signo)
        return signals_program_sigaction(act, old);
    return REAL(sigaction)(sig, act, old);
}
