/* sockdiag.h - the kernel's socket tables (NETLINK_SOCK_DIAG), as plain records.
 *
 * One dump per question: the TCP sockets of a family whose local port is given,
 * or the Unix stream sockets bearing given names. The kernel walks its whole
 * table for each dump (milliseconds on a busy host): for the many-sockets case.
 */
#ifndef HUPTIME_SOCKDIAG_H
#define HUPTIME_SOCKDIAG_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

/* TCP states as the kernel reports them (its net/tcp_states.h). */
enum { ST_ESTABLISHED = 1, ST_SYN_RECV = 3, ST_TIME_WAIT = 6, ST_CLOSE = 7, ST_LISTEN = 10 };

/* What the drain's idle test needs of a TCP connection; known is 0 when the
 * kernel's tcp_info is too old to hold all of it. */
struct tcp_quiet {
    int known;
    unsigned state, unread, unsent, unacked, data_segs_out, last_sent_ms, last_recv_ms;
};

/* From a tcp_info of size bytes (the kernel's layout) and the queue sizes. */
void sockdiag_quiet(struct tcp_quiet *q, const void *info, size_t size, unsigned unread,
                    unsigned unsent);

struct unix_name {
    struct sockaddr_un addr;
    socklen_t len;
};

struct diag_sock {
    unsigned long inode;    /* never 0: sockets no process holds are left out */
    struct tcp_quiet quiet; /* TCP with info asked for; else zeroes */
};

/* Records are appended; sockdiag_free() releases them. */
struct diag_list {
    struct diag_sock *v;
    int n, cap;
};

/* The TCP sockets of family whose local port is port (network order), in every
 * state a process can hold (not LISTEN, TIME_WAIT or SYN_RECV); with info, their
 * tcp_info too. 0, or -1 with errno set. */
int sockdiag_tcp(struct diag_list *out, sa_family_t family, in_port_t port, int info);

/* The Unix stream sockets, not listening, named like one of names[0..n): the
 * connections accepted from listeners of those names. 0, or -1 with errno set. */
int sockdiag_unix(struct diag_list *out, const struct unix_name *names, int n);

void sockdiag_free(struct diag_list *l);

#endif
