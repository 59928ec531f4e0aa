/* registry.h - what the shim knows about this process's descriptors.
 *
 * A byte per descriptor number says what it is. Lookups and connection counting
 * are lock-free (the hot path: accept and close); listener and epoll bookkeeping,
 * which change rarely, take reg_lock(). Descriptors at or above REG_MAX_FD are
 * not tracked: the shim treats them as plain descriptors.
 */
#ifndef HUPTIME_REGISTRY_H
#define HUPTIME_REGISTRY_H

#include <stddef.h>
#include "protocol.h"

#include "generation.h"

#include <stdint.h>
#include <sys/epoll.h>

#define REG_MAX_FD 65536
/* Variables reg_adopt() can follow: every inherited socket, and room for the
 * shim's own (stop pipe 2, signal pipe 2, readiness 1, supervisor link 1, the
 * old leader's pidfd 1, kept stdout and stderr 2, the record's directory 1, and a
 * restart's readiness pipe 2, pidfd 1, daemon pidfd 1, or a --check's pipe 2 and
 * pidfd 1: 15; --probe's swap pipe 2 and a twin's copy made before its inherited
 * slot is released 1: 18). */
#define REG_MAX_SLOTS (HANDOFF_MAX_FDS + 18)

enum fd_kind {
    FD_NONE = 0,
    FD_LISTENER,   /* a listening socket this generation accepts on */
    FD_STOPPED,    /* a former listener, replaced by a quiet socket: never accept */
    FD_CONN,       /* a connection accepted from a listener */
    FD_INHERITED,  /* handed over by the old generation, not claimed yet */
    FD_INTERNAL,   /* the shim's own: never closed or reused behind its back */
    FD_EPOLL,      /* an epoll set that watches a listener */
    FD_DGRAM,      /* a bound datagram socket (UDP, Unix datagram): handed over too */
};

/* Per descriptor: its kind, and for a listener the bits below. Read inline: the
 * accept and close paths look here for every connection. */
extern uint8_t reg_kinds[REG_MAX_FD] __attribute__((visibility("hidden")));
extern uint8_t reg_listener_bits[REG_MAX_FD] __attribute__((visibility("hidden")));
extern int reg_high_water __attribute__((visibility("hidden"))); /* one above the highest descriptor ever tracked */

static inline int reg_tracked(int fd) { return (unsigned)fd < REG_MAX_FD; }

static inline int reg_kind(int fd)
{
    return reg_tracked(fd) ? __atomic_load_n(&reg_kinds[fd], __ATOMIC_RELAXED) : FD_NONE;
}
static inline void reg_set_kind(int fd, enum fd_kind kind)
{
    if (!reg_tracked(fd))
        return;
    __atomic_store_n(&reg_kinds[fd], (uint8_t)kind, __ATOMIC_RELAXED);
    int hw = __atomic_load_n(&reg_high_water, __ATOMIC_RELAXED);
    while (kind != FD_NONE && fd + 1 > hw &&
           !__atomic_compare_exchange_n(&reg_high_water, &hw, fd + 1, 0, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
        ;
}

/* Listeners. The shim keeps listeners O_NONBLOCK underneath the program and
 * remembers what the program asked for (bit 0). Bit 5: a private twin (twin.h),
 * a listener the gate treats as any other but a restart does not pass. */
#define REG_TWIN_BIT 0x20
void reg_listener_add(int fd, int program_nonblock);
static inline int reg_is_twin(int fd)
{
    return reg_tracked(fd) && (__atomic_load_n(&reg_listener_bits[fd], __ATOMIC_RELAXED) & REG_TWIN_BIT);
}
void reg_set_twin(int fd);
static inline int reg_program_nonblock(int fd)
{
    return reg_tracked(fd) && (reg_listener_bits[fd] & 1);
}
void reg_set_program_nonblock(int fd, int on);

/* The wait hint of a listener (gate.c): 0, a blocking accept tries to take a
 * client before it waits (a busy server's queue is seldom empty); n > 0, it waits
 * first, and tries first again after n more. A byte of its own, written plainly
 * on every idle accept: a hint, threads may race. */
extern uint8_t reg_wait_hints[REG_MAX_FD] __attribute__((visibility("hidden")));
static inline int reg_wait_hint(int fd)
{
    return reg_tracked(fd) ? __atomic_load_n(&reg_wait_hints[fd], __ATOMIC_RELAXED) : 0;
}
static inline void reg_set_wait_hint(int fd, int n)
{
    if (reg_tracked(fd))
        __atomic_store_n(&reg_wait_hints[fd], (uint8_t)n, __ATOMIC_RELAXED);
}
/* What a restart passes: the FD_LISTENER (but twins) and FD_DGRAM descriptors. out gets the
 * first HANDOFF_MAX_FDS by number; returns how many there are, which may be more. */
int reg_handed_over(int *out);
/* The lowest descriptor >= from of that kind, or -1: a loop with no limit. */
int reg_next(int from, enum fd_kind kind);
/* The listeners text of protocol.h for what a restart passes, NUL-terminated;
 * an address that does not fit is left out. */
void reg_describe_handed_over(char *buf, size_t size);
static inline int reg_is_handed_over(int kind) { return kind == FD_LISTENER || kind == FD_DGRAM; }
static inline int reg_has_handed_over(void)
{
    return reg_next(0, FD_LISTENER) >= 0 || reg_next(0, FD_DGRAM) >= 0;
}

/* Connections: each tracked descriptor counts once in the generation's total. */
void reg_conn_opened(int fd);
/* close() of an FD_CONN descriptor: forgotten and counted down, once (an
 * exchange: two threads closing the same number count it once). The hot path. */
static inline void reg_conn_closing(int fd)
{
    if (reg_tracked(fd) &&
        __atomic_exchange_n(&reg_kinds[fd], (uint8_t)FD_NONE, __ATOMIC_RELAXED) == FD_CONN)
        gen_conn_add(-1);
}
int reg_count_conns(void);               /* FD_CONN descriptors held here */
void reg_conns_cloexec(void);            /* set close-on-exec on all of them */

/* Epoll sets that watch listeners, with the program's events and data (ADD and
 * MOD record them). */
void reg_epoll_added(int epfd, int fd, const struct epoll_event *ev);
/* Caller holds reg_lock(): the registrations of fd (fd < 0: one per epoll set),
 * at most max, into epfds and evs; returns how many. */
int reg_epoll_of(int fd, int *epfds, struct epoll_event *evs, int max);
void reg_epoll_removed(int epfd, int fd);
/* Remove every listener (and the wake descriptor) from every epoll set; the
 * caller holds reg_lock(). */
void reg_epoll_drop_all(int wake_fd);

/* The program closed fd (already closed for real unless it is protected).
 * Returns 1 if the descriptor is protected and must not be closed. */
int reg_closing(int fd);
/* newfd now refers to what oldfd refers to. */
void reg_duped(int oldfd, int newfd);
/* The program is about to make fd refer to something else (dup2 target):
 * moves a protected descriptor out of the way, forgets the rest. */
void reg_retarget(int fd);

/* Internal and inherited descriptors live in variables the registry may update
 * when it moves them; register the variable, not the number. Past
 * REG_MAX_SLOTS variables the descriptor is still protected from close() but
 * cannot be moved (one log line). A variable on a stack must be released on
 * every path out of its frame. */
void reg_adopt(int *slot, enum fd_kind kind);
void reg_release(int *slot);   /* close and forget */

void reg_lock(void);
void reg_unlock(void);
/* After fork, in the child: the lock is free again. */
void reg_reset_lock(void);

#endif
