/* retire.h - the end of a generation: stop accepting, drain until the kernel
 * says no process of it holds a connection (held.h), end its children, exit;
 * and the end of what a killed predecessor left running. The leader's manager
 * thread calls these (restart.h).
 */
#ifndef HUPTIME_RETIRE_H
#define HUPTIME_RETIRE_H

#include <sys/types.h>

struct successor;

/* Fork mode, a successor serves: every process stops accepting; the drain,
 * at most --drain-timeout (then SIGTERM); the children but `successor` end;
 * the record says "exited"; _exit(0). Does not return. */
void retire_and_exit(pid_t successor);

/* Exec mode, from t0 (when the restart began): the same stop, drain and end of
 * the children; returns so that the caller execs. */
void retire_before_exec(long t0);

/* The generation is gone: an "exited" event, and its page file removed. */
void retire_record_exited(void);

/* SIGTERM to this process; 5 s later, if it is still here, its children (but
 * `successor`) and then itself get SIGKILL. Does not return. */
void retire_end_self(pid_t successor);

/* Fork mode, a rollback: a successor (generation `next`) that failed after it
 * took clients off the shared queue finishes them before it is killed: it saw
 * this process give it up (predecessor.h) and drains; this waits until the
 * kernel shows it holds none, at most --drain-timeout + 5 s. */
void retire_rolled_back(int next, const struct successor *s);

/* The old generation's leader exited (predecessor.h): end every process still
 * mapping its page, orphans of a leader that was killed while it drained. */
void retire_predecessor_leftovers(void);

#endif
