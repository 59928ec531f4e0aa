/* signals.h - the restart signal, taken from the program and turned into bytes.
 *
 * The shim owns the restart signal's disposition: the handler only counts the
 * signal and, in the process that leads its generation, writes a byte to a pipe
 * the manager thread (restart.h) reads. What the program installs for that
 * signal is recorded, not installed, and shown back to it; while no manager runs
 * (no listening socket seen) the signal is the program's: its handler runs, or
 * the signal is dropped.
 */
#ifndef HUPTIME_SIGNALS_H
#define HUPTIME_SIGNALS_H

#include <signal.h>

/* Constructor: the pipe (protected) and the handler; this process leads. 0, or
 * -1 (logged): the shim must stay inert. */
int signals_init(void);

/* Whether restart signals go to the pipe: 1 in the generation's leader. After a
 * fork the child does not lead until it takes over (a daemon's setsid). */
void signals_set_leader(int on);
int signals_leader(void);

/* Whether a manager thread reads the pipe (restart.h): until then a restart
 * signal goes to the program's own handler, or is dropped, with one log line. */
void signals_set_served(int on);

/* How many restart signals this process has received (for EINTR decisions). */
extern volatile unsigned signals_received __attribute__((visibility("hidden")));
static inline unsigned signals_seen(void) { return signals_received; }

/* The pipe's reading end, for poll(); signals_take() reads every pending byte
 * and returns how many restart signals were waiting. */
int signals_fd(void);
int signals_take(void);

/* Wake the manager without a restart (a byte signals_take() does not count).
 * Async-signal-safe. */
void signals_wake(void);

/* Queue a restart as if the signal came (HUPTIME_PENDING: handled once ready). */
void signals_request(void);

/* The program's view of the restart signal's disposition. */
int signals_program_sigaction(const struct sigaction *act, struct sigaction *old);
sighandler_t signals_program_signal(sighandler_t handler);

#endif
