/* spawn.h - starting the program afresh: a new generation, or this process's next image.
 *
 * A plan is made in normal context (path lookup, environment); the start itself
 * does only async-signal-safe work between vfork and execve: reset signals, go to
 * the start directory, put the first start's stdout and stderr back on 1 and 2,
 * close every descriptor but stdio and the handed-over ones.
 */
#ifndef HUPTIME_SPAWN_H
#define HUPTIME_SPAWN_H

#include <sys/types.h>
#include "handoff.h"

struct spawn_plan {
    char *exe;            /* resolved path of argv[0] */
    char **envp;          /* one block: free() */
    char *pid_slot;       /* HUPTIME_PID's value inside envp */
    int keep[HANDOFF_MAX_FDS + 5];
    int nkeep;
    int stdio_out, stdio_err; /* put back on 1 and 2, or -1 */
    int arrive_ignored;   /* exec: leave signals ignored through execve */
};

/* Resolve argv[0] like a shell would; NULL (errno set) if not executable. */
char *spawn_resolve_exe(void);

/* 0, or -1 with a logged reason. Besides h, the plan keeps the instance
 * record's directory (cfg.control_fd) and names it in HUPTIME_CONTROL_FD. */
int spawn_plan_make(struct spawn_plan *p, const struct handoff *h);
void spawn_plan_free(struct spawn_plan *p);

/* vfork + execve; the child's PID, or -1. */
pid_t spawn_child(struct spawn_plan *p);

/* --check and --probe: `/bin/sh -c command` from the start directory with the
 * start environment (or envp, if not NULL) and signal state, in a process group
 * of its own, stdin /dev/null, stdout and stderr to out_fd, no other descriptor
 * of the program's. The shell writes the command's exit status ("%d\n") to
 * status_fd before it exits. The child's PID, or -1. Its exit signal is 0: the
 * program gets no SIGCHLD for it; wait for it with __WALL. */
pid_t spawn_command(const char *command, int out_fd, int status_fd, char **envp);

/* Replace this process's image; returns only if execve failed. */
void spawn_exec_self(struct spawn_plan *p);

#endif
