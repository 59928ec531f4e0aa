/* inherit.h - the receiving end of a handoff: listeners from the old generation.
 *
 * At start the inherited descriptors are held (protected from the program's
 * close/close_range). bind() to an inherited address claims one: it is dup'ed over
 * the program's own socket. At readiness, whatever was not claimed is closed.
 */
#ifndef HUPTIME_INHERIT_H
#define HUPTIME_INHERIT_H

#include <sys/socket.h>

/* Constructor: protect the inherited listeners and the readiness pipe. */
void inherit_adopt(void);

/* bind(): 1 if fd now holds the inherited listener for addr (bind succeeded). */
int inherit_claim(int fd, const struct sockaddr *addr, socklen_t len);

/* Close the inherited listeners not claimed, once the generation is ready. */
void inherit_close_unclaimed(void);

#endif
