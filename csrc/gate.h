/* gate.h - where a process waits for clients: readiness, stopping, accepting.
 *
 * Every interposed accept/poll/epoll call on a listener passes through here. The
 * gate notes the first wait (readiness), adds the generation's stop pipe to the
 * program's waits, and once the generation stops, drops this process's listeners
 * so it never accepts again.
 */
#ifndef HUPTIME_GATE_H
#define HUPTIME_GATE_H

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

/* The program called listen() successfully on fd. */
void gate_listening(int fd);

/* A process of the generation waits for clients on a listener. */
void gate_note_wait(void);

/* This process stops accepting: removes its listeners from its epoll sets and
 * puts a quiet socket in place of each. Idempotent. */
void gate_local_stop(void);

int gate_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int gate_poll(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *mask);
int gate_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int gate_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout_ms, const sigset_t *mask);

#endif
