/* reexec.h - the program execs itself (or another program) in the same process.
 *
 * Some servers replace their own image to reload (same PID) and keep their
 * listening descriptors open across the exec. The leader's shim carries what it
 * knows across: the listeners stay this generation's, the page and the kept
 * copies of stdio go on, and the handoff variables of the generation's own start
 * (stale by now) are not passed. The new image's shim takes every listening
 * socket it finds open at start as the generation's. See docs/protocol.md.
 */
#ifndef HUPTIME_REEXEC_H
#define HUPTIME_REEXEC_H

/* Before an exec by the generation's ready leader: returns the environment to
 * pass instead of envp (malloc'ed), with the handoff variables dropped and
 * ENV_REEXEC naming a memfd with the generation's start snapshot (snapshot.h)
 * added; every listener that survives the exec gets the program's
 * own blocking choice back, and the shim's descriptors that the new image
 * needs stay open across it. NULL if this exec is none of the shim's business
 * (envp passes unchanged). */
char **reexec_prepare(char *const envp[]);

/* The exec failed: undo what reexec_prepare did to the descriptors, free env. */
void reexec_failed(char **env);

/* In the new image's constructor: the listening sockets open at start, by
 * number; returns how many (at most max). Datagram sockets are not told apart
 * from a client's, so they are not carried. */
int reexec_open_sockets(int *out, int max);

#endif
