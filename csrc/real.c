/* real.c - resolve the next definition of every interposed libc function.
 *
 * Every pointer starts at a stub that resolves the whole table, then calls the
 * function: interposed calls can arrive before the shim's constructor ran (other
 * libraries' constructors close or dup descriptors), and REAL() stays one load
 * with no test on every call. close_range starts NULL: libc may not have it
 * (interpose.c falls back to the system call).
 */
#define _GNU_SOURCE
#include "real.h"

#include <dlfcn.h>
#include <stdarg.h>

#define RESOLVE(name) (*(void **)&real.name = dlsym(RTLD_NEXT, #name))

void real_init(void)
{
    RESOLVE(bind);
    RESOLVE(listen);
    RESOLVE(accept);
    RESOLVE(accept4);
    RESOLVE(close);
    RESOLVE(close_range);
    RESOLVE(dup);
    RESOLVE(dup2);
    RESOLVE(dup3);
    RESOLVE(fcntl64);
    RESOLVE(ioctl);
    RESOLVE(poll);
    RESOLVE(ppoll);
    RESOLVE(epoll_ctl);
    RESOLVE(epoll_wait);
    RESOLVE(epoll_pwait);
    RESOLVE(epoll_pwait2);
    RESOLVE(fork);
    RESOLVE(signal);
    RESOLVE(sigaction);
    RESOLVE(unlink);
    RESOLVE(unlinkat);
    RESOLVE(setsid);
    RESOLVE(recvfrom);
    RESOLVE(recv);
    RESOLVE(getsockname);
    RESOLVE(recvmsg);
    RESOLVE(execve);
    RESOLVE(execvpe);
    RESOLVE(setuid);
    RESOLVE(seteuid);
    RESOLVE(setreuid);
    RESOLVE(setresuid);
    RESOLVE(read);
    RESOLVE(write);
    RESOLVE(readv);
    RESOLVE(writev);
    RESOLVE(send);
    RESOLVE(sendto);
    RESOLVE(sendmsg);
    RESOLVE(pthread_create);
    RESOLVE(pthread_cancel);
}

/* A stub: resolve the table, then call the function. */
#define LAZY(ret, name, params, args) \
    static ret lazy_##name params \
    { \
        real_init(); \
        return real.name args; \
    }

LAZY(int, bind, (int a, const struct sockaddr *b, socklen_t c), (a, b, c))
LAZY(int, listen, (int a, int b), (a, b))
LAZY(int, getsockname, (int a, struct sockaddr *b, socklen_t *c), (a, b, c))
LAZY(int, accept, (int a, struct sockaddr *b, socklen_t *c), (a, b, c))
LAZY(int, accept4, (int a, struct sockaddr *b, socklen_t *c, int d), (a, b, c, d))
LAZY(int, close, (int a), (a))
LAZY(int, dup, (int a), (a))
LAZY(int, dup2, (int a, int b), (a, b))
LAZY(int, dup3, (int a, int b, int c), (a, b, c))
LAZY(int, poll, (struct pollfd *a, nfds_t b, int c), (a, b, c))
LAZY(int, ppoll, (struct pollfd *a, nfds_t b, const struct timespec *c, const sigset_t *d), (a, b, c, d))
LAZY(int, epoll_ctl, (int a, int b, int c, struct epoll_event *d), (a, b, c, d))
LAZY(int, epoll_wait, (int a, struct epoll_event *b, int c, int d), (a, b, c, d))
LAZY(int, epoll_pwait, (int a, struct epoll_event *b, int c, int d, const sigset_t *e), (a, b, c, d, e))
LAZY(int, epoll_pwait2, (int a, struct epoll_event *b, int c, const struct timespec *d, const sigset_t *e), (a, b, c, d, e))
LAZY(pid_t, fork, (void), ())
LAZY(sighandler_t, signal, (int a, sighandler_t b), (a, b))
LAZY(int, sigaction, (int a, const struct sigaction *b, struct sigaction *c), (a, b, c))
LAZY(int, unlink, (const char *a), (a))
LAZY(int, unlinkat, (int a, const char *b, int c), (a, b, c))
LAZY(pid_t, setsid, (void), ())
LAZY(ssize_t, recvfrom, (int a, void *b, size_t c, int d, struct sockaddr *e, socklen_t *f), (a, b, c, d, e, f))
LAZY(ssize_t, recv, (int a, void *b, size_t c, int d), (a, b, c, d))
LAZY(ssize_t, recvmsg, (int a, struct msghdr *b, int c), (a, b, c))
LAZY(int, execve, (const char *a, char *const b[], char *const c[]), (a, b, c))
LAZY(int, execvpe, (const char *a, char *const b[], char *const c[]), (a, b, c))
LAZY(int, setuid, (uid_t a), (a))
LAZY(int, seteuid, (uid_t a), (a))
LAZY(int, setreuid, (uid_t a, uid_t b), (a, b))
LAZY(int, setresuid, (uid_t a, uid_t b, uid_t c), (a, b, c))
LAZY(ssize_t, read, (int a, void *b, size_t c), (a, b, c))
LAZY(ssize_t, write, (int a, const void *b, size_t c), (a, b, c))
LAZY(ssize_t, readv, (int a, const struct iovec *b, int c), (a, b, c))
LAZY(ssize_t, writev, (int a, const struct iovec *b, int c), (a, b, c))
LAZY(ssize_t, send, (int a, const void *b, size_t c, int d), (a, b, c, d))
LAZY(ssize_t, sendto, (int a, const void *b, size_t c, int d, const struct sockaddr *e, socklen_t f), (a, b, c, d, e, f))
LAZY(ssize_t, sendmsg, (int a, const struct msghdr *b, int c), (a, b, c))
LAZY(int, pthread_create, (pthread_t *a, const pthread_attr_t *b, void *(*c)(void *), void *d), (a, b, c, d))
LAZY(int, pthread_cancel, (pthread_t a), (a))

/* fcntl and ioctl take at most one argument after the command: passed on. */
#define LAZY_ONE_MORE(name, command) \
    static int lazy_##name(int a, command b, ...) \
    { \
        va_list ap; \
        va_start(ap, b); \
        void *arg = va_arg(ap, void *); \
        va_end(ap); \
        real_init(); \
        return real.name(a, b, arg); \
    }

LAZY_ONE_MORE(fcntl64, int)
LAZY_ONE_MORE(ioctl, unsigned long)

struct real_libc real = {
    .bind = lazy_bind,
    .listen = lazy_listen,
    .getsockname = lazy_getsockname,
    .accept = lazy_accept,
    .accept4 = lazy_accept4,
    .close = lazy_close,
    .dup = lazy_dup,
    .dup2 = lazy_dup2,
    .dup3 = lazy_dup3,
    .fcntl64 = lazy_fcntl64,
    .ioctl = lazy_ioctl,
    .poll = lazy_poll,
    .ppoll = lazy_ppoll,
    .epoll_ctl = lazy_epoll_ctl,
    .epoll_wait = lazy_epoll_wait,
    .epoll_pwait = lazy_epoll_pwait,
    .epoll_pwait2 = lazy_epoll_pwait2,
    .fork = lazy_fork,
    .signal = lazy_signal,
    .sigaction = lazy_sigaction,
    .unlink = lazy_unlink,
    .unlinkat = lazy_unlinkat,
    .setsid = lazy_setsid,
    .recvfrom = lazy_recvfrom,
    .recv = lazy_recv,
    .recvmsg = lazy_recvmsg,
    .execve = lazy_execve,
    .execvpe = lazy_execvpe,
    .setuid = lazy_setuid,
    .seteuid = lazy_seteuid,
    .setreuid = lazy_setreuid,
    .setresuid = lazy_setresuid,
    .read = lazy_read,
    .write = lazy_write,
    .readv = lazy_readv,
    .writev = lazy_writev,
    .send = lazy_send,
    .sendto = lazy_sendto,
    .sendmsg = lazy_sendmsg,
    .pthread_create = lazy_pthread_create,
    .pthread_cancel = lazy_pthread_cancel,
};
