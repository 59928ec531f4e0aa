/* restart.h - the restart machine: the manager thread and the handover.
 *
 * The leader's manager thread starts when the first socket to hand over appears
 * (a listen(), a datagram bind or claim, or a daemon child taking over). It
 * reports readiness, then waits for restart signals (signals.h) and runs one
 * restart at a time: start the next generation and wait for it to be ready
 * (fork mode), or drain and exec (exec mode); then this generation retires.
 */
#ifndef HUPTIME_RESTART_H
#define HUPTIME_RESTART_H

/* A socket to hand over appeared (bind, listen, claim): the page's listeners
 * text is rewritten and, in the leader, the manager thread runs. */
void restart_socket_added(void);

/* Start the manager thread in the leader; no-op elsewhere or if running. */
void restart_manager_start(void);

/* 1 in the process that restarts its generation (not in its workers). */
int restart_is_leader(void);

/* 1 while a child this process forked may still take over as leader: it forked
 * and the generation is not ready yet (a daemonizing parent on its way out). */
int restart_may_hand_over(void);

/* setsid() in a child of the leader: a daemonizing program whose parent is
 * about to exit. The child becomes the generation's leader (and, in a new
 * generation, tells the old one its PID through the readiness pipe). */
void restart_daemon_child(void);

/* The fork hooks' parts (shim.c registers them with pthread_atfork). */
void restart_before_fork(void);
void restart_after_fork_parent(void);
void restart_after_fork_child(void);

#endif
