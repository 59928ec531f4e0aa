/* children.h - the end of a generation's own children (the program's workers,
 * helpers): found through /proc, signalled and awaited through pidfds, so a
 * recycled PID is never signalled. */
#ifndef HUPTIME_CHILDREN_H
#define HUPTIME_CHILDREN_H

#include <sys/types.h>

/* Field `field` (3 or more, numbered as in proc(5): 4 is the parent, 20 the number
 * of threads) of /proc/PID/stat, or -1. */
long proc_stat_field(pid_t pid, int field);

/* The children of process pid (of all its threads), from /proc/PID/task/N/children;
 * returns how many, at most max. */
int children_of(pid_t pid, pid_t *out, int max);

/* SIGTERM this process's children (all but `except`), SIGKILL those still there
 * after grace_ms, and reap them. Returns how many. */
int children_end(pid_t except, long grace_ms);
/* --wait: wait until this process's children (but except) have all exited, at
 * most timeout_ms, without signalling or reaping them. Returns how many still
 * run; *watched says how many there were. */
int children_wait(pid_t except, long timeout_ms, int *watched);

/* Processes that map the file `path` (or had it mapped when it was removed),
 * whose maps this process may read: SIGTERM, SIGKILL to those still there after
 * grace_ms; they are not this process's children and are not reaped. Returns
 * how many. */
int processes_end_mapping(const char *path, long grace_ms);

#endif
