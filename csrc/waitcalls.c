/* waitcalls.c - the waiting family: poll, ppoll, select, pselect, epoll_*.
 *
 * A wait that involves a listener goes to waits.h (the shim's pipes added, their
 * events hidden); select() and pselect() only note the wait (readiness), as the
 * shim cannot add to an fd_set the program sized. A root file of the shim like
 * interpose.c.
 */
#define _GNU_SOURCE
#include "config.h"
#include "gate.h"
#include "handoff.h"
#include "real.h"
#include "registry.h"
#include "waits.h"

#include <signal.h>
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

HUPTIME_API int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *timeout)
{
    if (ACTIVE)
        note_select(n, r);
    return (int)syscall(SYS_select, n, r, w, e, timeout);
}

HUPTIME_API int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *timeout,
                        const sigset_t *mask)
{
    if (ACTIVE)
        note_select(n, r);
    struct { const sigset_t *set; size_t size; } sigdata = { mask, _NSIG / 8 };
    struct timespec copy, *tp = NULL;
    if (timeout) {
        copy = *timeout;
        tp = &copy;
    }
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
