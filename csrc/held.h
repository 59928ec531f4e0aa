/* held.h - kernel truth for the drain: the connections a generation still holds.
 *
 * The shim's count of connections follows the close() calls it sees; a process
 * that closes with a raw system call, exits without closing, dies by a signal or
 * hands a descriptor on is invisible to it. The kernel knows: /proc/PID/fd lists
 * the sockets each process of the generation has open, and each is looked at
 * through a copy of its descriptor (pidfd_getfd: a connection accepted from one
 * of the listeners?); with many sockets, the socket tables (NETLINK_SOCK_DIAG,
 * filtered by the listeners' ports; AF_UNIX by name) say which inodes are such
 * connections, in one dump per port. A generation is drained when none is held
 * (docs/protocol.md, "Drained"). Not on any hot path: the leader's manager thread
 * asks while the generation drains.
 */
#ifndef HUPTIME_HELD_H
#define HUPTIME_HELD_H

#include <sys/types.h>

/* The leader, before its generation stops accepting: remember the local
 * addresses of its stream listeners (the descriptors are replaced at the stop). */
void held_prepare(void);

/* How many connections accepted from those listeners the generation's processes
 * hold now: this process and its descendants, except `except` and its own
 * (a fork-mode successor; 0 for none). With idle_ms > 0, an established TCP
 * connection quiet both ways for idle_ms, with nothing unread or unsent and the
 * server having spoken last, is shut down (the program reads an end of file,
 * the client a clean one); *closed counts those. -1 if the kernel cannot tell
 * (logged once): the caller falls back on the shim's count. */
int held_count(pid_t except, long idle_ms, int *closed);

/* The same count for process root and its descendants (another generation's:
 * a fork-mode successor that is rolled back), nothing shut down; -1 as above. */
int held_by(pid_t root);

/* A descendant of this process that holds one of its listeners without mapping
 * the generation's page: a program started by fork+exec (its shim is inert), which
 * would never stop accepting and would be ended with the clients it took. Its
 * PID, with the listener's descriptor number here in *fd; 0 if there is none. */
pid_t held_unfollowed_listener(int *fd);

#endif
