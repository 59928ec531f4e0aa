/* pidfd.h - process descriptors: a PID that cannot be recycled under us. */
#ifndef HUPTIME_PIDFD_H
#define HUPTIME_PIDFD_H

#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* A pidfd for pid (close-on-exec), or -1 with errno set. */
static inline int pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

/* Send sig to the process fd refers to; 0, or -1 with errno set. */
static inline int pidfd_signal(int fd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* A copy, in this process, of descriptor fd of the process pidfd refers to
 * (ptrace rights needed: this user's descendants); -1 with errno set. */
static inline int pidfd_getfd(int pidfd, int fd)
{
    return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
}

/* waitid() on a pidfd: flags as for waitid (WEXITED, WNOHANG...). */
static inline int pidfd_wait(int fd, siginfo_t *si, int flags)
{
    return waitid((idtype_t)P_PIDFD, (id_t)fd, si, flags);
}

#endif
