/* io.c - the reads and writes of a connection: read, write, readv, writev, send,
 * sendto, sendmsg, made directly while the program cannot cancel (direct.h).
 *
 * The shim has nothing to decide here; these exist only so that its restart
 * thread does not cost every request libc's cancellation bookkeeping. The
 * receive family, which has something to decide, is receive.c. A root file of
 * the shim like interpose.c.
 */
#define _GNU_SOURCE
#include "direct.h"
#include "handoff.h"
#include "real.h"

#include <sys/socket.h>
#include <sys/uio.h>

HUPTIME_API ssize_t read(int fd, void *buf, size_t n)
{
    if (direct_ok())
        return DIRECT3(SYS_read, fd, buf, n);
    return REAL(read)(fd, buf, n);
}

HUPTIME_API ssize_t write(int fd, const void *buf, size_t n)
{
    if (direct_ok())
        return DIRECT3(SYS_write, fd, buf, n);
    return REAL(write)(fd, buf, n);
}

HUPTIME_API ssize_t readv(int fd, const struct iovec *iov, int n)
{
    if (direct_ok())
        return DIRECT3(SYS_readv, fd, iov, n);
    return REAL(readv)(fd, iov, n);
}

HUPTIME_API ssize_t writev(int fd, const struct iovec *iov, int n)
{
    if (direct_ok())
        return DIRECT3(SYS_writev, fd, iov, n);
    return REAL(writev)(fd, iov, n);
}

HUPTIME_API ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    if (direct_ok())
        return DIRECT6(SYS_sendto, fd, buf, n, flags, 0, 0);
    return REAL(send)(fd, buf, n, flags);
}

HUPTIME_API ssize_t sendto(int fd, const void *buf, size_t n, int flags,
                           const struct sockaddr *addr, socklen_t len)
{
    if (direct_ok())
        return DIRECT6(SYS_sendto, fd, buf, n, flags, addr, len);
    return REAL(sendto)(fd, buf, n, flags, addr, len);
}

HUPTIME_API ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    if (direct_ok())
        return DIRECT3(SYS_sendmsg, fd, msg, flags);
    return REAL(sendmsg)(fd, msg, flags);
}
