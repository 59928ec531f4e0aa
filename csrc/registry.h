/* registry.h - what the shim knows about this process's descriptors.
 *
 * A byte per descriptor number says what it is. Lookups and connection counting
 * are lock-free (the hot path: accept and close); listener and epoll bookkeeping,
 * which change rarely, take reg_lock(). Descriptors at or above REG_MAX_FD are
 * not tracked: the shim treats them as plain descriptors.
 */
#ifndef HUPTIME_REGISTRY_H
#define HUPTIME_REGISTRY_H

#define REG_MAX_FD 65536

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

int reg_kind(int fd);
void reg_set_kind(int fd, enum fd_kind kind);

/* Listeners. The shim keeps listeners O_NONBLOCK underneath the program and
 * remembers what the program asked for. */
void reg_listener_add(int fd, int program_nonblock);
int reg_program_nonblock(int fd);
void reg_set_program_nonblock(int fd, int on);
int reg_listeners(int *out, int max);    /* the FD_LISTENER descriptors */
int reg_handed_over(int *out, int max);  /* FD_LISTENER and FD_DGRAM: what a restart passes */
static inline int reg_is_handed_over(int kind) { return kind == FD_LISTENER || kind == FD_DGRAM; }

/* Connections: each tracked descriptor counts once in the generation's total. */
void reg_conn_opened(int fd);
int reg_count_conns(void);               /* FD_CONN descriptors held here */
void reg_conns_cloexec(void);            /* set close-on-exec on all of them */

/* Epoll sets that watch listeners. */
void reg_epoll_added(int epfd, int fd);
void reg_epoll_removed(int epfd, int fd);
/* Remove every listener (and the wake descriptor) from every epoll set; the
 * caller holds reg_lock(). */
void reg_epoll_drop_all(int wake_fd);

/* The program is closing fd, a connection: forget it and count it down. */
void reg_conn_closing(int fd);
/* The program closed fd (already closed for real unless it is protected).
 * Returns 1 if the descriptor is protected and must not be closed. */
int reg_closing(int fd);
/* newfd now refers to what oldfd refers to. */
void reg_duped(int oldfd, int newfd);
/* The program is about to make fd refer to something else (dup2 target):
 * moves a protected descriptor out of the way, forgets the rest. */
void reg_retarget(int fd);

/* Internal and inherited descriptors live in variables the registry may update
 * when it moves them; register the variable, not the number. */
void reg_adopt(int *slot, enum fd_kind kind);
void reg_release(int *slot);   /* close and forget */

void reg_lock(void);
void reg_unlock(void);
/* After fork, in the child: the lock is free again. */
void reg_reset_lock(void);

#endif
