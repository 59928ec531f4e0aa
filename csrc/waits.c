/* waits.c - the program's poll and epoll waits on listeners (waits.h). */
#define _GNU_SOURCE
#include "waits.h"
#include "clock.h"
#include "config.h"
#include "gate.h"
#include "generation.h"
#include "log.h"
#include "real.h"
#include "registry.h"
#include "twin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* epoll data of the stop pipe in the program's epoll sets ("huptime!"). */
#define WAKE_MAGIC 0x21656d6974707568ULL

const struct timespec *waits_rest_of(const struct timespec *timeout, long start,
                                     struct timespec *rest)
{
    if (!timeout)
        return NULL;
    long left = timeout->tv_sec * 1000L + timeout->tv_nsec / 1000000L - (now_ms() - start);
    rest->tv_sec = left > 0 ? left / 1000 : 0;
    rest->tv_nsec = left > 0 ? (left % 1000) * 1000000L : 0;
    return rest;
}

int waits_poll(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *mask)
{
    nfds_t i;
    gate_dgram_done();
    for (i = 0; i < n; i++)
        if (reg_is_handed_over(reg_kind(fds[i].fd)))
            break;
    if (i == n)
        return REAL(ppoll)(fds, n, timeout, mask);
    gate_note_wait();
    if (gen_draining())
        gate_local_stop();
    if (gate_stopped())
        return REAL(ppoll)(fds, n, timeout, mask);

    /* The stop pipe, and while this process has twins, the swap pipe. */
    int swap = twin_swap_fd();
    nfds_t extra = swap >= 0 ? 2 : 1;
    struct pollfd local[32], *all = n + extra <= 32 ? local : malloc((n + extra) * sizeof *all);
    if (!all)
        return REAL(ppoll)(fds, n, timeout, mask);
    memcpy(all, fds, n * sizeof *all);
    all[n] = (struct pollfd){ gen_wake_rd, POLLIN, 0 };
    if (swap >= 0)
        all[n + 1] = (struct pollfd){ swap, POLLIN, 0 };
    long start = now_ms();
    int r = REAL(ppoll)(all, n + extra, timeout, mask);
    int woke = r > 0 && all[n].revents;
    int swapped = r > 0 && swap >= 0 && all[n + 1].revents;
    if (swapped) {
        r--;
        twin_swap_here();
    }
    if (woke) {
        r--;
        gate_local_stop();
        for (i = 0; i < n; i++)
            if (reg_kind(all[i].fd) == FD_STOPPED && all[i].revents) {
                all[i].revents = 0;
                r--;
            }
    }
    for (i = 0; i < n; i++)
        fds[i].revents = all[i].revents;
    if (all != local)
        free(all);
    if ((woke || swapped) && r == 0) {
        /* Only the shim's pipes woke us: wait out the rest of the program's timeout. */
        struct timespec rest;
        return waits_poll(fds, n, waits_rest_of(timeout, start, &rest), mask);
    }
    return r;
}

int waits_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    int r = REAL(epoll_ctl)(epfd, op, fd, ev);
    if (r != 0 || !reg_is_handed_over(reg_kind(fd)) || config_in_vfork_child())
        return r;
    if (op == EPOLL_CTL_ADD) {
        int saved = errno;
        if (reg_kind(epfd) != FD_EPOLL) {
            struct epoll_event wake = { .events = EPOLLIN, .data.u64 = WAKE_MAGIC };
            if (REAL(epoll_ctl)(epfd, EPOLL_CTL_ADD, gen_wake_rd, &wake) < 0 && errno != EEXIST)
                LOG_DEBUG("cannot add the stop pipe to epoll set %d: %s", epfd, strerror(errno));
        }
        if (reg_is_twin(fd))
            twin_epoll_watch(epfd);
        errno = saved;
        reg_epoll_added(epfd, fd, ev);
    } else if (op == EPOLL_CTL_MOD) {
        reg_epoll_added(epfd, fd, ev); /* a twin's swap registers these events */
    } else if (op == EPOLL_CTL_DEL) {
        reg_epoll_removed(epfd, fd);
    }
    return r;
}

int waits_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout_ms, const sigset_t *mask)
{
    gate_dgram_done();
    if (reg_kind(epfd) != FD_EPOLL)
        return REAL(epoll_pwait)(epfd, ev, max, timeout_ms, mask);
    gate_note_wait();
    long start = now_ms();
    int left = timeout_ms;
    for (;;) {
        int r = REAL(epoll_pwait)(epfd, ev, max, left, mask);
        if (r <= 0)
            return r;
        int kept = 0, woke = 0, swapped = 0;
        for (int i = 0; i < r; i++) {
            if (ev[i].data.u64 == WAKE_MAGIC)
                woke = 1;
            else if (ev[i].data.u64 == TWIN_SWAP_MAGIC)
                swapped = 1;
            else
                ev[kept++] = ev[i];
        }
        if (swapped)
            twin_swap_here();
        if (woke)
            gate_local_stop();
        if (kept > 0 || !(woke || swapped) || timeout_ms == 0)
            return kept;
        if (timeout_ms > 0) {
            long rest = timeout_ms - (now_ms() - start);
            if (rest <= 0)
                return 0;
            left = (int)rest;
        }
    }
}
