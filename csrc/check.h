/* check.h - --check: a pre-flight command run before each restart.
 *
 * `/bin/sh -c CMD` in the first generation's working directory and environment,
 * with the start signal state, stdin from /dev/null and stdout+stderr captured,
 * bounded by --ready-timeout. A restart whose check fails is refused before
 * anything starts: the running generation keeps serving.
 */
#ifndef HUPTIME_CHECK_H
#define HUPTIME_CHECK_H

#include <stddef.h>

/* 1 if there is no check or it exited 0; 0 otherwise, with why set to what
 * happened and the last lines of its output, on one line. */
int check_passes(char *why, size_t size);

/* The same for any command: envp as spawn_command's (NULL: the start
 * environment), bounded by timeout_ms. */
int check_command(const char *command, char **envp, long timeout_ms, char *why, size_t size);

#endif
