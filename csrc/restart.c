/* restart.c - the restart machine: one thread turns restart signals into handovers. */
#define _GNU_SOURCE
#include "restart.h"
#include "clock.h"
#include "config.h"
#include "generation.h"
#include "inherit.h"
#include "lastthread.h"
#include "log.h"
#include "notify.h"
#include "pidfd.h"
#include "predecessor.h"
#include "preflight.h"
#include "probe.h"
#include "real.h"
#include "record.h"
#include "retire.h"
#include "registry.h"
#include "signals.h"
#include "spawn.h"
#include "successor.h"
#include "supervised.h"
#include "twin.h"
#include "unlink.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int manager_running;
static int forked_by;   /* in a forked child: the PID of the process that forked it */
static int has_forked;  /* this process forked since it started */
static int ready_rd = -1; /* fork mode, during a restart: the readiness pipe's reading end */

int restart_is_leader(void) { return signals_leader(); }

int restart_may_hand_over(void)
{
    return has_forked && !gen_is_ready();
}

void restart_before_fork(void)
{
    forked_by = (int)getpid(); /* set in the parent, so exact even if it exits at once */
}

void restart_after_fork_parent(void) { has_forked = 1; }

void restart_after_fork_child(void)
{
    signals_set_leader(0);
    signals_set_served(0);
    manager_running = 0;
    predecessor_forked();
    /* Only the leader may hold it: its close is how a successor learns it was
     * given up (predecessor_gave_up), and a worker forked meanwhile must not keep
     * it open. */
    if (ready_rd >= 0)
        reg_release(&ready_rd);
}

void restart_daemon_child(void)
{
    int parent = forked_by;
    if (signals_leader() || !parent || gen_retired() ||
        !gen_take_leadership(parent, (int)getpid()))
        return;
    signals_set_leader(1);
    predecessor_report_daemon((int)getpid());
    log_info("generation %d: pid %d took over as leader from its parent (setsid)",
             gen->number, (int)getpid());
    if (reg_has_handed_over())
        restart_manager_start();
}

void restart_socket_added(void)
{
    char text[GEN_LISTENERS_SIZE];
    reg_describe_handed_over(text, sizeof text);
    gen_set_listeners(text);
    restart_manager_start();
}

/* Wait for a restart signal. Meanwhile: the old generation's leader may exit
 * (its leftovers are ended); if the supervisor is gone, this ends the
 * generation (retire_end_self) and does not return. */
static void wait_restart_signal(void)
{
    for (;;) {
        struct pollfd p[4] = { { signals_fd(), POLLIN, 0 }, { supervised_fd(), POLLIN, 0 },
                               { predecessor_fd(), POLLIN, 0 }, { notify_proxy_fd(), POLLIN, 0 } };
        int r = REAL(poll)(p, 4, lastthread_look_ms());
        if (r <= 0) {
            lastthread_end_if_alone();
            if (r == 0 || errno == EINTR)
                continue;
            return;
        }
        if (p[2].revents)
            retire_predecessor_leftovers();
        if (p[3].revents)
            notify_proxy_read();
        if (p[1].revents && supervised_gone()) {
            log_info("the supervisor is gone: stopping generation %d (SIGTERM)", gen->number);
            retire_end_self(0);
        }
        if (p[0].revents || p[1].revents)
            return;
    }
}

/* Fork mode, the new generation failed: it finishes what it took, is killed,
 * the files put back, and this generation keeps serving. */
/* How long a generation that reported its own failure may take to end itself. */
#define ROLLBACK_GRACE_MS 5000

static void roll_back(int next, const struct successor *s, const char *why)
{
    retire_rolled_back(next, s);
    if (s->said_failed) { /* it ends its own processes (its workers) once given up */
        struct pollfd exit = { s->pidfd, POLLIN, 0 };
        REAL(poll)(&exit, 1, ROLLBACK_GRACE_MS);
    }
    pidfd_signal(s->pidfd, SIGKILL);
    if (s->daemon_fd >= 0)
        pidfd_signal(s->daemon_fd, SIGKILL);
    siginfo_t si;
    pidfd_wait(s->pidfd, &si, WEXITED);
    unlink_files(UNLINK_ROLLBACK);
    record_forget(next);
    record_event(next, EVENT_FAILED " pid %d %s", (int)s->pid, why);
    log_info("restart failed: generation %d (pid %d) %s; generation %d keeps serving",
             next, (int)s->pid, why, gen->number);
}

/* 2 if copies of the first start's stdout and stderr are kept (shim.c), else 0. */
static int stdio_kept(void) { return cfg.stdio_out > 2 && log_fd > 2 ? 2 : 0; }

/* Start the program again beside this generation; hand over once it is ready. */
static void restart_fork(void)
{
    int fds[HANDOFF_MAX_FDS], ready[2];
    int n = reg_handed_over(fds);
    int next = gen->number + 1;
    if (!preflight(n, next))
        return;
    if (pipe2(ready, O_CLOEXEC) < 0) {
        log_info("cannot restart: readiness pipe: %s", strerror(errno));
        record_event(next, EVENT_FAILED " readiness pipe: %s", strerror(errno));
        return;
    }
    ready_rd = ready[0]; /* a static slot: a fork meanwhile closes the child's copy */
    reg_adopt(&ready_rd, FD_INTERNAL);
    reg_adopt(&ready[1], FD_INTERNAL);
    unlink_files(UNLINK_BEGIN);
    int stdio[2] = { cfg.stdio_out, log_fd };
    struct handoff h = { fds, n, ready[1], next, 0, NULL, -1, stdio, stdio_kept() };
    struct spawn_plan plan;
    long t0 = now_ms();
    pid_t pid = -1;
    if (spawn_plan_make(&plan, &h) == 0) {
        pid = spawn_child(&plan);
        if (pid < 0)
            log_info("cannot restart: vfork: %s", strerror(errno));
        spawn_plan_free(&plan);
    }
    reg_release(&ready[1]);
    if (pid < 0) {
        reg_release(&ready_rd);
        unlink_files(UNLINK_ROLLBACK);
        record_event(next, EVENT_FAILED " could not start the program");
        return;
    }
    struct successor s = { pid, pidfd_open(pid), 0, -1, 0 };
    if (s.pidfd >= 0)
        reg_adopt(&s.pidfd, FD_INTERNAL);
    log_info("restart: generation %d starting as pid %d", next, (int)pid);

    char why[128];
    enum successor_outcome o = successor_await(ready_rd, &s, why, sizeof why);
    reg_release(&ready_rd); /* given up, the successor sees it (predecessor_gave_up) */
    if (o == SUCCESSOR_FAILED) {
        roll_back(next, &s, why);
        reg_release(&s.pidfd);
        reg_release(&s.daemon_fd);
        return;
    }
    unlink_files(UNLINK_COMMIT);
    record_event(gen->number, EVENT_DRAINING);
    /* A daemonizing program's child is the new generation from here on. */
    int lead_fd = s.daemon_fd >= 0 ? s.daemon_fd : s.pidfd;
    pid_t lead = s.daemon_fd >= 0 ? s.daemon : pid;
    log_info("generation %d (pid %d) ready in %ld ms; generation %d stops accepting",
             next, (int)lead, now_ms() - t0, gen->number);
    if (signals_take() > 0) {
        log_info("forwarding the restart signal that came during the restart to pid %d", (int)lead);
        pidfd_signal(lead_fd, cfg.signo);
    }
    reg_release(&s.pidfd);
    reg_release(&s.daemon_fd);
    notify_send("MAINPID=%d\nREADY=1\nSTATUS=generation %d serving (pid %d); generation %d "
                "drains", (int)lead, next, (int)lead, gen->number);
    retire_and_exit(pid);
}

/* Drain this generation, then replace this process's image, same PID. */
static void restart_exec(void)
{
    int fds[HANDOFF_MAX_FDS], kept[HANDOFF_MAX_FDS];
    int n = reg_handed_over(fds);
    int next = gen->number + 1;
    if (!preflight(n, next))
        return;
    char *exe = spawn_resolve_exe();
    if (!exe) {
        log_info("restart refused: %s: %s; still serving", cfg.argv[0], strerror(errno));
        record_event(next, EVENT_FAILED " %s: %s", cfg.argv[0], strerror(errno));
        return;
    }
    free(exe);
    for (int i = 0; i < n; i++) {
        kept[i] = REAL(fcntl64)(fds[i], F_DUPFD_CLOEXEC, 3);
        if (kept[i] < 0) {
            log_info("restart refused: cannot keep listener %d: %s", fds[i], strerror(errno));
            record_event(next, EVENT_FAILED " cannot keep listener %d: %s", fds[i],
                         strerror(errno));
            while (i-- > 0)
                REAL(close)(kept[i]);
            return;
        }
        reg_set_kind(kept[i], FD_INTERNAL);
    }
    unlink_files(UNLINK_BEGIN);
    long t0 = now_ms();
    int open = gen_conns();
    log_info("restart (exec): generation %d stops accepting and drains %d connection%s",
             gen->number, open, open == 1 ? "" : "s");
    record_event(gen->number, EVENT_DRAINING);
    retire_before_exec(t0);
    /* The new image arrives with every signal ignored (spawn.c, become_new_image)
     * and its shim restores the start dispositions from this list. */
    int ignored[HANDOFF_MAX_SIGNALS];
    int nignored = 0;
    for (int sig = 1; sig < NSIG && nignored < HANDOFF_MAX_SIGNALS; sig++)
        if (sigismember(&cfg.start_ignored, sig))
            ignored[nignored++] = sig;
    int stdio[2] = { cfg.stdio_out, log_fd };
    struct handoff h = { kept, n, -1, next, signals_take() > 0, ignored, nignored, stdio,
                         stdio_kept() };
    struct spawn_plan plan;
    if (spawn_plan_make(&plan, &h) == 0) {
        log_info("exec: generation %d after %ld ms", h.generation, now_ms() - t0);
        spawn_exec_self(&plan);
        log_info("exec %s failed: %s", plan.exe, strerror(errno));
        record_event(h.generation, EVENT_FAILED " exec %s: %s", plan.exe, strerror(errno));
    }
    retire_record_exited();
    _exit(127);
}

/* How often the wait for readiness looks up from the page (below). */
#define READINESS_LOOK_MS 50

/* Until a process of the generation waits for clients (gen_mark_waiting) and, if
 * the program speaks sd_notify, it sent READY=1 (notify.h). Two things end the
 * wait early: the old leader gives this generation up (a fork-mode
 * rollback: it stops accepting, finishes what it took and exits here); and, in a
 * generation that reports to nobody, a restart signal: a program that accepts
 * where the shim does not see it wait (a raw system call, io_uring) would
 * otherwise keep the signal forever. */
static void await_waiting(void)
{
    unsigned seen = signals_seen();
    while (!gen_wait_waiting(READINESS_LOOK_MS) || !notify_program_ready(READINESS_LOOK_MS)) {
        if (predecessor_gave_up()) {
            log_info("generation %d: generation %d gave this restart up; stopping accepting, "
                     "finishing the connections taken, exiting", gen->number, gen->number - 1);
            retire_and_exit(0);
        }
        if (cfg.ready_fd < 0 && signals_seen() != seen) {
            log_info("generation %d: a restart signal came before the shim saw the program "
                     "wait for clients; taking it as serving", gen->number);
            return;
        }
    }
}

/* --probe: the generation waits for clients on its twins; the probe decides.
 * Passed: every process takes the shared sockets and the cut-over goes on.
 * Failed: the old leader rolls back, which ends this generation (it gives it up,
 * then kills it). Returns only to go on serving. */
static void probe_cut_over(void)
{
    char why[400];
    long t0 = now_ms();
    if (probe_passes(why, sizeof why)) {
        twin_swap_all();
        restart_socket_added(); /* the page names the shared listeners now */
        log_info("generation %d: --probe passed in %ld ms; its listeners are the shared ones "
                 "now", gen->number, now_ms() - t0);
        return;
    }
    log_info("generation %d: %s; rolling back to generation %d", gen->number, why,
             gen->number - 1);
    predecessor_report_failure(why);
    for (;;) {
        if (predecessor_gave_up())
            retire_and_exit(0);
        struct pollfd old = { predecessor_fd(), POLLIN, 0 };
        if (REAL(poll)(&old, 1, READINESS_LOOK_MS) > 0) {
            log_info("generation %d: generation %d is gone; serving although --probe failed, "
                     "as nothing else would", gen->number, gen->number - 1);
            twin_swap_all();
            restart_socket_added();
            return;
        }
    }
}

static void *manager(void *arg)
{
    (void)arg;
    await_waiting();
    inherit_settle();
    if (gen_leader() != (int)getpid())
        return NULL; /* a daemon child took over; its own thread reports */
    if (twin_count() > 0)
        probe_cut_over();
    gen_set_ready();
    inherit_close_unclaimed();
    /* Reported before the old generation hears of it: once it has the 'R' it may
     * exit at once, and its exit must not look like a crash to a supervisor. */
    log_info("generation %d serving", gen->number);
    supervised_report_serving();
    char listeners[GEN_LISTENERS_SIZE];
    reg_describe_handed_over(listeners, sizeof listeners);
    record_event(gen->number, EVENT_SERVING " %s", listeners);
    predecessor_report_serving();
    int fds[HANDOFF_MAX_FDS];
    notify_serving(fds, reg_handed_over(fds));
    for (;;) {
        wait_restart_signal();
        if (signals_take() == 0)
            continue;
        notify_send("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=restart: generation %d "
                    "starting", notify_monotonic_usec(), gen->number + 1);
        if (cfg.mode == MODE_EXEC)
            restart_exec();
        else
            restart_fork(); /* both return only when the restart did not happen */
        notify_send("READY=1\nSTATUS=restart failed: generation %d %s; generation %d serving",
                    gen->number + 1, record_last_failure(), gen->number);
    }
    return NULL;
}

void restart_manager_start(void)
{
    if (!signals_leader() || __atomic_exchange_n(&manager_running, 1, __ATOMIC_SEQ_CST))
        return;
    signals_set_served(1); /* from now on the pipe is read */
    sigset_t only_restart, old;
    sigfillset(&only_restart);
    sigdelset(&only_restart, cfg.signo);
    pthread_sigmask(SIG_SETMASK, &only_restart, &old);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int e = REAL(pthread_create)(&t, &attr, manager, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        manager_running = 0;
        signals_set_served(0);
        log_info("cannot start the restart thread: %s; restarts are off", strerror(e));
    }
}
