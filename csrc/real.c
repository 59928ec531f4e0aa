/* real.c - resolve the next definition of every interposed libc function. */
#define _GNU_SOURCE
#include "real.h"

#include <dlfcn.h>

struct real_libc real;

#define RESOLVE(name) (*(void **)&real.name = dlsym(RTLD_NEXT, #name))

const struct real_libc *real_resolved(void)
{
    real_init();
    return &real;
}

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
}
