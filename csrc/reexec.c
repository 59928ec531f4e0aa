/* reexec.c - the program's own exec of itself, same PID (reexec.h). */
#define _GNU_SOURCE
#include "reexec.h"
#include "config.h"
#include "generation.h"
#include "handoff.h"
#include "log.h"
#include "protocol.h"
#include "real.h"
#include "registry.h"
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int snapshot_fd = -1; /* the start snapshot, for the new image */

/* The shim's descriptors the new image takes over by number (kept copies of
 * stdio, the supervisor link): close-on-exec is lifted for the exec. */
static int *carried(int i)
{
    int *fds[] = { &cfg.stdio_out, &log_fd, &cfg.supervisor_fd, &cfg.control_fd };
    return i < (int)(sizeof fds / sizeof *fds) ? fds[i] : NULL;
}

static void set_cloexec(int fd, int on)
{
    int fl = REAL(fcntl64)(fd, F_GETFD);
    if (fl >= 0)
        REAL(fcntl64)(fd, F_SETFD, on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC);
}

/* Listeners that survive the exec: the socket's blocking mode becomes the
 * program's own choice again (on), or the shim's non-blocking one (off). */
static void listeners_as_program_sees(int on)
{
    for (int fd = reg_next(0, FD_LISTENER); fd >= 0; fd = reg_next(fd + 1, FD_LISTENER)) {
        int fd_fl = REAL(fcntl64)(fd, F_GETFD), fl = REAL(fcntl64)(fd, F_GETFL);
        if (fd_fl < 0 || fl < 0 || (fd_fl & FD_CLOEXEC) || reg_program_nonblock(fd))
            continue;
        REAL(fcntl64)(fd, F_SETFL, on ? fl & ~O_NONBLOCK : fl | O_NONBLOCK);
    }
}

char **reexec_prepare(char *const envp[])
{
    if (!gen_is_ready() || gen_draining() || gen_leader() != (int)getpid())
        return NULL;
    size_t n = 0;
    while (envp && envp[n])
        n++;
    char **env = malloc((n + 4) * sizeof *env);
    static char stdio[64], control[64], reexec[64];
    struct snapshot start = { cfg.argv, cfg.envp, cfg.cwd, cfg.start_mask, cfg.start_ignored };
    if (!env || (snapshot_fd = snapshot_write(&start)) < 0) {
        log_info("generation %d: pid %d execs a new image, which cannot take the generation "
                 "over (%s): it starts as a new one", gen->number, (int)getpid(),
                 env ? strerror(errno) : "out of memory");
        free(env);
        return NULL;
    }
    snprintf(reexec, sizeof reexec, ENV_REEXEC "=%d", snapshot_fd);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!huptime_start_entry(envp[i]))
            env[k++] = envp[i];
    env[k++] = reexec;
    if (cfg.stdio_out > 2 && log_fd > 2) {
        snprintf(stdio, sizeof stdio, ENV_STDIO_FDS "=%d,%d", cfg.stdio_out, log_fd);
        env[k++] = stdio;
    }
    if (cfg.control_fd > 2) {
        snprintf(control, sizeof control, ENV_CONTROL_FD "=%d", cfg.control_fd);
        env[k++] = control;
    }
    env[k] = NULL;
    for (int i = 0, *fd; (fd = carried(i)); i++)
        if (*fd > 2)
            set_cloexec(*fd, 0);
    listeners_as_program_sees(1);
    log_info("generation %d: pid %d execs a new image; its listeners stay this generation's",
             gen->number, (int)getpid());
    return env;
}

void reexec_failed(char **env)
{
    REAL(close)(snapshot_fd);
    snapshot_fd = -1;
    listeners_as_program_sees(0);
    for (int i = 0, *fd; (fd = carried(i)); i++)
        if (*fd > 2)
            set_cloexec(*fd, 1);
    free(env);
}

int reexec_open_sockets(int *out, int max)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        int fd = atoi(e->d_name), v = 0;
        socklen_t len = sizeof v;
        if (fd > 2 && fd != dirfd(d) && reg_kind(fd) == FD_NONE &&
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 && v)
            out[n++] = fd;
    }
    closedir(d);
    return n;
}
