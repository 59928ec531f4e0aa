/* signals.c - the restart signal's handler, pipe and the program's view of it (signals.h). */
#define _GNU_SOURCE
#include "signals.h"
#include "config.h"
#include "handoff.h"
#include "log.h"
#include "real.h"
#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t leader;
static volatile sig_atomic_t served;   /* the manager thread reads the pipe */
static volatile sig_atomic_t told;     /* the one line about an unserved signal */
volatile unsigned signals_received;
static int sig_rd = -1, sig_wr = -1;
static struct sigaction program_action;   /* what the program believes is installed */

/* One line on stderr, built and written with async-signal-safe calls only. */
static void say_unserved(int handled)
{
    static const char head[] = "huptime[", mid[] = "]: restart signal: no listening socket "
        "seen, so no restart; ", passed[] = "passed to the program's own handler\n",
        dropped[] = "ignored (its default action would end the server)\n";
    char line[256], pid[24];
    size_t n = 0;
    huptime_put_pid(pid, (long)getpid());
#define PUT(s, len) do { memcpy(line + n, (s), (len)); n += (len); } while (0)
    PUT(head, sizeof head - 1);
    PUT(pid, strlen(pid));
    PUT(mid, sizeof mid - 1);
    if (handled)
        PUT(passed, sizeof passed - 1);
    else
        PUT(dropped, sizeof dropped - 1);
#undef PUT
    ssize_t w = REAL(write)(2, line, n);
    (void)w;
}

/* Async-signal-safe. The leader's manager reads the pipe; a leader without one
 * (no listening socket seen: made by raw system calls, or not yet) hands the
 * signal to the program's own handler as if huptime were not there, or drops it
 * (never the default action: it would end the server), saying so once. */
static void on_restart_signal(int sig, siginfo_t *si, void *context)
{
    int saved = errno;
    signals_received++;
    if (leader && served) {
        ssize_t w = REAL(write)(sig_wr, "r", 1);
        (void)w;
    } else if (leader) {
        struct sigaction program = program_action;
        int handled = program.sa_handler != SIG_DFL && program.sa_handler != SIG_IGN;
        if (!told) {
            told = 1;
            say_unserved(handled);
        }
        if (handled && (program.sa_flags & SA_SIGINFO))
            program.sa_sigaction(sig, si, context);
        else if (handled)
            program.sa_handler(sig);
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
    /* A generation handed sockets will run a manager once it claims them: its
     * signals wait in the pipe meanwhile (coalesced, as during a restart). */
    served = cfg.n_inherited > 0 || cfg.pending;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_restart_signal;
    sa.sa_flags = SA_RESTART | SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (REAL(sigaction)(cfg.signo, &sa, &program_action) < 0) {
        log_info("cannot handle signal %d: %s; behaving like plain libc", cfg.signo, strerror(errno));
        return -1;
    }
    return 0;
}

void signals_set_leader(int on) { leader = on; }
void signals_set_served(int on) { served = on; }
int signals_leader(void) { return leader; }
int signals_fd(void) { return sig_rd; }

int signals_take(void)
{
    char buf[64];
    int n = 0;
    ssize_t r;
    while ((r = REAL(read)(sig_rd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < r; i++)
            n += buf[i] == 'r';
    return n;
}

void signals_wake(void)
{
    ssize_t w = REAL(write)(sig_wr, "w", 1);
    (void)w;
}

void signals_request(void)
{
    ssize_t w = REAL(write)(sig_wr, "r", 1);
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
