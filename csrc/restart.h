/* restart.h - the restart machine: the signal, the manager thread, the handover.
 *
 * The signal handler only writes a byte to a pipe. The leader's manager thread
 * (started at its first listen()) waits on that pipe and runs one restart at a
 * time: start the next generation, wait for it to be ready (fork mode) or drain
 * and exec (exec mode), then retire this generation.
 */
#ifndef HUPTIME_RESTART_H
#define HUPTIME_RESTART_H

#include <signal.h>

/* Constructor: install the handler, the signal pipe and the fork hooks. */
int restart_init(void);

/* Start the manager thread in the leader; no-op elsewhere or if running. */
void restart_manager_start(void);

/* How many restart signals this process has received (for EINTR decisions). */
unsigned restart_signals_seen(void);

/* 1 in the process that restarts its generation (not in its workers). */
int restart_is_leader(void);

/* 1 while a child this process forked may still take over as leader: it forked
 * and the generation is not ready yet (a daemonizing parent on its way out). */
int restart_may_hand_over(void);

/* setsid() in a child of the leader: a daemonizing program whose parent is
 * about to exit. The child becomes the generation's leader (and, in a new
 * generation, tells the old one its PID through the readiness pipe). */
void restart_daemon_child(void);

/* The program's view of the restart signal's disposition. */
int restart_program_sigaction(const struct sigaction *act, struct sigaction *old);
sighandler_t restart_program_signal(sighandler_t handler);

#endif
