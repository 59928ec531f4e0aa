/* inherit.h - the receiving end of a handoff: listeners from the old generation.
 *
 * At start the inherited descriptors are held (protected from the program's
 * close/close_range). bind() to an inherited address claims one: it is dup'ed over
 * the program's own socket. At readiness, whatever was not claimed is closed.
 */
#ifndef HUPTIME_INHERIT_H
#define HUPTIME_INHERIT_H

#include <sys/socket.h>

/* Constructor: protect the inherited sockets. */
void inherit_adopt(void);

/* bind(): if an inherited socket has addr, make fd that socket (the bind
 * succeeded) and return its type: SOCK_STREAM (registered as a listener) or
 * SOCK_DGRAM (the caller registers it, gate.h). 0 if none matches. */
int inherit_claim(int fd, const struct sockaddr *addr, socklen_t len);

/* unlink()/unlinkat() of dirfd/path: 1 if path is the socket file of an inherited
 * Unix listener not claimed yet. The usual start-up idiom is "unlink the socket
 * path, then bind it": the new generation must not remove the file the old one is
 * still reachable through, and its bind() then claims the inherited socket. */
int inherit_protects_path(int dirfd, const char *path);

/* The index in cfg.inherited of the socket bound to addr with fd's type, or -1. */
int inherit_match(int fd, const struct sockaddr *addr, socklen_t len);
/* Inherited socket i is taken care of by other means (twin.h): close it. */
void inherit_release(int i);

/* How many inherited listeners are not claimed yet. */
int inherit_unclaimed(void);

/* The leader, once the generation waits for clients: a program with several
 * listeners may serve the first before it binds the others, so wait until every
 * inherited listener is claimed, at most 2 s (one its new configuration dropped). */
void inherit_settle(void);

/* Close the inherited listeners not claimed, once the generation is ready. */
void inherit_close_unclaimed(void);

#endif
