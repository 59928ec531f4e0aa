/* waits.h - the program's poll and epoll waits that involve a listener.
 *
 * The gate's other half: where the program waits on several descriptors at once,
 * the shim adds its own pipes to the wait (the stop pipe; while the process has
 * --probe twins, the swap pipe, twin.h), acts when one fires (stop accepting,
 * swap the twins) and hides their events from the program.
 */
#ifndef HUPTIME_WAITS_H
#define HUPTIME_WAITS_H

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <time.h>

/* The rest of a timeout that started at start (ms, now_ms()), in *rest; NULL
 * stays NULL. */
const struct timespec *waits_rest_of(const struct timespec *timeout, long start,
                                     struct timespec *rest);

/* poll()/ppoll(): with a handed-over socket in the set, also waits on the stop
 * pipe (and the swap pipe) and acts when they fire; otherwise plain ppoll. */
int waits_poll(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *mask);
/* epoll_ctl(): follows which epoll sets watch listeners, with the program's
 * events, and adds the stop pipe (and for a twin the swap pipe) to each. */
int waits_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
/* epoll_wait() family on a set that watches a listener: hides the pipes' events
 * and acts on them. */
int waits_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout_ms, const sigset_t *mask);

#endif
