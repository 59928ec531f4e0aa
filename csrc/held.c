/* held.c - which connections of this generation's listeners its processes hold (held.h). */
#define _GNU_SOURCE
#include "held.h"
#include "handoff.h"
#include "log.h"
#include "pidfd.h"
#include "real.h"
#include "registry.h"

#include <dirent.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* TCP states as sock_diag reports them (the kernel's net/tcp_states.h). */
enum { ST_ESTABLISHED = 1, ST_SYN_RECV = 3, ST_TIME_WAIT = 6, ST_CLOSE = 7, ST_LISTEN = 10 };

/* The stream listeners' local addresses, taken before the stop. */
static struct { sa_family_t family; in_port_t port; } tcp[HANDOFF_MAX_FDS];
static int n_tcp;
static struct { struct sockaddr_un addr; socklen_t len; } unix_names[HANDOFF_MAX_FDS];
static int n_unix;

enum { MAX_PROCESSES = 4096, DUMP_BUFFER = 64 * 1024, DIRECT_MAX = 512 };

void held_prepare(void)
{
    n_tcp = n_unix = 0;
    for (int fd = reg_next(0, FD_LISTENER); fd >= 0; fd = reg_next(fd + 1, FD_LISTENER)) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
            continue;
        if ((ss.ss_family == AF_INET || ss.ss_family == AF_INET6) && n_tcp < HANDOFF_MAX_FDS) {
            in_port_t port = ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                     : ((struct sockaddr_in6 *)&ss)->sin6_port;
            int i;
            for (i = 0; i < n_tcp && (tcp[i].family != ss.ss_family || tcp[i].port != port); i++)
                ;
            if (i == n_tcp) {
                tcp[n_tcp].family = ss.ss_family;
                tcp[n_tcp++].port = port;
            }
        } else if (ss.ss_family == AF_UNIX && n_unix < HANDOFF_MAX_FDS &&
                   len > offsetof(struct sockaddr_un, sun_path)) {
            memcpy(&unix_names[n_unix].addr, &ss, sizeof unix_names[n_unix].addr);
            unix_names[n_unix++].len = len;
        }
    }
}

/* The connections the kernel lists for those listeners: inodes, sorted. */
struct conn {
    unsigned long inode;
    int idle;   /* may be shut down (--drain-idle) */
    int done;   /* shut down in this round */
};

struct table {
    struct conn *v;
    int n, cap;
    long idle_ms;
};

static int add(struct table *t, unsigned long inode, int idle)
{
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 256;
        struct conn *v = realloc(t->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = (struct conn){ inode, idle, 0 };
    return 0;
}

static int by_inode(const void *a, const void *b)
{
    unsigned long x = ((const struct conn *)a)->inode, y = ((const struct conn *)b)->inode;
    return x < y ? -1 : x > y;
}

/* Quiet both ways for idle_ms, nothing unread or unsent, and the server spoke
 * last: it has sent data (a connection whose first request is still arriving
 * has not), no later than it last received any. Both ages count in the same
 * clock ticks, so an answer sent within the tick of its request ties: taken as
 * answered. A kernel whose tcp_info lacks the data segment count never closes. */
static int quiet(const struct tcp_info *ti, size_t size, unsigned unread, unsigned unsent,
                 long idle_ms)
{
    return size >= offsetof(struct tcp_info, tcpi_data_segs_out) + sizeof(__u32) &&
           ti->tcpi_state == ST_ESTABLISHED && !unread && !unsent && !ti->tcpi_unacked &&
           ti->tcpi_data_segs_out > 0 && ti->tcpi_last_data_sent >= idle_ms &&
           ti->tcpi_last_data_recv >= idle_ms &&
           ti->tcpi_last_data_sent <= ti->tcpi_last_data_recv;
}

static int is_idle(const struct inet_diag_msg *m, const struct nlmsghdr *h, long idle_ms)
{
    struct rtattr *a = (struct rtattr *)(m + 1);
    int left = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof *m);
    for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
        if (a->rta_type != INET_DIAG_INFO)
            continue;
        struct tcp_info ti;
        size_t n = RTA_PAYLOAD(a) < sizeof ti ? RTA_PAYLOAD(a) : sizeof ti;
        memset(&ti, 0, sizeof ti);
        memcpy(&ti, RTA_DATA(a), n);
        return quiet(&ti, n, m->idiag_rqueue, m->idiag_wqueue, idle_ms);
    }
    return 0;
}

static int on_tcp(const struct nlmsghdr *h, struct table *t)
{
    const struct inet_diag_msg *m = NLMSG_DATA(h);
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof *m) || !m->idiag_inode || m->idiag_state == ST_LISTEN)
        return 0;
    return add(t, m->idiag_inode, t->idle_ms > 0 && is_idle(m, h, t->idle_ms));
}

static int on_unix(const struct nlmsghdr *h, struct table *t)
{
    const struct unix_diag_msg *m = NLMSG_DATA(h);
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof *m) || !m->udiag_ino || m->udiag_type != SOCK_STREAM ||
        m->udiag_state == ST_LISTEN)
        return 0;
    struct rtattr *a = (struct rtattr *)(m + 1);
    int left = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof *m);
    for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
        size_t n = RTA_PAYLOAD(a);
        struct sockaddr_un name = { .sun_family = AF_UNIX };
        if (a->rta_type != UNIX_DIAG_NAME || n == 0 || n > sizeof name.sun_path)
            continue;
        memcpy(name.sun_path, RTA_DATA(a), n);
        socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        for (int i = 0; i < n_unix; i++)
            if (huptime_sockaddr_same((struct sockaddr *)&name, len,
                                      (struct sockaddr *)&unix_names[i].addr, unix_names[i].len))
                return add(t, m->udiag_ino, 0); /* accepted sockets carry the listener's name */
    }
    return 0;
}

/* One sock_diag dump: every message goes to each(). 0, or -1 (errno set). */
static int dump(const void *req, size_t size, int (*each)(const struct nlmsghdr *, struct table *),
                struct table *t, char *buf)
{
    int s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (s < 0)
        return -1;
    struct {
        struct nlmsghdr h;
        union { struct inet_diag_req_v2 inet; struct unix_diag_req un; } body;
    } msg;
    memset(&msg, 0, sizeof msg);
    msg.h.nlmsg_len = NLMSG_LENGTH(size);
    msg.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.h.nlmsg_seq = 1;
    memcpy(&msg.body, req, size);
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    int r = -1;
    if (sendto(s, &msg, msg.h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
        goto out;
    for (;;) {
        ssize_t n = REAL(recv)(s, buf, DUMP_BUFFER, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto out;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE) {
                r = 0;
                goto out;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                errno = e->error ? -e->error : EPROTO;
                goto out;
            }
            if (each(h, t) < 0) {
                errno = ENOMEM;
                goto out;
            }
        }
    }
out:
    REAL(close)(s);
    return r;
}

/* Every connection of the listeners, from the kernel. */
static int list_connections(struct table *t)
{
    char *buf = malloc(DUMP_BUFFER);
    if (!buf)
        return -1;
    int r = 0;
    /* Sockets a process may hold; TIME_WAIT and request sockets never are. */
    unsigned states = 0xfff & ~(1u << ST_LISTEN | 1u << ST_TIME_WAIT | 1u << ST_SYN_RECV);
    for (int i = 0; i < n_tcp && r == 0; i++) {
        struct inet_diag_req_v2 req = {
            .sdiag_family = (unsigned char)tcp[i].family, .sdiag_protocol = IPPROTO_TCP,
            .idiag_ext = t->idle_ms > 0 ? 1 << (INET_DIAG_INFO - 1) : 0,
            .idiag_states = states, .id.idiag_sport = tcp[i].port,
        };
        r = dump(&req, sizeof req, on_tcp, t, buf);
    }
    if (n_unix > 0 && r == 0) {
        struct unix_diag_req req = { .sdiag_family = AF_UNIX, .udiag_states = ~(1u << ST_LISTEN),
                                     .udiag_show = UDIAG_SHOW_NAME };
        r = dump(&req, sizeof req, on_unix, t, buf);
    }
    free(buf);
    if (r == 0 && t->n > 1)
        qsort(t->v, (size_t)t->n, sizeof *t->v, by_inode);
    return r;
}

/* This process and its descendants, but not `except` and its own. */
static int generation_processes(pid_t except, pid_t *out, int max)
{
    int n = 0;
    out[n++] = getpid();
    for (int i = 0; i < n; i++) {
        char path[96];
        snprintf(path, sizeof path, "/proc/%d/task", (int)out[i]);
        DIR *tasks = opendir(path);
        if (!tasks)
            continue;
        struct dirent *task;
        while ((task = readdir(tasks))) {
            if (task->d_name[0] == '.')
                continue;
            snprintf(path, sizeof path, "/proc/%d/task/%.20s/children", (int)out[i], task->d_name);
            FILE *f = fopen(path, "re");
            int pid;
            while (f && fscanf(f, "%d", &pid) == 1)
                if (pid != except && n < max)
                    out[n++] = pid;
            if (f)
                fclose(f);
        }
        closedir(tasks);
    }
    return n;
}

/* Shut the connection down under the program (both ways: it reads an end of
 * file, the client too), through a copy of its descriptor; checked to be the
 * same socket, since the program may have reused the number meanwhile. */
static int shut_down(pid_t pid, int fd, unsigned long inode)
{
    static int warned;
    int pidfd = pidfd_open(pid), copy = -1, ok = 0;
    struct stat st;
    if (pidfd >= 0)
        copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    if (copy >= 0 && fstat(copy, &st) == 0 && st.st_ino == inode)
        ok = shutdown(copy, SHUT_RDWR) == 0;
    else if (copy < 0)
        log_once(&warned, "--drain-idle: cannot reach the connections of pid %d (%s); idle ones "
                 "stay open", (int)pid, strerror(errno));
    if (copy >= 0)
        REAL(close)(copy);
    if (pidfd >= 0)
        REAL(close)(pidfd);
    return ok;
}

/* The sockets the generation's processes have open: (pid, fd, inode). */
struct sock {
    pid_t pid;
    int fd;
    unsigned long inode;
};

struct socks {
    struct sock *v;
    int n, cap;
};

static int list_sockets(pid_t pid, struct socks *s)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *fds = opendir(path);
    if (!fds)
        return 0; /* gone meanwhile */
    struct dirent *e;
    int r = 0;
    while ((e = readdir(fds))) {
        char link[64];
        ssize_t k = readlinkat(dirfd(fds), e->d_name, link, sizeof link - 1);
        if (k <= 8 || memcmp(link, "socket:[", 8) != 0)
            continue;
        link[k] = '\0';
        if (s->n == s->cap) {
            int cap = s->cap ? 2 * s->cap : 64;
            struct sock *v = realloc(s->v, (size_t)cap * sizeof *v);
            if (!v) {
                r = -1;
                break;
            }
            s->v = v;
            s->cap = cap;
        }
        s->v[s->n++] = (struct sock){ pid, atoi(e->d_name), strtoul(link + 8, NULL, 10) };
    }
    closedir(fds);
    return r;
}

/* A stream socket accepted from one of the listeners (never a listener): 1. A
 * TCP connection the kernel already closed (reset) is not one. *ti gets its
 * tcp_info (*size bytes; 0 for a Unix socket). */
static int is_connection(int fd, struct tcp_info *ti, size_t *size)
{
    int v = 0;
    socklen_t len = sizeof v;
    struct sockaddr_storage ss;
    socklen_t slen = sizeof ss;
    *size = 0;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0 || v ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0 || v != SOCK_STREAM ||
        getsockname(fd, (struct sockaddr *)&ss, &slen) < 0)
        return 0;
    if (ss.ss_family == AF_UNIX) {
        for (int i = 0; i < n_unix; i++)
            if (huptime_sockaddr_same((struct sockaddr *)&ss, slen,
                                      (struct sockaddr *)&unix_names[i].addr, unix_names[i].len))
                return 1;
        return 0;
    }
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
        return 0;
    in_port_t port = ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                             : ((struct sockaddr_in6 *)&ss)->sin6_port;
    int i;
    for (i = 0; i < n_tcp && (tcp[i].family != ss.ss_family || tcp[i].port != port); i++)
        ;
    socklen_t tlen = sizeof *ti;
    memset(ti, 0, sizeof *ti);
    if (i == n_tcp || getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &tlen) < 0)
        return i < n_tcp;
    *size = tlen;
    return ti->tcpi_state != ST_CLOSE;
}

/* Few sockets: look at each through a copy of its descriptor (pidfd_getfd),
 * which costs microseconds where a socket table dump walks the whole table.
 * Returns how many are held, or -1 if copies cannot be had (then the dump). */
static int held_direct(const struct socks *s, long idle_ms, int *closed)
{
    int held = 0, pidfd = -1;
    pid_t current = -1;
    for (int i = 0; i < s->n && held >= 0; i++) {
        const struct sock *k = &s->v[i];
        if (k->pid != current) {
            if (pidfd >= 0)
                REAL(close)(pidfd);
            current = k->pid;
            pidfd = pidfd_open(current);
        }
        if (pidfd < 0)
            continue; /* gone meanwhile */
        int copy = (int)syscall(SYS_pidfd_getfd, pidfd, k->fd, 0);
        if (copy < 0) {
            if (errno != EBADF && errno != ESRCH)
                held = -1; /* not allowed here, or no such call: the dump decides */
            continue;
        }
        struct stat st;
        struct tcp_info ti;
        size_t size;
        if (fstat(copy, &st) == 0 && st.st_ino == k->inode && is_connection(copy, &ti, &size)) {
            held++;
            int unread = 0, unsent = 0;
            if (idle_ms > 0 && size > 0 && REAL(ioctl)(copy, SIOCINQ, &unread) == 0 &&
                REAL(ioctl)(copy, SIOCOUTQ, &unsent) == 0 &&
                quiet(&ti, size, (unsigned)unread, (unsigned)unsent, idle_ms))
                *closed += shutdown(copy, SHUT_RDWR) == 0;
        }
        REAL(close)(copy);
    }
    if (pidfd >= 0)
        REAL(close)(pidfd);
    return held;
}

/* Many sockets: one dump of the socket tables per listener port, joined with the
 * inodes the processes hold. Returns how many are held, or -1. */
static int held_by_dump(const struct socks *s, long idle_ms, int *closed)
{
    struct table t = { NULL, 0, 0, idle_ms };
    int held = -1;
    if (list_connections(&t) < 0)
        goto out;
    held = 0;
    for (int i = 0; i < s->n && t.n > 0; i++) {
        struct conn key = { s->v[i].inode, 0, 0 };
        struct conn *c = bsearch(&key, t.v, (size_t)t.n, sizeof *t.v, by_inode);
        if (!c)
            continue;
        held++;
        if (c->idle && !c->done) {
            c->done = 1;
            *closed += shut_down(s->v[i].pid, s->v[i].fd, c->inode);
        }
    }
out:
    free(t.v);
    return held;
}

int held_count(pid_t except, long idle_ms, int *closed)
{
    static int warned;
    struct socks s = { NULL, 0, 0 };
    pid_t *pids = malloc(MAX_PROCESSES * sizeof *pids);
    int held = -1;
    *closed = 0;
    if (!pids)
        goto out;
    int n = generation_processes(except, pids, MAX_PROCESSES);
    for (int i = 0; i < n; i++)
        if (list_sockets(pids[i], &s) < 0)
            goto out;
    if (s.n <= DIRECT_MAX)
        held = held_direct(&s, idle_ms, closed);
    if (held < 0)
        held = held_by_dump(&s, idle_ms, closed);
out:
    if (held < 0)
        log_once(&warned, "cannot see this generation's connections in the kernel (%s): the "
                 "drain follows the shim's own count", strerror(errno));
    free(s.v);
    free(pids);
    return held;
}
