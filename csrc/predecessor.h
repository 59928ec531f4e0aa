/* predecessor.h - a new generation tells the one that started it how it fares.
 *
 * The other end of successor.h (fork mode): the old leader passes the writing
 * end of a pipe in HUPTIME_READY_FD. The new generation writes READY_SERVING
 * ('R') once it serves, or READY_DAEMON ('D') and its PID when a daemonizing
 * program's child took over as leader. See docs/protocol.md.
 */
#ifndef HUPTIME_PREDECESSOR_H
#define HUPTIME_PREDECESSOR_H

/* Constructor: protect the pipe (config.c validated it). */
void predecessor_init(void);

/* After fork, in the child: keep the pipe (the child may take over as leader),
 * never pass it to what the child execs. */
void predecessor_forked(void);

/* The generation serves: report it, and close the pipe. */
void predecessor_report_serving(void);

/* This process (a daemon's child) leads the new generation now. */
void predecessor_report_daemon(int pid);
/* This generation failed before serving (--probe): 'F' + why + newline; the old
 * leader rolls back, which this generation sees as predecessor_gave_up(). */
void predecessor_report_failure(const char *why);

/* The old leader gave this generation up (a rollback): it closed its end of the
 * readiness pipe while it still runs. The generation must stop accepting, finish
 * what it took and exit. 0 before readiness is reported, or without a pipe. */
int predecessor_gave_up(void);

/* A pidfd of the old generation's leader (this process's parent at start, fork
 * mode), readable once it has exited; -1 if there is none to watch. */
int predecessor_fd(void);
/* It exited: stop watching. Returns the number of its generation. */
int predecessor_gone(void);

#endif
