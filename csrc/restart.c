/* restart.c - one loop that turns restart signals into handovers. */
#define _GNU_SOURCE
#include "restart.h"
#include "clock.h"
#include "config.h"
#include "control.h"
#include "gate.h"
#include "inherit.h"
#include "generation.h"
#include "log.h"
#include "real.h"
#include "registry.h"
#include "shim.h"
#include "spawn.h"
#include "successor.h"
#include "supervised.h"
#include "unlink.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static volatile sig_atomic_t is_leader;
static volatile unsigned signals_seen;
static int sig_rd = -1, sig_wr = -1;
static int manager_running;
static struct sigaction program_action;   /* what the program believes is installed */
static int forked_by;   /* in a forked child: the PID of the process that forked it */
static int has_forked;  /* this process forked since it started */

static void on_restart_signal(int sig)
{
    (void)sig;
    int saved = errno;
    signals_seen++;
    if (is_leader) {
        ssize_t w = write(sig_wr, "r", 1);
        (void)w;
    }
    errno = saved;
}

unsigned restart_signals_seen(void) { return signals_seen; }

int restart_is_leader(void) { return is_leader; }

int restart_may_hand_over(void)
{
    return has_forked && !__atomic_load_n(&gen->ready, __ATOMIC_SEQ_CST);
}

void restart_daemon_child(void)
{
    int parent = forked_by;
    if (is_leader || !parent || gen_retired() ||
        !__atomic_compare_exchange_n(&gen->leader, &parent, (int)getpid(), 0,
                                     __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        return;
    is_leader = 1;
    if (cfg.ready_fd >= 0) {
        char msg[1 + sizeof(int)] = { 'D' };
        int pid = (int)getpid();
        memcpy(msg + 1, &pid, sizeof pid);
        ssize_t w = write(cfg.ready_fd, msg, sizeof msg);
        (void)w;
    }
    log_info("generation %d: pid %d took over as leader from its parent (setsid)",
             gen->number, (int)getpid());
    if (reg_handed_over((int[1]){ 0 }, 1) > 0)
        restart_manager_start();
}

int restart_program_sigaction(const struct sigaction *act, struct sigaction *old)
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

sighandler_t restart_program_signal(sighandler_t handler)
{
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART;
    restart_program_sigaction(&act, &old);
    return old.sa_handler;
}

static void fork_prepare(void)
{
    forked_by = (int)getpid(); /* set in the parent, so exact even if it exits at once */
    reg_lock();
}
static void fork_parent(void)
{
    has_forked = 1;
    reg_unlock();
}
static void fork_child(void)
{
    reg_reset_lock();
    shim_pid = getpid();
    is_leader = 0;
    manager_running = 0;
    /* Kept, in case this child becomes the leader (restart_daemon_child); never
     * passed to what it execs. */
    if (cfg.ready_fd >= 0)
        REAL(fcntl64)(cfg.ready_fd, F_SETFD, FD_CLOEXEC);
    gen_conn_add(reg_count_conns()); /* the child holds these connections too */
    gate_dgram_forked();
}

int restart_init(void)
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
    is_leader = 1;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_restart_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (REAL(sigaction)(cfg.signo, &sa, &program_action) < 0) {
        log_info("cannot handle signal %d: %s; behaving like plain libc", cfg.signo, strerror(errno));
        return -1;
    }
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    if (cfg.pending) {
        ssize_t w = write(sig_wr, "r", 1); /* handled once this generation is ready */
        (void)w;
    }
    return 0;
}

/* Read every pending byte; returns how many signals were waiting. */
static int take_signals(void)
{
    char buf[64];
    int n = 0;
    ssize_t r;
    while ((r = read(sig_rd, buf, sizeof buf)) > 0)
        n += (int)r;
    return n;
}

/* SIGTERM to this process, SIGKILL 5 s later if it is still here. */
static void end_self(void)
{
    kill(getpid(), SIGTERM);
    struct timespec five = { 5, 0 };
    nanosleep(&five, NULL);
    log_info("generation %d did not exit on SIGTERM; sending SIGKILL", gen->number);
    kill(getpid(), SIGKILL);
}

/* Wait for a restart signal; stop the generation if the supervisor is gone. */
static void wait_signal(void)
{
    struct pollfd p[2] = { { sig_rd, POLLIN, 0 }, { supervised_fd(), POLLIN, 0 } };
    while (REAL(poll)(p, p[1].fd >= 0 ? 2 : 1, -1) < 0 && errno == EINTR)
        ;
    if (p[1].fd >= 0 && p[1].revents && supervised_gone()) {
        log_info("the supervisor is gone: stopping generation %d (SIGTERM)", gen->number);
        end_self();
    }
}

/* --wait: give the program's own children until the drain deadline (t0 +
 * --drain-timeout) to exit by themselves; what is left is ended afterwards. */
static void wait_children(pid_t successor, long t0)
{
    if (!cfg.wait_children)
        return;
    long t1 = now_ms(), left = cfg.drain_timeout_ms - (t1 - t0);
    int watched = 0;
    int still = spawn_wait_children(successor, left > 0 ? left : 0, &watched);
    if (still > 0)
        log_info("--wait: %d of %d child process%s of generation %d still running at the "
                 "drain timeout; ending them", still, watched, watched == 1 ? "" : "es",
                 gen->number);
    else if (watched > 0)
        log_info("--wait: the %d child process%s of generation %d exited in %ld ms", watched,
                 watched == 1 ? "" : "es", gen->number, now_ms() - t1);
}

/* This generation is done: stop accepting, drain, end the children, exit. */
static void retire(pid_t successor)
{
    long t0 = now_ms();
    gen_broadcast_stop();
    gate_local_stop();
    int open = __atomic_load_n(&gen->conns, __ATOMIC_SEQ_CST);
    if (gen_wait_drained(cfg.drain_timeout_ms) == 0) {
        log_info("generation %d drained %d connection%s in %ld ms; exiting", gen->number,
                 open, open == 1 ? "" : "s", now_ms() - t0);
    } else {
        log_info("generation %d: %d connection%s still open after the drain timeout "
                 "(%ld ms); sending SIGTERM", gen->number, gen->conns,
                 gen->conns == 1 ? "" : "s", cfg.drain_timeout_ms);
        spawn_end_children(successor, 5000);
        end_self();
    }
    /* No new children from here on: a master would respawn the workers we end. */
    __atomic_store_n(&gen->state, GEN_RETIRED, __ATOMIC_SEQ_CST);
    wait_children(successor, t0);
    for (int round = 0; round < 5 && spawn_end_children(successor, 2000) > 0; round++)
        ;
    control_event(gen->number, "exited");
    control_forget(gen->number);
    _exit(0);
}

static void restart_fork(void)
{
    int fds[HANDOFF_MAX_FDS], ready[2];
    int n = reg_handed_over(fds, HANDOFF_MAX_FDS);
    int next = gen->number + 1;
    if (n == 0) {
        log_info("restart signal ignored: no listening socket yet");
        control_event(next, "failed the program has no listening socket yet");
        return;
    }
    if (pipe2(ready, O_CLOEXEC) < 0) {
        log_info("cannot restart: readiness pipe: %s", strerror(errno));
        control_event(next, "failed readiness pipe: %s", strerror(errno));
        return;
    }
    reg_adopt(&ready[0], FD_INTERNAL);
    reg_adopt(&ready[1], FD_INTERNAL);
    unlink_files(UNLINK_BEGIN);
    struct handoff h = { fds, n, ready[1], next, 0, NULL, -1 };
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
        reg_release(&ready[0]);
        unlink_files(UNLINK_ROLLBACK);
        control_event(next, "failed could not start the program");
        return;
    }
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd >= 0)
        reg_adopt(&pidfd, FD_INTERNAL);
    log_info("restart: generation %d starting as pid %d", next, (int)pid);

    char why[128];
    struct successor s = { pid, pidfd, 0, -1 };
    enum successor_outcome o = successor_await(ready[0], &s, why, sizeof why);
    reg_release(&ready[0]);
    if (o == SUCCESSOR_FAILED) {
        syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
        if (s.daemon_fd >= 0)
            syscall(SYS_pidfd_send_signal, s.daemon_fd, SIGKILL, NULL, 0);
        siginfo_t si;
        waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED);
        reg_release(&pidfd);
        reg_release(&s.daemon_fd);
        unlink_files(UNLINK_ROLLBACK);
        control_forget(next);
        control_event(next, "failed pid %d %s", (int)pid, why);
        log_info("restart failed: generation %d (pid %d) %s; generation %d keeps serving",
                 next, (int)pid, why, gen->number);
        return;
    }
    unlink_files(UNLINK_COMMIT);
    control_event(gen->number, "stopping");
    /* A daemonizing program's child is the new generation from here on. */
    int lead_fd = s.daemon_fd >= 0 ? s.daemon_fd : pidfd;
    pid_t lead = s.daemon_fd >= 0 ? s.daemon : pid;
    log_info("generation %d (pid %d) ready in %ld ms; generation %d stops accepting",
             next, (int)lead, now_ms() - t0, gen->number);
    if (take_signals() > 0) {
        log_info("forwarding the restart signal that came during the restart to pid %d", (int)lead);
        syscall(SYS_pidfd_send_signal, lead_fd, cfg.signo, NULL, 0);
    }
    reg_release(&pidfd);
    reg_release(&s.daemon_fd);
    retire(pid);
}

static void restart_exec(void)
{
    int fds[HANDOFF_MAX_FDS], kept[HANDOFF_MAX_FDS];
    int n = reg_handed_over(fds, HANDOFF_MAX_FDS);
    if (n == 0) {
        log_info("restart signal ignored: no listening socket yet");
        control_event(gen->number + 1, "failed the program has no listening socket yet");
        return;
    }
    char *exe = spawn_resolve_exe();
    if (!exe) {
        log_info("restart refused: %s: %s; still serving", cfg.argv[0], strerror(errno));
        control_event(gen->number + 1, "failed %s: %s", cfg.argv[0], strerror(errno));
        return;
    }
    free(exe);
    for (int i = 0; i < n; i++) {
        kept[i] = REAL(fcntl64)(fds[i], F_DUPFD_CLOEXEC, 3);
        if (kept[i] < 0) {
            log_info("restart refused: cannot keep listener %d: %s", fds[i], strerror(errno));
            control_event(gen->number + 1, "failed cannot keep listener %d: %s", fds[i],
                          strerror(errno));
            while (i-- > 0)
                REAL(close)(kept[i]);
            return;
        }
        reg_set_kind(kept[i], FD_INTERNAL);
    }
    unlink_files(UNLINK_BEGIN);
    long t0 = now_ms();
    int open = gen->conns;
    log_info("restart (exec): generation %d stops accepting and drains %d connection%s",
             gen->number, open, open == 1 ? "" : "s");
    control_event(gen->number, "stopping");
    gen_broadcast_stop();
    gate_local_stop();
    if (gen_wait_drained(cfg.drain_timeout_ms) < 0)
        log_info("drain timeout (%ld ms): closing %d connection%s", cfg.drain_timeout_ms,
                 gen->conns, gen->conns == 1 ? "" : "s");
    __atomic_store_n(&gen->state, GEN_RETIRED, __ATOMIC_SEQ_CST);
    wait_children(0, t0);
    for (int round = 0; round < 5 && spawn_end_children(0, 2000) > 0; round++)
        ;
    /* The new image arrives with every signal ignored (see become_new_image)
     * and its shim restores the start dispositions from this list. */
    int ignored[NSIG];
    int nignored = 0;
    for (int sig = 1; sig < NSIG && nignored < HANDOFF_MAX_FDS; sig++)
        if (sigismember(&cfg.start_ignored, sig))
            ignored[nignored++] = sig;
    struct handoff h = { kept, n, -1, gen->number + 1, take_signals() > 0, ignored, nignored };
    struct spawn_plan plan;
    if (spawn_plan_make(&plan, &h) == 0) {
        log_info("exec: generation %d after %ld ms", h.generation, now_ms() - t0);
        spawn_exec_self(&plan);
        log_info("exec %s failed: %s", plan.exe, strerror(errno));
        control_event(h.generation, "failed exec %s: %s", plan.exe, strerror(errno));
    }
    control_event(gen->number, "exited");
    control_forget(gen->number);
    _exit(127);
}

static void *manager(void *arg)
{
    (void)arg;
    gen_wait_waiting();
    inherit_settle();
    if (__atomic_load_n(&gen->leader, __ATOMIC_SEQ_CST) != (int)getpid())
        return NULL; /* a daemon child took over; its own thread reports */
    gen_set_ready();
    inherit_close_unclaimed();
    /* Reported before the old generation hears of it: once it has the 'R' it may
     * exit at once, and its exit must not look like a crash to a supervisor. */
    log_info("generation %d serving", cfg.generation);
    supervised_report_serving();
    char listeners[sizeof gen->listeners];
    control_describe_listeners(listeners, sizeof listeners);
    control_event(gen->number, "serving %s", listeners);
    if (cfg.ready_fd >= 0) {
        ssize_t w = write(cfg.ready_fd, "R", 1);
        (void)w;
        reg_release(&cfg.ready_fd);
    }
    for (;;) {
        wait_signal();
        if (take_signals() == 0)
            continue;
        if (cfg.mode == MODE_EXEC)
            restart_exec();
        else
            restart_fork();
    }
    return NULL;
}

void restart_manager_start(void)
{
    if (!is_leader || __atomic_exchange_n(&manager_running, 1, __ATOMIC_SEQ_CST))
        return;
    sigset_t only_restart, old;
    sigfillset(&only_restart);
    sigdelset(&only_restart, cfg.signo);
    pthread_sigmask(SIG_SETMASK, &only_restart, &old);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&t, &attr, manager, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        manager_running = 0;
        log_info("cannot start the restart thread: %s; restarts are off", strerror(e));
    }
}
