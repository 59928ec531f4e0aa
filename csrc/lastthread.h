/* lastthread.h - the shim's restart thread must not keep a process alive.
 *
 * A program's main thread may end before the process (pthread_exit, or a
 * cancel): glibc then ends the process when the last thread ends. The restart
 * thread is a thread too, so it would keep a server whose own threads have all
 * ended alive forever. A thread-specific value set in the main thread at start
 * has a destructor that runs when the main thread ends, and wakes the restart
 * thread (signals.h); from then on the restart thread looks at the process's
 * thread count while it waits (every 100 ms), and ends the process as glibc
 * would (exit(0)) once it is the only thread left.
 */
#ifndef HUPTIME_LASTTHREAD_H
#define HUPTIME_LASTTHREAD_H

/* Constructor, in the main thread. */
void lastthread_watch(void);
/* How long the restart thread may wait before it looks again: -1 while the main
 * thread runs. */
int lastthread_look_ms(void);
/* The restart thread: if it is the process's only thread left (besides the
 * ended main thread), exit(0). */
void lastthread_end_if_alone(void);

#endif
