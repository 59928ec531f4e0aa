/* predecessor.c - the new generation's end of the readiness pipe (predecessor.h). */
#define _GNU_SOURCE
#include "predecessor.h"
#include "config.h"
#include "pidfd.h"
#include "protocol.h"
#include "real.h"
#include "registry.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int leader_fd = -1;   /* the old generation's leader (pidfd) */

void predecessor_init(void)
{
    if (cfg.ready_fd < 0)
        return;
    reg_adopt(&cfg.ready_fd, FD_INTERNAL);
    /* Started by the old leader (vfork): it is the parent, unless it is already
     * gone, in which case this watches a subreaper, which is harmless. */
    leader_fd = pidfd_open(getppid());
    if (leader_fd >= 0)
        reg_adopt(&leader_fd, FD_INTERNAL);
}

int predecessor_fd(void) { return leader_fd; }

int predecessor_gave_up(void)
{
    if (cfg.ready_fd < 0)
        return 0;
    /* A pipe's writing end reports POLLERR once no reader is left. The old leader
     * exiting closes it too: that is no rollback, this generation is all there is. */
    struct pollfd p[2] = { { cfg.ready_fd, 0, 0 }, { leader_fd, POLLIN, 0 } };
    if (REAL(poll)(p, 2, 0) <= 0 || !(p[0].revents & POLLERR))
        return 0;
    return leader_fd >= 0 && !p[1].revents;
}

int predecessor_gone(void)
{
    reg_release(&leader_fd);
    return cfg.generation - 1;
}

void predecessor_forked(void)
{
    if (cfg.ready_fd >= 0)
        REAL(fcntl64)(cfg.ready_fd, F_SETFD, FD_CLOEXEC);
}

void predecessor_report_serving(void)
{
    if (cfg.ready_fd < 0)
        return;
    ssize_t w = REAL(write)(cfg.ready_fd, READY_SERVING, 1);
    (void)w;
    reg_release(&cfg.ready_fd);
}

void predecessor_report_daemon(int pid)
{
    if (cfg.ready_fd < 0)
        return;
    char msg[1 + sizeof(int)] = { READY_DAEMON[0] };
    memcpy(msg + 1, &pid, sizeof pid);
    ssize_t w = REAL(write)(cfg.ready_fd, msg, sizeof msg); /* one write: atomic on a pipe */
    (void)w;
}

void predecessor_report_failure(const char *why)
{
    if (cfg.ready_fd < 0)
        return;
    char msg[512];
    int n = snprintf(msg, sizeof msg, READY_FAILED "%s\n", why);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof msg) {
        n = (int)sizeof msg - 1;
        msg[n - 1] = '\n';
    }
    ssize_t w = REAL(write)(cfg.ready_fd, msg, (size_t)n); /* one write: atomic on a pipe */
    (void)w;
}
