/* gate.h - where a process waits for clients: readiness, stopping, accepting.
 *
 * Every interposed accept/poll/epoll call on a listener passes through here. The
 * gate notes the first wait (readiness), adds the generation's stop pipe to the
 * program's waits, and once the generation stops, drops this process's listeners
 * so it never accepts again.
 */
#ifndef HUPTIME_GATE_H
#define HUPTIME_GATE_H

#include "direct.h"
#include "registry.h"
#include "twin.h"

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

/* accept()/accept4() on a listener (kind FD_LISTENER) or a stopped one
 * (FD_STOPPED): takes a client as the program's blocking choice says, counts it;
 * in a draining generation never takes one (EAGAIN, or the calling thread waits
 * until the process ends). Inline, the common case's choice (gate.c says why):
 * a busy server takes at once, an idle one with a wait hint waits first, and
 * the rest goes the whole way. */
extern int gate_noted __attribute__((visibility("hidden"))); /* saw the generation ready */
int gate_accept_busy(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int gate_accept_idle(int fd, struct sockaddr *addr, socklen_t *len, int flags, int hint);
int gate_accept_idle_libc(int fd, struct sockaddr *addr, socklen_t *len, int flags, int hint);
static inline __attribute__((always_inline)) int gate_accept_wait_first(int fd, struct sockaddr *addr, socklen_t *len,
                                         int flags, int hint)
{
    if (__builtin_expect(direct_ok() && twin_swap_fd() < 0, 1))
        return gate_accept_idle(fd, addr, len, flags, hint);
    return gate_accept_idle_libc(fd, addr, len, flags, hint); /* may cancel, or twins to swap */
}
int gate_accept_slow(int fd, struct sockaddr *addr, socklen_t *len, int flags);
static inline __attribute__((always_inline)) int
gate_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags, int kind)
{
    if (__builtin_expect(kind != FD_LISTENER || !__atomic_load_n(&gate_noted, __ATOMIC_RELAXED), 0))
        return gate_accept_slow(fd, addr, len, flags);
    int hint = reg_wait_hints[fd];
    if (__builtin_expect(hint == 0, 1))
        return gate_accept_busy(fd, addr, len, flags);
    if (reg_listener_bits[fd] & 1)
        return gate_accept_slow(fd, addr, len, flags); /* made non-blocking since the hint */
    return gate_accept_wait_first(fd, addr, len, flags, hint - 1);
}
/* This process stopped accepting (gate_local_stop ran). */
int gate_stopped(void);

#endif
