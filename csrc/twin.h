/* twin.h - --probe: private twins of the inherited listeners, and the swap.
 *
 * In fork mode with --probe, a new generation's bind() to the address of an
 * inherited stream listener does not claim it: the program's own socket is bound
 * to a private address instead (127.0.0.1 or ::1 with a port the kernel picks,
 * or an autobound abstract Unix name), its twin, and the inherited socket is kept
 * aside. Clients keep reaching the old generation; the probe reaches the twins.
 * Once it passed, every process of the generation swaps: the inherited socket is
 * dup3()ed onto each twin's descriptor number (the program's numbers stay), the
 * epoll sets that watched a twin watch the shared socket with the program's own
 * events and data, and threads waiting on a twin (the gate's waits, poll, epoll)
 * are woken by the swap pipe and go on with the shared socket. docs/protocol.md.
 */
#ifndef HUPTIME_TWIN_H
#define HUPTIME_TWIN_H

#include <stddef.h>
#include <sys/socket.h>

/* epoll data of the swap pipe in the program's epoll sets ("twinswap"). */
#define TWIN_SWAP_MAGIC 0x706177736e697774ULL

/* 1 if this generation makes twins: --probe, fork mode, an old generation waits. */
int twin_wanted(void);

/* bind() of fd to the address of shared, an inherited stream listener: bind fd
 * privately and keep a copy of shared. 0, or -1 (errno; nothing changed). */
int twin_make(int fd, int shared);

/* listen() on fd succeeded and fd is a listener: mark it a twin if it is one. */
void twin_listening(int fd);

/* getsockname() of fd, a twin: the shared address it stands for (the program
 * asked for that one). 0 if fd is no twin. */
int twin_sockname(int fd, struct sockaddr *addr, socklen_t *len);

/* How many twins this generation made (0: nothing to probe). */
int twin_count(void);

/* The first twin's private address, and its text (host:port, [::1]:port, @name);
 * 0 if there is none. */
int twin_first(struct sockaddr_storage *addr, socklen_t *len, char *text, size_t size);

/* The probe's variables, "NAME=value" (protocol.h: ENV_PROBE_ADDR, ENV_PROBE_ADDRS). */
void twin_describe(char *addr, size_t addr_size, char *addrs, size_t addrs_size);

/* The swap pipe's reading end while this process has twins to swap, else -1:
 * the gate adds it to the waits that involve a twin. Read inline: a blocking
 * accept that waits looks here each time. */
extern int twin_pending_fd __attribute__((visibility("hidden")));
static inline int twin_swap_fd(void) { return __atomic_load_n(&twin_pending_fd, __ATOMIC_ACQUIRE); }
/* An epoll set now watches a twin: add the swap pipe to it (TWIN_SWAP_MAGIC). */
void twin_epoll_watch(int epfd);
/* Swap this process's twins, once (any thread that sees the pipe). */
void twin_swap_here(void);
/* The leader, once the probe passed: swap here, then wake every other process. */
void twin_swap_all(void);

#endif
