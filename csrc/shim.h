/* shim.h - process identity shared by the shim's parts. */
#ifndef HUPTIME_SHIM_H
#define HUPTIME_SHIM_H

#include <sys/types.h>

/* This process's PID, as of the constructor or the last fork. */
extern pid_t shim_pid;

/* 1 in a vfork child (posix_spawn, subprocess) that shares the parent's memory:
 * there the shim must not change its state. */
int shim_in_vfork_child(void);

#endif
