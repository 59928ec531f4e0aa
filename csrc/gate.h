/* gate.h - where a process waits for clients: readiness, stopping, accepting.
 *
 * Every interposed accept/poll/epoll call on a listener passes through here. The
 * gate notes the first wait (readiness), adds the generation's stop pipe to the
 * program's waits, and once the generation stops, drops this process's listeners
 * so it never accepts again.
 */
#ifndef HUPTIME_GATE_H
#define HUPTIME_GATE_H

#include <sys/socket.h>
#include <time.h>

/* The program called listen() successfully on fd: 1 if fd is a listener to
 * hand over (new, claimed, or a new backlog), so the caller announces it. */
int gate_listening(int fd);

/* A process of the generation waits for clients on a listener. */
void gate_note_wait(void);

/* bind() succeeded on fd: a datagram socket bound to a service address (not an
 * ephemeral port, not autobound) is handed over at restarts like a listener;
 * returns 1 if fd became one, so the caller announces it. */
int gate_bound(int fd, const struct sockaddr *addr, socklen_t len);

/* fd is a datagram socket to hand over (bound by the program, or claimed). */
void gate_dgram_socket(int fd);


/* In-flight datagrams (see gate.c): received on a handed-over datagram socket,
 * done when the receiving thread waits again; a forked child holds none. */
void gate_dgram_done(void);
void gate_dgram_forked(void);

/* recv()/recvfrom()/recvmsg() on a handed-over datagram socket: call(fd, flags,
 * ctx) performs the real receive, always with MSG_DONTWAIT. */
typedef ssize_t (*gate_recv_fn)(int fd, int flags, void *ctx);
ssize_t gate_dgram_recv(int fd, int flags, gate_recv_fn call, void *ctx);

/* This process stops accepting: removes its listeners from its epoll sets and
 * puts a quiet socket in place of each. Idempotent. */
void gate_local_stop(void);

/* accept()/accept4() on a listener or a stopped one, the whole way (accept.h
 * has the common case): takes a client as the program's blocking choice says,
 * counts it; in a draining generation never takes one (EAGAIN, or the calling
 * thread waits until the process ends). */
int gate_accept_slow(int fd, struct sockaddr *addr, socklen_t *len, int flags);
/* This process has seen its generation ready (and closed what it did not claim):
 * gate_note_wait() has nothing more to do. */
extern int gate_noted __attribute__((visibility("hidden")));
/* take()'s wait (gate.c): 1 once fd or the stop pipe is readable, or a restart
 * signal interrupted it; -1 with errno set (EINTR: a signal of the program's;
 * EAGAIN: timeout_ms passed). */
int gate_wait_readable(int fd, int timeout_ms);
/* A blocking accept that found its queue empty waits first for this many takes. */
#define GATE_WAIT_FIRST_RUN 16
/* This process stopped accepting (gate_local_stop ran). */
int gate_stopped(void);

#endif
