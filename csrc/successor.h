/* successor.h - the old leader watches the generation it started (fork mode).
 *
 * It waits for the first of: the readiness byte 'R' on the pipe; the started
 * process's exit; the ready timeout. The pipe also carries 'D' + PID (native
 * int): the started process daemonized and that child leads now, so the started
 * process exiting with status 0 is not a failure by itself; the generation fails
 * when nothing holds the pipe any more (end of file), its daemon exits, or the
 * timeout passes. See docs/protocol.md.
 */
#ifndef HUPTIME_SUCCESSOR_H
#define HUPTIME_SUCCESSOR_H

#include <stddef.h>
#include <sys/types.h>

/* The new generation as the old leader sees it: the process it started and,
 * once a daemonizing program's child took over (setsid), that child. */
struct successor {
    pid_t pid;
    int pidfd;        /* adopted by the caller */
    pid_t daemon;     /* 0 until 'D' came */
    int daemon_fd;    /* -1, or a pidfd this code adopted; the caller releases it */
    int said_failed;  /* it reported its own failure ('F', --probe): it ends itself */
};

enum successor_outcome { SUCCESSOR_READY, SUCCESSOR_FAILED };

/* On failure, why says what happened ("exited with status 1 before it was ready"). */
enum successor_outcome successor_await(int ready_rd, struct successor *s, char *why, size_t size);

#endif
