/* accept.h - accept() and accept4() on a listener: the common case, chosen inline.
 *
 * In a process that has seen its generation ready, take()'s protocol (gate.c)
 * needs little: act on a pending cancel (only once the program may cancel:
 * direct.h), count first, look at the state, take without sleeping. A busy
 * server finds a client queued and takes it at once (accept_busy, no frame); an
 * idle one, whose queue was found empty before (the wait hint, registry.h),
 * waits first in a poll() made directly (accept_idle), or through libc when the
 * program may cancel or twins wait to be swapped (accept_idle_libc). Anything
 * else goes the whole way (gate_accept_slow).
 */
#ifndef HUPTIME_ACCEPT_H
#define HUPTIME_ACCEPT_H

#include "direct.h"
#include "gate.h"
#include "registry.h"
#include "twin.h"

#include <sys/socket.h>

int accept_busy(int fd, struct sockaddr *addr, socklen_t *len, int flags);
/* hint: the wait hint to leave for the next accept. */
int accept_idle(int fd, struct sockaddr *addr, socklen_t *len, int flags, int hint);
int accept_idle_libc(int fd, struct sockaddr *addr, socklen_t *len, int flags, int hint);

static inline __attribute__((always_inline)) int
accept_wait_first(int fd, struct sockaddr *addr, socklen_t *len, int flags, int hint)
{
    if (__builtin_expect(direct_ok() && twin_swap_fd() < 0, 1))
        return accept_idle(fd, addr, len, flags, hint);
    return accept_idle_libc(fd, addr, len, flags, hint); /* may cancel, or twins to swap */
}

/* The program's accept on fd, a tracked descriptor of kind FD_LISTENER or
 * FD_STOPPED. */
static inline __attribute__((always_inline)) int
accept_take(int fd, struct sockaddr *addr, socklen_t *len, int flags, int kind)
{
    if (__builtin_expect(kind != FD_LISTENER || !__atomic_load_n(&gate_noted, __ATOMIC_RELAXED), 0))
        return gate_accept_slow(fd, addr, len, flags);
    int hint = reg_wait_hints[fd];
    if (__builtin_expect(hint == 0, 1))
        return accept_busy(fd, addr, len, flags);
    if (reg_listener_bits[fd] & 1)
        return gate_accept_slow(fd, addr, len, flags); /* made non-blocking since the hint */
    return accept_wait_first(fd, addr, len, flags, hint - 1);
}

#endif
