/* receive.c - the receive family: recv, recvfrom, recvmsg.
 *
 * A receive on a handed-over datagram socket goes through the gate (gate.h), so
 * that an old generation drains the datagrams it took; every other receive (a
 * stream server's, on every request) passes through without a frame. A root
 * file of the shim like interpose.c.
 */
#define _GNU_SOURCE
#include "config.h"
#include "direct.h"
#include "gate.h"
#include "handoff.h"
#include "real.h"
#include "registry.h"

#include <sys/socket.h>

#define DGRAM(fd) (cfg.active && reg_kind(fd) == FD_DGRAM)

struct recvfrom_args { void *buf; size_t n; struct sockaddr *addr; socklen_t *len; };

static ssize_t call_recvfrom(int fd, int flags, void *ctx)
{
    struct recvfrom_args *a = ctx;
    return REAL(recvfrom)(fd, a->buf, a->n, flags, a->addr, a->len);
}

static ssize_t call_recvmsg(int fd, int flags, void *ctx)
{
    return REAL(recvmsg)(fd, ctx, flags);
}

/* A receive on a handed-over datagram socket; apart, so that a stream server's
 * receives (every request) pass through without a frame. */
static __attribute__((noinline)) ssize_t dgram_recvfrom(int fd, void *buf, size_t n, int flags,
                                                      struct sockaddr *addr, socklen_t *len)
{
    struct recvfrom_args a = { buf, n, addr, len };
    return gate_dgram_recv(fd, flags, call_recvfrom, &a);
}

HUPTIME_API ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                             socklen_t *len)
{
    if (__builtin_expect(DGRAM(fd), 0))
        return dgram_recvfrom(fd, buf, n, flags, addr, len);
    if (direct_ok())
        return DIRECT6(SYS_recvfrom, fd, buf, n, flags, addr, len);
    return REAL(recvfrom)(fd, buf, n, flags, addr, len);
}

HUPTIME_API ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    if (__builtin_expect(DGRAM(fd), 0))
        return dgram_recvfrom(fd, buf, n, flags, NULL, NULL);
    if (direct_ok())
        return DIRECT6(SYS_recvfrom, fd, buf, n, flags, 0, 0);
    return REAL(recv)(fd, buf, n, flags);
}

HUPTIME_API ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    if (__builtin_expect(DGRAM(fd), 0))
        return gate_dgram_recv(fd, flags, call_recvmsg, msg);
    if (direct_ok())
        return DIRECT3(SYS_recvmsg, fd, msg, flags);
    return REAL(recvmsg)(fd, msg, flags);
}
