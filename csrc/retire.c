/* retire.c - the end of a generation (retire.h). */
#define _GNU_SOURCE
#include "retire.h"
#include "children.h"
#include "clock.h"
#include "config.h"
#include "gate.h"
#include "generation.h"
#include "held.h"
#include "log.h"
#include "predecessor.h"
#include "real.h"
#include "record.h"
#include "successor.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* How long a generation sent SIGTERM gets before SIGKILL. */
#define END_GRACE_MS 5000

/* SIGTERM to this process; 5 s later, if it is still here, its children (but
 * `successor`) and then itself get SIGKILL. Does not return. */
void retire_end_self(pid_t successor)
{
    kill(getpid(), SIGTERM);
    struct timespec grace = { END_GRACE_MS / 1000, 0 };
    nanosleep(&grace, NULL);
    log_info("generation %d did not exit on SIGTERM; sending SIGKILL", gen->number);
    children_end(successor, 0);
    kill(getpid(), SIGKILL);
    for (;;)
        pause();
}

/* The old generation's leader exited. Normally it ended its processes first; if
 * it was killed (SIGKILL while it drained), its workers are orphans that would
 * run on: those still mapping its page are ended. */
void retire_predecessor_leftovers(void)
{
    char path[4096];
    int previous = predecessor_gone();
    if (previous < 1 || record_page_path(previous, path, sizeof path) < 0)
        return;
    int n = processes_end_mapping(path, 2000);
    if (n > 0)
        log_info("generation %d's leader is gone; ended %d process%s it left running",
                 previous, n, n == 1 ? "" : "es");
}

/* How often the kernel is asked while a generation drains: after 10 ms, then
 * twice as long each time, up to every 200 ms (most drains end in the first
 * few; a long one costs little). */
#define HELD_FIRST_MS 10
#define HELD_CHECK_MS 200
/* How long the kernel must see nothing held while the shim's count stays up,
 * unchanged, before the count is taken as stale (see drain). */
#define SETTLE_MS 100

/* Every process of the generation stops accepting; wait until none of them holds
 * a connection or answers a datagram (held.h: the kernel's view, asked as above and as soon as the
 * shim's own count reaches zero), at most --drain-timeout from t0.
 * 0 drained, -1 timed out; *idle_closed: connections --drain-idle shut down. */
static int drain(pid_t successor, long t0, int *idle_closed)
{
    held_prepare();
    gen_broadcast_stop();
    gate_local_stop();
    if (cfg.drain_signal) { /* the program's own graceful stop (fork mode only) */
        log_info("generation %d: sending signal %d to pid %d (--drain-signal)", gen->number,
                 cfg.drain_signal, (int)getpid());
        kill(getpid(), cfg.drain_signal);
    }
    *idle_closed = 0;
    long every = HELD_FIRST_MS, quiet_since = -1;
    int quiet_count = 0;
    for (;;) {
        int closed = 0, held = held_count(successor, cfg.drain_idle_ms, &closed);
        *idle_closed += closed;
        int count = gen_conns();
        if (held < 0)
            held = count > 0; /* the kernel cannot tell: the shim's count decides */
        long now = now_ms(), left = t0 + cfg.drain_timeout_ms - now;
        if (held == 0 && gen_datagrams() <= 0) { /* and no datagram is being answered */
            /* The count says so too; or it stays up, unchanged, for SETTLE_MS: left
             * behind by closes the shim never saw. A count that moves is a thread
             * still inside accept() (it counts before it takes): not drained yet. */
            if (count <= 0 || (quiet_since >= 0 && count == quiet_count &&
                               now - quiet_since >= SETTLE_MS))
                return 0;
            if (quiet_since < 0 || count != quiet_count) {
                quiet_since = now;
                quiet_count = count;
            }
        } else {
            quiet_since = -1;
        }
        if (left <= 0)
            return -1;
        long step = left < every ? left : every;
        every = every * 2 < HELD_CHECK_MS ? every * 2 : HELD_CHECK_MS;
        if (gen_conns() > 0) {
            gen_wait_drained(step); /* returns early when the count reaches zero */
        } else {
            struct timespec pause = { step / 1000, (step % 1000) * 1000000L };
            nanosleep(&pause, NULL);
        }
    }
}

static const char *idle_note(int closed, char *buf, size_t size)
{
    if (closed == 0)
        return "";
    snprintf(buf, size, ", %d idle closed", closed);
    return buf;
}

/* After the drain: no more forks; --wait gives the program's children until the
 * drain deadline (t0 + --drain-timeout); then every child but `successor` ends. */
static void end_children(pid_t successor, long t0)
{
    gen_retire();
    if (cfg.wait_children) {
        long t1 = now_ms(), left = cfg.drain_timeout_ms - (t1 - t0);
        int watched = 0;
        int still = children_wait(successor, left > 0 ? left : 0, &watched);
        if (still > 0)
            log_info("--wait: %d of %d child process%s of generation %d still running at the "
                     "drain timeout; ending them", still, watched, watched == 1 ? "" : "es",
                     gen->number);
        else if (watched > 0)
            log_info("--wait: the %d child process%s of generation %d exited in %ld ms", watched,
                     watched == 1 ? "" : "es", gen->number, now_ms() - t1);
    }
    for (int round = 0; round < 5 && children_end(successor, 2000) > 0; round++)
        ;
}

/* The generation is gone: the record says so. */
void retire_record_exited(void)
{
    record_event(gen->number, EVENT_EXITED);
    record_forget(gen->number);
}

/* Fork mode, a successor serves: stop accepting, drain, end the children, exit. */
void retire_and_exit(pid_t successor)
{
    long t0 = now_ms();
    int open = gen_conns(), idle = 0;
    char note[32];
    if (drain(successor, t0, &idle) == 0) {
        log_info("generation %d drained %d connection%s in %ld ms%s; exiting", gen->number,
                 open, open == 1 ? "" : "s", now_ms() - t0, idle_note(idle, note, sizeof note));
    } else {
        int left = gen_conns();
        log_info("generation %d: %d connection%s still open after the drain timeout "
                 "(%ld ms); sending SIGTERM", gen->number, left, left == 1 ? "" : "s",
                 cfg.drain_timeout_ms);
        /* No respawns from here; the program's own stop ends its workers (it must
         * reap them itself: a master waits for its workers' exits). */
        gen_retire();
        retire_end_self(successor);
    }
    end_children(successor, t0);
    retire_record_exited();
    _exit(0);
}

/* Exec mode: the same steps, then back to the caller, which execs. */
void retire_before_exec(long t0)
{
    int idle = 0;
    char note[32];
    if (drain(0, t0, &idle) < 0) {
        int left = gen_conns();
        log_info("drain timeout (%ld ms): closing %d connection%s", cfg.drain_timeout_ms,
                 left, left == 1 ? "" : "s");
    } else if (idle > 0) {
        log_info("generation %d drained in %ld ms%s", gen->number, now_ms() - t0,
                 idle_note(idle, note, sizeof note));
    }
    end_children(0, t0);
}

/* The connections the failed successor took from the shared queue: held by it
 * (and by its daemon child) in the kernel's view. */
static int successor_holds(const struct successor *s)
{
    int a = held_by(s->pid), b = s->daemon_fd >= 0 ? held_by(s->daemon) : 0;
    return (a > 0 ? a : 0) + (b > 0 ? b : 0);
}

/* A successor that failed after it took clients (it claimed a listener and
 * accepted, but never showed readiness) is not killed with them: it saw this
 * process give it up (predecessor_gave_up: the readiness pipe is closed), stops
 * accepting and finishes them; this waits until it holds none, at most
 * --drain-timeout and the 5 s its own SIGTERM gets (retire_end_self). */
void retire_rolled_back(int next, const struct successor *s)
{
    held_prepare();
    int held = successor_holds(s);
    if (held <= 0)
        return;
    long t0 = now_ms(), deadline = t0 + cfg.drain_timeout_ms + END_GRACE_MS, step = HELD_FIRST_MS;
    log_info("rollback: generation %d (pid %d) holds %d connection%s; it stops accepting and "
             "finishes %s before it ends", next, (int)s->pid, held, held == 1 ? "" : "s",
             held == 1 ? "it" : "them");
    while (held > 0 && now_ms() < deadline) {
        struct timespec pause = { 0, step * 1000000L };
        nanosleep(&pause, NULL);
        step = step * 2 < HELD_CHECK_MS ? step * 2 : HELD_CHECK_MS;
        held = successor_holds(s);
    }
    if (held > 0) {
        log_info("generation %d (pid %d) still holds %d connection%s after the drain timeout",
                 next, (int)s->pid, held, held == 1 ? "" : "s");
        return;
    }
    log_info("generation %d (pid %d) finished its connections in %ld ms", next, (int)s->pid,
             now_ms() - t0);
    struct pollfd exit = { s->pidfd, POLLIN, 0 }; /* a moment to end by itself */
    REAL(poll)(&exit, 1, 1000);
}
