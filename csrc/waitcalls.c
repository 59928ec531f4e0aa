/* waitcalls.c - the waiting family: poll, ppoll, select, pselect, epoll_*.
 *
 * A wait that involves a listener goes to waits.h (the shim's pipes added, their
 * events hidden); select() and pselect() only note the wait (readiness), as the
 * shim cannot add to an fd_set the program sized. A root file of the shim like
 * interpose.c.
 */
#define _GNU_SOURCE
#include "clock.h"
#include "config.h"
#include "gate.h"
#include "handoff.h"
#include "real.h"
#include "registry.h"
#include "twin.h"
#include "waits.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ACTIVE (cfg.active)

HUPTIME_API int poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
    if (!ACTIVE)
        return REAL(poll)(fds, n, timeout_ms);
    struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
    return waits_poll(fds, n, timeout_ms < 0 ? NULL : &ts, NULL);
}

HUPTIME_API int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout,
                      const sigset_t *mask)
{
    if (!ACTIVE)
        return REAL(ppoll)(fds, n, timeout, mask);
    return waits_poll(fds, n, timeout, mask);
}

static void note_select(int n, fd_set *readfds)
{
    if (!readfds)
        return;
    for (int fd = 0; fd < n && fd < FD_SETSIZE; fd++)
        if (FD_ISSET(fd, readfds) && reg_kind(fd) == FD_LISTENER) {
            gate_note_wait();
            return;
        }
}

/* --probe: 1 if the read set holds a twin still to be swapped (twin.h). */
static int selects_twin(int n, fd_set *readfds)
{
    if (!readfds || twin_swap_fd() < 0)
        return 0;
    for (int fd = 0; fd < n && fd < FD_SETSIZE; fd++)
        if (FD_ISSET(fd, readfds) && reg_is_twin(fd))
            return 1;
    return 0;
}

/* A select() on a twin, made as a poll() on the same descriptors (waits.h), which
 * waits on the swap pipe too. A select woken by the swap looks at its descriptor
 * numbers again, finds the shared socket, nothing queued yet, and sleeps again on
 * the twin's wait queue only, never woken by a client: this one starts a fresh
 * wait on the shared socket. The sets and the timeout are written back as
 * select() does (Linux: the time not slept). */
static int select_as_poll(int n, fd_set *r, fd_set *w, fd_set *e, struct timespec *timeout,
                          const sigset_t *mask)
{
    struct pollfd local[64], *p = local;
    nfds_t k = 0;
    if (n > FD_SETSIZE)
        n = FD_SETSIZE;
    if (n > 64 && !(p = malloc((size_t)n * sizeof *p))) {
        errno = ENOMEM;
        return -1;
    }
    for (int fd = 0; fd < n; fd++) {
        short events = (short)((r && FD_ISSET(fd, r) ? POLLIN : 0) |
                               (w && FD_ISSET(fd, w) ? POLLOUT : 0) |
                               (e && FD_ISSET(fd, e) ? POLLPRI : 0));
        if (events)
            p[k++] = (struct pollfd){ fd, events, 0 };
    }
    long start = now_ms();
    int got = waits_poll(p, k, timeout, mask);
    if (timeout)
        waits_rest_of(timeout, start, timeout);
    for (nfds_t i = 0; got >= 0 && i < k; i++)
        if (p[i].revents & POLLNVAL) {
            errno = EBADF;
            got = -1;
        }
    if (got >= 0) {
        got = 0;
        if (r)
            FD_ZERO(r);
        if (w)
            FD_ZERO(w);
        if (e)
            FD_ZERO(e);
        for (nfds_t i = 0; i < k; i++) {
            short ev = p[i].events, rev = p[i].revents;
            if ((ev & POLLIN) && (rev & (POLLIN | POLLHUP | POLLERR)) && ++got)
                FD_SET(p[i].fd, r);
            if ((ev & POLLOUT) && (rev & (POLLOUT | POLLERR)) && ++got)
                FD_SET(p[i].fd, w);
            if ((ev & POLLPRI) && (rev & POLLPRI) && ++got)
                FD_SET(p[i].fd, e);
        }
    }
    if (p != local)
        free(p);
    return got;
}

HUPTIME_API int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *timeout)
{
    if (ACTIVE) {
        note_select(n, r);
        if (selects_twin(n, r)) {
            struct timespec ts, *tp = NULL;
            if (timeout) {
                ts = (struct timespec){ timeout->tv_sec, timeout->tv_usec * 1000L };
                tp = &ts;
            }
            int got = select_as_poll(n, r, w, e, tp, NULL);
            if (timeout)
                *timeout = (struct timeval){ ts.tv_sec, ts.tv_nsec / 1000 };
            return got;
        }
    }
    return (int)syscall(SYS_select, n, r, w, e, timeout);
}

HUPTIME_API int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *timeout,
                        const sigset_t *mask)
{
    struct timespec copy, *tp = NULL;
    if (timeout) {
        copy = *timeout;
        tp = &copy;
    }
    if (ACTIVE) {
        note_select(n, r);
        if (selects_twin(n, r))
            return select_as_poll(n, r, w, e, tp, mask);
    }
    struct { const sigset_t *set; size_t size; } sigdata = { mask, _NSIG / 8 };
    return (int)syscall(SYS_pselect6, n, r, w, e, tp, mask ? &sigdata : NULL);
}

HUPTIME_API int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    if (!ACTIVE)
        return REAL(epoll_ctl)(epfd, op, fd, ev);
    return waits_epoll_ctl(epfd, op, fd, ev);
}

HUPTIME_API int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout_ms)
{
    if (!ACTIVE)
        return REAL(epoll_wait)(epfd, ev, max, timeout_ms);
    return waits_epoll_wait(epfd, ev, max, timeout_ms, NULL);
}

HUPTIME_API int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout_ms,
                            const sigset_t *mask)
{
    if (!ACTIVE)
        return REAL(epoll_pwait)(epfd, ev, max, timeout_ms, mask);
    return waits_epoll_wait(epfd, ev, max, timeout_ms, mask);
}

HUPTIME_API int epoll_pwait2(int epfd, struct epoll_event *ev, int max,
                             const struct timespec *timeout, const sigset_t *mask)
{
    if (!ACTIVE || reg_kind(epfd) != FD_EPOLL)
        return REAL(epoll_pwait2)(epfd, ev, max, timeout, mask);
    long ms = -1;
    if (timeout)
        ms = timeout->tv_sec * 1000L + (timeout->tv_nsec + 999999L) / 1000000L;
    return waits_epoll_wait(epfd, ev, max, ms > 0x7fffffffL ? 0x7fffffff : (int)ms, mask);
}
