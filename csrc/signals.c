/* signals.c - the restart signal's handler, pipe and the program's view of it (signals.h). */
#define _GNU_SOURCE
#include "signals.h"
#include "config.h"
#include "log.h"
#include "real.h"
#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t leader;
static volatile unsigned seen;
static int sig_rd = -1, sig_wr = -1;
static struct sigaction program_action;   /* what the program believes is installed */

/* Async-signal-safe: a count and a write. */
static void on_restart_signal(int sig)
{
    (void)sig;
    int saved = errno;
    seen++;
    if (leader) {
        ssize_t w = write(sig_wr, "r", 1);
        (void)w;
    }
    errno = saved;
}

int signals_init(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        log_info("cannot make the signal pipe: %s; behaving like plain libc", strerror(errno));
        return -1;
    }
    sig_rd = p[0];
    sig_wr = p[1];
    reg_adopt(&sig_rd, FD_INTERNAL);
    reg_adopt(&sig_wr, FD_INTERNAL);
    leader = 1;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_restart_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (REAL(sigaction)(cfg.signo, &sa, &program_action) < 0) {
        log_info("cannot handle signal %d: %s; behaving like plain libc", cfg.signo, strerror(errno));
        return -1;
    }
    return 0;
}

void signals_set_leader(int on) { leader = on; }
int signals_leader(void) { return leader; }
unsigned signals_seen(void) { return seen; }
int signals_fd(void) { return sig_rd; }

int signals_take(void)
{
    char buf[64];
    int n = 0;
    ssize_t r;
    while ((r = read(sig_rd, buf, sizeof buf)) > 0)
        n += (int)r;
    return n;
}

void signals_request(void)
{
    ssize_t w = write(sig_wr, "r", 1);
    (void)w;
}

int signals_program_sigaction(const struct sigaction *act, struct sigaction *old)
{
    if (old)
        *old = program_action;
    if (act) {
        program_action = *act;
        LOG_DEBUG("the program's handler for signal %d is recorded, not installed: "
                  "huptime keeps it for restarts", cfg.signo);
    }
    return 0;
}

sighandler_t signals_program_signal(sighandler_t handler)
{
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART;
    signals_program_sigaction(&act, &old);
    return old.sa_handler;
}
