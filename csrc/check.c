/* check.c - run --check (and --probe's command) and judge it (check.h). */
#define _GNU_SOURCE
#include "check.h"
#include "clock.h"
#include "config.h"
#include "pidfd.h"
#include "real.h"
#include "registry.h"
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { TAIL = 512, LAST_LINES = 3 };

/* Keep the last TAIL bytes of the output in tail (a sliding window). */
static void keep_tail(char *tail, size_t *used, const char *buf, size_t n)
{
    if (n >= TAIL) {
        memcpy(tail, buf + n - TAIL, TAIL);
        *used = TAIL;
        return;
    }
    if (*used + n > TAIL) {
        size_t drop = *used + n - TAIL;
        memmove(tail, tail + drop, *used - drop);
        *used -= drop;
    }
    memcpy(tail + *used, buf, n);
    *used += n;
}

/* The last LAST_LINES non-empty lines of tail, joined with " | ". */
static void last_lines(const char *tail, size_t used, char *out, size_t size)
{
    size_t start = used;
    int lines = 0;
    while (start > 0 && used > 0 && (tail[used - 1] == '\n' || tail[used - 1] == '\r'))
        used--;
    start = used;
    while (start > 0 && lines < LAST_LINES) {
        start--;
        if (tail[start] == '\n' && ++lines == LAST_LINES) {
            start++;
            break;
        }
    }
    size_t n = 0;
    for (size_t i = start; i < used && n + 4 < size; i++) {
        if (tail[i] == '\n') {
            memcpy(out + n, " | ", 3);
            n += 3;
        } else if (tail[i] != '\r') {
            out[n++] = (unsigned char)tail[i] < ' ' ? '?' : tail[i];
        }
    }
    out[n] = '\0';
}

int check_passes(char *why, size_t size)
{
    return !cfg.check || check_command(cfg.check, NULL, cfg.ready_timeout_ms, why, size);
}

int check_command(const char *command, char **envp, long timeout_ms, char *why, size_t size)
{
    int p[2], st[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(why, size, "could not run: pipe: %s", strerror(errno));
        return 0;
    }
    if (pipe2(st, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(why, size, "could not run: pipe: %s", strerror(errno));
        REAL(close)(p[0]);
        REAL(close)(p[1]);
        return 0;
    }
    reg_adopt(&p[0], FD_INTERNAL);
    reg_adopt(&p[1], FD_INTERNAL);
    reg_adopt(&st[0], FD_INTERNAL);
    reg_adopt(&st[1], FD_INTERNAL);
    pid_t pid = spawn_command(command, p[1], st[1], envp);
    reg_release(&p[1]);
    reg_release(&st[1]);
    if (pid < 0) {
        snprintf(why, size, "could not run: clone: %s", strerror(errno));
        reg_release(&p[0]);
        reg_release(&st[0]);
        return 0;
    }
    int pidfd = pidfd_open(pid);
    if (pidfd >= 0)
        reg_adopt(&pidfd, FD_INTERNAL);
    char tail[TAIL], buf[4096];
    size_t used = 0;
    long deadline = now_ms() + timeout_ms;
    int timed_out = 0, open = 1;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    for (;;) {
        long left = deadline - now_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd w[2] = { { open ? p[0] : -1, POLLIN, 0 }, { pidfd, POLLIN, 0 } };
        if (REAL(poll)(w, 2, (int)left) < 0 && errno != EINTR)
            break;
        if (w[0].revents) {
            ssize_t n = REAL(read)(p[0], buf, sizeof buf);
            if (n > 0)
                keep_tail(tail, &used, buf, (size_t)n);
            else if (n == 0 || errno != EINTR)
                open = 0; /* end of file: the shell and what it started are done with it */
        }
        if (w[1].revents && !open)
            break;
        if (w[1].revents) { /* exited: take what it wrote last, without waiting for more */
            REAL(fcntl64)(p[0], F_SETFL, O_NONBLOCK);
            ssize_t n;
            while ((n = REAL(read)(p[0], buf, sizeof buf)) > 0)
                keep_tail(tail, &used, buf, (size_t)n);
            break;
        }
    }
    if (timed_out) {
        kill(-pid, SIGKILL);          /* its process group: the shell and what it started */
        pidfd_signal(pidfd, SIGKILL); /* and the shell by its pidfd: the wait below ends */
    }
    pidfd_wait(pidfd, &si, WEXITED | __WALL);
    reg_release(&pidfd);
    reg_release(&p[0]);
    char status[16];
    ssize_t got = REAL(read)(st[0], status, sizeof status - 1);
    reg_release(&st[0]);
    if (got > 0) { /* the shell's word on the command, even if the program reaped the shell */
        status[got] = '\0';
        si.si_code = CLD_EXITED;
        si.si_status = atoi(status);
    }
    if (!timed_out && si.si_code == CLD_EXITED && si.si_status == 0)
        return 1;
    char lines[256];
    last_lines(tail, used, lines, sizeof lines);
    int n;
    if (timed_out)
        n = snprintf(why, size, "did not finish within %ld ms", timeout_ms);
    else if (si.si_code == CLD_EXITED)
        n = snprintf(why, size, "exited with status %d", si.si_status);
    else if (!si.si_code)
        n = snprintf(why, size, "ended, but its status went to the program's waitpid()");
    else
        n = snprintf(why, size, "was killed by signal %d", si.si_status);
    if (lines[0] && n > 0 && (size_t)n < size)
        snprintf(why + n, size - (size_t)n, ": %s", lines);
    return 0;
}
