/* snapshot.h - the start state of a generation, carried in a memfd.
 *
 * What a restart starts the program with (argv, environment, working directory,
 * signal mask, ignored signals) is copied once, when the generation starts
 * (config.h). When its leader execs a new image of itself (reexec.h), the new
 * image's shim must start later generations with the same, not with what the
 * program passed to its own exec: the copy crosses the exec in a memfd. Layout:
 * struct snapshot_head, then NUL-terminated strings: the directory, argc
 * arguments, envc environment entries.
 */
#ifndef HUPTIME_SNAPSHOT_H
#define HUPTIME_SNAPSHOT_H

#include <signal.h>

struct snapshot {
    char **argv, **envp; /* NULL-terminated */
    char *cwd;
    sigset_t mask, ignored;
};

/* A memfd holding s, not close-on-exec; -1 (errno) on failure. */
int snapshot_write(const struct snapshot *s);

/* Read the snapshot in fd (and close fd): 0, or -1 if it is not a whole,
 * well-formed snapshot. The strings stay allocated for the process's life. */
int snapshot_read(int fd, struct snapshot *s);

#endif
