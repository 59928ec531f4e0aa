/* successor.c - the old leader watches the generation it started (successor.h). */
#define _GNU_SOURCE
#include "successor.h"
#include "clock.h"
#include "config.h"
#include "pidfd.h"
#include "protocol.h"
#include "real.h"
#include "registry.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void exit_reason(const siginfo_t *si, char *why, size_t size)
{
    if (si->si_code == CLD_EXITED)
        snprintf(why, size, "exited with status %d before it was ready", si->si_status);
    else
        snprintf(why, size, "was killed by signal %d before it was ready", si->si_status);
}

enum successor_outcome successor_await(int ready_rd, struct successor *s, char *why, size_t size)
{
    /* With --probe, the new generation's probe runs within its readiness. */
    long timeout = cfg.ready_timeout_ms + (cfg.probe || cfg.probe_http ? cfg.probe_timeout_ms : 0);
    long deadline = now_ms() + timeout;
    int parent_gone = 0;
    for (;;) {
        long left = deadline - now_ms();
        if (left <= 0) {
            snprintf(why, size, "was not ready within %ld ms", timeout);
            return SUCCESSOR_FAILED;
        }
        struct pollfd p[3] = { { ready_rd, POLLIN, 0 }, { parent_gone ? -1 : s->pidfd, POLLIN, 0 },
                               { s->daemon_fd, POLLIN, 0 } };
        int r = REAL(poll)(p, 3, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (p[0].revents) {
            char c = 0;
            int pid = 0;
            ssize_t got = REAL(read)(ready_rd, &c, 1);
            if (got == 1 && c == READY_SERVING[0])
                return SUCCESSOR_READY;
            if (got == 1 && c == READY_FAILED[0]) { /* the rest came in the same write */
                ssize_t n = REAL(read)(ready_rd, why, size - 1);
                why[n > 0 ? n : 0] = '\0';
                why[strcspn(why, "\n")] = '\0';
                s->said_failed = 1;
                return SUCCESSOR_FAILED;
            }
            if (got == 1 && c == READY_DAEMON[0] && REAL(read)(ready_rd, &pid, sizeof pid) == sizeof pid &&
                s->daemon_fd < 0) {
                s->daemon = pid;
                s->daemon_fd = pidfd_open(pid);
                if (s->daemon_fd >= 0)
                    reg_adopt(&s->daemon_fd, FD_INTERNAL);
            }
            if (got == 1)
                continue;
            /* End of file: every process that could report readiness is gone. */
            if (s->daemon) {
                snprintf(why, size, "lost its daemon process (pid %d) before it was ready",
                         (int)s->daemon);
                return SUCCESSOR_FAILED;
            }
            if (parent_gone) {
                snprintf(why, size, "exited with status 0 before it was ready");
                return SUCCESSOR_FAILED;
            }
            REAL(poll)(&p[1], 1, 1000); /* let the exit become visible */
            p[1].revents = POLLIN;
        }
        if (p[2].revents) {
            snprintf(why, size, "lost its daemon process (pid %d) before it was ready",
                     (int)s->daemon);
            return SUCCESSOR_FAILED;
        }
        if (p[1].revents) {
            siginfo_t si;
            memset(&si, 0, sizeof si);
            if (pidfd_wait(s->pidfd, &si, WEXITED | WNOHANG) < 0 || !si.si_pid) {
                snprintf(why, size, "closed its readiness pipe before it was ready");
                return SUCCESSOR_FAILED;
            }
            if (si.si_code == CLD_EXITED && si.si_status == 0) {
                parent_gone = 1; /* a daemonizing parent, or end of file will tell */
                continue;
            }
            exit_reason(&si, why, size);
            return SUCCESSOR_FAILED;
        }
    }
}
